//! Private records leave no trace in what the candidate receives (issue 16, finding 3).
//!
//! The probe of the issue, through the real server and the real sandbox: the candidate's
//! `main.py`, when the interviewer's hidden tests import it, reads a secret from
//! `test_hidden.py` and prints that many chunks of output (each its own private record). Two
//! interviews run the same candidate-visible story (a run, another run, a question switch, the
//! end); between its two runs, one interview holds a note only and the other a
//! hidden-test run printing the secret's worth of chunks, a lint run, notes and scorecard
//! saves. Everything the candidate receives (events socket frames, every page of its run
//! history, every run's record, the interview itself) is the same in both, once the run ids,
//! interview id and clock times (which differ between any two interviews) are named by their
//! order. The interviewer and reviewers still get the log's seqs. Fails loudly without Docker;
//! never skips.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{CreatedInterview, EventKind};
use duet_tests::{api, eventually, EventsClient, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

/// What `test_hidden.py` holds: the count the candidate's program recovers and prints.
const SECRET: usize = 14;

/// The candidate's program: innocent as a program or under the visible tests; under the
/// interviewer's hidden tests it reads the secret beside it and prints that many chunks, each
/// after a pause (so each is its own output record), past pytest's capture.
const PROBE: &str = r#"import gc, os, re, sys, time


def f():
    return 1


_hidden = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_hidden.py")
if os.path.exists(_hidden):
    _n = int(re.search(r"SECRET = (\d+)", open(_hidden).read()).group(1))
    _capture = next((o for o in gc.get_objects() if type(o).__name__ == "CaptureManager"), None)
    if _capture is not None:
        _capture.suspend_global_capture()
    for _i in range(_n):
        sys.stdout.write("chunk %d\n" % _i)
        sys.stdout.flush()
        time.sleep(0.03)
    if _capture is not None:
        _capture.resume_global_capture()

if __name__ == "__main__":
    print("hello")
"#;

/// A bank of two questions: `secret`, whose hidden tests hold the secret, and `other`, to
/// switch to.
fn bank() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let question = |id: &str, hidden: &str| {
        format!(
            "id = \"{id}\"\ntitle = \"Question {id}\"\ndifficulty = \"easy\"\nareas = [\"coding_quality\"]\nprompt = '''Write f.'''\nstarter = '''def f():\n    return 0\n'''\nsolution = '''def f():\n    return 1\n'''\nvisible_tests = '''from main import f\n\n\ndef test_f():\n    assert f() == 1\n'''\nhidden_tests = '''{hidden}from main import f\n\n\ndef test_f_again():\n    assert f() == 1\n'''\nfollow_ups = []\n[hints]\nstrong = \"s\"\nred_flags = []\n"
        )
    };
    std::fs::write(
        dir.path().join("secret.toml"),
        question("secret", &format!("SECRET = {SECRET}\n")),
    )
    .unwrap();
    std::fs::write(dir.path().join("other.toml"), question("other", "")).unwrap();
    dir
}

async fn docker_server() -> (
    TestServer,
    Arc<duet_sandbox::DockerSandbox>,
    tempfile::TempDir,
) {
    let questions = bank();
    let dir = tempfile::tempdir().unwrap();
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    args.sandbox.pool = 1;
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGE: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    let bank_dir = questions.path().to_owned();
    let server = TestServer::start_full(dir, sandbox.clone(), |a| {
        a.sandbox.pool = 1;
        a.sandbox.runs_per_minute = 100;
        a.questions_dir = bank_dir;
    })
    .await;
    (server, sandbox, questions)
}

/// How much the interviewer does in private between the candidate's two runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Private {
    /// One note.
    Little,
    /// Hidden tests (the probe prints the secret's worth of chunks), lint, notes and scorecard
    /// saves.
    Much,
}

