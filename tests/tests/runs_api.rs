//! The run API and the events socket, with a scripted sandbox: who may run, what both sides
//! see, stdin, cancel, one active run per role, rate limits, bad input and the history.
//! (The same paths against the real Docker engine: runs_docker.rs.)
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_tests::{eventually, EventsClient, FakeSandbox, TestServer, YClient, PATIENCE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Room {
    server: TestServer,
    id: duet_protocol::InterviewId,
    tokens: duet_protocol::PerRole,
    _editor: YClient,
}

async fn room_with_code(server: TestServer, code: &str) -> Room {
    let interview = server.create_interview("Ada").await;
    let editor = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    if !code.is_empty() {
        editor.insert(0, code);
    }
    let expected_seq_events = if code.is_empty() { 1 } else { 2 };
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&interview.id, 0)
            .unwrap()
            .len()
            >= expected_seq_events)
        .await
    );
    Room {
        server,
        id: interview.id,
        tokens: interview.tokens,
        _editor: editor,
    }
}

impl Room {
    async fn post(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let url = self
            .server
            .http(&format!("/api/interviews/{}{path}", self.id));
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    async fn run(&self, token: &str, body: Value) -> String {
        let (status, answer, _) = self.post("/runs", token, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["run_id"].as_str().unwrap().to_owned()
    }

    async fn history(&self, token: &str) -> Vec<Value> {
        let url = self
            .server
            .http(&format!("/api/interviews/{}/runs", self.id));
        let answer: Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["runs"].as_array().unwrap().clone()
    }

    /// `GET /runs/{run_id}`: one run whole.
    async fn run_detail(&self, token: &str, run_id: &str) -> (StatusCode, Value) {
        let url = self
            .server
            .http(&format!("/api/interviews/{}/runs/{run_id}", self.id));
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    fn events(&self, token: &str) -> String {
        self.server.events_url(&self.id, token)
    }
}

#[tokio::test]
async fn both_sides_watch_a_run_and_answer_its_input() {
    let room = room_with_code(TestServer::start().await, "name = input()\nprint(name)\n").await;
    let candidate_events = EventsClient::connect(&room.events(&room.tokens.candidate))
        .await
        .unwrap();
    let interviewer_events = EventsClient::connect(&room.events(&room.tokens.interviewer))
        .await
        .unwrap();

    let run_id = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    for events in [&candidate_events, &interviewer_events] {
        assert!(
            eventually(PATIENCE, || events
                .stdout(&run_id)
                .contains("started name = input()"))
            .await
        );
        let started = &events.of(&run_id, "run.started")[0];
        assert_eq!(started["by"], "candidate");
        assert_eq!(started["kind"], "run");
        assert!(started["at"].as_i64().unwrap() > 0);
    }
    // The interviewer answers the program's input().
    let (status, _, _) = room
        .post(
            &format!("/runs/{run_id}/stdin"),
            &room.tokens.interviewer,
            json!({"data": "Ada\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        eventually(PATIENCE, || candidate_events
            .stdout(&run_id)
            .contains("Ada\n"))
        .await
    );
    room.post(
        &format!("/runs/{run_id}/stdin"),
        &room.tokens.candidate,
        json!({"data": "exit\n"}),
    )
    .await;
    for events in [&candidate_events, &interviewer_events] {
        assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
        let finished = &events.of(&run_id, "run.finished")[0];
        assert_eq!(finished["status"], "ok");
        assert_eq!(finished["exit_code"], 0);
        assert!(finished["duration_ms"].is_u64());
        assert_eq!(finished["tests"], Value::Null);
        // stderr is kept apart from stdout
        assert!(events
            .of(&run_id, "run.output")
            .iter()
            .any(|e| e["stream"] == "stderr" && e["data"] == "a warning\n"));
    }
    // The interviewer's events carry the room's sequence numbers, in order; the candidate's
    // carry none (their gaps would count the private records between them).
    let seqs: Vec<u64> = interviewer_events
        .all()
        .iter()
        .map(|e| e["seq"].as_u64().expect("staff events carry their seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(candidate_events
        .all()
        .iter()
        .all(|e| e.get("seq").is_none()));
    // Output says where each chunk starts in its stream.
    for events in [&candidate_events, &interviewer_events] {
        let mut next = 0;
        for e in events.of(&run_id, "run.output") {
            if e["stream"] == "stdout" {
                assert_eq!(e["offset"], next, "{e}");
                next += e["data"].as_str().unwrap().len() as u64;
            }
        }
    }

    let history = room.history(&room.tokens.reviewer).await;
    assert_eq!(history.len(), 1);
    assert!(
        history[0].get("code").is_none() && history[0].get("stdout").is_none(),
        "the list is light: {}",
        history[0]
    );
    let (status, run) = room.run_detail(&room.tokens.reviewer, &run_id).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["run_id"], run_id.as_str());
    assert_eq!(run["code"], "name = input()\nprint(name)\n");
    assert_eq!(run["status"], "ok");
    assert_eq!(run["stderr"], "a warning\n");
    assert!(run["stdout"].as_str().unwrap().contains("Ada\n"));
    assert!(
        run["code_seq"].as_u64().unwrap() >= 2,
        "the seq the code matches"
    );
    assert!(run["finished_at"].as_i64().unwrap() >= run["started_at"].as_i64().unwrap());
}

#[tokio::test]
async fn the_run_takes_the_code_as_the_room_has_it_and_its_stdin() {
    let sandbox = FakeSandbox::new();
    let server =
        TestServer::start_full(tempfile::tempdir().unwrap(), sandbox.clone(), |_| {}).await;
    let room = room_with_code(server, "print('v1')\n").await;
    room.run(
        &room.tokens.interviewer,
        json!({"kind": "run", "stdin": "42\n"}),
    )
    .await;
    let requests = sandbox.requests.lock().unwrap();
    assert_eq!(requests[0].files["main.py"], "print('v1')\n");
    assert_eq!(requests[0].stdin.as_deref(), Some(&b"42\n"[..]));
    assert_eq!(requests[0].limits.wall, std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn a_new_run_from_the_same_role_cancels_the_previous_one() {
    let room = room_with_code(TestServer::start().await, "print(1)\n").await;
    let events = EventsClient::connect(&room.events(&room.tokens.interviewer))
        .await
        .unwrap();
    let first = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    let other_role = room
        .run(&room.tokens.interviewer, json!({"kind": "run"}))
        .await;
    let second = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert!(eventually(PATIENCE, || !events.of(&first, "run.finished").is_empty()).await);
    assert_eq!(events.of(&first, "run.finished")[0]["status"], "cancelled");
    assert!(events.of(&second, "run.finished").is_empty());
    assert!(
        events.of(&other_role, "run.finished").is_empty(),
        "the interviewer's run is untouched"
    );

    let (status, _, _) = room
        .post(
            &format!("/runs/{second}/cancel"),
            &room.tokens.interviewer,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(eventually(PATIENCE, || !events.of(&second, "run.finished").is_empty()).await);
    assert_eq!(events.of(&second, "run.finished")[0]["status"], "cancelled");
    let (status, body, _) = room
        .post(
            &format!("/runs/{second}/cancel"),
            &room.tokens.interviewer,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
}

#[tokio::test]
async fn reviewers_watch_runs_but_cannot_start_or_steer_them() {
    let room = room_with_code(TestServer::start().await, "print(1)\n").await;
    let reviewer_events = EventsClient::connect(&room.events(&room.tokens.reviewer))
        .await
        .unwrap();
    let (status, body, _) = room
        .post("/runs", &room.tokens.reviewer, json!({"kind": "run"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let run_id = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert!(
        eventually(PATIENCE, || !reviewer_events
            .of(&run_id, "run.started")
            .is_empty())
        .await
    );
    for path in [
        format!("/runs/{run_id}/stdin"),
        format!("/runs/{run_id}/cancel"),
    ] {
        let (status, _, _) = room
            .post(&path, &room.tokens.reviewer, json!({"data": "x"}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    // No token, or another interview's token.
    let (status, _, _) = room
        .post("/runs", "nobody-nobody-nobody", json!({"kind": "run"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let other = room.server.create_interview("Alan").await;
    let (status, _, _) = room
        .post("/runs", &other.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn too_many_runs_a_minute_get_429_with_retry_after_and_each_role_has_its_own_budget() {
    let server = TestServer::start_with(|args| args.sandbox.runs_per_minute = 3).await;
    let room = room_with_code(server, "print(1)\n").await;
    // Refused requests do not count: thirty bad ones leave the budget whole.
    for _ in 0..30 {
        let (status, _, _) = room
            .post("/runs", &room.tokens.candidate, json!({"kind": "nope"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    for _ in 0..3 {
        room.run(&room.tokens.candidate, json!({"kind": "run"}))
            .await;
    }
    let (status, body, headers) = room
        .post("/runs", &room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // The candidate's runs do not use up the interviewer's.
    room.run(&room.tokens.interviewer, json!({"kind": "run"}))
        .await;
}

#[tokio::test]
async fn bad_run_requests_get_clear_4xx_and_other_runs_carry_on() {
    let room = room_with_code(TestServer::start().await, "print(1)\n").await;
    let events = EventsClient::connect(&room.events(&room.tokens.candidate))
        .await
        .unwrap();
    let running = room
        .run(&room.tokens.interviewer, json!({"kind": "run"}))
        .await;
    let cases = [
        (json!({"kind": "compile"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"kind": "run", "stdin": 5}), StatusCode::BAD_REQUEST),
        (
            json!({"kind": "run", "extra": true}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"kind": "test"}), StatusCode::BAD_REQUEST),
        (
            json!({"kind": "run", "stdin": "x".repeat(64 * 1024 + 1)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            json!({"kind": "run", "stdin": "x".repeat(600 * 1024)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer, _) = room
            .post("/runs", &room.tokens.candidate, body.clone())
            .await;
        let shown = body.to_string();
        assert_eq!(status, expected, "{}", &shown[..shown.len().min(80)]);
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, _, _) = room
        .post(
            &format!("/runs/{running}/stdin"),
            &room.tokens.candidate,
            json!({"data": "x".repeat(70_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = room
        .post(
            "/runs/nope/stdin",
            &room.tokens.candidate,
            json!({"data": "x"}),
        )
        .await;
    // A run that never was is 404 for every action, as for reading it (issue 16, finding 9).
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The run that was going still answers.
    room.post(
        &format!("/runs/{running}/stdin"),
        &room.tokens.interviewer,
        json!({"data": "exit"}),
    )
    .await;
    assert!(eventually(PATIENCE, || !events.of(&running, "run.finished").is_empty()).await);
}

#[tokio::test]
async fn a_run_of_an_empty_document_is_refused() {
    let room = room_with_code(TestServer::start().await, "").await;
    let (status, body, _) = room
        .post("/runs", &room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("empty"));
}

#[tokio::test]
async fn a_busy_sandbox_answers_503_busy() {
    let sandbox = FakeSandbox::new();
    let server = TestServer::start_full(
        tempfile::tempdir().unwrap(),
        sandbox.clone() as Arc<dyn duet_sandbox::Sandbox>,
        |_| {},
    )
    .await;
    let room = room_with_code(server, "print(1)\n").await;
    sandbox.busy.store(true, Ordering::SeqCst);
    let (status, body, _) = room
        .post("/runs", &room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"]["message"].as_str().unwrap().contains("busy"));
}

#[tokio::test]
async fn a_run_interrupted_by_a_restart_is_closed_in_the_history() {
    let room = room_with_code(TestServer::start().await, "print(1)\n").await;
    let run_id = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    let Room {
        server,
        id,
        tokens,
        _editor,
    } = room;
    drop(_editor);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    // Loading the room (any connection) closes what the stop left open.
    let _watcher = YClient::connect(&server.yjs_url(&id, &tokens.reviewer))
        .await
        .unwrap();
    let url = server.http(&format!("/api/interviews/{id}/runs"));
    let mut history = Vec::new();
    for _ in 0..500 {
        let answer: Value = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&tokens.reviewer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        history = answer["runs"].as_array().cloned().unwrap_or_default();
        if history.first().is_some_and(|r| r["status"] != "running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(history[0]["run_id"], run_id.as_str());
    assert_eq!(history[0]["status"], "sandbox_error", "{history:?}");
}

#[tokio::test]
async fn typed_input_reaches_the_other_person_and_stays_in_the_record() {
    // Issue 18, item 8: the candidate's console input was seen by nobody else.
    let room = room_with_code(TestServer::start().await, "name = input()\nprint(name)\n").await;
    let interviewer_events = EventsClient::connect(&room.events(&room.tokens.interviewer))
        .await
        .unwrap();
    let run_id = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    let (status, _, _) = room
        .post(
            &format!("/runs/{run_id}/stdin"),
            &room.tokens.candidate,
            json!({"data": "Ada\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        eventually(PATIENCE, || !interviewer_events
            .of(&run_id, "run.input")
            .is_empty())
        .await,
        "the interviewer sees what the candidate typed"
    );
    let typed = &interviewer_events.of(&run_id, "run.input")[0];
    assert_eq!(
        (&typed["by"], &typed["data"], &typed["eof"]),
        (&json!("candidate"), &json!("Ada\n"), &json!(false))
    );
    // Stored before the answer: the log has it, with its author.
    let log = room.server.state.store.read_log(&room.id, 0).unwrap();
    let input = log
        .iter()
        .find(|r| r.kind == duet_protocol::EventKind::RunInput)
        .expect("the input is in the log");
    assert_eq!(input.by, duet_protocol::Actor::Candidate);
    let Ok(duet_protocol::Record::RunInput(stored)) = input.decode() else {
        panic!("a run.input record reads back");
    };
    assert_eq!(
        (stored.run_id.as_str(), stored.data.as_str()),
        (run_id.as_str(), "Ada\n")
    );
}

#[tokio::test]
async fn a_private_run_is_no_run_at_all_to_the_candidate() {
    // Issue 16, finding 9: the candidate got 404 reading the interviewer's hidden-test run but
    // 204 feeding and cancelling it (which ended it).
    let server = TestServer::start().await;
    let created = server.create_interview_on("Ada", "lru-cache").await;
    let editor = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || !editor.text().is_empty()).await);
    let room = Room {
        server,
        id: created.id,
        tokens: created.tokens,
        _editor: editor,
    };
    let hidden = room
        .run(&room.tokens.interviewer, json!({"kind": "test"}))
        .await;
    let never = "no-such-run-id-x";
    for action in ["stdin", "cancel"] {
        let body = json!({"data": "x\n"});
        let body = if action == "stdin" { body } else { json!({}) };
        let (status, answer, _) = room
            .post(
                &format!("/runs/{hidden}/{action}"),
                &room.tokens.candidate,
                body.clone(),
            )
            .await;
        let (never_status, never_answer, _) = room
            .post(
                &format!("/runs/{never}/{action}"),
                &room.tokens.candidate,
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {answer}");
        assert_eq!(
            (status, &answer),
            (never_status, &never_answer),
            "{action}: the same answer as a run that never was"
        );
    }
    // The run goes on: the interviewer still steers it.
    let (status, answer, _) = room
        .post(
            &format!("/runs/{hidden}/cancel"),
            &room.tokens.interviewer,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

#[tokio::test]
async fn a_run_can_be_read_the_moment_its_start_is_answered() {
    // Issue 17, item 10: the start was answered before its record was stored, so an immediate
    // GET /runs/{id} could answer 404.
    let room = room_with_code(TestServer::start().await, "name = input()\nprint(name)\n").await;
    for _ in 0..20 {
        let run_id = room
            .run(&room.tokens.candidate, json!({"kind": "run"}))
            .await;
        let (status, run) = room.run_detail(&room.tokens.candidate, &run_id).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["run_id"], run_id.as_str());
    }
}

#[tokio::test]
async fn a_reloading_page_joins_stored_and_live_output_by_offset() {
    // A page that reloads mid-run reads the run's record, then the events socket: the
    // record's byte counts say where the live output it has not shown yet begins.
    let room = room_with_code(TestServer::start().await, "name = input()\nprint(name)\n").await;
    let live = EventsClient::connect(&room.events(&room.tokens.candidate))
        .await
        .unwrap();
    let run_id = room
        .run(&room.tokens.candidate, json!({"kind": "run"}))
        .await;
    assert!(eventually(PATIENCE, || live.stdout(&run_id).contains("started")).await);
    room.post(
        &format!("/runs/{run_id}/stdin"),
        &room.tokens.candidate,
        json!({"data": "one\n"}),
    )
    .await;
    assert!(eventually(PATIENCE, || live.stdout(&run_id).contains("one\n")).await);

    // The reload: the record so far.
    let (_, stored) = room.run_detail(&room.tokens.candidate, &run_id).await;
    assert_eq!(stored["status"], "running");
    let held = stored["stdout_bytes"].as_u64().unwrap();
    assert_eq!(held, stored["stdout"].as_str().unwrap().len() as u64);
    assert!(stored.get("through_seq").is_none(), "{stored}");

    room.post(
        &format!("/runs/{run_id}/stdin"),
        &room.tokens.candidate,
        json!({"data": "two\n"}),
    )
    .await;
    room.post(
        &format!("/runs/{run_id}/stdin"),
        &room.tokens.candidate,
        json!({"data": "exit\n"}),
    )
    .await;
    assert!(eventually(PATIENCE, || !live.of(&run_id, "run.finished").is_empty()).await);

    // What the page shows: the record, then every live chunk at or past what it held.
    let mut shown = stored["stdout"].as_str().unwrap().to_owned();
    for e in live.of(&run_id, "run.output") {
        if e["stream"] == "stdout" && e["offset"].as_u64().unwrap() >= held {
            shown.push_str(e["data"].as_str().unwrap());
        }
    }
    assert_eq!(shown, live.stdout(&run_id), "nothing twice, nothing lost");
    assert!(shown.ends_with("two\nexit\n"), "{shown:?}");
}

#[tokio::test]
async fn the_candidate_pages_its_runs_by_run_id_and_never_by_seq() {
    let room = room_with_code(TestServer::start().await, "print(1)\n").await;
    let events = EventsClient::connect(&room.events(&room.tokens.interviewer))
        .await
        .unwrap();
    let mut mine = Vec::new();
    for _ in 0..3 {
        let run_id = room
            .run(&room.tokens.candidate, json!({"kind": "run"}))
            .await;
        room.post(
            &format!("/runs/{run_id}/stdin"),
            &room.tokens.candidate,
            json!({"data": "exit\n"}),
        )
        .await;
        assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
        mine.push(run_id);
    }
    // A private run of the interviewer's, between nothing the candidate can see.
    let lint = room
        .run(&room.tokens.interviewer, json!({"kind": "lint"}))
        .await;

    let get = |query: String| {
        let url = room
            .server
            .http(&format!("/api/interviews/{}/runs{query}", room.id));
        let token = room.tokens.candidate.clone();
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    // Page by page: the cursor is the last run's id, and no page holds a seq.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let (status, page) = get(query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for run in page["runs"].as_array().unwrap() {
            assert!(
                run.get("seq").is_none() && run.get("code_seq").is_none(),
                "{run}"
            );
            seen.push(run["run_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, mine);
    // A seq is no cursor for the candidate (probing with one would find the seqs of its runs),
    // and the private run's id answers as an id that never was.
    let (status, answer) = get("?after=1".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (private_status, private) = get(format!("?after={lint}")).await;
    let (never_status, never) = get("?after=no-such-run-id-x".into()).await;
    assert_eq!(private_status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (private_status, private.to_string().replace(&lint, "ID")),
        (
            never_status,
            never.to_string().replace("no-such-run-id-x", "ID")
        )
    );
}
