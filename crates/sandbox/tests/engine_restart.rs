//! A real engine outage: a second Docker daemon that this test starts itself (its own socket,
//! data root, exec root, pid file and managed containerd; no bridge, no iptables), the sandbox
//! image loaded into it, killed in the middle of a run and started again. Restarting it cannot
//! touch the containers of other tests, which run on the machine's own engine.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::daemon::TestDaemon;
use common::{collect, config, containers_at, image, program, run, sandbox};
use duet_sandbox::{EngineAddr, RunEvent, RunStatus, Sandbox};
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

#[tokio::test]
async fn a_real_engine_restart_ends_the_run_degrades_health_and_runs_recover_with_nothing_left() {
    let mut daemon = TestDaemon::start("r");
    daemon.load_image(&image());
    let socket = daemon.socket();

    let mut cfg = config("engine-restart");
    cfg.engines = vec![EngineAddr::Unix(PathBuf::from(&socket))];
    cfg.health_interval = Duration::from_millis(300);
    cfg.pool_min = 1;
    cfg.pool_max = 1;
    // Far beyond the 60 s `collect` waits: a run that ends has ended because of the outage.
    cfg.limits.wall = Duration::from_secs(180);
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    wait_for("a warm container", || sandbox.health().warm == 1).await;

    // A run is in flight when the engine dies.
    let started = Instant::now();
    let mut handle = sandbox
        .start(program("import time\nprint('up')\ntime.sleep(600)\n"))
        .expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"up\n") {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected output, got {other:?}"),
        }
    }
    daemon.kill();
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");

    // Health says so, and what to run.
    wait_for("degraded health", || sandbox.health().status == "degraded").await;
    let detail = sandbox.health().detail.unwrap_or_default();
    assert!(
        detail.contains(&socket) && detail.contains("bash scripts/ensure-docker.sh"),
        "{detail}"
    );
    let ran = run(&sandbox, program("print(1)\n")).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");

    // The engine comes back: health recovers, runs work, the pool refills and what the outage
    // left (the cut run's container, the warm one) is reaped.
    daemon.spawn();
    wait_for("health back to ok", || sandbox.health().status == "ok").await;
    let ran = run(&sandbox, program("print('back')\n")).await;
    assert_eq!(
        (ran.status(), ran.out().as_str()),
        (RunStatus::Ok, "back\n"),
        "{ran:?}"
    );
    let mut left = Vec::new();
    for _ in 0..300 {
        left = containers_at(&socket, &instance).await;
        if left.len() == 1 && sandbox.health().warm == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (left.len(), sandbox.health().warm),
        (1, 1),
        "only the new warm container is left: {left:?}"
    );
    sandbox.shutdown().await;
    let left = containers_at(&socket, &instance).await;
    assert!(
        left.is_empty(),
        "containers left in the test's engine: {left:?}"
    );
}
