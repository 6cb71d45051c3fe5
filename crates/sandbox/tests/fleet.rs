//! Two real engines behind one sandbox: the machine's own dockerd on its unix socket, and a
//! second one this test starts itself (its own socket and data root, the sandbox image loaded
//! into it), reached over loopback TCP with TLS both ways as Docker's remote API is. Runs spread
//! over both; the second is killed in the middle of its runs, which end as `sandbox_error`
//! within seconds while the first engine's run goes on and new runs go to the first; health
//! names the dead engine; started again, it takes runs again; a storm of starts and cancels
//! over both leaves nothing behind on either.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::daemon::TestDaemon;
use common::{collect, config, containers_at, image, program, run, sandbox, SOCKET};
use duet_sandbox::{DockerSandbox, EngineAddr, RunEvent, RunHandle, RunStatus, Sandbox};
use std::path::PathBuf;
use std::time::{Duration, Instant};

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what} after 30 s");
}

/// Runs given a slot on each engine so far.
fn runs_per_engine(sandbox: &DockerSandbox) -> Vec<u64> {
    sandbox.health().engines.iter().map(|e| e.runs).collect()
}

/// Starts a run that prints `up` and sleeps; returns once it printed.
async fn started_sleeper(sandbox: &DockerSandbox) -> RunHandle {
    let mut request = program("import time\nprint('up')\ntime.sleep(600)\n");
    // Far beyond the waits here: a run that ends has ended because of its engine.
    request.limits.wall = Duration::from_secs(180);
    let mut handle = sandbox.start(request).expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"up\n") {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected output, got {other:?}"),
        }
    }
    handle
}

