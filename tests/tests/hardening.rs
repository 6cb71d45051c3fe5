//! Hardening, round three (issue 16): the attacks and careless setups of findings 4, 8, 11 and
//! 12, each played against a real server.
//!
//! - Someone guesses the admin token as fast as they can: after the allowance of failures their
//!   address is answered 429 with `Retry-After`, each failure is logged, and no token reaches
//!   the log. The admin token works only in the `Authorization` header.
//! - The candidate prints terminal control sequences: the recording a reviewer plays in their
//!   own terminal acts on none of them but colour and cursor movement.
//! - Reviewers export: the archive streams, keeps long names whole, and exports in flight are
//!   bounded per token and per server.
//! - The server runs under a low open-file limit while silent connections pile up: it keeps
//!   answering `/healthz` and the admin.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{
    Actor, EventKind, InterviewId, LogRecord, Note, PerRole, Record, Role, RunFinished, RunKind,
    RunStarted,
};
use duet_tests::{duet_bin, eventually, TestServer, YClient, PATIENCE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the servers in this test binary log, for the tests that read the log.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        log
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let request = reqwest::Client::new().get(server.http(path));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test]
async fn guessing_the_admin_token_is_throttled_per_address_and_logged_without_the_token() {
    let log = captured_log();
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    // The attacker tries tokens as fast as the server answers: the first 30 (the default
    // allowance a minute) are looked at.
    let guesses: Vec<String> = (0..30)
        .map(|n| format!("guess-{n:04}-abcdefghijkl"))
        .collect();
    for guess in &guesses {
        let response = get(&server, "/api/interviews", Some(guess)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{guess}");
    }
    // The allowance is spent: the next guess is not even looked at.
    let response = get(&server, "/api/interviews", Some("guess-9999-abcdefghijkl")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_auth_failures");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many failed authentications"),
        "{body}"
    );
    // Role tokens are guarded the same way (a websocket join included).
    let response = get(
        &server,
        &format!(
            "/api/interviews/{}?token=made-up-token-0123456789",
            interview.id
        ),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let refused = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .err()
        .expect("refused while the address is out of allowance");
    assert!(refused.to_string().contains("429"), "{refused}");
    // What needs no token still answers.
    assert_eq!(
        get(&server, "/healthz", None).await.status(),
        StatusCode::OK
    );

    // Each failure was logged with the address and path, and no guess reached the log.
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let failures = text
        .lines()
        .filter(|l| l.contains("authentication failed") && l.contains("/api/interviews"))
        .count();
    assert!(failures >= 30, "{failures} failures logged:\n{text}");
    assert!(text.contains("127.0.0.1"), "the address is logged");
    for guess in &guesses {
        assert!(!text.contains(guess.as_str()), "{guess} is in the log");
    }
}

#[tokio::test]
async fn a_page_retrying_a_dead_link_does_not_lock_out_its_address() {
    // A candidate's tab left open on a deleted interview (or a link re-issued) retries its
    // sockets with a token that no longer exists. Role tokens are beyond guessing, so those
    // 401s are logged but not counted: the interviewer on the same office address still gets in.
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    for _ in 0..100 {
        let response = get(
            &server,
            &format!("/api/interviews/{}", interview.id),
            Some("a-link-that-was-replaced-long-ago"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = get(
        &server,
        &format!("/api/interviews/{}", interview.id),
        Some(&interview.tokens.interviewer),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get(&server, "/api/interviews", Some(&server.admin_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_token_works_only_in_the_authorization_header() {
    let server = TestServer::start().await;
    let response = get(
        &server,
        &format!("/api/interviews?token={}", server.admin_token),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only as Authorization: Bearer"),
        "the refusal says where the token belongs: {body}"
    );
    let response = get(&server, "/api/interviews", Some(&server.admin_token)).await;
    assert_eq!(response.status(), StatusCode::OK, "the header still works");

    // Role tokens keep their query parameter: browsers cannot set headers on websockets.
    let interview = server.create_interview("Ada").await;
    let response = get(
        &server,
        &format!(
            "/api/interviews/{}?token={}",
            interview.id, interview.tokens.candidate
        ),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let client = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || client.synced()).await);
}

/// The seven kinds of sequence a player's terminal would act on, as a candidate's program
/// prints them, and how each must show in the recording.
const HOSTILE: [(&str, &str, &str); 7] = [
    (
        "clipboard write",
        "\u{1b}]52;c;cm0gLXJmIH4=\u{7}",
        "␛]52;c;cm0gLXJmIH4=␇",
    ),
    (
        "hyperlink",
        "\u{1b}]8;;https://example.invalid/\u{1b}\\click\u{1b}]8;;\u{1b}\\",
        "␛]8;;https://example.invalid/␛\\click␛]8;;␛\\",
    ),
    ("title change", "\u{1b}]2;pwned\u{7}", "␛]2;pwned␇"),
    ("title report", "\u{1b}[21t", "␛[21t"),
    (
        "device control string",
        "\u{1b}P+q544e\u{1b}\\",
        "␛P+q544e␛\\",
    ),
    ("screen clear", "\u{1b}[2J\u{1b}[3J\u{1b}c", "␛[2J␛[3J␛c"),
    ("concealed text", "\u{1b}[8mhidden", "hidden"),
];

#[tokio::test]
async fn recordings_neutralise_every_terminal_sequence_but_colour_and_cursor_movement() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let (id, tokens) = (interview.id.clone(), interview.tokens.clone());
    // The candidate's first line prints every kind, with colour and a cursor move around them.
    let first_line: String = HOSTILE.iter().map(|(_, raw, _)| *raw).collect::<String>()
        + "\u{1b}[32mgreen\u{1b}[0m\u{1b}[1A";
    let candidate = YClient::connect(&server.yjs_url(&id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    candidate.insert(0, &format!("{first_line}\n"));
    let stored = eventually(PATIENCE, || {
        server
            .state
            .store
            .read_log(&id, 0)
            .unwrap()
            .iter()
            .any(|r| r.kind == EventKind::Edit)
    })
    .await;
    assert!(stored, "the edit is stored");
    // It runs, and sends a clipboard write split across two writes on stdin.
    let run_id = start_run(&server, &id, &tokens.candidate).await;
    for data in ["\u{1b}]52;c;", "aGk=\u{7}\n", "exit\n"] {
        let response = reqwest::Client::new()
            .post(server.http(&format!("/api/interviews/{id}/runs/{run_id}/stdin")))
            .bearer_auth(&tokens.candidate)
            .json(&json!({ "data": data }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let finished = eventually(PATIENCE, || {
        server
            .state
            .store
            .read_log(&id, 0)
            .unwrap()
            .iter()
            .any(|r| r.kind == EventKind::RunFinished)
    })
    .await;
    assert!(finished, "the run finished");

    // The cast a reviewer downloads, and the one in the export, play safely.
    let response = get(
        &server,
        &format!("/api/interviews/{id}/runs/{run_id}/cast"),
        Some(&tokens.reviewer),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cast = response.text().await.unwrap();
    let (_dir, exported) = export_files(&server, &id, &tokens.reviewer).await;
    let exported_cast =
        std::fs::read_to_string(exported.join(format!("runs/{run_id}/output.cast"))).unwrap();
    for cast in [cast, exported_cast] {
        let played: String = cast
            .lines()
            .skip(1)
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()[2]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        for (kind, raw, shown) in HOSTILE {
            assert!(
                !played.contains(raw),
                "{kind} reaches the player: {played:?}"
            );
            assert!(
                played.contains(shown),
                "{kind} is shown as {shown:?}: {played:?}"
            );
        }
        assert!(!played.contains("\u{1b}[8m"), "no conceal at all");
        assert!(!played.contains("\u{1b}]") && !played.contains("\u{1b}P"));
        assert!(
            played.contains("␛]52;c;aGk=␇"),
            "a sequence split across writes is caught whole: {played:?}"
        );
        assert!(
            played.contains("\u{1b}[32mgreen\u{1b}[0m\u{1b}[1A"),
            "colour and cursor movement still play: {played:?}"
        );
    }
}

async fn start_run(server: &TestServer, id: &InterviewId, token: &str) -> String {
    let response = reqwest::Client::new()
        .post(server.http(&format!("/api/interviews/{id}/runs")))
        .bearer_auth(token)
        .json(&json!({"kind": "run"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["run_id"].as_str().unwrap().to_owned()
}

/// Downloads the export and unpacks it with the system's `tar`; the `duet-export` folder (in
/// the returned temporary folder).
async fn export_files(
    server: &TestServer,
    id: &InterviewId,
    token: &str,
) -> (tempfile::TempDir, PathBuf) {
    let response = get(server, &format!("/api/interviews/{id}/export"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let archive = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.tar"), &archive).unwrap();
    let untar = Command::new("tar")
        .args(["-xf", "export.tar"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        untar.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&untar.stderr)
    );
    let root = dir.path().join("duet-export");
    (dir, root)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Appends `record` to the interview's log as the room would have.
async fn append(server: &TestServer, id: &InterviewId, record: LogRecord) {
    server
        .state
        .store
        .append(id, record)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_export_keeps_a_long_file_name_whole() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    // A run whose id makes a path past the 255 bytes a plain tar header can hold (an older
    // server's, or a future format's).
    let run_id = format!("run-{}", "x".repeat(240));
    let at = now_ms();
    let started = RunStarted {
        run_id: run_id.clone(),
        kind: RunKind::Run,
        by: Role::Candidate,
        at,
        code: None,
        code_seq: 0,
        private: false,
        environment: "python".into(),
    };
    let finished = RunFinished {
        run_id: run_id.clone(),
        status: duet_protocol::RunStatus::Ok,
        limit: None,
        exit_code: Some(0),
        duration_ms: 5,
        tests: None,
        lint: None,
        at,
    };
    append(
        &server,
        &interview.id,
        LogRecord::new(1, at, Actor::Candidate, Record::RunStarted(started)),
    )
    .await;
    append(
        &server,
        &interview.id,
        LogRecord::new(2, at, Actor::Candidate, Record::RunFinished(finished)),
    )
    .await;
    let (_dir, root) = export_files(&server, &interview.id, &interview.tokens.reviewer).await;
    let run_dir = root.join("runs").join(&run_id);
    for file in ["main.py", "stdout", "stderr", "run.json", "output.cast"] {
        assert!(run_dir.join(file).is_file(), "{file} under its whole name");
    }
    let run: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["run"]["run_id"], run_id.as_str());
}

/// An interview whose export is larger than every buffer between the server and a client
/// that does not read (about 24 MiB of notes).
async fn large_interview(server: &TestServer) -> (InterviewId, PerRole) {
    let interview = server.create_interview("Ada").await;
    let at = now_ms();
    for seq in 1..=24u64 {
        let note = Note {
            text: "n".repeat(1 << 20),
            at,
            seq,
            person: None,
        };
        append(
            server,
            &interview.id,
            LogRecord::new(seq, at, Actor::Interviewer, Record::Note(note)),
        )
        .await;
    }
    (interview.id, interview.tokens)
}

#[tokio::test]
async fn exports_stream_and_are_bounded_per_token_and_per_server() {
    // The defaults: two exports at once on the server, one per token.
    let server = TestServer::start().await;
    let (first, first_tokens) = large_interview(&server).await;
    let second = server.create_interview("Alan").await;
    let export = |id: &InterviewId| server.http(&format!("/api/interviews/{id}/export"));
    let client = reqwest::Client::new();

    // A reviewer starts an export and reads nothing yet: it has begun (200) and is in flight.
    let held = client
        .get(export(&first))
        .bearer_auth(&first_tokens.reviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    // The same token asks again: 429, said plainly.
    let again = client
        .get(export(&first))
        .bearer_auth(&first_tokens.reviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers().contains_key("retry-after"));
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_exports");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("export(s) in progress"));
    // The interviewer's export takes the server's second slot; a third token finds none: 503.
    let interviewer = client
        .get(export(&first))
        .bearer_auth(&first_tokens.interviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(interviewer.status(), StatusCode::OK);
    let third = client
        .get(export(&second.id))
        .bearer_auth(&second.tokens.reviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = third.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("busy with other exports"));

    // The reviewer gives up on theirs: its slot comes back.
    drop(held);
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        let retry = client
            .get(export(&second.id))
            .bearer_auth(&second.tokens.reviewer)
            .send()
            .await
            .unwrap();
        status = retry.status();
        if status == StatusCode::OK {
            let archive = retry.bytes().await.unwrap();
            assert_eq!(&archive[257..262], b"ustar", "a tar archive");
            break;
        }
        tokio::time::sleep(PATIENCE / 100).await;
    }
    assert_eq!(status, StatusCode::OK, "a freed slot is taken again");
    // The interviewer's export, read to the end, is whole.
    let archive = interviewer.bytes().await.unwrap();
    assert!(archive.len() > 24 << 20, "{} bytes", archive.len());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.tar"), &archive).unwrap();
    let list = Command::new("tar")
        .args(["-tf", "export.tar"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("duet-export/log.jsonl"));
}

const ADMIN: &str = "nofile-test-admin-token-0123456789";

/// A server process, killed and waited for when the test ends, whether it passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `duet serve` under an open-file limit of `nofile` (soft and hard), on a free port; the
/// process, its address, and the lines it logs.
fn start_limited(data_dir: &std::path::Path, nofile: u32) -> (Killed, String, Arc<Mutex<String>>) {
    let child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(duet_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-pool",
            "0",
            // Silent connections are not closed for them during this test.
            "--http-header-timeout-secs",
            "3600",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("DUET_ADMIN_TOKEN", ADMIN)
        .env("DUET_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("prlimit (util-linux) is needed: {e}"));
    let mut child = Killed(child);
    let logged = Arc::new(Mutex::new(String::new()));
    let stderr = child.0.stderr.take().unwrap();
    let sink = logged.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let stdout = child.0.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("Duet listening on http://") {
            return (child, addr.trim().to_owned(), logged);
        }
    }
    panic!("the server exited before it listened");
}

#[tokio::test]
async fn a_server_under_a_low_open_file_limit_keeps_answering_while_silent_connections_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, logged) = start_limited(dir.path(), 256);
    // It says what cap the limit leaves: 256 less the reserve.
    let said = eventually(PATIENCE, || {
        plain(&logged.lock().unwrap()).contains("connections capped")
    })
    .await;
    let log = plain(&logged.lock().unwrap());
    assert!(said && log.contains("cap=128"), "the cap is logged:\n{log}");

    // Someone opens 300 connections (more than the 256 descriptors the server may have) and says nothing on any of them.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Health and the admin still answer, and the store can still write.
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("/healthz answers while 300 silent connections are open");
    assert_eq!(health.status(), StatusCode::OK);
    let created = client
        .post(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .json(&json!({"title": "under load", "candidate_name": "Ada"}))
        .send()
        .await
        .expect("the admin is answered");
    assert_eq!(created.status(), StatusCode::CREATED);
    let listed = client
        .get(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let log = plain(&logged.lock().unwrap());
    assert!(
        !log.contains("Too many open files"),
        "no descriptor ran out:\n{log}"
    );
    drop(silent);
}

/// A log without its colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut in_escape = false;
    for c in log.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (false, c) => out.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    out
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_is_told_503_at_once_and_websockets_count() {
    let server = TestServer::start_with(|a| a.http.max_connections = 3).await;
    let interview = server.create_interview("Ada").await;
    // Three people in the room hold the three connections (websockets keep their slot).
    let mut people = Vec::new();
    for token in [
        &interview.tokens.candidate,
        &interview.tokens.interviewer,
        &interview.tokens.reviewer,
    ] {
        let client = YClient::connect(&server.yjs_url(&interview.id, token))
            .await
            .unwrap();
        assert!(eventually(PATIENCE, || client.synced()).await);
        people.push(client);
    }
    // None of them is silent, so a fourth connection takes no one's place: a plain 503.
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let refused = client
        .get(server.http("/healthz"))
        .send()
        .await
        .expect("an answer, not a wait in the accept queue");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many open connections"));
    // One leaves: there is room again.
    people.pop().unwrap().abort();
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = match client.get(server.http("/healthz")).send().await {
            Ok(response) => response.status(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(PATIENCE / 100).await;
    }
    assert_eq!(status, StatusCode::OK, "a freed slot is used again");
}
