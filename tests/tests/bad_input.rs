//! Bad input on the websocket: the offender is closed with a clear code and reason, while the
//! room, its other participants, the server and everything stored carry on.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::close;
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use tokio_tungstenite::tungstenite::Message as Ws;

/// Candidate and interviewer share "kept"; then `attack` runs on a third, interviewer-token
/// connection, which must be closed with `code`. Afterwards the others still edit together.
async fn offender_is_closed_and_the_room_goes_on(
    server: &TestServer,
    code: u16,
    attack: impl FnOnce(&YClient),
) {
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let interviewer =
        YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    candidate.insert(0, "kept");
    assert!(eventually(PATIENCE, || interviewer.text() == "kept").await);

    let offender = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || offender.synced()).await);
    attack(&offender);
    assert!(
        eventually(PATIENCE, || offender.closed().is_some()).await,
        "the offender is closed"
    );
    let closed = offender.closed().unwrap();
    assert_eq!(closed.code, code, "close reason: {:?}", closed.reason);
    assert!(!closed.reason.is_empty(), "a reason a person can read");

    candidate.insert(4, "!");
    assert!(
        eventually(PATIENCE, || interviewer.text() == "kept!").await,
        "the room goes on"
    );
    assert!(candidate.closed().is_none() && interviewer.closed().is_none());
    let health = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    assert_eq!(
        duet_core::rebuild(None, log).unwrap().text(),
        "kept!",
        "nothing stored is lost"
    );
}

#[tokio::test]
async fn a_truncated_message_closes_the_sender_with_1007() {
    let server = TestServer::start().await;
    offender_is_closed_and_the_room_goes_on(&server, close::INVALID_PAYLOAD, |c| {
        c.send_raw(vec![0, 2, 40, 1, 2, 3])
    })
    .await;
}

#[tokio::test]
async fn a_malformed_update_closes_the_sender_with_1007() {
    let server = TestServer::start().await;
    offender_is_closed_and_the_room_goes_on(&server, close::INVALID_PAYLOAD, |c| {
        c.send_raw(vec![0, 2, 5, 9, 200, 200, 200, 200])
    })
    .await;
}

#[tokio::test]
async fn an_unknown_message_type_closes_the_sender_with_1003() {
    let server = TestServer::start().await;
    offender_is_closed_and_the_room_goes_on(&server, close::UNSUPPORTED, |c| {
        c.send_raw(vec![42, 0])
    })
    .await;
}

#[tokio::test]
async fn a_text_frame_closes_the_sender_with_1003() {
    let server = TestServer::start().await;
    offender_is_closed_and_the_room_goes_on(&server, close::UNSUPPORTED, |c| {
        c.send_frame(Ws::Text("hello".into()))
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_sender_with_1009() {
    let server = TestServer::start().await;
    offender_is_closed_and_the_room_goes_on(&server, close::TOO_BIG, |c| {
        c.send_raw(vec![0; (1 << 20) + 1])
    })
    .await;
}

#[tokio::test]
async fn a_flood_closes_the_sender_with_1008() {
    let server = TestServer::start_with(|args| args.ws.max_messages_per_sec = 200).await;
    offender_is_closed_and_the_room_goes_on(&server, close::POLICY, |c| {
        for _ in 0..20_000 {
            c.send_raw(vec![3]); // awareness queries: cheap, valid, and far too many
        }
    })
    .await;
}
