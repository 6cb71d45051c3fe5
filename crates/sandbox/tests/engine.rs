//! The sandbox and its engine: the warm pool, the reaper, an engine that is missing or goes
//! away in the middle of a run and comes back.

mod common;

use common::{assert_no_containers, collect, config, containers, program, run, sandbox, SOCKET};
use duet_sandbox::{DockerSandbox, RunEvent, RunStatus, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < limit,
            "gave up waiting for {what} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Request to first byte of output, `n` times, one run at a time.
async fn first_bytes(sandbox: &DockerSandbox, n: usize, warm: bool) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..n {
        if warm {
            wait_for("a full pool", Duration::from_secs(20), || {
                sandbox.health().warm == 2
            })
            .await;
        }
        let ran = run(sandbox, program("print(1)\n")).await;
        assert_eq!(
            (ran.status(), ran.out().as_str()),
            (RunStatus::Ok, "1\n"),
            "{ran:?}"
        );
        times.push(ran.first_output.expect("output"));
    }
    times.sort();
    times
}

#[tokio::test]
async fn warm_pool_serves_each_container_once_and_starts_faster_than_cold() {
    let mut cfg = config("pool");
    cfg.pool_size = 2;
    let instance = cfg.instance.clone();
    let warm_sandbox = sandbox(cfg).await;
    wait_for("a full pool", Duration::from_secs(20), || {
        warm_sandbox.health().warm == 2
    })
    .await;

    // Single use: the container that served a run is gone, a new one took its place.
    let before = containers(&instance).await;
    assert_eq!(before.len(), 2, "{before:?}");
    let ran = run(&warm_sandbox, program("print('warm')\n")).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    wait_for("the pool to refill", Duration::from_secs(20), || {
        warm_sandbox.health().warm == 2
    })
    .await;
    let after = containers(&instance).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        before.iter().filter(|n| after.contains(n)).count(),
        1,
        "{before:?} then {after:?}"
    );

    let warm = first_bytes(&warm_sandbox, 15, true).await;

    // pytest in a warm container (its runner imports pytest when the run comes).
    let mut tests = program("");
    tests.files = [(
        "test_w.py".to_string(),
        "def test_ok():\n    assert True\n".to_string(),
    )]
    .into();
    tests.target = duet_sandbox::Target::Pytest {
        test_files: vec!["test_w.py".into()],
    };
    wait_for("a full pool", Duration::from_secs(20), || {
        warm_sandbox.health().warm == 2
    })
    .await;
    let ran = run(&warm_sandbox, tests).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.outcome.tests.map(|t| t.passed), Some(1));
    warm_sandbox.shutdown().await;
    assert_no_containers(&instance).await;

    let cold_sandbox = sandbox(config("cold")).await;
    let cold = first_bytes(&cold_sandbox, 8, false).await;
    eprintln!(
        "request to first byte: warm pool p50 {:?} p99 {:?} (n={}); cold p50 {:?} p99 {:?} (n={})",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99),
        warm.len(),
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
        cold.len()
    );
    assert!(
        percentile(&warm, 0.5) < percentile(&cold, 0.5),
        "warm {warm:?} cold {cold:?}"
    );
    assert!(
        percentile(&warm, 0.5) < Duration::from_millis(150),
        "warm {warm:?}"
    );
}

#[tokio::test]
async fn the_reaper_removes_containers_no_run_owns_and_spares_the_pool() {
    let mut cfg = config("reaper");
    cfg.pool_size = 1;
    let instance = cfg.instance.clone();
    // What a killed server leaves: a labelled container of this instance that nobody owns.
    {
        let stray = sandbox(cfg.clone()).await;
        wait_for("a warm container", Duration::from_secs(20), || {
            stray.health().warm == 1
        })
        .await;
        // Dropped without shutdown, like a crash: its warm container stays on the engine.
    }
    assert_eq!(containers(&instance).await.len(), 1);
    let sandbox = DockerSandbox::new(cfg).expect("config");
    wait_for("a warm container", Duration::from_secs(20), || {
        sandbox.health().warm == 1
    })
    .await;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = containers(&instance).await;
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left.len(),
        1,
        "only the new warm container remains: {left:?}"
    );
    assert_eq!(
        sandbox.reap_now().await,
        Ok(0),
        "the warm container is owned"
    );
    assert_eq!(sandbox.health().warm, 1);
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_missing_engine_degrades_health_and_ends_runs_as_sandbox_errors() {
    let mut cfg = config("no-engine");
    cfg.socket = PathBuf::from("/nonexistent/docker.sock");
    let sandbox = DockerSandbox::new(cfg).expect("config");
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "degraded");
    let detail = health.detail.unwrap_or_default();
    assert!(
        detail.contains("/nonexistent/docker.sock")
            && detail.contains("bash scripts/ensure-docker.sh"),
        "{detail}"
    );
    let ran = run(&sandbox, program("print(1)\n")).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");
    assert!(ran.total < Duration::from_secs(5), "{:?}", ran.total);
}

