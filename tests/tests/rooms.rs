//! Room lifecycle: rooms unload when idle and load again intact; a room whose stored state is
//! broken refuses connections instead of starting empty.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{close, EventKind, LogRecord};
use duet_tests::{eventually, TestServer, YClient, PATIENCE};

#[tokio::test]
async fn an_idle_room_unloads_and_reloads_with_its_text() {
    let server = TestServer::start_with(|args| {
        args.rooms.idle_secs = 1;
        args.rooms.checkpoint_every = 3;
    })
    .await;
    let interview = server.create_interview("Ada").await;
    let url = server.yjs_url(&interview.id, &interview.tokens.candidate);
    let first = YClient::connect(&url).await.unwrap();
    for (i, word) in ["class ", "LRU", "Cache", ":\n", "    pass\n"]
        .iter()
        .enumerate()
    {
        first.insert(if i == 0 { 0 } else { first.len() }, word);
    }
    let expected = "class LRUCache:\n    pass\n";
    // How many records that takes depends on timing (a client that typed before the server's
    // sync step 1 sends it all in its sync step 2): wait for the stored log to hold the text.
    let stored = || {
        duet_core::rebuild(None, server.state.store.read_log(&interview.id, 0).unwrap())
            .unwrap()
            .text()
    };
    assert!(eventually(PATIENCE, || stored() == expected).await);
    first.close().await;
    assert!(
        eventually(PATIENCE, || server.state.rooms.loaded() == 0).await,
        "the idle room unloads"
    );

    let history = server.state.store.load_history(&interview.id).unwrap();
    assert!(
        history.checkpoint.is_some(),
        "unloading leaves a checkpoint"
    );
    let again = YClient::connect(&url).await.unwrap();
    assert!(
        eventually(PATIENCE, || again.text() == expected).await,
        "reloaded text: {:?}",
        again.text()
    );
}

#[tokio::test]
async fn a_room_whose_log_is_corrupt_refuses_connections() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let garbage = LogRecord {
        seq: 1,
        at_ms: 1,
        kind: EventKind::Edit,
        by: duet_protocol::Actor::Candidate,
        data: vec![0xde, 0xad, 0xbe, 0xef],
    };
    server
        .state
        .store
        .append(&interview.id, garbage)
        .await
        .unwrap()
        .unwrap();

    let client = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || client.closed().is_some()).await);
    let closed = client.closed().unwrap();
    assert_eq!(closed.code, close::INTERNAL);
    assert!(
        closed.reason.contains("failed to load"),
        "{}",
        closed.reason
    );
    assert!(!client.synced(), "no empty document was offered");
    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    assert_eq!(log.len(), 1, "nothing was written over the broken history");
}

#[tokio::test]
async fn a_graceful_restart_keeps_the_document() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let client = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    client.insert(0, "print('still here')\n");
    // The join is logged first: wait for the edit itself to be stored.
    let stored = || {
        duet_core::rebuild(None, server.state.store.read_log(&interview.id, 0).unwrap())
            .unwrap()
            .text()
    };
    assert!(eventually(PATIENCE, || stored() == "print('still here')\n").await);
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |_| {}).await;
    let again = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || again.text() == "print('still here')\n").await);
}
