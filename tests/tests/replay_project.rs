//! Replay of a project and its board (issues 19 and 20) through the real server: every file
//! and the board at any moment, the timeline naming files and board bursts, the export holding
//! every file and the board, replayed by the stock yjs package.
//!
//! Story: the candidate types in main.py and creates shop/cart.py; the interviewer draws two
//! boxes; (a moment to come back to); the candidate renames the module, the interviewer erases
//! a box and writes a label whose text looks like markup. Afterwards a reviewer scrubs: the
//! snapshot at every seq is the document a full rebuild of the stored log gives, the moment
//! shows the old name and both boxes, the timeline says who did what to which file, and the
//! export replays to the same files and board in node.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{EventKind, BOARD, FILES};
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Any, Map, Transact};

async fn join(server: &TestServer, id: &duet_protocol::InterviewId, token: &str) -> YClient {
    let client = YClient::connect(&server.yjs_url(id, token)).await.unwrap();
    assert!(eventually(PATIENCE, || client.synced()).await);
    client
}

/// Sends one transaction of `client`'s document.
fn change(client: &YClient, f: impl FnOnce(&mut yrs::TransactionMut)) {
    client.doc.get_or_insert_map(BOARD);
    client.doc.get_or_insert_map(FILES);
    let update = {
        let mut txn = client.doc.transact_mut();
        f(&mut txn);
        txn.encode_update_v1()
    };
    client.send_raw(Message::Sync(SyncMessage::Update(update)).encode_v1());
}

fn draw(client: &YClient, element: Value) {
    let board = client.doc.get_or_insert_map(BOARD);
    let id = element["id"].as_str().unwrap().to_owned();
    change(client, |txn| {
        board.insert(txn, id, element.to_string());
    });
}

fn erase(client: &YClient, id: &str) {
    let board = client.doc.get_or_insert_map(BOARD);
    change(client, |txn| {
        board.remove(txn, id);
    });
}

fn rename(client: &YClient, from: &str, to: &str) {
    let files = client.doc.get_or_insert_map(FILES);
    let entry = |k: &str, v: Any| Any::from(std::collections::HashMap::from([(k.to_owned(), v)]));
    change(client, |txn| {
        files.insert(txn, to, entry("text", Any::from(from)));
        files.insert(txn, from, entry("deleted", Any::Bool(true)));
    });
}

/// The board's elements as a client holds them, sorted by id, as JSON values.
fn board_of(client: &YClient) -> Vec<Value> {
    let board = client.doc.get_or_insert_map(BOARD);
    let txn = client.doc.transact();
    let mut elements: Vec<(String, Value)> = board
        .iter(&txn)
        .map(|(id, v)| {
            (
                id.to_owned(),
                serde_json::from_str(&v.to_string(&txn)).unwrap(),
            )
        })
        .collect();
    elements.sort_by(|a, b| a.0.cmp(&b.0));
    elements.into_iter().map(|(_, v)| v).collect()
}

fn rect(id: &str, x: i64, text: Option<&str>) -> Value {
    match text {
        Some(text) => json!({"id": id, "type": "text", "x": x, "y": 10, "width": 80,
                             "height": 20, "text": text, "fontSize": 16, "version": 1}),
        None => json!({"id": id, "type": "rectangle", "x": x, "y": 10, "width": 80,
                       "height": 40, "strokeColor": "#1e1e1e", "version": 1}),
    }
}

