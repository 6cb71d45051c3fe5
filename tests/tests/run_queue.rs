//! The run queue through the API, on the real Docker engine with one run slot: when the slot is
//! taken, both people in another interview see their run queued with its place, and Stop ends
//! it while it waits. Fails loudly if Docker or the image is missing; never skips.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{CreatedInterview, InterviewId};
use duet_sandbox::Sandbox;
use duet_tests::{eventually, EventsClient, TestServer, YClient};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

async fn one_slot_server() -> (TestServer, Arc<duet_sandbox::DockerSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let tune = |a: &mut duet_server::config::ServeArgs| {
        a.sandbox.pool = 1;
        a.sandbox.pool_max = 1;
        a.sandbox.concurrency = Some(1);
    };
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    tune(&mut args);
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGE: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    let server = TestServer::start_full(dir, sandbox.clone(), tune).await;
    (server, sandbox)
}

/// The candidate writes `code`; returns once the server stored it.
async fn write(server: &TestServer, interview: &CreatedInterview, code: &str) -> YClient {
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    candidate.insert(0, code);
    let id = interview.id.clone();
    assert!(
        eventually(PATIENCE, || !server
            .state
            .store
            .read_log(&id, 1)
            .unwrap()
            .is_empty())
        .await
    );
    candidate
}

async fn post(server: &TestServer, id: &InterviewId, path: &str, token: &str) -> Value {
    let url = server.http(&format!("/api/interviews/{id}{path}"));
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({"kind": "run"}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_slot_taken_both_people_see_the_run_queued_and_stop_ends_it_while_it_waits() {
    let (server, sandbox) = one_slot_server().await;

    // Interview A's candidate runs a program that holds the only slot.
    let a = server.create_interview("Ada").await;
    let _a_editor = write(
        &server,
        &a,
        "import time\nprint('up', flush=True)\ntime.sleep(60)\n",
    )
    .await;
    let a_events = EventsClient::connect(&server.events_url(&a.id, &a.tokens.candidate))
        .await
        .unwrap();
    let a_run = post(&server, &a.id, "/runs", &a.tokens.candidate).await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(eventually(PATIENCE, || a_events.stdout(&a_run) == "up\n").await);

    // Interview B's candidate presses Run: both people in B see it queued, next in line.
    let b = server.create_interview("Grace").await;
    let _b_editor = write(&server, &b, "print('b ran')\n").await;
    let b_candidate = EventsClient::connect(&server.events_url(&b.id, &b.tokens.candidate))
        .await
        .unwrap();
    let b_interviewer = EventsClient::connect(&server.events_url(&b.id, &b.tokens.interviewer))
        .await
        .unwrap();
    let b_run = post(&server, &b.id, "/runs", &b.tokens.candidate).await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, events) in [("candidate", &b_candidate), ("interviewer", &b_interviewer)] {
        assert!(
            eventually(PATIENCE, || !events.of(&b_run, "run.queued").is_empty()).await,
            "the {who} sees no run.queued: {:#?}",
            events.all()
        );
        let queued = &events.of(&b_run, "run.queued")[0];
        assert_eq!(queued["ahead"], 0, "{queued}");
        let started = &events.of(&b_run, "run.started")[0];
        assert_eq!(queued["seq"], started["seq"], "it carries the start's seq");
    }
    assert_eq!(sandbox.health().queued, 1);

    // The candidate presses Stop while it waits: it ends cancelled, having run nothing.
    post(
        &server,
        &b.id,
        &format!("/runs/{b_run}/cancel"),
        &b.tokens.candidate,
    )
    .await;
    for events in [&b_candidate, &b_interviewer] {
        assert!(eventually(PATIENCE, || !events.of(&b_run, "run.finished").is_empty()).await);
        assert_eq!(events.of(&b_run, "run.finished")[0]["status"], "cancelled");
        assert!(events.of(&b_run, "run.output").is_empty());
    }
    assert_eq!(sandbox.health().queued, 0);
    assert!(
        a_events.of(&a_run, "run.finished").is_empty(),
        "A's run goes on"
    );
    let engine = &sandbox.health().engines[0];
    assert_eq!(engine.runs, 1, "B's run never took a slot");

    post(
        &server,
        &a.id,
        &format!("/runs/{a_run}/cancel"),
        &a.tokens.candidate,
    )
    .await;
    assert!(eventually(PATIENCE, || !a_events.of(&a_run, "run.finished").is_empty()).await);
    sandbox.shutdown().await;
}
