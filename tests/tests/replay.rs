//! Replay (issue 11): the timeline, snapshots at any moment, runs with their code and output,
//! and the export, read back from the room log a live session wrote.
//!
//! Story: a candidate and an interviewer type; the candidate runs the program; everyone's
//! edits and runs land in one log; afterwards a reviewer scrubs through it, after restarts and
//! after the room unloaded, and exports it for a stock yjs client to replay.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{
    Actor, EventKind, InterviewId, LogRecord, PerRole, Role, RunFinished, RunKind, RunStarted,
};
use duet_server::replay::ReplayCache;
use duet_tests::{eventually, FakeSandbox, TestServer, YClient, PATIENCE};
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

struct Session {
    server: TestServer,
    id: InterviewId,
    tokens: PerRole,
}

impl Session {
    async fn new(server: TestServer) -> Session {
        let interview = server.create_interview("Ada").await;
        Session {
            server,
            id: interview.id,
            tokens: interview.tokens,
        }
    }

    async fn join(&self, token: &str) -> YClient {
        let client = YClient::connect(&self.server.yjs_url(&self.id, token))
            .await
            .unwrap();
        assert!(eventually(PATIENCE, || client.synced()).await);
        client
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .get(
                self.server
                    .http(&format!("/api/interviews/{}{path}", self.id)),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path, &self.tokens.reviewer).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn snapshot_text(&self, query: &str) -> String {
        let body = self.ok(&format!("/snapshot?{query}")).await;
        body["files"]["main.py"].as_str().unwrap().to_owned()
    }

    fn edits_stored(&self) -> usize {
        self.log()
            .iter()
            .filter(|r| r.kind == EventKind::Edit)
            .count()
    }

    fn log(&self) -> Vec<LogRecord> {
        self.server.state.store.read_log(&self.id, 0).unwrap()
    }

    /// Waits until `n` edits are stored.
    async fn until_edits(&self, n: usize) {
        assert!(
            eventually(PATIENCE, || self.edits_stored() >= n).await,
            "{n} edits stored"
        );
    }

    async fn run(&self, token: &str) -> String {
        let response = reqwest::Client::new()
            .post(
                self.server
                    .http(&format!("/api/interviews/{}/runs", self.id)),
            )
            .bearer_auth(token)
            .json(&json!({"kind": "run"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        let run_id = body["run_id"].as_str().unwrap().to_owned();
        // The fake sandbox's program ends when it reads "exit".
        let response = reqwest::Client::new()
            .post(
                self.server
                    .http(&format!("/api/interviews/{}/runs/{run_id}/stdin", self.id)),
            )
            .bearer_auth(token)
            .json(&json!({"data": "exit\n"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        run_id
    }

    /// The seq of the `n`th stored edit (from 1).
    fn edit_seq(&self, n: usize) -> u64 {
        self.log()
            .iter()
            .filter(|r| r.kind == EventKind::Edit)
            .nth(n - 1)
            .unwrap()
            .seq
    }

    async fn until_finished(&self, run_id: &str) {
        let finished = eventually(PATIENCE, || {
            self.log().iter().any(|r| {
                r.kind == EventKind::RunFinished
                    && serde_json::from_slice::<RunFinished>(&r.data)
                        .is_ok_and(|f| f.run_id == run_id)
            })
        })
        .await;
        assert!(finished, "run {run_id} finished");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Two people type random edits into the session, waiting for each to be stored.
async fn type_randomly(s: &Session, a: &YClient, b: &YClient, edits: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..edits {
        let who = if rng.gen_bool(0.6) { a } else { b };
        assert!(eventually(PATIENCE, || a.text() == b.text()).await);
        let len = who.len();
        if len > 0 && rng.gen_bool(0.3) {
            who.delete(rng.gen_range(0..len), 1);
        } else {
            let c = ["a", "b", "\n", " ", "é", "🐍"][rng.gen_range(0..6)];
            who.insert(rng.gen_range(0..=len), c);
        }
        s.until_edits(i + 1).await;
    }
    assert!(eventually(PATIENCE, || a.text() == b.text()).await);
}

#[tokio::test]
async fn replay_of_the_whole_log_reproduces_the_live_final_text() {
    let s = Session::new(TestServer::start_with(|a| a.rooms.checkpoint_every = 7).await).await;
    let (cand, int) = (
        s.join(&s.tokens.candidate).await,
        s.join(&s.tokens.interviewer).await,
    );
    type_randomly(&s, &cand, &int, 60, 1).await;
    let live = cand.text();
    assert!(!live.is_empty());
    let last = s.log().last().unwrap().seq;
    assert_eq!(s.snapshot_text(&format!("seq={last}")).await, live);
    assert_eq!(
        s.snapshot_text(&format!("at={}", now_ms() + 60_000)).await,
        live,
        "after the end: the final text"
    );
    let timeline = s.ok("/timeline").await;
    assert_eq!(timeline["last_seq"], last);
    let edits: u64 = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "edit")
        .map(|e| e["edits"].as_u64().unwrap())
        .sum();
    assert_eq!(edits, 60, "every edit is in exactly one burst");
}

#[tokio::test]
async fn the_snapshot_at_each_recorded_moment_equals_what_the_client_saw() {
    let s = Session::new(TestServer::start_with(|a| a.rooms.checkpoint_every = 5).await).await;
    let cand = s.join(&s.tokens.candidate).await;
    let mut rng = StdRng::seed_from_u64(2);
    let mut seen: Vec<(i64, String)> = vec![(now_ms(), String::new())];
    for i in 0..40 {
        // A new edit starts in a later millisecond than the last recorded moment.
        let last = seen.last().unwrap().0;
        while now_ms() <= last {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let len = cand.len();
        if len > 2 && rng.gen_bool(0.3) {
            cand.delete(rng.gen_range(0..len - 1), 2);
        } else {
            cand.insert(rng.gen_range(0..=len), "xy");
        }
        s.until_edits(i + 1).await;
        seen.push((now_ms(), cand.text()));
        if i % 7 == 3 {
            // A reviewer following live: the replay index grows with the log.
            let (at, text) = seen.last().unwrap();
            assert_eq!(
                &s.snapshot_text(&format!("at={at}")).await,
                text,
                "live, edit {i}"
            );
        }
    }
    // Scrub in a shuffled order so the cache serves both directions.
    let mut order: Vec<usize> = (0..seen.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    for i in order {
        let (at, text) = &seen[i];
        assert_eq!(
            &s.snapshot_text(&format!("at={at}")).await,
            text,
            "moment {i} at {at}"
        );
    }
}

#[tokio::test]
async fn replay_works_after_a_restart_and_after_the_room_unloaded() {
    let s = Session::new(
        TestServer::start_with(|a| {
            a.rooms.idle_secs = 1;
            a.rooms.checkpoint_every = 4;
        })
        .await,
    )
    .await;
    let cand = s.join(&s.tokens.candidate).await;
    for (i, word) in ["def ", "f():", "\n  ", "return 1", "\n"]
        .iter()
        .enumerate()
    {
        cand.insert(cand.len(), word);
        s.until_edits(i + 1).await;
    }
    let text = cand.text();
    cand.close().await;
    assert!(
        eventually(PATIENCE, || s.server.state.rooms.loaded() == 0).await,
        "the idle room unloads"
    );
    let last = s.log().last().unwrap().seq;
    assert_eq!(
        s.snapshot_text(&format!("seq={last}")).await,
        text,
        "after unloading"
    );
    assert_eq!(
        s.snapshot_text(&format!("seq={}", s.edit_seq(1))).await,
        "def "
    );

    let Session { server, id, tokens } = s;
    let dir = server.stop().await;
    let s = Session {
        server: TestServer::start_in(dir, |_| {}).await,
        id,
        tokens,
    };
    assert_eq!(s.server.state.rooms.loaded(), 0, "nothing loaded the room");
    assert_eq!(
        s.snapshot_text(&format!("seq={last}")).await,
        text,
        "after a restart"
    );
    assert_eq!(
        s.snapshot_text(&format!("seq={}", s.edit_seq(2))).await,
        "def f():"
    );
}

#[tokio::test]
async fn runs_sit_on_the_timeline_between_the_edits_around_them_and_run_the_snapshot_at_code_seq() {
    let sandbox = FakeSandbox::new();
    let server =
        TestServer::start_full(tempfile::tempdir().unwrap(), sandbox.clone(), |_| {}).await;
    let s = Session::new(server).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "print(1)\n");
    s.until_edits(1).await;
    let first = s.run(&s.tokens.candidate).await;
    s.until_finished(&first).await;
    cand.insert(cand.len(), "print(2)\n");
    s.until_edits(2).await;
    let second = s.run(&s.tokens.interviewer).await;
    s.until_finished(&second).await;
    cand.insert(0, "# done\n");
    s.until_edits(3).await;

    let timeline = s.ok("/timeline").await;
    let shape: Vec<String> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "join" && e["type"] != "leave")
        .map(|e| match e["type"].as_str().unwrap() {
            "edit" => "edit".to_owned(),
            t => format!("{t} {}", e["run_id"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "edit".to_owned(),
            format!("run.started {first}"),
            format!("run.finished {first}"),
            "edit".to_owned(),
            format!("run.started {second}"),
            format!("run.finished {second}"),
            "edit".to_owned(),
        ]
    );
    let events = timeline["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in seq order: {seqs:?}"
    );
    let finished = events.iter().find(|e| e["type"] == "run.finished").unwrap();
    assert_eq!(
        (finished["status"].as_str(), finished["by"].as_str()),
        (Some("ok"), Some("candidate"))
    );

    let ran: Vec<String> = sandbox
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.files["main.py"].clone())
        .collect();
    for (run_id, code) in [(&first, &ran[0]), (&second, &ran[1])] {
        let run = s.ok(&format!("/runs/{run_id}")).await;
        assert_eq!(&run["code"], code, "the code shown is the code that ran");
        let code_seq = run["code_seq"].as_u64().unwrap();
        assert_eq!(&s.snapshot_text(&format!("seq={code_seq}")).await, code);
        assert!(run["stdout"]
            .as_str()
            .unwrap()
            .starts_with("started print(1)"));
    }
    // The code is stored once, in the document, not again in the run's record.
    let started: Vec<RunStarted> = s
        .log()
        .iter()
        .filter(|r| r.kind == EventKind::RunStarted)
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect();
    assert!(started.iter().all(|r| r.code.is_none()));
    // Followers of a live session ask only for what is new.
    let after = s.ok(&format!("/timeline?after={}", events[3]["seq"])).await;
    assert_eq!(after["events"].as_array().unwrap().len(), events.len() - 4);
    assert_eq!(after["events"][1]["type"], "run.started");
}

#[tokio::test]
async fn run_output_is_stored_as_raw_bytes_and_its_cast_plays_it() {
    let s = Session::new(TestServer::start().await).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "print('hi')\n");
    s.until_edits(1).await;
    let run = s.run(&s.tokens.candidate).await;
    s.until_finished(&run).await;
    let mut stored = Vec::new();
    for record in s.log().iter().filter(|r| r.kind == EventKind::RunOutput) {
        let (header, bytes) = record
            .data
            .split_at(record.data.iter().position(|b| *b == b'\n').unwrap());
        let header: Value = serde_json::from_slice(header).unwrap();
        assert_eq!(header["run_id"], run.as_str());
        assert_eq!(header["pieces"][0][0], 0);
        stored.push((
            header["stream"].as_str().unwrap().to_owned(),
            bytes[1..].to_vec(),
        ));
    }
    let stdout: Vec<u8> = stored
        .iter()
        .filter(|(s, _)| s == "stdout")
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        stdout, b"started print('hi')\nexit\n",
        "raw bytes, not escaped JSON text"
    );

    let response = reqwest::Client::new()
        .get(
            s.server
                .http(&format!("/api/interviews/{}/runs/{run}/cast", s.id)),
        )
        .bearer_auth(&s.tokens.candidate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cast = response.text().await.unwrap();
    let lines: Vec<Value> = cast
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["version"], 2);
    let played: String = lines[1..].iter().map(|l| l[2].as_str().unwrap()).collect();
    assert!(played.contains("started print('hi')\r\n"), "{played:?}");
    assert!(
        played.contains("\u{1b}[31ma warning\r\n\u{1b}[0m"),
        "stderr in red: {played:?}"
    );
    let times: Vec<f64> = lines[1..].iter().map(|l| l[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && times[0] >= 0.0);
}

#[tokio::test]
async fn the_candidate_gets_403_on_replay_and_404_on_a_private_run() {
    let s = Session::new(TestServer::start().await).await;
    // A private run (hidden tests) in the log, written as the room would.
    let at = now_ms();
    let started = RunStarted {
        run_id: "hidden-tests-run".into(),
        kind: RunKind::Test,
        by: Role::Interviewer,
        at,
        code: None,
        code_seq: 0,
        private: true,
        environment: "python".into(),
    };
    let finished = RunFinished {
        run_id: "hidden-tests-run".into(),
        status: duet_protocol::RunStatus::Ok,
        limit: None,
        exit_code: Some(0),
        duration_ms: 5,
        tests: None,
        lint: None,
        at,
    };
    for (seq, kind, data) in [
        (
            1,
            EventKind::RunStarted,
            serde_json::to_vec(&started).unwrap(),
        ),
        (
            2,
            EventKind::RunFinished,
            serde_json::to_vec(&finished).unwrap(),
        ),
    ] {
        let record = LogRecord {
            seq,
            at_ms: at,
            kind,
            by: Actor::Interviewer,
            data,
        };
        s.server
            .state
            .store
            .append(&s.id, record)
            .await
            .unwrap()
            .unwrap();
    }
    for path in ["/timeline", "/snapshot?seq=0", "/export"] {
        let (status, body) = s.get(path, &s.tokens.candidate).await;
        assert_eq!((path, status), (path, StatusCode::FORBIDDEN), "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    for path in ["/runs/hidden-tests-run", "/runs/hidden-tests-run/cast"] {
        let (status, _) = s.get(path, &s.tokens.candidate).await;
        assert_eq!((path, status), (path, StatusCode::NOT_FOUND));
        let (status, _) = s.get(path, &s.tokens.reviewer).await;
        assert_eq!((path, status), (path, StatusCode::OK));
    }
    let (_, page) = s.get("/runs", &s.tokens.candidate).await;
    assert_eq!(page["runs"], json!([]), "missing from the candidate's list");
    let (_, page) = s.get("/runs", &s.tokens.interviewer).await;
    assert_eq!(page["runs"][0]["run_id"], "hidden-tests-run");
    let (status, _) = s.get("/timeline", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_replay_input_is_400_with_a_clear_message() {
    let s = Session::new(TestServer::start().await).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "x");
    s.until_edits(1).await;
    for (query, says) in [
        ("/snapshot?seq=99", "unknown seq 99"),
        ("/snapshot?seq=1&at=5", "not both"),
        ("/snapshot", "give at"),
        ("/snapshot?at=yesterday", "at must be"),
        ("/snapshot?seq=-1", "seq must be"),
        ("/snapshot?seq=1&seq=1", "given twice"),
        ("/snapshot?sek=1", "unknown parameter"),
        ("/timeline?after=abc", "after must be"),
        ("/runs?limit=0", "limit must be"),
        ("/runs?after=no-such-run", "after must be"),
    ] {
        let (status, body) = s.get(query, &s.tokens.reviewer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[tokio::test]
async fn times_before_the_start_or_after_the_end_clamp_to_the_ends() {
    let s = Session::new(TestServer::start().await).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "abc");
    s.until_edits(1).await;
    let timeline = s.ok("/timeline").await;
    let (start, end) = (
        timeline["started_at"].as_i64().unwrap(),
        timeline["ended_at"].as_i64().unwrap(),
    );
    assert!(start <= end);
    let before = s.ok("/snapshot?at=0").await;
    assert_eq!(
        (before["seq"].as_u64(), before["at"].as_i64()),
        (Some(0), Some(start))
    );
    assert_eq!(before["files"]["main.py"], "");
    let after = s.ok(&format!("/snapshot?at={}", i64::MAX)).await;
    assert_eq!(after["at"].as_i64(), Some(end));
    assert_eq!(after["files"]["main.py"], "abc");
}

#[tokio::test]
async fn an_export_replays_with_the_stock_yjs_package_in_node() {
    let s = Session::new(TestServer::start_with(|a| a.rooms.checkpoint_every = 10).await).await;
    let (cand, int) = (
        s.join(&s.tokens.candidate).await,
        s.join(&s.tokens.interviewer).await,
    );
    type_randomly(&s, &cand, &int, 30, 3).await;
    let run = s.run(&s.tokens.candidate).await;
    s.until_finished(&run).await;
    let live = cand.text();

    let response = reqwest::Client::new()
        .get(s.server.http(&format!("/api/interviews/{}/export", s.id)))
        .bearer_auth(&s.tokens.reviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let archive = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.tar"), &archive).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg("export.tar")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        untar.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&untar.stderr)
    );
    let root = dir.path().join("duet-export");
    for file in [
        "README.md",
        "interview.json",
        "log.jsonl",
        "timeline.json",
        "main.py",
        "runs/index.json",
    ] {
        assert!(root.join(file).is_file(), "{file} in the archive");
    }
    assert_eq!(std::fs::read_to_string(root.join("main.py")).unwrap(), live);
    let code = std::fs::read_to_string(root.join(format!("runs/{run}/main.py"))).unwrap();
    assert_eq!(code, live, "the run's code");
    assert!(root.join(format!("runs/{run}/output.cast")).is_file());

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/replay-export.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(&root)
        .output()
        .unwrap_or_else(|e| panic!("node is needed to replay the export with stock yjs: {e}"));
    assert!(
        out.status.success(),
        "replay-export.mjs failed (run `cd tests/js && npm ci`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replayed["files"]["main.py"], live);
}

#[tokio::test]
async fn runs_are_listed_light_and_in_pages() {
    let s = Session::new(TestServer::start_with(|a| a.sandbox.runs_per_minute = 100).await).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "print(1)\n");
    s.until_edits(1).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = s.run(&s.tokens.candidate).await;
        s.until_finished(&id).await;
        ids.push(id);
    }
    let mut seen = Vec::new();
    let mut path = "/runs?limit=2".to_owned();
    loop {
        let page = s.ok(&path).await;
        for run in page["runs"].as_array().unwrap() {
            assert!(run.get("code").is_none() && run.get("stdout").is_none());
            seen.push(run["run_id"].as_str().unwrap().to_owned());
        }
        // The cursor is the id of the page's last run.
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), seen.last().map(String::as_str));
                path = format!("/runs?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let all = s.ok("/runs").await;
    let third_seq = all["runs"][2]["seq"]
        .as_u64()
        .expect("staff see each run's seq");
    let by_seq = s.ok(&format!("/runs?after={third_seq}")).await;
    let rest: Vec<&str> = by_seq["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        [ids[3].as_str(), ids[4].as_str()],
        "the interviewer and reviewers may still give a seq as after="
    );
}

#[tokio::test]
async fn the_output_cap_keeps_exactly_the_cap_of_what_the_program_wrote_and_ends_as_output_limit() {
    let s = Session::new(TestServer::start_with(|a| a.sandbox.output_bytes = 1024).await).await;
    let cand = s.join(&s.tokens.candidate).await;
    cand.insert(0, "print(1)\n");
    s.until_edits(1).await;
    let response = reqwest::Client::new()
        .post(s.server.http(&format!("/api/interviews/{}/runs", s.id)))
        .bearer_auth(&s.tokens.candidate)
        .json(&json!({"kind": "run"}))
        .send()
        .await
        .unwrap();
    let run_id = response.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The fake program echoes its input: 3 x 600 bytes of output, over the 1024-byte cap.
    for _ in 0..3 {
        let _ = reqwest::Client::new()
            .post(
                s.server
                    .http(&format!("/api/interviews/{}/runs/{run_id}/stdin", s.id)),
            )
            .bearer_auth(&s.tokens.candidate)
            .json(&json!({"data": "z".repeat(600)}))
            .send()
            .await
            .unwrap();
    }
    s.until_finished(&run_id).await;
    let log = s.log();
    // The cap counts the program's bytes (issue 16, finding 6): exactly the cap is kept,
    // whatever the records' headers add.
    let kept: usize = log
        .iter()
        .filter_map(|r| match r.decode() {
            Ok(duet_protocol::Record::RunOutput(chunk)) => Some(chunk.bytes.len()),
            _ => None,
        })
        .sum();
    assert_eq!(kept, 1024, "exactly the cap of output is kept");
    let finished: RunFinished = log
        .iter()
        .rev()
        .find_map(|r| match r.decode() {
            Ok(duet_protocol::Record::RunFinished(f)) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(finished.status, duet_protocol::RunStatus::OutputLimit);
    assert_eq!(
        finished.limit,
        Some(duet_protocol::RunLimit::Output { bytes: 1024 })
    );
}

/// Writes `edits` single-character edits (a fifth of them deletes, at random places) into the
/// interview's log, as the room writes them. Returns the text after each seq.
async fn random_typing(server: &TestServer, id: &InterviewId, edits: u64) -> Vec<String> {
    use yrs::{GetString, Text, Transact};
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text(duet_protocol::MAIN_FILE);
    let mut texts = vec![String::new()];
    let mut rng = StdRng::seed_from_u64(8);
    let at = now_ms();
    let mut last = None;
    for seq in 1..=edits {
        let update = {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            if len > 0 && rng.gen_bool(0.2) {
                text.remove_range(&mut txn, rng.gen_range(0..len), 1);
            } else {
                text.insert(&mut txn, rng.gen_range(0..=len), "q");
            }
            txn.encode_update_v1()
        };
        texts.push(text.get_string(&doc.transact()));
        let record = LogRecord {
            seq,
            at_ms: at + seq as i64,
            kind: EventKind::Edit,
            by: Actor::Candidate,
            data: update,
        };
        last = Some(server.state.store.append(id, record));
    }
    last.unwrap().await.unwrap().unwrap();
    texts
}

#[tokio::test]
async fn the_first_snapshot_after_a_restart_builds_the_text_index_and_answers_from_it() {
    // Issue 16, finding 13: after a restart, a long log's text index took seconds to build on
    // a thread of its own (each edit walked the whole text), and until then every snapshot
    // was rebuilt from a checkpoint. Building now costs a few microseconds an edit, so the
    // first snapshot builds the whole index and answers from it.
    let s = Session::new(TestServer::start().await).await;
    let texts = random_typing(&s.server, &s.id, 3_000).await;
    let Session { server, id, tokens } = s;
    let dir = server.stop().await;
    let s = Session {
        server: TestServer::start_in(dir, |_| {}).await,
        id,
        tokens,
    };
    let replay = s.server.state.replay.clone();
    assert_eq!(
        replay.indexed_seq(&s.id),
        0,
        "a restart starts with no index"
    );
    assert_eq!(s.snapshot_text("seq=1500").await, texts[1_500]);
    assert_eq!(
        replay.indexed_seq(&s.id),
        3_000,
        "the first snapshot built the index to the end of the log before answering"
    );
    for seq in [1u64, 2, 511, 512, 513, 2_047, 2_048, 2_999, 3_000] {
        assert_eq!(
            s.snapshot_text(&format!("seq={seq}")).await,
            texts[seq as usize],
            "seq {seq}"
        );
    }
}

#[tokio::test]
async fn a_log_too_long_to_index_inside_a_request_answers_the_same_before_and_after_its_index_is_built(
) {
    // A cache that builds at most 100 records inside a request: a 1,200-edit log is indexed on
    // a thread of its own, and answered from checkpoints (rebuilt documents) meanwhile.
    let s = Session::new(TestServer::start().await).await;
    let texts = random_typing(&s.server, &s.id, 1_200).await;
    let store = s.server.state.store.clone();
    let replay = Arc::new(ReplayCache::with_inline_build(32 << 20, 100));
    let answer = |seq: u64| {
        let (store, replay, id) = (store.clone(), replay.clone(), s.id.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let moments = replay.moments(&*store, &id).unwrap();
                replay.text_at(&store, &id, &moments, seq).unwrap()
            })
            .await
            .unwrap()
        }
    };
    let probes = [1u64, 2, 511, 512, 513, 900, 1_199, 1_200];
    for seq in probes {
        assert_eq!(answer(seq).await, texts[seq as usize], "seq {seq}");
    }
    assert!(
        eventually(PATIENCE, || replay.indexed_seq(&s.id) >= 1_200).await,
        "the text index is built in the background"
    );
    for seq in probes {
        assert_eq!(answer(seq).await, texts[seq as usize], "indexed, seq {seq}");
    }
}

/// Writes `pairs` paste-and-delete pairs of `paste` bytes into the interview's log, as a
/// candidate pasting a block and deleting it again would: `main.py` stays small while every
/// paste is one more step a text index would have to keep. Returns the text after each seq.
async fn paste_and_delete(
    server: &TestServer,
    id: &InterviewId,
    pairs: usize,
    paste: usize,
) -> Vec<String> {
    use yrs::{GetString, Text, Transact};
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text(duet_protocol::MAIN_FILE);
    let block: String = "x = 1  # pasted\n".repeat(paste / 16);
    let mut texts = vec![String::new()];
    let at = now_ms();
    let mut last = None;
    for seq in 1..=(2 * pairs) as u64 {
        let update = {
            let mut txn = doc.transact_mut();
            if seq % 2 == 1 {
                text.insert(&mut txn, 0, &block);
            } else {
                text.remove_range(&mut txn, 0, block.len() as u32);
            }
            txn.encode_update_v1()
        };
        texts.push(text.get_string(&doc.transact()));
        let record = LogRecord {
            seq,
            at_ms: at + seq as i64,
            kind: EventKind::Edit,
            by: Actor::Candidate,
            data: update,
        };
        last = Some(server.state.store.append(id, record));
    }
    last.unwrap().await.unwrap().unwrap();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_scrubbing_interviews_over_the_replay_budget_always_get_an_answer() {
    // Issue 16, finding 1: the replay cache deadlocked once its indexes passed the budget (a
    // thread holding an interview's index evicted under the cache's lock, which locked that
    // index again), and from then on replay, then the whole API, hung.
    let server = TestServer::start_with(|args| args.replay_cache_mib = 1).await;
    let budget = 1 << 20;
    let mut interviews = Vec::new();
    let mut texts = Vec::new();
    for _ in 0..3 {
        let interview = server.create_interview("Ada").await;
        texts.push(paste_and_delete(&server, &interview.id, 100, 8 * 1024).await);
        interviews.push(interview);
    }
    let client = reqwest::Client::new();
    let mut reviewers = tokio::task::JoinSet::new();
    for reviewer in 0..4u64 {
        let client = client.clone();
        let targets: Vec<(String, String, Vec<String>)> = interviews
            .iter()
            .zip(&texts)
            .map(|(i, t)| {
                (
                    server.http(&format!("/api/interviews/{}", i.id)),
                    i.tokens.reviewer.clone(),
                    t.clone(),
                )
            })
            .collect();
        reviewers.spawn(async move {
            let mut rng = StdRng::seed_from_u64(reviewer);
            for _ in 0..40 {
                let (base, token, texts) = &targets[rng.gen_range(0..targets.len())];
                let seq = rng.gen_range(1..texts.len());
                let body: Value = client
                    .get(format!("{base}/snapshot?seq={seq}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(body["files"]["main.py"], texts[seq], "seq {seq}");
                let timeline = client
                    .get(format!("{base}/timeline"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(timeline.status(), StatusCode::OK);
            }
        });
    }
    let all = async {
        while let Some(done) = reviewers.join_next().await {
            done.unwrap();
        }
    };
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(120), all)
            .await
            .is_ok(),
        "every replay request answers: the replay cache must never hang"
    );
    let health = client.get(server.http("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the API still answers");
    assert!(
        server.state.replay.bytes() <= budget,
        "the cache holds {} bytes, over its budget of {budget}",
        server.state.replay.bytes()
    );
}