async fn get(server: &TestServer, path: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.http(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_file_and_the_board_replay_at_every_moment_and_export_for_stock_yjs() {
    let server = TestServer::start_with(|a| a.rooms.checkpoint_every = 7).await;
    let interview = server.create_interview("Ada").await;
    let (id, tokens) = (interview.id, interview.tokens);
    let candidate = join(&server, &id, &tokens.candidate).await;
    let interviewer = join(&server, &id, &tokens.interviewer).await;
    let stored = |n: usize| {
        let log = server.state.store.read_log(&id, 0).unwrap();
        log.iter().filter(|r| r.kind == EventKind::Edit).count() >= n
    };

    // The candidate types in main.py and creates a module; the interviewer draws two boxes.
    candidate.insert(0, "import shop.cart\n");
    candidate.write_file("shop/cart.py", "class Cart:\n    pass\n");
    assert!(eventually(PATIENCE, || stored(2)).await);
    draw(&interviewer, rect("box-api", 0, None));
    draw(&interviewer, rect("box-db", 200, None));
    assert!(eventually(PATIENCE, || stored(4)).await);
    assert!(eventually(PATIENCE, || board_of(&candidate).len() == 2).await);
    let moment = server
        .state
        .store
        .read_log(&id, 0)
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let files_then = candidate.files();
    let board_then = board_of(&candidate);

    // The candidate renames the module; the interviewer erases a box and writes a label.
    rename(&candidate, "shop/cart.py", "shop/basket.py");
    assert!(eventually(PATIENCE, || stored(5)).await);
    erase(&interviewer, "box-db");
    draw(
        &interviewer,
        rect("label", 0, Some("<b>queue</b> & </text>")),
    );
    assert!(eventually(PATIENCE, || stored(7)).await);
    assert!(eventually(PATIENCE, || interviewer.files() == candidate.files()).await);
    assert!(eventually(PATIENCE, || board_of(&candidate).len() == 2).await);

    // The moment: the module under its old name beside main.py, and both boxes.
    let at = get(
        &server,
        &format!("/api/interviews/{id}/snapshot?seq={moment}"),
        &tokens.reviewer,
    )
    .await;
    let files: std::collections::BTreeMap<String, String> =
        serde_json::from_value(at["files"].clone()).unwrap();
    assert_eq!(files, files_then);
    assert!(files.contains_key("shop/cart.py"));
    assert_eq!(at["board"], Value::Array(board_then));

    // Every seq: the snapshot is what a full rebuild of the stored log holds there.
    let log = server.state.store.read_log(&id, 0).unwrap();
    for upto in 0..=log.len() {
        let rebuilt = duet_core::rebuild(None, log[..upto].to_vec()).unwrap();
        let want = duet_core::replay::doc_at(&rebuilt.doc);
        let got = get(
            &server,
            &format!("/api/interviews/{id}/snapshot?seq={upto}"),
            &tokens.reviewer,
        )
        .await;
        let want_files: std::collections::BTreeMap<String, String> =
            want.files.into_iter().collect();
        let got_files: std::collections::BTreeMap<String, String> =
            serde_json::from_value(got["files"].clone()).unwrap();
        assert_eq!(got_files, want_files, "files at seq {upto}");
        let want_board: Vec<Value> = want
            .board
            .iter()
            .map(|(_, json)| serde_json::from_str(json).unwrap())
            .collect();
        assert_eq!(
            got["board"],
            Value::Array(want_board),
            "board at seq {upto}"
        );
    }
    let end = get(
        &server,
        &format!("/api/interviews/{id}/snapshot?seq={}", log.len()),
        &tokens.reviewer,
    )
    .await;
    let live_files: std::collections::BTreeMap<String, String> =
        serde_json::from_value(end["files"].clone()).unwrap();
    assert_eq!(live_files, candidate.files());
    assert_eq!(end["board"], Value::Array(board_of(&candidate)));

    // The timeline: who typed in which file, who drew how many elements, the rename.
    let timeline = get(
        &server,
        &format!("/api/interviews/{id}/timeline"),
        &tokens.reviewer,
    )
    .await;
    let said: Vec<String> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "join")
        .map(|e| match e["type"].as_str().unwrap() {
            "edit" => format!("{} edit {}", e["by"], e["file"]),
            "board" => format!("{} board {} elements", e["by"], e["elements"]),
            "file.created" => format!("{} created {}", e["by"], e["path"]),
            "file.renamed" => format!("{} renamed {} to {}", e["by"], e["from"], e["to"]),
            other => format!("{} {other}", e["by"]),
        })
        .collect();
    assert_eq!(
        said,
        [
            r#""candidate" edit "main.py""#,
            r#""candidate" created "shop/cart.py""#,
            r#""candidate" edit "shop/cart.py""#,
            r#""interviewer" board 2 elements"#,
            r#""candidate" renamed "shop/cart.py" to "shop/basket.py""#,
            r#""interviewer" board 2 elements"#,
        ],
        "{timeline}"
    );

    // The export: every file, the board as elements and as a drawing; stock yjs agrees.
    let response = reqwest::Client::new()
        .get(server.http(&format!("/api/interviews/{id}/export")))
        .bearer_auth(&tokens.reviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let archive = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.tar"), &archive).unwrap();
    let untar = std::process::Command::new("tar")
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
    for (path, text) in candidate.files() {
        let kept = std::fs::read_to_string(root.join("files").join(&path)).unwrap();
        assert_eq!(kept, text, "files/{path}");
    }
    assert!(
        !root.join("files/shop/cart.py").exists(),
        "the old name is gone"
    );
    let board_json: Value =
        serde_json::from_slice(&std::fs::read(root.join("board.json")).unwrap()).unwrap();
    assert_eq!(board_json, Value::Array(board_of(&candidate)));
    let svg = std::fs::read_to_string(root.join("board.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(
        svg.matches("<rect").count(),
        2,
        "the background and box-api: {svg}"
    );
    assert!(
        svg.contains("&lt;b&gt;queue&lt;/b&gt; &amp; &lt;/text&gt;"),
        "{svg}"
    );
    assert!(!svg.contains("<b>"), "the label is text, never markup");

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
    assert_eq!(replayed["files"], json!(candidate.files()));
    assert_eq!(replayed["board"], Value::Array(board_of(&candidate)));
}
