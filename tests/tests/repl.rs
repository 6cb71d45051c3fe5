//! The REPL through the API, in the real sandbox (`bash scripts/ensure-docker.sh`; these fail
//! loudly without Docker, never skip): `{"kind": "repl"}` runs main.py, then its interpreter
//! with the program's names in scope; both people type into it through the stdin the console
//! uses and both see every line and answer; `exit()`, Stop or a while without input ends it;
//! it is on the timeline like any run.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::CreatedInterview;
use duet_tests::{api, eventually, EventsClient, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

async fn docker_server(idle_secs: u64) -> (TestServer, Arc<duet_sandbox::DockerSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let tune = move |a: &mut duet_server::config::ServeArgs| {
        a.sandbox.pool = 1;
        a.sandbox.repl_idle_secs = idle_secs;
    };
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    tune(&mut args);
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGES: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    let server = TestServer::start_full(dir, sandbox.clone(), tune).await;
    (server, sandbox)
}

/// An interview whose main.py is `code`, stored; and both people's event sockets.
async fn room_with(
    server: &TestServer,
    code: &str,
) -> (CreatedInterview, EventsClient, EventsClient) {
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    candidate.insert(0, code);
    assert!(
        eventually(PATIENCE, || !server
            .state
            .store
            .read_log(&interview.id, 1)
            .unwrap()
            .is_empty())
        .await
    );
    let candidate_events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();
    let interviewer_events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    (interview, candidate_events, interviewer_events)
}

async fn start_repl(server: &TestServer, interview: &CreatedInterview, token: &str) -> String {
    let path = format!("/api/interviews/{}/runs", interview.id);
    let (status, body) = api(
        server,
        Method::POST,
        &path,
        token,
        Some(json!({"kind": "repl"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["run_id"].as_str().unwrap().to_owned()
}

async fn type_line(
    server: &TestServer,
    interview: &CreatedInterview,
    run_id: &str,
    token: &str,
    line: &str,
) {
    let path = format!("/api/interviews/{}/runs/{run_id}/stdin", interview.id);
    let (status, body) = api(
        server,
        Method::POST,
        &path,
        token,
        Some(json!({"data": line})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

fn finished(events: &EventsClient, run_id: &str) -> Option<Value> {
    events.of(run_id, "run.finished").first().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_people_type_into_one_repl_see_each_other_s_answers_and_exit_ends_it() {
    let (server, sandbox) = docker_server(300).await;
    let (interview, candidate, interviewer) = room_with(
        &server,
        "orders = [3, 5, 8]\nprint('loaded', len(orders))\n",
    )
    .await;
    let tokens = &interview.tokens;

    // The candidate opens a REPL: the program runs first, its names stay in scope.
    let run_id = start_repl(&server, &interview, &tokens.candidate).await;
    for events in [&candidate, &interviewer] {
        assert!(eventually(PATIENCE, || events.stdout(&run_id).contains("loaded 3")).await);
    }
    // The candidate inspects the program's state; the interviewer asks a question of it.
    type_line(
        &server,
        &interview,
        &run_id,
        &tokens.candidate,
        "sum(orders)\n",
    )
    .await;
    for events in [&candidate, &interviewer] {
        assert!(
            eventually(PATIENCE, || events.stdout(&run_id).contains("16\n")).await,
            "{:#?}",
            events.all()
        );
    }
    type_line(
        &server,
        &interview,
        &run_id,
        &tokens.interviewer,
        "max(orders) * 10\n",
    )
    .await;
    for events in [&candidate, &interviewer] {
        assert!(eventually(PATIENCE, || events.stdout(&run_id).contains("80\n")).await);
        // Each sees what the other typed, as the console shows input.
        let typed: Vec<(String, String)> = events
            .of(&run_id, "run.input")
            .iter()
            .map(|e| {
                (
                    e["by"].as_str().unwrap_or("").to_owned(),
                    e["data"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            typed,
            [
                ("candidate".to_owned(), "sum(orders)\n".to_owned()),
                ("interviewer".to_owned(), "max(orders) * 10\n".to_owned())
            ]
        );
    }
    type_line(
        &server,
        &interview,
        &run_id,
        &tokens.interviewer,
        "exit()\n",
    )
    .await;
    assert!(eventually(PATIENCE, || finished(&interviewer, &run_id).is_some()).await);
    let end = finished(&interviewer, &run_id).unwrap();
    assert_eq!(end["status"], "ok", "{end}");
    assert_eq!(candidate.stdout(&run_id), "loaded 3\n16\n80\n");

    // On the timeline like any run: started as a REPL, the lines typed, its end.
    let path = format!("/api/interviews/{}/timeline", interview.id);
    let (status, timeline) = api(&server, Method::GET, &path, &tokens.interviewer, None).await;
    assert_eq!(status, 200, "{timeline}");
    let of_run: Vec<&Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["run_id"] == run_id.as_str())
        .collect();
    let started = of_run
        .iter()
        .find(|e| e["type"] == "run.started")
        .expect("started on the timeline");
    assert_eq!(started["kind"], "repl", "{started}");
    assert!(
        of_run.iter().any(|e| e["type"] == "run.finished"),
        "{of_run:?}"
    );
    // And in the run list, with the environment it ran in.
    let path = format!("/api/interviews/{}/runs/{run_id}", interview.id);
    let (status, detail) = api(&server, Method::GET, &path, &tokens.interviewer, None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        (detail["kind"].as_str(), detail["environment"].as_str()),
        (Some("repl"), Some("python"))
    );
    // And in its cast: the answers as they came.
    let cast = reqwest::Client::new()
        .get(server.http(&format!(
            "/api/interviews/{}/runs/{run_id}/cast",
            interview.id
        )))
        .bearer_auth(&tokens.interviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(cast.status(), 200);
    let cast = cast.text().await.unwrap();
    // Line 1 is the header; each line after is `[seconds, "o", text]`.
    let printed: String = cast
        .lines()
        .skip(1)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event[1] == "o")
        .filter_map(|event| event[2].as_str().map(str::to_owned))
        .collect::<String>()
        .replace("\r\n", "\n");
    // The cast marks stderr (here the interpreter's prompts) in red; without them, the answers.
    let mut answers = printed.clone();
    while let Some(start) = answers.find("\u{1b}[31m") {
        let end = answers[start..]
            .find("\u{1b}[0m")
            .map_or(answers.len(), |e| start + e + "\u{1b}[0m".len());
        answers.replace_range(start..end, "");
    }
    assert_eq!(answers, "loaded 3\n16\n80\n", "{printed:?}");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repl_nobody_types_into_ends_after_its_idle_time() {
    let (server, sandbox) = docker_server(2).await;
    let (interview, _candidate, interviewer) = room_with(&server, "x = 1\n").await;
    let run_id = start_repl(&server, &interview, &interview.tokens.candidate).await;
    assert!(eventually(PATIENCE, || finished(&interviewer, &run_id).is_some()).await);
    let end = finished(&interviewer, &run_id).unwrap();
    assert_eq!(end["status"], "timeout", "{end}");
    assert_eq!(end["limit"], json!({"kind": "idle", "ms": 2000}), "{end}");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_repl() {
    let (server, sandbox) = docker_server(300).await;
    let (interview, _candidate, interviewer) = room_with(&server, "print('up')\n").await;
    let run_id = start_repl(&server, &interview, &interview.tokens.candidate).await;
    assert!(eventually(PATIENCE, || interviewer.stdout(&run_id).contains("up")).await);
    let path = format!("/api/interviews/{}/runs/{run_id}/cancel", interview.id);
    let (status, body) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert!(status == 202 || status == 204, "{status} {body}");
    assert!(eventually(PATIENCE, || finished(&interviewer, &run_id).is_some()).await);
    assert_eq!(
        finished(&interviewer, &run_id).unwrap()["status"],
        "cancelled"
    );
    sandbox.shutdown().await;
}
