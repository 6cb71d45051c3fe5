//! The run queue on the real engine: interviews take turns for the slots, a waiting run is
//! told its place as it moves, and a run cancelled while it waits ends at once having started
//! nothing.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{assert_no_containers, collect, config, program, sandbox};
use duet_sandbox::{RunEvent, RunRequest, RunStatus, Sandbox};
use std::time::{Duration, Instant};

fn from(party: &str, code: &str) -> RunRequest {
    let mut request = program(code);
    request.party = party.into();
    request
}

#[tokio::test]
async fn one_interviews_burst_of_twenty_runs_delays_another_interviews_run_by_one_slot() {
    let mut cfg = config("queue-fair");
    cfg.concurrency = 1;
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;

    // Interview A holds the only slot and queues twenty more runs; then B asks for one.
    let started = Instant::now();
    let busy = sandbox
        .start(from("a", "import time\ntime.sleep(1)\nprint('first')\n"))
        .expect("a slot");
    let burst: Vec<_> = (0..20)
        .map(|i| {
            sandbox
                .start(from("a", &format!("print('a{i}')\n")))
                .expect("queued")
        })
        .collect();
    let mut b = sandbox.start(from("b", "print('b')\n")).expect("queued");
    match b.events.recv().await {
        Some(RunEvent::Queued { ahead }) => {
            assert_eq!(ahead, 1, "only A's next run is served before B's")
        }
        other => panic!("expected B's run to be queued, got {other:?}"),
    }
    assert_eq!(sandbox.health().queued, 21);

    let b_ran = tokio::spawn(collect(b.events, started));
    let a_ran =
        futures_util::future::join_all(burst.into_iter().map(|h| collect(h.events, started)));
    let first = collect(busy.events, started).await;
    let a_ran = a_ran.await;
    let b_ran = b_ran.await.unwrap();
    assert_eq!(first.status(), RunStatus::Ok, "{first:?}");
    assert!(a_ran
        .iter()
        .chain([&b_ran])
        .all(|r| r.status() == RunStatus::Ok));
    // B's run came out after A's first queued run and before A's second.
    let b_out = b_ran.first_output.unwrap();
    assert!(
        a_ran[0].first_output.unwrap() < b_out,
        "{a_ran:?} {b_ran:?}"
    );
    assert!(
        b_out < a_ran[1].first_output.unwrap(),
        "{a_ran:?} {b_ran:?}"
    );
    // A's last run was told its place as the queue moved: twenty ahead at first (nineteen of
    // its own and B's), then fewer, a note per move.
    assert!(a_ran[19].queued >= 10, "{:?}", a_ran[19]);
    assert_eq!(
        sandbox.health().waited,
        21,
        "every run but the first waited"
    );
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_run_cancelled_while_queued_ends_at_once_and_starts_nothing() {
    let mut cfg = config("queue-cancel");
    cfg.concurrency = 1;
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    let running = sandbox
        .start(from("a", "import time\nprint('up')\ntime.sleep(30)\n"))
        .expect("a slot");
    let mut waiting = sandbox
        .start(from("b", "print('never')\n"))
        .expect("queued");
    assert_eq!(
        waiting.events.recv().await,
        Some(RunEvent::Queued { ahead: 0 })
    );
    let cancelled = Instant::now();
    waiting.cancel.cancel();
    let ran = collect(waiting.events, cancelled).await;
    assert_eq!(
        (ran.status(), ran.stdout.len()),
        (RunStatus::Cancelled, 0),
        "{ran:?}"
    );
    assert!(ran.total < Duration::from_secs(1), "{ran:?}");
    let health = sandbox.health();
    assert_eq!((health.queued, health.running), (0, 1));
    assert_eq!(
        health.engines[0].runs, 1,
        "the cancelled run never got a slot"
    );

    running.cancel.cancel();
    let ran = collect(running.events, Instant::now()).await;
    assert_eq!(ran.status(), RunStatus::Cancelled);
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
}