/// What the candidate received, and what the interviewer did.
struct Seen {
    /// The candidate's events socket, frame by frame.
    frames: Vec<Value>,
    /// Every page of `GET /runs?limit=1`, followed by its cursor.
    pages: Vec<Value>,
    /// `GET /runs/{id}` of every run in the history.
    details: Vec<Value>,
    /// `GET /api/interviews/{id}`.
    interview: Value,
    /// The interviewer's events socket.
    staff_frames: Vec<Value>,
    /// The reviewer's run history and the records of the runs in it.
    staff_runs: Value,
    staff_details: Vec<Value>,
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let (status, answer) = api(server, method, path, token, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

async fn finished(events: &EventsClient, run_id: &str) {
    assert!(
        eventually(PATIENCE, || !events.of(run_id, "run.finished").is_empty()).await,
        "run {run_id} finished"
    );
}

async fn story(server: &TestServer, private: Private) -> Seen {
    let created: CreatedInterview = server.create_interview_on("Ada", "secret").await;
    let (id, tokens) = (&created.id, &created.tokens);
    let base = format!("/api/interviews/{id}");
    let editor = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || editor.synced() && !editor.is_empty()).await);
    editor.delete(0, editor.len());
    editor.insert(0, PROBE);
    let stored = || {
        duet_core::rebuild(None, server.state.store.read_log(id, 0).unwrap())
            .unwrap()
            .text()
            == PROBE
    };
    assert!(eventually(PATIENCE, stored).await, "the probe is stored");
    let mine = EventsClient::connect(&server.events_url(id, &tokens.candidate))
        .await
        .unwrap();
    let theirs = EventsClient::connect(&server.events_url(id, &tokens.interviewer))
        .await
        .unwrap();
    let run = |token: &str, kind: &str| {
        let (token, kind) = (token.to_owned(), kind.to_owned());
        let path = format!("{base}/runs");
        async move {
            let answer = call(
                server,
                Method::POST,
                &path,
                &token,
                Some(json!({"kind": kind})),
            )
            .await;
            answer["run_id"].as_str().unwrap().to_owned()
        }
    };

    // The candidate runs the program.
    let first = run(&tokens.candidate, "run").await;
    finished(&mine, &first).await;

    // The interviewer, in private.
    let notes = format!("{base}/notes");
    let note = |text: &'static str| {
        call(
            server,
            Method::POST,
            &notes,
            &tokens.interviewer,
            Some(json!({ "text": text })),
        )
    };
    note("reads the prompt twice").await;
    if private == Private::Much {
        let hidden = run(&tokens.interviewer, "test").await;
        finished(&theirs, &hidden).await;
        let chunks = theirs.of(&hidden, "run.output").len();
        assert!(
            chunks >= SECRET,
            "the probe printed the secret's worth of private chunks: {chunks}"
        );
        let lint = run(&tokens.interviewer, "lint").await;
        finished(&theirs, &lint).await;
        note("talks through the edge cases").await;
        note("asks about complexity").await;
        for version in [0, 1] {
            call(
                server,
                Method::PUT,
                &format!("{base}/scorecard"),
                &tokens.interviewer,
                Some(json!({ "version": version, "notes": "so far so good" })),
            )
            .await;
        }
    }
    assert!(
        eventually(PATIENCE, || theirs
            .all()
            .iter()
            .any(|e| e["type"] == "note"))
        .await
    );

    // The candidate runs the program again (a test run would print pytest's timings, which
    // differ from run to run); the interviewer switches the question and ends.
    let second = run(&tokens.candidate, "run").await;
    finished(&mine, &second).await;
    call(
        server,
        Method::POST,
        &format!("{base}/question"),
        &tokens.interviewer,
        Some(json!({"question_id": "other"})),
    )
    .await;
    call(
        server,
        Method::POST,
        &format!("{base}/end"),
        &tokens.interviewer,
        None,
    )
    .await;
    assert!(
        eventually(PATIENCE, || mine.all().iter().any(|e| e["type"] == "end")).await,
        "the candidate is told of the end"
    );
    // Nothing more is on its way to the candidate.
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(id, 0)
            .unwrap()
            .iter()
            .any(|r| r.kind == EventKind::End))
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut pages = Vec::new();
    let mut path = format!("{base}/runs?limit=1");
    loop {
        let page = call(server, Method::GET, &path, &tokens.candidate, None).await;
        let next = page["next"].as_str().map(str::to_owned);
        pages.push(page);
        match next {
            Some(after) => path = format!("{base}/runs?limit=1&after={after}"),
            None => break,
        }
    }
    let mut details = Vec::new();
    for run_id in [&first, &second] {
        details.push(
            call(
                server,
                Method::GET,
                &format!("{base}/runs/{run_id}"),
                &tokens.candidate,
                None,
            )
            .await,
        );
    }
    let interview = call(server, Method::GET, &base, &tokens.candidate, None).await;
    let staff_runs = call(
        server,
        Method::GET,
        &format!("{base}/runs"),
        &tokens.reviewer,
        None,
    )
    .await;
    let mut staff_details = Vec::new();
    for r in staff_runs["runs"].as_array().unwrap() {
        let run_id = r["run_id"].as_str().unwrap();
        staff_details.push(
            call(
                server,
                Method::GET,
                &format!("{base}/runs/{run_id}"),
                &tokens.reviewer,
                None,
            )
            .await,
        );
    }
    Seen {
        frames: mine.all(),
        pages,
        details,
        interview,
        staff_frames: theirs.all(),
        staff_runs,
        staff_details,
    }
}

