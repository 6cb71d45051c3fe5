//! Runs through the API against the real Docker engine and sandbox image (installed and built
//! by scripts/ensure-docker.sh, which scripts/test runs). These fail loudly if Docker or the
//! image is missing; they never skip.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_tests::{eventually, EventsClient, TestServer, YClient};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

async fn docker_server() -> (TestServer, Arc<duet_sandbox::DockerSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    args.sandbox.pool = 1;
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGE: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    let server = TestServer::start_full(dir, sandbox.clone(), |a| a.sandbox.pool = 1).await;
    (server, sandbox)
}

async fn start_run(
    server: &TestServer,
    id: &duet_protocol::InterviewId,
    token: &str,
    body: Value,
) -> String {
    let url = server.http(&format!("/api/interviews/{id}/runs"));
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    answer["run_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_runs_code_and_both_sides_watch_it_print_live() {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let program = "import time, sys\nprint('first', flush=True)\nprint('oops', file=sys.stderr, flush=True)\ntime.sleep(2)\nprint('second')\n";
    candidate.insert(0, program);
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
    let asked = Instant::now();
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "run"}),
    )
    .await;

    for events in [&candidate_events, &interviewer_events] {
        assert!(
            eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await,
            "{:#?}",
            events.all()
        );
        let timed = events.timed();
        let first = timed
            .iter()
            .find(|(_, e)| {
                e["type"] == "run.output" && e["data"].as_str().is_some_and(|d| d.contains("first"))
            })
            .expect("first line")
            .0;
        let end = timed
            .iter()
            .find(|(_, e)| e["type"] == "run.finished")
            .expect("finish")
            .0;
        // Streaming, not after the end: the first line comes a second or more before the finish.
        assert!(
            end.duration_since(first) >= Duration::from_millis(1500),
            "first line {:?} after asking, finish {:?}",
            first - asked,
            end - asked
        );
        let finished = &events.of(&run_id, "run.finished")[0];
        assert_eq!(finished["status"], "ok");
        assert_eq!(finished["exit_code"], 0);
        assert_eq!(events.stdout(&run_id), "first\nsecond\n");
        let stderr: String = events
            .of(&run_id, "run.output")
            .iter()
            .filter(|e| e["stream"] == "stderr")
            .filter_map(|e| e["data"].as_str())
            .collect();
        assert_eq!(stderr, "oops\n");
    }

    let url = server.http(&format!("/api/interviews/{}/runs/{run_id}", interview.id));
    let run: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(&interview.tokens.reviewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["run_id"], run_id.as_str());
    assert_eq!(run["code"], program, "the run keeps the code that ran");
    assert_eq!(run["stdout"], "first\nsecond\n");
    assert_eq!(run["status"], "ok");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interviewer_answers_input_and_a_failing_program_is_an_error_not_a_crash() {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    candidate.insert(
        0,
        "name = input('name? ')\nprint('hello', name)\nraise SystemExit(3)\n",
    );
    assert!(
        eventually(PATIENCE, || !server
            .state
            .store
            .read_log(&interview.id, 1)
            .unwrap()
            .is_empty())
        .await
    );
    let events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "run"}),
    )
    .await;
    assert!(
        eventually(PATIENCE, || events.stdout(&run_id).contains("name? ")).await,
        "{:#?}",
        events.all()
    );
    let url = server.http(&format!(
        "/api/interviews/{}/runs/{run_id}/stdin",
        interview.id
    ));
    let fed = reqwest::Client::new()
        .post(url)
        .bearer_auth(&interview.tokens.interviewer)
        .json(&json!({"data": "Ada\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fed.status(), 204);
    assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
    assert!(events.stdout(&run_id).contains("hello Ada"));
    let finished = &events.of(&run_id, "run.finished")[0];
    assert_eq!(finished["status"], "error");
    assert_eq!(finished["exit_code"], 3);
    let health: Value = reqwest::get(server.http("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["sandbox"]["status"], "ok");
    sandbox.shutdown().await;
}

/// Issue 7, records proportional to what happened: a program writing 1 MiB of NUL bytes and a
/// character at a time is stored as about 1 MiB of raw bytes in few records (not 6 MiB of JSON
/// escapes, not one record per write), its code is not stored again, and the run list stays
/// light.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_output_is_stored_raw_and_coalesced_in_the_real_sandbox() {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let program = "import sys\nfor _ in range(2000):\n    sys.stdout.write('.'); sys.stdout.flush()\nsys.stdout.buffer.write(b'\\0' * (1000 * 1000)); sys.stdout.flush()\n";
    candidate.insert(0, program);
    let log = |server: &TestServer| server.state.store.read_log(&interview.id, 0).unwrap();
    assert!(eventually(PATIENCE, || log(&server).len() >= 2).await);
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "run"}),
    )
    .await;
    let finished = |server: &TestServer| {
        log(server)
            .iter()
            .any(|r| r.kind == duet_protocol::EventKind::RunFinished)
    };
    assert!(eventually(PATIENCE, || finished(&server)).await);
    let records = log(&server);
    let outputs: Vec<_> = records
        .iter()
        .filter(|r| r.kind == duet_protocol::EventKind::RunOutput)
        .collect();
    let stored: usize = outputs.iter().map(|r| r.data.len()).sum();
    assert!(
        (1_002_000..1_002_000 + 200 * outputs.len()).contains(&stored),
        "stored {stored} bytes in {} records for 1,002,000 bytes of output",
        outputs.len()
    );
    assert!(
        outputs.len() < 500,
        "2,000 one-character writes and 1 MB were coalesced into {} records",
        outputs.len()
    );
    let started = records
        .iter()
        .find(|r| r.kind == duet_protocol::EventKind::RunStarted)
        .unwrap();
    assert!(
        started.data.len() < 300,
        "the run's record does not repeat the code: {} bytes",
        started.data.len()
    );
    let page: Value = reqwest::Client::new()
        .get(server.http(&format!("/api/interviews/{}/runs", interview.id)))
        .bearer_auth(&interview.tokens.reviewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page.to_string().len() < 1_000, "the list is light: {page}");
    assert_eq!(page["runs"][0]["run_id"], run_id.as_str());
    sandbox.shutdown().await;
}

