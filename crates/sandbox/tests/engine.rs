//! The sandbox and its engine: the warm pool, the reaper, an engine or image that is missing.
//! (A real engine going away mid-run and coming back: engine_restart.rs. Start-up timings:
//! `cargo run --release -p duet-sandbox --example first_byte`.)
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{assert_no_containers, config, containers, program, run, sandbox};
use duet_sandbox::{DockerSandbox, EngineAddr, RunStatus, Sandbox};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

#[tokio::test]
async fn warm_pool_serves_each_container_once() {
    let mut cfg = config("pool");
    cfg.pool_min = 2;
    cfg.pool_max = 2;
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
    // The used one is removed in the background, just after the run's end.
    let mut after = containers(&instance).await;
    for _ in 0..100 {
        if after.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = containers(&instance).await;
    }
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        before.iter().filter(|n| after.contains(n)).count(),
        1,
        "{before:?} then {after:?}"
    );

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
}

#[tokio::test]
async fn the_pool_grows_with_a_burst_of_runs_and_settles_back_when_they_stop() {
    let mut cfg = config("pool-grows");
    cfg.pool_min = 1;
    cfg.pool_max = 4;
    // The rate over 6 s, its last second for bursts.
    cfg.pool_window = Duration::from_secs(6);
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    wait_for("the minimum", Duration::from_secs(20), || {
        sandbox.health().warm == 1
    })
    .await;
    let engine = || sandbox.health().engines[0].clone();
    assert_eq!(engine().pool_target, 1, "an idle pool keeps its minimum");

    // Six runs, one after another, as fast as they go: several a second.
    for i in 0..6 {
        let ran = run(
            &sandbox,
            program(&format!(
                "print({i})
"
            )),
        )
        .await;
        assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    }
    let busy = engine();
    assert_eq!(busy.runs, 6);
    assert!(
        busy.pool_target > 1,
        "the pool aims higher while runs come fast: {busy:?}"
    );
    wait_for("the pool to grow", Duration::from_secs(20), || {
        let e = engine();
        e.warm > 1 && e.warm >= e.pool_target.min(2)
    })
    .await;

    // No more runs: after the window the target is the minimum again, and the pool shrinks.
    wait_for(
        "the pool back to its minimum",
        Duration::from_secs(30),
        || {
            let e = engine();
            (e.pool_target, e.warm) == (1, 1)
        },
    )
    .await;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = containers(&instance).await;
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left.len(), 1, "the idle extras were removed: {left:?}");
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn the_reaper_removes_containers_no_run_owns_and_spares_the_pool() {
    let mut cfg = config("reaper");
    cfg.pool_min = 1;
    cfg.pool_max = 1;
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
    cfg.engines = vec![EngineAddr::Unix(PathBuf::from("/nonexistent/docker.sock"))];
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
}

#[tokio::test]
async fn a_missing_image_says_how_to_build_it() {
    let mut cfg = config("no-image");
    cfg.environments = vec![duet_sandbox::EnvironmentImage::new(
        "python",
        "duet-sandbox-missing:nothing",
    )];
    let sandbox = DockerSandbox::new(cfg).expect("config");
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "degraded");
    let detail = health.detail.unwrap_or_default();
    assert!(detail.contains("bash sandbox/build-image.sh"), "{detail}");
}