/// Only the warm containers are left on both engines (the pool holds one on each).
async fn only_the_pools_left(sandbox: &DockerSandbox, engines: &[&str], instance: &str) {
    let mut left = Vec::new();
    for _ in 0..300 {
        left = Vec::new();
        for socket in engines {
            left.push(containers_at(socket, instance).await);
        }
        let warm: Vec<usize> = sandbox.health().engines.iter().map(|e| e.warm).collect();
        if left.iter().all(|l| l.len() == 1) && warm == vec![1, 1] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected one warm container on each engine, found {left:?}");
}

#[tokio::test]
async fn two_engines_share_runs_survive_the_death_of_one_and_take_it_back() {
    let mut second = TestDaemon::start_tls("f");
    second.load_image(&image());
    let second_socket = second.socket();
    let second_addr = format!("tcp://127.0.0.1:{}", second.tls().port);

    let mut cfg = config("fleet");
    cfg.engines = vec![
        EngineAddr::Unix(PathBuf::from(SOCKET)),
        EngineAddr::parse(&second_addr, Some(&second.tls().client)).unwrap(),
    ];
    cfg.concurrency = 2;
    cfg.pool_min = 1;
    cfg.pool_max = 1;
    cfg.health_interval = Duration::from_millis(300);
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    let both = [SOCKET, second_socket.as_str()];
    let health = sandbox.health();
    assert_eq!(
        health
            .engines
            .iter()
            .map(|e| (e.engine.as_str(), e.status, e.slots))
            .collect::<Vec<_>>(),
        vec![
            ("unix:///var/run/docker.sock", "ok", 2),
            (second_addr.as_str(), "ok", 2)
        ]
    );

    // Four runs at once on two engines of two slots: each takes the engine with the most
    // free slots, so they alternate, two on each.
    let four = (0..4).map(|_| {
        run(
            &sandbox,
            program("import time\ntime.sleep(2)\nprint('ok')\n"),
        )
    });
    for ran in futures_util::future::join_all(four).await {
        assert_eq!(
            (ran.status(), ran.out().as_str()),
            (RunStatus::Ok, "ok\n"),
            "{ran:?}"
        );
    }
    assert_eq!(runs_per_engine(&sandbox), vec![2, 2]);

    // One run in flight on each engine when the second dies (both pools full first: a warm
    // container draws a run, so the second run goes where one still waits).
    wait_for("both pools full", || {
        sandbox.health().engines.iter().all(|e| e.warm == 1)
    })
    .await;
    let mut on_first = started_sleeper(&sandbox).await;
    let on_second = started_sleeper(&sandbox).await;
    assert_eq!(runs_per_engine(&sandbox), vec![3, 3]);
    let killed = Instant::now();
    second.kill();
    let cut = collect(on_second.events, killed).await;
    assert_eq!(cut.status(), RunStatus::SandboxError, "{cut:?}");
    assert!(
        cut.total < Duration::from_secs(5),
        "the run on the dead engine ended {:?} after the kill",
        cut.total
    );

    // Health says which engine, and the run on the first engine goes on.
    wait_for("the second engine degraded", || {
        sandbox.health().engines[1].status == "degraded"
    })
    .await;
    let health = sandbox.health();
    assert_eq!(
        (health.status, health.engines[0].status),
        ("degraded", "ok")
    );
    let detail = health.detail.unwrap_or_default();
    assert!(
        detail.starts_with("1 of 2 sandbox engines unusable") && detail.contains(&second_addr),
        "{detail}"
    );
    assert!(
        on_first.events.try_recv().is_err(),
        "the first engine's run is still running"
    );

    // New runs go to the first engine and succeed.
    for i in 0..3 {
        let ran = run(&sandbox, program(&format!("print({i})\n"))).await;
        assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    }
    assert_eq!(runs_per_engine(&sandbox), vec![6, 3]);
    on_first.cancel.cancel();
    let stopped = collect(on_first.events, Instant::now()).await;
    assert_eq!(stopped.status(), RunStatus::Cancelled, "{stopped:?}");

    // The second engine comes back and takes runs again; what the outage left on it is reaped.
    second.spawn();
    wait_for("health back to ok", || sandbox.health().status == "ok").await;
    wait_for("both pools full", || {
        sandbox.health().engines.iter().all(|e| e.warm == 1)
    })
    .await;
    let two = (0..2).map(|_| {
        run(
            &sandbox,
            program("import time\ntime.sleep(1)\nprint('ok')\n"),
        )
    });
    for ran in futures_util::future::join_all(two).await {
        assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    }
    assert_eq!(runs_per_engine(&sandbox), vec![7, 4]);
    only_the_pools_left(&sandbox, &both, &instance).await;

    // A storm over both engines, queued runs among them: 24 runs started at once on four
    // slots, each cancelled 0 to 1.2 s after its start (queued, starting or running).
    let storm = (0..24u64).map(|i| {
        let sandbox = &sandbox;
        async move {
            let handle = sandbox
                .start(program("import time\nprint('up')\ntime.sleep(30)\n"))
                .expect("queued");
            tokio::time::sleep(Duration::from_millis(i * 53 % 1200)).await;
            handle.cancel.cancel();
            collect(handle.events, Instant::now()).await
        }
    });
    for ran in futures_util::future::join_all(storm).await {
        assert_eq!(ran.status(), RunStatus::Cancelled, "{ran:?}");
    }
    only_the_pools_left(&sandbox, &both, &instance).await;
    sandbox.shutdown().await;
    for socket in both {
        let left = containers_at(socket, &instance).await;
        assert!(left.is_empty(), "containers left on {socket}: {left:?}");
    }
}

#[tokio::test]
async fn an_engine_that_stops_answering_ends_its_runs_and_rejoins_when_it_answers_again() {
    let hung = TestDaemon::start("h");
    hung.load_image(&image());
    let hung_socket = hung.socket();
    let mut cfg = config("fleet-hang");
    cfg.engines = vec![
        EngineAddr::Unix(PathBuf::from(SOCKET)),
        EngineAddr::Unix(PathBuf::from(&hung_socket)),
    ];
    cfg.concurrency = 1;
    cfg.health_interval = Duration::from_millis(300);
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;

    // One run on each engine; then the second stops answering (SIGSTOP: its socket stays open,
    // nothing comes back). Its run's output stream just goes quiet: only the health check can
    // tell, and the run must not wait out its three-minute wall limit.
    let mut on_first = started_sleeper(&sandbox).await;
    let on_hung = started_sleeper(&sandbox).await;
    assert_eq!(runs_per_engine(&sandbox), vec![1, 1]);
    let paused = Instant::now();
    hung.pause();
    let cut = collect(on_hung.events, paused).await;
    assert_eq!(cut.status(), RunStatus::SandboxError, "{cut:?}");
    let detail = cut.outcome.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("stopped answering") && detail.contains(&hung_socket),
        "{cut:?}"
    );
    assert!(
        cut.total < Duration::from_secs(15),
        "ended {:?} after the engine hung",
        cut.total
    );
    assert_eq!(sandbox.health().engines[1].status, "degraded");
    assert!(
        on_first.events.try_recv().is_err(),
        "the first engine's run goes on"
    );
    on_first.cancel.cancel();
    let stopped = collect(on_first.events, Instant::now()).await;
    assert_eq!(stopped.status(), RunStatus::Cancelled);
    let ran = run(&sandbox, program("print('elsewhere')\n")).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(runs_per_engine(&sandbox), vec![2, 1]);

    // It answers again: it rejoins, and what the hang left on it is reaped.
    hung.resume();
    wait_for("health back to ok", || sandbox.health().status == "ok").await;
    let busy = started_sleeper(&sandbox).await;
    let ran = run(&sandbox, program("print('back')\n")).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        runs_per_engine(&sandbox),
        vec![3, 2],
        "the second run went to it"
    );
    busy.cancel.cancel();
    let _ = collect(busy.events, Instant::now()).await;
    sandbox.shutdown().await;
    for socket in [SOCKET, hung_socket.as_str()] {
        let left = containers_at(socket, &instance).await;
        assert!(left.is_empty(), "containers left on {socket}: {left:?}");
    }
}