/// The candidate's program as the room runs it, its events watched by the interviewer, and the
/// run's record once it finished.
async fn run_and_watch(program: &str) -> (EventsClient, String, Value, usize) {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    candidate.insert(0, program);
    let stored = || server.state.store.read_log(&interview.id, 0).unwrap().len();
    assert!(eventually(PATIENCE, || stored() >= 2).await);
    let watcher =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "run"}),
    )
    .await;
    assert!(
        eventually(PATIENCE, || !watcher.of(&run_id, "run.finished").is_empty()).await,
        "the watcher sees the run's end, whatever it printed"
    );
    let response = reqwest::Client::new()
        .get(server.http(&format!("/api/interviews/{}/runs/{run_id}", interview.id)))
        .bearer_auth(&interview.tokens.reviewer)
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    let detail: Value = serde_json::from_str(&body).unwrap();
    sandbox.shutdown().await;
    (watcher, run_id, detail, body.len())
}

/// A stream of a run's record as bytes: its text, or its base64.
fn served(detail: &Value, stream: &str) -> Vec<u8> {
    use base64::Engine;
    match (
        detail[stream].as_str(),
        detail[format!("{stream}_base64")].as_str(),
    ) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        other => panic!("{stream}: exactly one of text and base64, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_travels_near_its_size_and_reads_back_exactly_live_and_stored() {
    // Issue 16, findings 5 and 7: 1 MiB of NUL bytes traveled as about 6 MiB of JSON and 0xFF
    // as 3 MiB, a watcher could miss the run's end, and live and stored output decoded apart.
    let half = (1 << 19) - 64;
    let program = format!(
        "import sys, time\nout = sys.stdout.buffer\nout.write(b'\\0' * {half}); out.flush()\n\
         out.write(b'\\xff' * {half}); out.flush()\nsnake = '\\U0001F40D'.encode()\n\
         out.write(b'a' + snake[:2]); out.flush()\ntime.sleep(0.1)\n\
         out.write(snake[2:] + b'\\n'); out.flush()\n"
    );
    let mut written = vec![0u8; half];
    written.extend(vec![0xFF; half]);
    written.extend(b"a");
    written.extend("🐍\n".as_bytes());

    let (watcher, run_id, detail, detail_size) = run_and_watch(&program).await;
    assert_eq!(watcher.of(&run_id, "run.finished")[0]["status"], "ok");
    assert_eq!(
        watcher.bytes(&run_id, "stdout"),
        written,
        "live: exactly the bytes"
    );
    assert_eq!(
        served(&detail, "stdout"),
        written,
        "stored: exactly the bytes"
    );
    let near = written.len() * 14 / 10 + 64 * 1024;
    assert!(
        watcher.received_bytes() <= near,
        "{} bytes of output traveled as {} bytes of events",
        written.len(),
        watcher.received_bytes()
    );
    assert!(
        detail_size <= near,
        "{} bytes of output are served as {detail_size} bytes",
        written.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_output_cap_is_ok_and_one_byte_more_keeps_exactly_the_cap() {
    // Issue 16, finding 6, through the real sandbox, the room and the events socket.
    let cap = 1 << 20;
    for (extra, status) in [(0, "ok"), (1, "output_limit")] {
        let program = format!(
            "import sys\nsys.stdout.buffer.write(b'x' * {}); sys.stdout.flush()\n",
            cap + extra
        );
        let (watcher, run_id, detail, _) = run_and_watch(&program).await;
        let finished = &watcher.of(&run_id, "run.finished")[0];
        assert_eq!(finished["status"], status, "{} bytes", cap + extra);
        assert_eq!(
            served(&detail, "stdout").len(),
            cap,
            "{} bytes",
            cap + extra
        );
        assert_eq!(watcher.bytes(&run_id, "stdout").len(), cap);
        if extra > 0 {
            assert_eq!(finished["limit"], json!({"kind": "output", "bytes": cap}));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_runs_main_with_its_modules_and_pytest_takes_the_candidates_tests_not_their_conftest(
) {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview_on("Ada", "lru-cache").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    // The candidate splits the program into a package, writes a test of their own, and a
    // conftest.py that would empty every test run if pytest loaded it.
    candidate.write_file(
        "shop/cart.py",
        "def total(prices):\n    return sum(prices)\n",
    );
    candidate.write_file(
        "tests/test_cart.py",
        "from shop.cart import total\n\ndef test_total():\n    assert total([1, 2]) == 3\n",
    );
    candidate.write_file(
        "conftest.py",
        "def pytest_collection_modifyitems(items):\n    items.clear()\n",
    );
    // main.py keeps the question's starter (its tests import it) and uses the module.
    assert!(eventually(PATIENCE, || candidate.text().contains("class LRUCache")).await);
    candidate.insert(
        candidate.len(),
        "\nfrom shop.cart import total\nprint('total', total([2, 3]))\n",
    );
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&interview.id, 1)
            .unwrap()
            .iter()
            .filter(|r| r.kind == duet_protocol::EventKind::Edit)
            .count()
            >= 5)
        .await
    );
    let events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();

    // The program imports its module: main.py runs with every file beside it.
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "run"}),
    )
    .await;
    assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
    assert_eq!(events.stdout(&run_id), "total 5\n", "{:#?}", events.all());

    // The tests: the question's visible tests and the candidate's own, and no conftest.py.
    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.candidate,
        json!({"kind": "test"}),
    )
    .await;
    assert!(eventually(PATIENCE, || !events.of(&run_id, "run.finished").is_empty()).await);
    let finished = &events.of(&run_id, "run.finished")[0];
    let cases = finished["tests"]["cases"].as_array().expect("test results");
    let named = |part: &str| {
        cases
            .iter()
            .filter(|c| c["name"].as_str().unwrap().contains(part))
            .count()
    };
    assert_eq!(
        cases
            .iter()
            .find(|c| c["name"].as_str().unwrap().contains("test_cart.py"))
            .map(|c| c["outcome"].clone()),
        Some(json!("passed")),
        "the candidate's test is collected and passes: {finished:#}"
    );
    assert!(
        named("test_visible.py") >= 1,
        "the question's visible tests still run (the conftest.py was left out): {finished:#}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_style_check_covers_every_python_file_and_names_the_file_of_each_finding() {
    let (server, sandbox) = docker_server().await;
    let interview = server.create_interview_on("Ada", "lru-cache").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    // A module with an unused import, a data file that is not Python, and main.py using the
    // module.
    candidate.write_file(
        "shop/cart.py",
        "import os\n\n\ndef total(prices):\n    return sum(prices)\n",
    );
    candidate.write_file("data/notes.txt", "import this is not python\n");
    assert!(eventually(PATIENCE, || candidate.text().contains("class LRUCache")).await);
    candidate.insert(0, "from shop.cart import total\n");
    let interviewer_events =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&interview.id, 1)
            .unwrap()
            .iter()
            .filter(|r| r.kind == duet_protocol::EventKind::Edit)
            .count()
            >= 3)
        .await
    );

    let run_id = start_run(
        &server,
        &interview.id,
        &interview.tokens.interviewer,
        json!({"kind": "lint"}),
    )
    .await;
    assert!(
        eventually(PATIENCE, || !interviewer_events
            .of(&run_id, "run.finished")
            .is_empty())
        .await
    );
    let finished = &interviewer_events.of(&run_id, "run.finished")[0];
    let findings: Vec<(String, String)> = finished["lint"]
        .as_array()
        .expect("lint findings")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        findings.contains(&("shop/cart.py".into(), "F401".into())),
        "the module's unused import is named with its file: {finished:#}"
    );
    assert!(
        findings.contains(&("main.py".into(), "F401".into())),
        "main.py's unused import of total too: {finished:#}"
    );
    assert!(
        findings
            .iter()
            .all(|(path, _)| path == "main.py" || path == "shop/cart.py"),
        "only Python files are linted: {finished:#}"
    );
    sandbox.shutdown().await;
}
