//! Questions and tests: the bank over the API, a room starting on a question's starter code, the
//! interviewer switching questions, visible and hidden test runs and lint in the real sandbox,
//! and nothing private ever reaching the candidate. Runs against the real Docker engine fail
//! loudly where it is missing; they never skip.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{CreatedInterview, EventKind, InterviewId, MAIN_FILE};
use duet_tests::{api, eventually, EventsClient, TestServer, YClient};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

/// A server on the real sandbox (a warm pool of one). Call `sandbox.shutdown()` at the end: it
/// removes the warm container, which nothing else would once the data dir is gone.
async fn docker_server_with(
    tune: impl FnOnce(&mut duet_server::config::ServeArgs),
) -> (TestServer, Arc<duet_sandbox::DockerSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    args.sandbox.pool = 1;
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGE: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    let server = TestServer::start_full(dir, sandbox.clone(), |a| {
        a.sandbox.pool = 1;
        tune(a)
    })
    .await;
    (server, sandbox)
}

async fn start_run(server: &TestServer, id: &InterviewId, token: &str, kind: &str) -> String {
    let (status, body) = api(
        server,
        reqwest::Method::POST,
        &format!("/api/interviews/{id}/runs"),
        token,
        Some(json!({"kind": kind})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["run_id"].as_str().unwrap().to_owned()
}

async fn finished(events: &EventsClient, run_id: &str) -> Value {
    assert!(
        eventually(PATIENCE, || !events.of(run_id, "run.finished").is_empty()).await,
        "run {run_id} finished"
    );
    events.of(run_id, "run.finished").remove(0)
}

/// The repository's bank, loaded as the server loads it.
fn bank() -> duet_server::questions::QuestionBank {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../questions");
    let (bank, problems) = duet_server::questions::QuestionBank::load(&dir);
    assert!(problems.is_empty(), "{problems:?}");
    bank
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_coding_question_fails_on_its_starter_and_passes_on_its_solution_in_the_real_sandbox()
{
    // The same check `duet check-questions` runs for a team's own bank.
    let dir = tempfile::tempdir().unwrap();
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    args.sandbox.pool = 0;
    let sandbox = duet_server::docker_sandbox(&args).unwrap();
    assert_eq!(
        sandbox.check_now().await.status,
        "ok",
        "THESE TESTS NEED DOCKER: run `bash scripts/ensure-docker.sh`"
    );
    let bank = bank();
    let mut failures = Vec::new();
    for summary in bank.list() {
        let q = bank.get(&summary.id).unwrap();
        let limits = args.sandbox.limits();
        for problem in duet_server::question_check::self_check(&sandbox, &q, &limits).await {
            failures.push(format!("{}: {problem}", q.id()));
        }
    }
    sandbox.shutdown().await;
    assert!(
        failures.is_empty(),
        "questions that do not hold:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_prompt_in_the_bank_renders_as_its_author_wrote_it() {
    // Issue 18, item 4: tables as pipes, "503." read as a list item.
    let bank = bank();
    let problems: Vec<String> = bank
        .list()
        .iter()
        .flat_map(|q| {
            let prompt = bank.get(&q.id).unwrap().prompt.clone();
            duet_server::question_check::prompt_problems(&prompt)
                .into_iter()
                .map(move |p| format!("{}: {p}", q.id))
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn the_bank_is_listed_for_the_admin_and_interviewers_and_never_for_the_candidate() {
    let server = TestServer::start().await;
    let created = server.create_interview_on("Ada", "lru-cache").await;
    let (status, list) = api(
        &server,
        reqwest::Method::GET,
        "/api/questions",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let first = &list.as_array().unwrap()[0];
    for field in ["id", "title", "difficulty", "tags", "areas", "kind"] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }
    assert!(first.get("solution").is_none(), "the list is light");
    let (status, whole) = api(
        &server,
        reqwest::Method::GET,
        "/api/questions/lru-cache",
        &created.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(whole["hidden_tests"]["test_hidden.py"]
        .as_str()
        .is_some_and(|t| t.contains("def test_")));
    for path in ["/api/questions", "/api/questions/lru-cache"] {
        let (status, _) = api(
            &server,
            reqwest::Method::GET,
            path,
            &created.tokens.candidate,
            None,
        )
        .await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, body) = api(
        &server,
        reqwest::Method::GET,
        "/api/questions/no-such-thing",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no-such-thing"));
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({"title": "t", "candidate_name": "c", "question_id": "nope"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// An interview on `question_id` with the candidate and the interviewer in the room, once both
/// see its starter.
async fn both_in_the_room(
    server: &TestServer,
    question_id: &str,
) -> (CreatedInterview, YClient, YClient) {
    let created = server.create_interview_on("Ada", question_id).await;
    let candidate = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let interviewer = YClient::connect(&server.yjs_url(&created.id, &created.tokens.interviewer))
        .await
        .unwrap();
    let starter = bank().get(question_id).unwrap().starter[MAIN_FILE].clone();
    assert!(
        eventually(PATIENCE, || candidate.text() == starter
            && interviewer.text() == starter)
        .await
    );
    (created, candidate, interviewer)
}

#[tokio::test]
async fn the_room_starts_on_the_starter_and_a_switch_reaches_everyone() {
    let server = TestServer::start().await;
    let bank = bank();
    let (created, candidate, interviewer) = both_in_the_room(&server, "lru-cache").await;
    candidate.insert(0, "# my notes\n");
    assert!(eventually(PATIENCE, || interviewer.text().starts_with("# my notes\n")).await);
    let events = EventsClient::connect(&server.events_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();

    // The candidate may not switch; the interviewer switches to the retry question.
    let path = format!("/api/interviews/{}/question", created.id);
    let (status, _) = api(
        &server,
        reqwest::Method::POST,
        &path,
        &created.tokens.candidate,
        Some(json!({"question_id": "retry-backoff"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &path,
        &created.tokens.interviewer,
        Some(json!({"question_id": "nope"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &path,
        &created.tokens.interviewer,
        Some(json!({"question_id": "retry-backoff"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let retry = bank.get("retry-backoff").unwrap();
    assert!(
        eventually(PATIENCE, || candidate.text() == retry.starter[MAIN_FILE]
            && interviewer.text() == retry.starter[MAIN_FILE])
        .await
    );
    assert!(
        eventually(PATIENCE, || events.all().iter().any(|e| e["type"]
            == "question"
            && e["question_id"] == "retry-backoff"))
        .await
    );

    // The log shows the switch, authored by the interviewer, and the starter as a server edit.
    let log = server.state.store.read_log(&created.id, 0).unwrap();
    let switches: Vec<_> = log
        .iter()
        .filter(|r| r.kind == EventKind::Question)
        .collect();
    assert_eq!(switches.len(), 2, "the initial question and the switch");
    assert_eq!(switches[1].by, duet_protocol::Actor::Interviewer);
    assert_eq!(
        duet_core::rebuild(None, log.clone()).unwrap().text(),
        retry.starter[MAIN_FILE]
    );

    // The candidate's view follows the switch and holds only what the candidate may see.
    let (_, view) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}", created.id),
        &created.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(view["question"]["id"], "retry-backoff");
    assert!(view["question"]["visible_tests"]["test_visible.py"].is_string());
    for private in ["hints", "follow_ups", "solution", "hidden_tests", "starter"] {
        assert!(
            view["question"].get(private).is_none(),
            "{private} reached the candidate"
        );
    }
    let (_, full) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}", created.id),
        &created.tokens.interviewer,
        None,
    )
    .await;
    assert!(full["question"]["hints"]["strong"].is_array());

    // A restart keeps the question.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let late = YClient::connect(&server.yjs_url(&created.id, &created.tokens.reviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || late.text() == retry.starter[MAIN_FILE]).await);
}

#[tokio::test]
async fn a_switch_and_back_restores_the_candidates_code_for_both_even_after_a_restart() {
    // Issue 18, item 2: a mis-click on another question cost the candidate their solution.
    let server = TestServer::start().await;
    let bank = bank();
    let (created, candidate, interviewer) = both_in_the_room(&server, "lru-cache").await;
    let lru = bank.get("lru-cache").unwrap();
    // The candidate writes a solution.
    candidate.insert(0, "# my solution\n");
    let solution = format!("# my solution\n{}", lru.starter[MAIN_FILE]);
    assert!(eventually(PATIENCE, || interviewer.text() == solution).await);
    let events = EventsClient::connect(&server.events_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let switch = |to: &'static str| {
        let server = &server;
        let path = format!("/api/interviews/{}/question", created.id);
        let token = created.tokens.interviewer.clone();
        async move {
            let (status, body) = api(
                server,
                reqwest::Method::POST,
                &path,
                &token,
                Some(json!({ "question_id": to })),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };

    // The interviewer mis-clicks onto another question: its starter, and the banner's title.
    let away = switch("retry-backoff").await;
    assert_eq!(away["restored"], false);
    let retry = bank.get("retry-backoff").unwrap();
    assert!(eventually(PATIENCE, || candidate.text() == retry.starter[MAIN_FILE]).await);
    assert!(
        eventually(PATIENCE, || events
            .all()
            .iter()
            .any(|e| e["type"] == "question"
                && e["question_id"] == "retry-backoff"
                && e["title"] == retry.summary.title.as_str()))
        .await,
        "the question event names the question by its title"
    );

    // And back: the candidate's solution returns, for both people.
    let back = switch("lru-cache").await;
    assert_eq!(back["restored"], true);
    assert!(
        eventually(PATIENCE, || candidate.text() == solution
            && interviewer.text() == solution)
        .await,
        "switching back restores the code written for the question"
    );

    // After a restart too: the kept code comes from the log.
    switch("retry-backoff").await;
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &format!("/api/interviews/{}/question", created.id),
        &created.tokens.interviewer,
        Some(json!({"question_id": "lru-cache"})),
    )
    .await;
    assert_eq!(
        (status, body["restored"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let late = YClient::connect(&server.yjs_url(&created.id, &created.tokens.reviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || late.text() == solution).await);
}

#[tokio::test]
async fn a_switch_after_the_end_is_refused_and_the_record_stays_as_it_was() {
    // Issue 16, finding 10: a switch after the end rewrote the final main.py.
    let server = TestServer::start().await;
    let (created, _candidate, _interviewer) = both_in_the_room(&server, "lru-cache").await;
    let (status, _) = api(
        &server,
        reqwest::Method::POST,
        &format!("/api/interviews/{}/end", created.id),
        &created.tokens.interviewer,
        None,
    )
    .await;
    assert!((200..300).contains(&status), "{status}");
    let before = server.state.store.read_log(&created.id, 0).unwrap();
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &format!("/api/interviews/{}/question", created.id),
        &created.tokens.interviewer,
        Some(json!({"question_id": "retry-backoff"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ended"));
    let after = server.state.store.read_log(&created.id, 0).unwrap();
    assert_eq!(after, before, "nothing is stored");
    let (_, view) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}", created.id),
        &created.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(view["question"]["id"], "lru-cache");
}

#[tokio::test]
async fn test_runs_need_a_coding_question_and_lint_is_the_interviewers() {
    let server = TestServer::start().await;
    let plain = server.create_interview("Ada").await;
    let client = YClient::connect(&server.yjs_url(&plain.id, &plain.tokens.candidate))
        .await
        .unwrap();
    client.insert(0, "print(1)\n");
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&plain.id, 0)
            .unwrap()
            .iter()
            .any(|r| r.kind == EventKind::Edit))
        .await
    );
    let path = format!("/api/interviews/{}/runs", plain.id);
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &path,
        &plain.tokens.candidate,
        Some(json!({"kind": "test"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no question"));
    let (status, _) = api(
        &server,
        reqwest::Method::POST,
        &path,
        &plain.tokens.candidate,
        Some(json!({"kind": "lint"})),
    )
    .await;
    assert_eq!(status, 403);

    let discussion = server.create_interview_on("Ada", "gil-concurrency").await;
    let client = YClient::connect(&server.yjs_url(&discussion.id, &discussion.tokens.candidate))
        .await
        .unwrap();
    client.insert(0, "x = 1\n");
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&discussion.id, 0)
            .unwrap()
            .iter()
            .any(|r| r.kind == EventKind::Edit))
        .await
    );
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &format!("/api/interviews/{}/runs", discussion.id),
        &discussion.tokens.interviewer,
        Some(json!({"kind": "test"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("discussion"),
        "{body}"
    );
}

/// Candidate and interviewer in a room on `question`, with `main.py` set to `code`.
async fn room_with_code(
    server: &TestServer,
    question: &str,
    code: &str,
) -> (CreatedInterview, YClient) {
    let created = server.create_interview_on("Ada", question).await;
    let candidate = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && !candidate.is_empty()).await);
    candidate.delete(0, candidate.len());
    candidate.insert(0, code);
    let expected = code.to_owned();
    let log_has_it = || {
        duet_core::rebuild(None, server.state.store.read_log(&created.id, 0).unwrap())
            .unwrap()
            .text()
            == expected
    };
    assert!(eventually(PATIENCE, log_has_it).await);
    (created, candidate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_tests_and_lint_reach_the_interviewer_and_never_the_candidate() {
    let (server, sandbox) = docker_server_with(|_| {}).await;
    let lru = bank().get("lru-cache").unwrap();
    // The reference solution with one planted flaw: `in` marks the key as recently used, which
    // only a hidden test checks.
    let flawed = lru.solution[MAIN_FILE].replace("def __contains__(self, key):", "def __contains__(self, key):\n        if key in self._data:\n            self._data.move_to_end(key)");
    assert_ne!(
        flawed, lru.solution[MAIN_FILE],
        "the reference solution changed shape; update this test"
    );
    let (created, _candidate) = room_with_code(&server, "lru-cache", &flawed).await;
    let mine = EventsClient::connect(&server.events_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let theirs =
        EventsClient::connect(&server.events_url(&created.id, &created.tokens.interviewer))
            .await
            .unwrap();

    // The candidate's test run: visible tests only, and everyone sees it.
    let visible = start_run(&server, &created.id, &created.tokens.candidate, "test").await;
    let done = finished(&mine, &visible).await;
    let names: Vec<String> = done["tests"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("test_visible.py")),
        "{names:?}"
    );
    assert!(
        !theirs.of(&visible, "run.finished").is_empty()
            || eventually(PATIENCE, || !theirs.of(&visible, "run.finished").is_empty()).await
    );

    // The interviewer's: visible and hidden, with which hidden test failed and why.
    let hidden = start_run(&server, &created.id, &created.tokens.interviewer, "test").await;
    let done = finished(&theirs, &hidden).await;
    let cases = done["tests"]["cases"].as_array().unwrap();
    let failed: Vec<&Value> = cases.iter().filter(|c| c["outcome"] == "failed").collect();
    assert!(
        !failed.is_empty(),
        "the planted flaw fails a hidden test: {done}"
    );
    assert!(
        failed
            .iter()
            .all(|c| c["name"].as_str().unwrap().starts_with("test_hidden.py")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|c| c["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{failed:?}"
    );
    assert!(done["tests"]["passed"].as_u64().unwrap() > 0);

    // Lint: findings for the interviewer.
    let lint = start_run(&server, &created.id, &created.tokens.interviewer, "lint").await;
    let done = finished(&theirs, &lint).await;
    assert!(done["lint"].is_array(), "{done}");

    // The candidate's socket got nothing of either, and its history lacks them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for run in [&hidden, &lint] {
        assert!(
            mine.all().iter().all(|e| e["run_id"] != run.as_str()),
            "the candidate saw {run}"
        );
    }
    let (_, history) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}/runs", created.id),
        &created.tokens.candidate,
        None,
    )
    .await;
    let ids: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [visible.as_str()],
        "the candidate's history holds only its own visible run"
    );
    let (_, history) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}/runs", created.id),
        &created.tokens.reviewer,
        None,
    )
    .await;
    assert_eq!(
        history["runs"].as_array().unwrap().len(),
        3,
        "the reviewer sees every run"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_private_material_never_reaches_the_candidate() {
    const CANARY: &str = "CANARY-7f3a91";
    // A bank of one question with the canary in every private field.
    let questions = tempfile::tempdir().unwrap();
    let private = format!(
        "id = \"canary\"\ntitle = \"Canary\"\ndifficulty = \"easy\"\nareas = [\"coding_quality\"]\nprompt = '''Write f.'''\nstarter = '''def f():\n    return 0\n'''\nsolution = '''def f():\n    return 1  # {CANARY}\n'''\nvisible_tests = '''from main import f\n\ndef test_f():\n    assert f() == 1\n'''\nhidden_tests = '''from main import f\n\ndef test_{canary}():\n    assert f() == 1, \"{CANARY}\"\n'''\nfollow_ups = [\"{CANARY} follow-up\"]\n[hints]\nstrong = \"{CANARY} strong\"\nred_flags = [\"{CANARY} red flag\"]\n",
        canary = CANARY.replace('-', "_").to_lowercase()
    );
    std::fs::write(questions.path().join("canary.toml"), private).unwrap();
    let dir = questions.path().to_owned();
    let (server, sandbox) = docker_server_with(move |a| a.questions_dir = dir).await;
    let (created, candidate) = room_with_code(&server, "canary", "def f():\n    return 2\n").await;
    let mine = EventsClient::connect(&server.events_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let theirs =
        EventsClient::connect(&server.events_url(&created.id, &created.tokens.interviewer))
            .await
            .unwrap();
    let hidden = start_run(&server, &created.id, &created.tokens.interviewer, "test").await;
    finished(&theirs, &hidden).await;
    let visible = start_run(&server, &created.id, &created.tokens.candidate, "test").await;
    finished(&mine, &visible).await;

    let canary_lower = CANARY.replace('-', "_").to_lowercase();
    let leaks = |text: &str| text.contains(CANARY) || text.contains(&canary_lower);
    for path in [
        format!("/api/interviews/{}", created.id),
        format!("/api/interviews/{}/runs", created.id),
    ] {
        let (_, body) = api(
            &server,
            reqwest::Method::GET,
            &path,
            &created.tokens.candidate,
            None,
        )
        .await;
        assert!(!leaks(&body.to_string()), "{path} leaked: {body}");
    }
    assert!(
        !mine.all().iter().any(|e| leaks(&e.to_string())),
        "the events socket leaked"
    );
    assert!(!leaks(&candidate.text()), "the shared document leaked");
    // The interviewer does get it (so the check above is not vacuous).
    assert!(
        theirs.all().iter().any(|e| leaks(&e.to_string())),
        "the interviewer's hidden run names the hidden test"
    );
    sandbox.shutdown().await;
}

/// A small project question: a package of two modules, an entry point that reads a shipped
/// CSV, a visible test in `tests/`, a hidden one that reads the data file.
const SHOP: &str = r#"
id = "shop"
title = "Shop revenue"
difficulty = "easy"
areas = ["coding_quality"]
prompt = "Make `cents` turn an amount into whole cents."
[starter]
"main.py" = '''
from shop.report import revenue

print(revenue("data/orders.csv"))
'''
"shop/__init__.py" = '"""The shop."""'

"shop/report.py" = '''
import csv

from shop.money import cents


def revenue(path):
    with open(path, newline="") as f:
        return sum(cents(row["amount"]) for row in csv.DictReader(f))
'''
"shop/money.py" = '''
def cents(text):
    raise NotImplementedError
'''
[solution]
"shop/money.py" = '''
from decimal import Decimal


def cents(text):
    return int(Decimal(text) * 100)
'''
[data]
"data/orders.csv" = "id,amount\n1,9.50\n2,3.25\n"
[visible_tests]
"tests/test_money.py" = '''
from shop.money import cents


def test_cents():
    assert cents("9.50") == 950
'''
[hidden_tests]
"tests/test_revenue_hidden.py" = '''
from shop.report import revenue


def test_revenue_of_the_shipped_orders():
    assert revenue("data/orders.csv") == 1275
'''
[hints]
strong = "Decimal"
red_flags = "float"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_question_opens_with_every_file_and_its_tests_and_data_run_in_the_real_sandbox() {
    let questions = tempfile::tempdir().unwrap();
    std::fs::write(questions.path().join("shop.toml"), SHOP).unwrap();
    let (bank, problems) = duet_server::questions::QuestionBank::load(questions.path());
    assert!(problems.is_empty(), "{problems:?}");
    let shop = bank.get("shop").unwrap();
    let dir = questions.path().to_owned();
    let (server, sandbox) = docker_server_with(move |a| a.questions_dir = dir).await;

    // Both open the interview: every starter file and the data file are in the document.
    let created = server.create_interview_on("Ada", "shop").await;
    let candidate = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let interviewer = YClient::connect(&server.yjs_url(&created.id, &created.tokens.interviewer))
        .await
        .unwrap();
    assert!(
        eventually(PATIENCE, || candidate.files() == shop.starter
            && interviewer.files() == shop.starter)
        .await,
        "{:?}",
        candidate.files()
    );
    let mine = EventsClient::connect(&server.events_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let theirs =
        EventsClient::connect(&server.events_url(&created.id, &created.tokens.interviewer))
            .await
            .unwrap();
    let cases = |run: &Value| -> Vec<String> {
        run["tests"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c["name"].as_str().unwrap(), c["outcome"]))
            .collect()
    };

    // The candidate runs the visible tests on the starter: the test in tests/ fails.
    let run = start_run(&server, &created.id, &created.tokens.candidate, "test").await;
    let done = finished(&mine, &run).await;
    let said = cases(&done);
    assert!(
        said.iter()
            .any(|c| c.contains("test_cents") && c.contains("failed")),
        "{done}"
    );

    // The candidate fixes the module; the program reads the shipped CSV and prints the total.
    candidate.write_file(
        "shop/money.py",
        "\n\ndef cents(text):  # noqa: F811\n    return round(float(text) * 100)\n",
    );
    let fixed = |c: &YClient| c.files()["shop/money.py"].contains("round(");
    assert!(eventually(PATIENCE, || fixed(&interviewer)).await);
    let run = start_run(&server, &created.id, &created.tokens.candidate, "run").await;
    let done = finished(&mine, &run).await;
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(mine.stdout(&run).trim(), "1275", "{done}");

    // The candidate's test run: the visible test passes, the hidden one is not there.
    let run = start_run(&server, &created.id, &created.tokens.candidate, "test").await;
    let done = finished(&mine, &run).await;
    assert_eq!(
        cases(&done),
        ["tests/test_money.py::test_cents \"passed\""],
        "{done}"
    );
    // The interviewer's: the hidden test, which reads the data file, runs and passes too.
    let run = start_run(&server, &created.id, &created.tokens.interviewer, "test").await;
    let done = finished(&theirs, &run).await;
    let said = cases(&done);
    assert!(
        said.iter()
            .any(|c| c.contains("test_revenue_of_the_shipped_orders") && c.contains("passed")),
        "{done}"
    );
    assert!(
        !mine
            .all()
            .iter()
            .any(|e| e.to_string().contains("test_revenue")),
        "the hidden test's name reached the candidate"
    );
    // What the candidate is told of the question: the visible test file, never the hidden one.
    let (_, view) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/interviews/{}", created.id),
        &created.tokens.candidate,
        None,
    )
    .await;
    let question = &view["question"];
    assert_eq!(
        question["visible_tests"]["tests/test_money.py"].as_str(),
        Some(shop.visible_tests["tests/test_money.py"].as_str())
    );
    assert_eq!(question["entry"], "main.py");
    assert!(!question.to_string().contains("test_revenue"), "{question}");
    assert!(
        !candidate.files().keys().any(|p| p.contains("test_revenue")),
        "no hidden test file in the candidate's project"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_switch_away_from_a_project_and_back_brings_back_every_file_and_keeps_the_candidates_own()
{
    let questions = tempfile::tempdir().unwrap();
    std::fs::write(questions.path().join("shop.toml"), SHOP).unwrap();
    let lru = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../questions/lru-cache.toml");
    std::fs::copy(lru, questions.path().join("lru-cache.toml")).unwrap();
    let (bank, problems) = duet_server::questions::QuestionBank::load(questions.path());
    assert!(problems.is_empty(), "{problems:?}");
    let dir = questions.path().to_owned();
    let server = TestServer::start_with(move |a| a.questions_dir = dir).await;
    let created = server.create_interview_on("Ada", "shop").await;
    let candidate = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    let interviewer = YClient::connect(&server.yjs_url(&created.id, &created.tokens.interviewer))
        .await
        .unwrap();
    let shop = bank.get("shop").unwrap();
    assert!(eventually(PATIENCE, || candidate.files() == shop.starter).await);

    // The candidate works on the module and keeps notes of their own.
    candidate.write_file("shop/money.py", "# my work\n");
    candidate.write_file("notes.md", "ask about rounding\n");
    assert!(
        eventually(PATIENCE, || interviewer.files().contains_key("notes.md")
            && interviewer.files()["shop/money.py"].ends_with("# my work\n"))
        .await
    );
    let left = candidate.files();

    let switch = |to: &'static str| {
        let server = &server;
        let path = format!("/api/interviews/{}/question", created.id);
        let token = created.tokens.interviewer.clone();
        async move {
            let (status, body) = api(
                server,
                reqwest::Method::POST,
                &path,
                &token,
                Some(json!({ "question_id": to })),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // On to the single-file question: the shop's files go, the notes stay.
    switch("lru-cache").await;
    let lru = bank.get("lru-cache").unwrap();
    let expected: std::collections::BTreeMap<String, String> = [
        (MAIN_FILE.to_owned(), lru.starter[MAIN_FILE].clone()),
        ("notes.md".to_owned(), "ask about rounding\n".to_owned()),
    ]
    .into();
    assert!(
        eventually(PATIENCE, || candidate.files() == expected
            && interviewer.files() == expected)
        .await,
        "{:?}",
        candidate.files()
    );

    // And back: every file as it was left, for both, and after a restart too.
    switch("shop").await;
    assert!(
        eventually(PATIENCE, || candidate.files() == left
            && interviewer.files() == left)
        .await,
        "{:?}",
        candidate.files()
    );
    let dir = server.stop().await;
    let questions_dir = questions.path().to_owned();
    let server = TestServer::start_in(dir, move |a| a.questions_dir = questions_dir).await;
    let late = YClient::connect(&server.yjs_url(&created.id, &created.tokens.reviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || late.files() == left).await);
}
