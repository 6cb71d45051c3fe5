//! Measures request to first byte of output through the sandbox, warm pool and cold, beside
//! `docker run --rm IMAGE python3 -c 'print(1)'` through the CLI; then short runs per second
//! sustained with the default config (pool of 2, concurrency = cores). The warm pool is measured
//! twice: stdin closed at start, and kept open as the server does for console runs (an
//! interactive run, whose CPU time is watched through the engine's stats).
//!
//!   cargo run --release -p duet-sandbox --example first_byte -- [runs]
//!   DUET_BENCH_ENVIRONMENT=python-data cargo run --release -p duet-sandbox --example first_byte
//!
//! The environment is `python` (image $DUET_SANDBOX_IMAGE, default duet-sandbox:latest) or
//! `python-data` ($DUET_SANDBOX_DATA_IMAGE, default duet-sandbox-data:latest); `docker run`
//! uses the same image.
//!
//! Needs the engine and the image (scripts/ensure-docker.sh).
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed measurement

use duet_sandbox::{
    DockerConfig, DockerSandbox, EnvironmentImage, Limits, RunEvent, RunRequest, Sandbox, Target,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The environment measured, and its image.
fn environment() -> (String, String) {
    let name = std::env::var("DUET_BENCH_ENVIRONMENT").unwrap_or_else(|_| "python".into());
    let (var, default) = match name.as_str() {
        "python-data" => ("DUET_SANDBOX_DATA_IMAGE", "duet-sandbox-data:latest"),
        _ => ("DUET_SANDBOX_IMAGE", "duet-sandbox:latest"),
    };
    let image = std::env::var(var).unwrap_or_else(|_| default.into());
    (name, image)
}

fn request(keep_stdin_open: bool) -> RunRequest {
    RunRequest {
        files: BTreeMap::from([("main.py".to_string(), "print(1)\n".to_string())]),
        environment: environment().0,
        target: Target::Program {
            entry: "main.py".into(),
        },
        stdin: None,
        keep_stdin_open,
        limits: Limits::default(),
        party: "bench".into(),
    }
}

async fn first_byte(sandbox: &DockerSandbox, keep_stdin_open: bool) -> Duration {
    let started = Instant::now();
    let mut handle = sandbox.start(request(keep_stdin_open)).expect("queued");
    drop(handle.stdin);
    let mut first = None;
    while let Some(event) = handle.events.recv().await {
        match event {
            RunEvent::Stdout(_) | RunEvent::Stderr(_) => {
                first.get_or_insert(started.elapsed());
            }
            RunEvent::Queued { .. } => {}
            RunEvent::Finished(o) => assert_eq!(o.status, duet_sandbox::RunStatus::Ok, "{o:?}"),
        }
    }
    first.expect("output")
}

/// Prints p50 and p99; returns p50.
fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<28} p50 {:>7.1} ms   p99 {:>7.1} ms   (n={})",
        ms(at(0.5)),
        ms(at(0.99)),
        times.len()
    );
    at(0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let (name, image) = environment();
    println!("environment {name}, image {image}");
    let config = |pool| DockerConfig {
        environments: vec![EnvironmentImage::new(&name, &image)],
        pool_min: pool,
        pool_max: pool,
        instance: "bench".into(),
        ..DockerConfig::default()
    };

    let warm = DockerSandbox::new(config(2)).expect("config");
    assert_eq!(warm.check_now().await.status, "ok", "{:?}", warm.health());
    let mut times = Vec::new();
    let mut open = Vec::new();
    for i in 0..runs * 2 {
        while warm.health().warm < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Alternating, so both see the same machine.
        if i % 2 == 0 {
            times.push(first_byte(&warm, false).await);
        } else {
            open.push(first_byte(&warm, true).await);
        }
    }
    warm.shutdown().await;
    let warm_p50 = summary("warm pool", times);
    summary("warm pool, stdin kept open", open);

    let cold = DockerSandbox::new(config(0)).expect("config");
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(first_byte(&cold, false).await);
    }
    cold.shutdown().await;
    let cold_p50 = summary("cold (API)", times);
    // What the sandbox tests used to assert; a figure here, not a pass/fail on a shared machine.
    println!(
        "warm p50 below cold p50: {}; warm p50 below 150 ms: {}",
        warm_p50 < cold_p50,
        warm_p50 < Duration::from_millis(150)
    );

    for keep_stdin_open in [false, true] {
        let sustained = DockerSandbox::new(config(2)).expect("config");
        let total = runs * 2;
        let started = Instant::now();
        let mut waiting = tokio::task::JoinSet::new();
        let sandbox = std::sync::Arc::new(sustained);
        for _ in 0..total {
            let sandbox = sandbox.clone();
            waiting.spawn(async move { first_byte(&sandbox, keep_stdin_open).await });
        }
        while let Some(r) = waiting.join_next().await {
            r.expect("run");
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        sandbox.shutdown().await;
        let how = if keep_stdin_open {
            "stdin kept open"
        } else {
            "stdin closed"
        };
        println!(
            "sustained (pool 2)           {rate:.1} runs/s ({total} runs of print(1), all queued \
             at once, {how})"
        );
    }

    let mut times = Vec::new();
    for _ in 0..runs.min(20) {
        let started = Instant::now();
        let out = std::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                &image,
                "python3",
                "-c",
                "print(1)",
            ])
            .output()
            .expect("docker cli");
        assert!(out.status.success());
        times.push(started.elapsed());
    }
    summary("docker run --rm (CLI, total)", times);
}
