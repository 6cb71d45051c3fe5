//! Environments through the API, against the real Docker engine and both sandbox images
//! (`bash scripts/ensure-docker.sh` builds them; these fail loudly without them, never skip):
//! the server lists what the images say of themselves, an interview runs in its environment,
//! a data question switches the room to `python-data`, and an environment this server cannot
//! run is refused where it is asked for.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::EventKind;
use duet_tests::{api, eventually, EventsClient, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

/// A server on the real engine with both environments; `data_image` replaces python-data's.
async fn docker_server(data_image: Option<&str>) -> (TestServer, Arc<duet_sandbox::DockerSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let tune = |a: &mut duet_server::config::ServeArgs| {
        a.sandbox.pool = 1;
        if let Some(image) = data_image {
            a.sandbox.data_image = image.into();
        }
    };
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    tune(&mut args);
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    if data_image.is_none() {
        assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND BOTH SANDBOX IMAGES: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    }
    let server = TestServer::start_full(dir, sandbox.clone(), tune).await;
    (server, sandbox)
}

const PANDAS: &str = "import pandas as pd\n\
    df = pd.DataFrame({'team': ['a', 'b', 'a'], 'score': [1, 2, 3]})\n\
    print(df.groupby('team')['score'].sum().to_dict())\n";

/// Writes `code` as main.py, runs it as the candidate, and answers its finish and its stdout.
async fn run(
    server: &TestServer,
    interview: &duet_protocol::CreatedInterview,
    code: &str,
) -> (Value, String) {
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    // The edits stored (a join or leave may be logged at any moment too).
    let logged = || {
        let log = server.state.store.read_log(&interview.id, 1).unwrap();
        log.iter().filter(|r| r.kind == EventKind::Edit).count()
    };
    let before = logged();
    let old = candidate.len();
    candidate.delete(0, old);
    candidate.insert(0, code);
    let events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    // Both edits (the delete, when there was text, then the insert: two updates) are stored,
    // and so applied to the room, before the run asks for the code.
    let edits = usize::from(old > 0) + 1;
    assert!(eventually(PATIENCE, || logged() >= before + edits).await);
    let path = format!("/api/interviews/{}/runs", interview.id);
    let (status, started) = api(
        server,
        Method::POST,
        &path,
        &interview.tokens.candidate,
        Some(json!({"kind": "run"})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
    let finished = events.of(&run_id, "run.finished")[0].clone();
    let detail_path = format!("/api/interviews/{}/runs/{run_id}", interview.id);
    let (status, detail) = api(
        server,
        Method::GET,
        &detail_path,
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    let mut finished = finished;
    finished["environment"] = detail["environment"].clone();
    finished["stderr"] = detail["stderr"].clone();
    (finished, events.stdout(&run_id))
}

async fn create(server: &TestServer, body: Value) -> (u16, Value) {
    api(
        server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_signed_in_role_lists_each_environment_with_its_python_and_packages() {
    let (server, sandbox) = docker_server(None).await;
    let interview = server.create_interview("Ada").await;
    let (status, listed) = api(
        &server,
        Method::GET,
        "/api/environments",
        &interview.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["python", "python-data"]);
    let packages = |i: usize| -> Vec<String> {
        listed[i]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(packages(0).contains(&"pytest".to_owned()));
    assert!(!packages(0).contains(&"pandas".to_owned()));
    for data in ["numpy", "pandas", "scipy"] {
        assert!(packages(1).contains(&data.to_owned()), "{data}: {listed}");
    }
    assert!(
        listed[1]["python"].as_str().unwrap().starts_with("3.11"),
        "{listed}"
    );
    let (status, _) = api(
        &server,
        Method::GET,
        "/api/environments",
        "not-a-token",
        None,
    )
    .await;
    assert_eq!(status, 401);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pandas_runs_in_a_python_data_interview_and_is_absent_in_a_python_one() {
    let (server, sandbox) = docker_server(None).await;
    let (status, data) = create(
        &server,
        json!({"title": "Data", "candidate_name": "Ada", "environment": "python-data"}),
    )
    .await;
    assert_eq!(status, 201, "{data}");
    let data: duet_protocol::CreatedInterview = serde_json::from_value(data).unwrap();
    let (finished, out) = run(&server, &data, PANDAS).await;
    assert_eq!(finished["status"], "ok", "{finished}");
    assert_eq!(out, "{'a': 4, 'b': 2}\n");
    // The run's record says where it ran.
    assert_eq!(finished["environment"], "python-data");

    let plain = server.create_interview("Grace").await;
    let (finished, _) = run(&server, &plain, PANDAS).await;
    assert_eq!(finished["status"], "error", "{finished}");
    assert_eq!(finished["environment"], "python");
    assert!(
        finished["stderr"]
            .as_str()
            .unwrap()
            .contains("No module named 'pandas'"),
        "{finished}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_a_data_question_moves_the_room_s_runs_to_python_data() {
    let (server, sandbox) = docker_server(None).await;
    let interview = server.create_interview("Ada").await;
    let (finished, _) = run(&server, &interview, "print('before')\n").await;
    assert_eq!(finished["environment"], "python");
    let path = format!("/api/interviews/{}/question", interview.id);
    let (status, body) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.interviewer,
        Some(json!({"question_id": "large-csv-processing"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (finished, out) = run(&server, &interview, PANDAS).await;
    assert_eq!(finished["status"], "ok", "{finished}");
    assert_eq!(finished["environment"], "python-data");
    assert_eq!(out, "{'a': 4, 'b': 2}\n");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_this_server_cannot_run_is_refused_at_creation_and_at_a_switch() {
    // python-data's image is missing on the only engine: /healthz says so and what to build.
    let (server, sandbox) = docker_server(Some("duet-sandbox-missing:nothing")).await;
    let health: Value = reqwest::get(server.http("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["sandbox"]["status"], "degraded", "{health}");
    let data = health["sandbox"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "python-data")
        .cloned()
        .unwrap();
    assert_eq!(data["status"], "degraded");
    assert!(
        data["detail"]
            .as_str()
            .unwrap()
            .contains("bash sandbox/build-image.sh python-data"),
        "{data}"
    );

    for asked in ["python-data", "python-gpu"] {
        let (status, body) = create(
            &server,
            json!({"title": "Data", "candidate_name": "Ada", "environment": asked}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(asked),
            "{body}"
        );
    }
    // A question in python-data: refused at creation (its environment is the default) and at a
    // switch, and the room stays where it was.
    let (status, body) = create(
        &server,
        json!({"title": "Data", "candidate_name": "Ada", "question_id": "large-csv-processing"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let interview = server.create_interview("Grace").await;
    let path = format!("/api/interviews/{}/question", interview.id);
    let (status, body) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.interviewer,
        Some(json!({"question_id": "large-csv-processing"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (finished, out) = run(&server, &interview, "print('still python')\n").await;
    assert_eq!(
        (finished["status"].as_str(), out.as_str()),
        (Some("ok"), "still python\n")
    );
    sandbox.shutdown().await;
}