#[tokio::test]
async fn a_missing_image_says_how_to_build_it() {
    let mut cfg = config("no-image");
    cfg.image = "duet-sandbox-missing:nothing".into();
    let sandbox = DockerSandbox::new(cfg).expect("config");
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "degraded");
    let detail = health.detail.unwrap_or_default();
    assert!(detail.contains("bash sandbox/build-image.sh"), "{detail}");
}

/// A stand-in for the engine's socket that can be cut and restored: the engine "goes away"
/// and "comes back" for the sandbox while the real engine (and other tests) carry on.
fn engine_proxy(path: &Path) -> CancellationToken {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind the proxy socket");
    let token = CancellationToken::new();
    let stop = token.clone();
    let path = path.to_path_buf();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { continue };
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let Ok(mut engine) = UnixStream::connect(SOCKET).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut engine) => {}
                            _ = stop.cancelled() => {}
                        }
                    });
                }
            }
        }
        let _ = std::fs::remove_file(path);
    });
    token
}

#[tokio::test]
async fn an_engine_outage_mid_run_ends_it_as_sandbox_error_and_runs_recover() {
    let path = std::env::temp_dir().join(format!("duet-engine-proxy-{}.sock", std::process::id()));
    let proxy = engine_proxy(&path);
    let mut cfg = config("outage");
    cfg.socket = path.clone();
    cfg.health_interval = Duration::from_millis(300);
    cfg.limits.wall = Duration::from_secs(20);
    cfg.pool_size = 1;
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    wait_for("a warm container", Duration::from_secs(20), || {
        sandbox.health().warm == 1
    })
    .await;

    let started = Instant::now();
    let mut long_run = program("import time\nprint('up')\ntime.sleep(60)\n");
    long_run.limits.wall = Duration::from_secs(20);
    let mut handle = sandbox.start(long_run).expect("queued");
    let mut seen = Vec::new();
    while seen != b"up\n" {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected output, got {other:?}"),
        }
    }
    proxy.cancel();
    let cut = Instant::now();
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");
    assert!(
        cut.elapsed() < Duration::from_secs(6),
        "ended {:?} after the cut (deadline 20 s)",
        cut.elapsed()
    );

    wait_for("degraded health", Duration::from_secs(5), || {
        sandbox.health().status == "degraded"
    })
    .await;
    let detail = sandbox.health().detail.unwrap_or_default();
    assert!(detail.contains("bash scripts/ensure-docker.sh"), "{detail}");
    let ran = run(&sandbox, program("print(1)\n")).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");
    assert!(
        !containers(&instance).await.is_empty(),
        "the cut run's container is still on the engine"
    );

    let proxy = engine_proxy(&path);
    wait_for("health back to ok", Duration::from_secs(10), || {
        sandbox.health().status == "ok"
    })
    .await;
    let ran = run(&sandbox, program("print('back')\n")).await;
    assert_eq!(
        (ran.status(), ran.out().as_str()),
        (RunStatus::Ok, "back\n"),
        "{ran:?}"
    );
    // The reaper sweeps what the outage left as soon as the engine is back (the cut run's
    // container, the warm container that died with the connection); the pool refills.
    let mut left = containers(&instance).await;
    for _ in 0..100 {
        if left.len() == 1 && sandbox.health().warm == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = containers(&instance).await;
    }
    assert_eq!(
        (left.len(), sandbox.health().warm),
        (1, 1),
        "left after the outage: {left:?}"
    );
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
    proxy.cancel();
}
