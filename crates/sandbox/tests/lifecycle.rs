//! Containers are owned until they are gone: runs started and cancelled at every moment of a
//! cold or warm start leave nothing behind but the warm pool, and a graceful shutdown leaves
//! nothing at all.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{collect, config, containers, program, sandbox};
use duet_sandbox::{DockerSandbox, RunStatus, Sandbox};
use std::time::{Duration, Instant};

/// Four interviews, each starting runs one after another and cancelling each 0 to 80 ms after
/// its start (spread evenly, so every phase of a start is hit: queued, creating, attaching,
/// starting, running).
async fn start_and_cancel_storm(sandbox: &DockerSandbox) {
    let interview = |i: u64| async move {
        for j in 0..12u64 {
            let handle = sandbox
                .start(program("import time\nprint('up')\ntime.sleep(30)\n"))
                .expect("queued");
            let delay = (i * 7 + j * 23) % 81;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            handle.cancel.cancel();
            let ran = collect(handle.events, Instant::now()).await;
            assert_eq!(
                ran.status(),
                RunStatus::Cancelled,
                "cancelled after {delay} ms: {ran:?}"
            );
        }
    };
    futures_util::future::join_all((0..4).map(interview)).await;
}

async fn wait_for_only(instance: &str, sandbox: &DockerSandbox, warm: usize) {
    let mut left = Vec::new();
    for _ in 0..300 {
        left = containers(instance).await;
        if left.len() == warm && sandbox.health().warm == warm {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected only the {warm} warm containers, found {left:?}");
}

#[tokio::test]
async fn cancelled_cold_starts_leave_no_container_even_when_shut_down_at_once() {
    let config = config("storm-cold");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    start_and_cancel_storm(&sandbox).await;
    wait_for_only(&instance, &sandbox, 0).await;
    start_and_cancel_storm(&sandbox).await;
    // No waiting: shutdown itself waits for the removals of the cancelled starts.
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
}

#[tokio::test]
async fn cancelled_starts_with_a_warm_pool_leave_only_the_pool_and_shutdown_removes_it() {
    let mut config = config("storm-warm");
    config.pool_min = 2;
    config.pool_max = 2;
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    start_and_cancel_storm(&sandbox).await;
    wait_for_only(&instance, &sandbox, 2).await;
    start_and_cancel_storm(&sandbox).await;
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_run_that_finds_the_pool_empty_while_it_refills_takes_the_refill_not_a_cold_start() {
    let mut config = config("pool-refill-wait");
    config.pool_min = 1;
    config.pool_max = 1;
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    wait_for_only(&instance, &sandbox, 1).await;

    // The first run takes the one warm container; the pool starts warming another at once.
    let first = sandbox.start(program("print('first')")).expect("queued");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The second arrives while that refill is under way (a start takes ~0.3 s): it waits for
    // it instead of starting a third container from nothing.
    let second = sandbox.start(program("print('second')")).expect("queued");
    let (first, second) = tokio::join!(
        collect(first.events, Instant::now()),
        collect(second.events, Instant::now())
    );
    assert_eq!(first.out(), "first\n", "{first:?}");
    assert_eq!(second.out(), "second\n", "{second:?}");
    assert_eq!(
        sandbox.health().cold_starts,
        0,
        "both runs were served warm: {:?}",
        sandbox.health()
    );
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
}
