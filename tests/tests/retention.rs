//! The retention job (`--retain-days`): it deletes exactly the interviews that ended longer
//! ago than the retention, at start and then every hour, on the runtime's clock (paused here, so
//! an hour passes in no time) against a real store.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{Actor, InterviewId, LogRecord, Record};
use duet_server::jobs::{retention, RETENTION_EVERY};
use duet_tests::{soon, TestServer};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Logs the interview's end, `ago_ms` before now. The store's writer commits in real time:
/// waiting on its answer with `.await` would leave the runtime idle, and a paused clock then
/// jumps to the job's next hourly pass by itself, so the answer is waited for with [`soon`].
async fn ended(server: &TestServer, id: &InterviewId, ago_ms: i64) {
    let end = LogRecord::new(1, now_ms() - ago_ms, Actor::Interviewer, Record::End);
    let mut ticket = server.state.store.append(id, end);
    let mut answer = None;
    assert!(
        soon(|| {
            answer = ticket.try_recv().ok();
            answer.is_some()
        })
        .await
    );
    answer.unwrap().unwrap();
}

fn exists(server: &TestServer, id: &InterviewId) -> bool {
    server.state.store.get_interview(id).unwrap().is_some()
}

#[tokio::test(start_paused = true)]
async fn the_retention_job_deletes_exactly_the_interviews_ended_longer_ago_every_hour() {
    let server = TestServer::start().await;
    const DAY: i64 = 86_400_000;
    let old = server.create_interview("Ended long ago").await.id;
    let recent = server.create_interview("Ended yesterday").await.id;
    let live = server.create_interview("Never ended").await.id;
    let later = server.create_interview("Ends later").await.id;
    ended(&server, &old, 8 * DAY).await;
    ended(&server, &recent, DAY).await;

    // Seven days' retention: at start, only the interview that ended eight days ago goes.
    let stop = CancellationToken::new();
    let job = tokio::spawn(retention(server.state.clone(), 7, stop.clone()));
    assert!(soon(|| !exists(&server, &old)).await, "deleted at start");
    assert!(exists(&server, &recent) && exists(&server, &live) && exists(&server, &later));

    // An interview that ended eight days ago appears meanwhile (restored from elsewhere, say):
    // it stays until the next hourly pass, then goes.
    ended(&server, &later, 8 * DAY).await;
    tokio::time::advance(RETENTION_EVERY - Duration::from_secs(1)).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(exists(&server, &later), "not before the hour is up");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        soon(|| !exists(&server, &later)).await,
        "deleted on the next pass"
    );
    assert!(
        exists(&server, &recent) && exists(&server, &live),
        "nothing else"
    );
    assert!(server.state.store.read_log(&old, 0).unwrap().is_empty());

    stop.cancel();
    job.await.unwrap();
}
