//! The whiteboard through the real server: an interview opened on a system-design prompt puts
//! its starter drawing on everyone's board; the candidate draws; the interviewer moves to a
//! coding question (the board stays, the editor gets the starter) and back (the board comes back
//! as it was left, also after a restart).
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::BOARD;
use duet_tests::{api, eventually, TestServer, YClient, PATIENCE};
use serde_json::json;
use std::collections::BTreeSet;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Map, Transact};

const DESIGN: &str = "design-rate-limited-api";

fn board_ids(client: &YClient) -> BTreeSet<String> {
    let board = client.doc.get_or_insert_map(BOARD);
    let txn = client.doc.transact();
    board.keys(&txn).map(str::to_owned).collect()
}

fn draw(client: &YClient, id: &str) {
    let board = client.doc.get_or_insert_map(BOARD);
    let update = {
        let mut txn = client.doc.transact_mut();
        let element = json!({"id": id, "type": "rectangle", "x": 500, "y": 300, "width": 160,
            "height": 60, "version": 1, "versionNonce": 3});
        board.insert(&mut txn, id, element.to_string());
        txn.encode_update_v1()
    };
    client.send_raw(Message::Sync(SyncMessage::Update(update)).encode_v1());
}

async fn switch(server: &TestServer, id: &str, token: &str, question: &str) -> serde_json::Value {
    let (status, body) = api(
        server,
        reqwest::Method::POST,
        &format!("/api/interviews/{id}/question"),
        token,
        Some(json!({ "question_id": question })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_design_prompt_opens_with_its_drawing_and_each_question_keeps_its_board() {
    let server = TestServer::start().await;
    let starter: BTreeSet<String> = server
        .state
        .questions
        .get(DESIGN)
        .unwrap()
        .board
        .iter()
        .map(|json| {
            serde_json::from_str::<serde_json::Value>(json).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        starter.len() >= 5,
        "the prompt ships a drawing: {starter:?}"
    );

    // The interview opens on the design prompt: the candidate's board holds its drawing.
    let interview = server.create_interview_on("Ada", DESIGN).await;
    let (id, tokens) = (&interview.id, &interview.tokens);
    let candidate = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    assert!(
        eventually(PATIENCE, || board_ids(&candidate) == starter).await,
        "the candidate sees the starter drawing: {:?}",
        board_ids(&candidate)
    );

    // The candidate adds a worker pool; the interviewer sees it.
    draw(&candidate, "workers");
    let interviewer = YClient::connect(&server.yjs_url(id, &tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || board_ids(&interviewer).contains("workers")).await);

    // A coding question: the editor gets its starter, the board stays as it is.
    switch(&server, &id.to_string(), &tokens.interviewer, "lru-cache").await;
    assert!(eventually(PATIENCE, || candidate.text().contains("class LRUCache")).await);
    let mut drawn = starter.clone();
    drawn.insert("workers".into());
    assert_eq!(board_ids(&candidate), drawn);

    // Another design prompt replaces the board with its own drawing.
    switch(
        &server,
        &id.to_string(),
        &tokens.interviewer,
        "design-read-heavy-cache",
    )
    .await;
    assert!(eventually(PATIENCE, || board_ids(&candidate).contains("catalogue")).await);
    assert!(!board_ids(&candidate).contains("workers"));

    // After a restart, switching back brings the first prompt's board back as it was left.
    drop((candidate, interviewer));
    let data = server.stop().await;
    let server = TestServer::start_in(data, |_| {}).await;
    let answer = switch(&server, &id.to_string(), &tokens.interviewer, DESIGN).await;
    assert_eq!(answer["restored"], true);
    let reviewer = YClient::connect(&server.yjs_url(id, &tokens.reviewer))
        .await
        .unwrap();
    assert!(
        eventually(PATIENCE, || board_ids(&reviewer) == drawn).await,
        "the board as it was left: {:?}",
        board_ids(&reviewer)
    );
}