/// Keys whose values are clock readings (they differ between any two interviews).
const CLOCK: [&str; 5] = [
    "at",
    "started_at",
    "finished_at",
    "duration_ms",
    "created_at",
];

/// `value` with every clock reading, run id and the interview id named by order of first
/// appearance, so two interviews compare on everything else.
fn normalized(value: &Value, names: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                let v = if CLOCK.contains(&key.as_str()) && !v.is_null() {
                    json!("<clock>")
                } else if ["run_id", "next", "id"].contains(&key.as_str()) && v.is_string() {
                    let name = v.as_str().unwrap().to_owned();
                    let n = names.iter().position(|x| *x == name).unwrap_or_else(|| {
                        names.push(name);
                        names.len() - 1
                    });
                    json!(format!("<id {n}>"))
                } else {
                    normalized(v, names)
                };
                out.insert(key.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalized(v, names)).collect()),
        other => other.clone(),
    }
}

fn candidate_view(seen: &Seen) -> Value {
    let mut names = Vec::new();
    let view = json!({
        "frames": seen.frames,
        "pages": seen.pages,
        "details": seen.details,
        "interview": seen.interview,
    });
    normalized(&view, &mut names)
}

/// Every key anywhere in `value`.
fn keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candidate_sees_the_same_whatever_the_interviewer_did_in_private() {
    let (server, sandbox, _questions) = docker_server().await;
    let little = story(&server, Private::Little).await;
    let much = story(&server, Private::Much).await;

    // The story is what we think it is: the candidate saw its own runs, the switch and the end.
    let types: Vec<&str> = little
        .frames
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"run.started"), "{types:?}");
    assert!(
        types.ends_with(&["run.finished", "question", "end"]),
        "{types:?}"
    );
    // And the interviewer did much more in private in the second interview.
    let private_records = |seen: &Seen| {
        seen.staff_frames
            .iter()
            .filter(|e| {
                !little
                    .frames
                    .iter()
                    .any(|c| c["type"] == e["type"] && c["run_id"] == e["run_id"])
            })
            .count()
    };
    assert!(
        private_records(&much) >= private_records(&little) + SECRET + 6,
        "{} private frames against {}",
        private_records(&much),
        private_records(&little)
    );

    // Nothing the candidate received differs.
    let (a, b) = (candidate_view(&little), candidate_view(&much));
    assert_eq!(
        serde_json::to_string_pretty(&a).unwrap(),
        serde_json::to_string_pretty(&b).unwrap(),
        "the candidate's view changed with the interviewer's private activity"
    );
    // And none of it is a place in the room's log.
    let mut seen_keys = Vec::new();
    keys(&a, &mut seen_keys);
    for key in ["seq", "code_seq", "through_seq", "last_seq"] {
        assert!(
            !seen_keys.iter().any(|k| k == key),
            "the candidate received `{key}`"
        );
    }
    // Output still says where it starts: the record's byte counts line up with the frames.
    let hello: Vec<&Value> = much
        .frames
        .iter()
        .filter(|e| e["type"] == "run.output")
        .collect();
    assert!(hello.iter().all(|e| e["offset"].is_u64()), "{hello:?}");

    // The interviewer and reviewers keep the log's seqs, in order.
    for seen in [&little, &much] {
        let seqs: Vec<u64> = seen
            .staff_frames
            .iter()
            .map(|e| e["seq"].as_u64().expect("staff frames carry their seq"))
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        for r in seen.staff_runs["runs"].as_array().unwrap() {
            assert!(r["seq"].is_u64() && r["code_seq"].is_u64(), "{r}");
        }
        for d in &seen.staff_details {
            assert!(
                d["through_seq"].is_u64() && d["stdout_bytes"].is_u64(),
                "{d}"
            );
        }
    }
    sandbox.shutdown().await;
}
