//! The room's protocol rules, driven without any runtime: simulated yrs clients exchange
//! messages through `Room`, and every effect is carried out by hand.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_core::{
    collect_output, rebuild, run_index, unfinished_runs, Audience, CheckpointRef, ConnId, Effect,
    ReplySlots, Room, RoomConfig,
};
use duet_protocol::{
    close, Actor, EventKind, Identity, LogRecord, OutputChunk, Role, RunFinished, RunKind,
    RunStarted, ScorecardUpdate, Stream, MAIN_FILE,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update};

mod common;
use common::scene::Scene;

impl Scene {
    /// `conn` types `chunk` at `index` (UTF-16) of its main file and sends the update.
    fn type_at(&mut self, conn: ConnId, index: u32, chunk: &str) {
        let update = {
            let doc = &self.people[&conn];
            let text = doc.get_or_insert_text(MAIN_FILE);
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, index, chunk);
            txn.encode_update_v1()
        };
        self.send_update(conn, update);
    }

    /// The main file as the room has it.
    fn room_text(&mut self) -> String {
        self.room.text()
    }
}

fn awareness(client_id: u64, clock: u32, json: &str) -> Vec<u8> {
    let mut clients = HashMap::new();
    clients.insert(
        yrs::block::ClientID::new(client_id),
        AwarenessUpdateEntry {
            clock,
            json: json.into(),
        },
    );
    Message::Awareness(AwarenessUpdate { clients }).encode_v1()
}

#[test]
fn two_editors_converge_and_a_late_joiner_gets_everything() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.type_at(1, 0, "def add(a, b):\n");
    h.type_at(2, 0, "# interview\n");
    h.type_at(1, 26, "    return a + b\n");
    assert_eq!(h.text_of(1), h.text_of(2));
    assert_eq!(h.text_of(1), h.room_text());

    h.join(3, Role::Reviewer);
    assert_eq!(
        h.text_of(3),
        h.room_text(),
        "the late joiner receives the whole document"
    );
}

#[test]
fn reviewer_edits_are_dropped_and_its_connection_stays_open() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.type_at(1, 0, "print(1)");
    h.join(2, Role::Reviewer);
    let before = h.log.len();
    h.type_at(2, 0, "import os; ");
    assert_eq!(h.room_text(), "print(1)");
    assert_eq!(h.text_of(1), "print(1)");
    assert_eq!(h.log.len(), before, "nothing of the reviewer's is stored");
    assert!(h.closed.is_empty());
    assert_eq!(h.room.connections(), 2);
}

#[test]
fn every_edit_is_persisted_before_it_is_broadcast() {
    let mut room = Room::new(RoomConfig::default());
    room.join(
        1,
        Role::Candidate,
        Identity::for_role(Role::Candidate, "Ada"),
        ReplySlots::default(),
        1,
    );
    room.join(
        2,
        Role::Interviewer,
        Identity::for_role(Role::Interviewer, "Ada"),
        ReplySlots::default(),
        2,
    );
    let doc = Doc::new();
    let text = doc.get_or_insert_text(MAIN_FILE);
    let update = {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "x");
        txn.encode_update_v1()
    };
    let effects = room.receive(
        1,
        &Message::Sync(SyncMessage::Update(update.clone())).encode_v1(),
        3,
    );
    assert!(
        matches!(&effects[0], Effect::Persist(r) if r.kind == EventKind::Edit && r.data == update && r.by == Actor::Candidate && r.seq == 3 && r.at_ms == 3)
    );
    assert!(matches!(
        &effects[1],
        Effect::Broadcast {
            except: Some(1),
            ..
        }
    ));
    assert_eq!(effects.len(), 2);
}

#[test]
fn awareness_identity_is_stamped_by_the_server() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.send_raw(
        1,
        awareness(
            111,
            1,
            r#"{"user":{"name":"Mallory","role":"interviewer"},"cursor":{"anchor":3}}"#,
        ),
    );
    let seen: serde_json::Value = serde_json::from_str(&h.awareness[&2][&111]).expect("json");
    assert_eq!(seen["user"]["name"], "Ada");
    assert_eq!(seen["user"]["role"], "candidate");
    assert_eq!(
        seen["cursor"]["anchor"], 3,
        "the client's own fields are kept"
    );
}

#[test]
fn a_connection_cannot_speak_for_another_connections_awareness_id() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.join(3, Role::Reviewer);
    h.send_raw(1, awareness(111, 1, r#"{"cursor":1}"#));
    h.send_raw(2, awareness(111, 5, r#"{"cursor":99}"#));
    let seen: serde_json::Value = serde_json::from_str(&h.awareness[&3][&111]).expect("json");
    assert_eq!(seen["cursor"], 1);
    assert_eq!(seen["user"]["role"], "candidate");
}

#[test]
fn leaving_removes_presence_and_is_logged() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.send_raw(1, awareness(111, 1, r#"{"cursor":1}"#));
    h.leave(1);
    assert_eq!(h.awareness[&2][&111], "null");
    assert!(
        h.log.iter().all(|r| r.kind != EventKind::Leave),
        "the leave waits out its grace"
    );
    let deadline = h.room.next_deadline().expect("a leave is pending");
    let effects = h.room.tick(deadline);
    h.carry_out(effects);
    let kinds: Vec<_> = h.log.iter().map(|r| (r.kind, r.by)).collect();
    assert_eq!(kinds.first(), Some(&(EventKind::Join, Actor::Candidate)));
    assert_eq!(kinds.last(), Some(&(EventKind::Leave, Actor::Candidate)));
    let seqs: Vec<u64> = h.log.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one gapless sequence"
    );
}

#[test]
fn malformed_messages_close_only_the_sender() {
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown message type", vec![9, 1, 0], close::UNSUPPORTED),
        ("unknown sync type", vec![0, 7, 0], close::UNSUPPORTED),
        (
            "truncated sync payload",
            vec![0, 2, 50, 1, 2],
            close::INVALID_PAYLOAD,
        ),
        (
            "garbage update",
            vec![0, 2, 4, 0xff, 0xff, 0xff, 0xff],
            close::INVALID_PAYLOAD,
        ),
        (
            "awareness state not JSON",
            awareness(5, 1, "{nope"),
            close::INVALID_PAYLOAD,
        ),
        ("empty varint", vec![0x80], close::INVALID_PAYLOAD),
    ];
    for (what, bytes, code) in cases {
        let mut h = Scene::empty();
        h.join(1, Role::Candidate);
        h.join(2, Role::Interviewer);
        h.type_at(2, 0, "kept");
        h.send_raw(1, bytes);
        assert_eq!(h.closed.len(), 1, "{what}: the sender is closed");
        assert_eq!(h.closed[0].0, 1, "{what}");
        assert_eq!(h.closed[0].1, code, "{what}: {}", h.closed[0].2);
        assert!(!h.closed[0].2.is_empty(), "{what}: a reason is given");
        assert_eq!(h.room_text(), "kept", "{what}: the document is untouched");
        h.type_at(2, 4, "!");
        assert_eq!(h.room_text(), "kept!", "{what}: the others go on");
    }
}

#[test]
fn random_bytes_never_panic_the_room() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut room = Room::new(RoomConfig::default());
    for conn in 0..2000u64 {
        room.join(
            conn,
            Role::Candidate,
            Identity::for_role(Role::Candidate, "x"),
            ReplySlots::default(),
            0,
        );
        let len = rng.gen_range(0..64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if let Some(first) = bytes.first_mut() {
            *first %= 4; // mostly known message types, so the fuzzing reaches the decoders
        }
        let _ = room.receive(conn, &bytes, 0);
        room.leave(conn, 0);
    }
}

#[test]
fn the_stored_log_rebuilds_the_live_text_from_any_checkpoint() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    for _ in 0..300 {
        let conn = rng.gen_range(1..=2);
        let text = h.text_of(conn);
        let chars = rng.gen_range(0..=text.chars().count());
        let at: u32 = text.chars().take(chars).map(|c| c.len_utf16() as u32).sum();
        let ch = ["a", "b", "\n", "é", "🙂"][rng.gen_range(0..5)];
        h.type_at(conn, at, ch);
    }
    let live = h.room_text();
    let whole = rebuild(None, h.log.clone()).expect("rebuild");
    assert_eq!(whole.text(), live);
    assert_eq!(whole.last_seq, h.log.len() as u64);

    // A checkpoint part-way, then the tail.
    let cut = h.log.len() / 2;
    let head = rebuild(None, h.log[..cut].to_vec()).expect("head");
    let state = head
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let resumed = rebuild(
        Some(CheckpointRef {
            seq: cut as u64,
            state: &state,
            owners: &[],
        }),
        h.log[cut..].to_vec(),
    )
    .expect("resume");
    assert_eq!(resumed.text(), live);
}

#[test]
fn a_corrupt_log_is_an_error_not_an_empty_document() {
    let bad = LogRecord {
        seq: 1,
        at_ms: 0,
        kind: EventKind::Edit,
        by: Actor::Candidate,
        data: vec![1, 2, 3],
    };
    assert!(rebuild(None, vec![bad]).is_err());
    let r = |seq| LogRecord {
        seq,
        at_ms: 0,
        kind: EventKind::Join,
        by: Actor::Candidate,
        data: vec![],
    };
    assert!(rebuild(None, vec![r(2), r(1)]).is_err(), "out of order");
    assert!(
        matches!(
            rebuild(None, vec![r(1), r(3)]),
            Err(duet_core::RebuildError::Gap { seq: 3, after: 1 })
        ),
        "a gap"
    );
    assert!(
        rebuild(
            Some(CheckpointRef {
                seq: 1,
                state: &[9, 9, 9],
                owners: &[]
            }),
            vec![]
        )
        .is_err(),
        "bad checkpoint"
    );
}

#[test]
fn a_run_takes_its_place_in_the_sequence_and_its_history_reads_back() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.type_at(1, 0, "print('hi')");
    let code_seq = h.room.last_seq();
    let started = RunStarted {
        run_id: "r1".into(),
        kind: RunKind::Run,
        by: Role::Candidate,
        at: 10,
        code: None,
        code_seq,
        private: false,
        environment: "python".into(),
    };
    let mut effects = h.room.run_started(&started, usize::MAX, 10);
    let out = OutputChunk {
        run_id: "r1".into(),
        stream: Stream::Stdout,
        pieces: vec![(0, 11)],
        bytes: b"hi\n".to_vec(),
    };
    effects.extend(h.room.run_output(out, Role::Candidate, false, 11));
    let err = OutputChunk {
        run_id: "r1".into(),
        stream: Stream::Stderr,
        pieces: vec![(0, 11)],
        bytes: b"warn\n".to_vec(),
    };
    effects.extend(h.room.run_output(err, Role::Candidate, false, 11));
    let fin = RunFinished {
        run_id: "r1".into(),
        status: duet_protocol::RunStatus::Ok,
        limit: None,
        exit_code: Some(0),
        duration_ms: 30,
        tests: None,
        lint: None,
        at: 12,
    };
    effects.extend(h.room.run_finished(&fin, Role::Candidate, false, 12));
    h.carry_out(effects);

    let types: Vec<_> = h
        .events
        .iter()
        .map(|(a, e)| {
            (
                a.clone(),
                e["type"].as_str().unwrap_or("").to_owned(),
                e["seq"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        types.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["run.started", "run.output", "run.output", "run.finished"]
    );
    assert!(types.iter().all(|t| t.0 == Audience::Everyone));
    let seqs: Vec<u64> = types.iter().filter_map(|t| t.2).collect();
    assert_eq!(
        seqs,
        (code_seq + 1..=code_seq + 4).collect::<Vec<_>>(),
        "runs share the edits' sequence"
    );

    let history = run_index(&h.log, Role::Reviewer);
    assert_eq!(history.len(), 1);
    let output = collect_output(&h.log, "r1");
    assert_eq!(
        (
            output.stdout.as_slice(),
            output.stderr.as_slice(),
            history[0].summary.status
        ),
        (&b"hi\n"[..], &b"warn\n"[..], duet_protocol::RunStatus::Ok)
    );
    assert_eq!(
        duet_core::replay::state_at(None, h.log.clone(), history[0].code_seq)
            .expect("replays")
            .text,
        "print('hi')",
        "the code that ran is the snapshot at code_seq"
    );
    assert!(unfinished_runs(&h.log).is_empty());
    assert_eq!(
        rebuild(None, h.log.clone()).expect("rebuild").text(),
        "print('hi')",
        "run records do not disturb replay"
    );
}

#[test]
fn a_private_run_reaches_only_roles_that_may_see_it() {
    let mut room = Room::new(RoomConfig::default());
    let started = RunStarted {
        run_id: "h".into(),
        kind: RunKind::Test,
        by: Role::Interviewer,
        at: 1,
        code: None,
        code_seq: 0,
        private: true,
        environment: "python".into(),
    };
    let effects = room.run_started(&started, usize::MAX, 1);
    let audience = effects.iter().find_map(|e| match e {
        Effect::Event { audience, .. } => Some(audience.clone()),
        _ => None,
    });
    assert_eq!(audience, Some(Audience::Private));
    assert!(!Audience::Private.includes(Role::Candidate));
    assert!(
        Audience::Private.includes(Role::Interviewer) && Audience::Private.includes(Role::Reviewer)
    );
    let log: Vec<LogRecord> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Persist(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        run_index(&log, Role::Candidate).is_empty(),
        "missing from the candidate's history"
    );
    assert_eq!(run_index(&log, Role::Reviewer).len(), 1);
    assert_eq!(unfinished_runs(&log).len(), 1);
}

/// A panel stays blind while the interview is live: each member's note and scorecard save is
/// told only to that member's own connections, and the interviewer link's only to the link's.
#[test]
fn a_note_and_a_scorecard_save_reach_only_their_authors_connections() {
    let mut room = Room::new(RoomConfig::default());
    let audience_of = |effects: &[Effect]| {
        let told: Vec<Audience> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Event { audience, .. } => Some(audience.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(told.len(), 1, "one event per record");
        told[0].clone()
    };
    let (_, grace_note) = room
        .add_note_of(Some("grace"), "strong on tests".into(), 10)
        .unwrap();
    let (_, grace_save) = room
        .save_scorecard_of(
            Some("grace"),
            serde_json::from_str::<ScorecardUpdate>(r#"{"version": 0}"#).unwrap(),
            11,
        )
        .unwrap();
    let (_, link_note) = room.add_note("asks good questions".into(), 12).unwrap();
    for told in [audience_of(&grace_note), audience_of(&grace_save)] {
        assert_eq!(told, Audience::Author(Some("grace".into())));
        assert!(told.reaches(Role::Interviewer, Some("grace")));
        assert!(
            !told.reaches(Role::Interviewer, Some("ada")),
            "another member"
        );
        assert!(
            !told.reaches(Role::Interviewer, None),
            "the interviewer link"
        );
        assert!(!told.reaches(Role::Reviewer, None), "the reviewer link");
        assert!(!told.reaches(Role::Candidate, None));
    }
    let told = audience_of(&link_note);
    assert_eq!(told, Audience::Author(None));
    assert!(told.reaches(Role::Interviewer, None));
    assert!(!told.reaches(Role::Interviewer, Some("grace")));
    assert!(!told.reaches(Role::Candidate, None));
}

/// Every event the room publishes wears its record's head: the seq, time and author of the
/// record it tells, whatever the kind (runs, review, the question, the end).
#[test]
fn every_event_carries_the_head_of_the_record_it_tells() {
    let mut room = Room::new(RoomConfig::default());
    let mut effects = Vec::new();
    let project = [("main.py".to_owned(), "def two_sum(): ...\n".to_owned())].into();
    let pick = duet_core::QuestionPick {
        id: "two-sum",
        title: "Two sum",
        starter: Some(&project),
        board: &[],
    };
    effects.extend(
        room.switch_question(pick, &[], Actor::Interviewer, 5)
            .unwrap(),
    );
    let started = RunStarted {
        run_id: "r1".into(),
        kind: RunKind::Run,
        by: Role::Candidate,
        at: 10,
        code: None,
        code_seq: room.last_seq(),
        private: false,
        environment: "python".into(),
    };
    effects.extend(room.run_started(&started, usize::MAX, 10));
    for (stream, bytes, at) in [
        (Stream::Stdout, &b"abc"[..], 11),
        (Stream::Stderr, &b"oops\n"[..], 12),
        (Stream::Stdout, &b"defg"[..], 13),
    ] {
        let chunk = OutputChunk {
            run_id: "r1".into(),
            stream,
            pieces: vec![(0, at)],
            bytes: bytes.to_vec(),
        };
        effects.extend(room.run_output(chunk, Role::Candidate, false, at));
    }
    let fin = RunFinished {
        run_id: "r1".into(),
        status: duet_protocol::RunStatus::Ok,
        limit: None,
        exit_code: Some(0),
        duration_ms: 4,
        tests: None,
        lint: None,
        at: 14,
    };
    effects.extend(room.run_finished(&fin, Role::Candidate, false, 14));
    effects.extend(room.add_note("asks about eviction".into(), 15).unwrap().1);
    effects.extend(
        room.signal(duet_protocol::SignalKind::Paste, Some(420), 16)
            .unwrap(),
    );
    effects.extend(room.end(17));

    let heads: HashMap<u64, (i64, Actor)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(r) => Some((r.seq, (r.at_ms, r.by))),
            _ => None,
        })
        .collect();
    let events: Vec<serde_json::Value> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event { event, .. } => Some(serde_json::to_value(event).unwrap()),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "question",
            "run.started",
            "run.output",
            "run.output",
            "run.output",
            "run.finished",
            "note",
            "signal",
            "end"
        ]
    );
    for event in &events {
        let seq = event["seq"]
            .as_u64()
            .expect("the room's events carry their seq");
        let (at, by) = heads[&seq];
        assert_eq!(event["at"], at, "{event}");
        assert_eq!(event["by"], by.as_str(), "{event}");
    }
    // Each output event says where its bytes start in their stream.
    let offsets: Vec<(&str, u64)> = events
        .iter()
        .filter(|e| e["type"] == "run.output")
        .map(|e| (e["stream"].as_str().unwrap(), e["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(offsets, [("stdout", 0), ("stderr", 0), ("stdout", 3)]);
}

#[test]
fn a_reconnecting_clients_repeated_state_is_not_logged_again() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.type_at(1, 0, "abc");
    let update = {
        let doc = &h.people[&1];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let mut txn = doc.transact_mut();
        text.remove_range(&mut txn, 0, 1);
        txn.encode_update_v1()
    };
    h.send_raw(
        1,
        Message::Sync(SyncMessage::Update(update.clone())).encode_v1(),
    );
    let before = h.log.len();
    h.send_raw(1, Message::Sync(SyncMessage::SyncStep2(update)).encode_v1());
    assert_eq!(h.log.len(), before, "nothing new, nothing stored");
    assert_eq!(h.room_text(), "bc");
}

#[test]
fn structs_under_another_participants_client_id_are_refused() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.type_at(2, 0, "ok");
    // The candidate writes under the interviewer's Yjs client id, one clock ahead.
    let interviewer_client = h.people[&2].client_id();
    let forged = Doc::with_options(Options {
        client_id: interviewer_client,
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    forged
        .transact_mut()
        .apply_update(
            Update::decode_v1(
                &h.people[&2]
                    .transact()
                    .encode_state_as_update_v1(&StateVector::default()),
            )
            .expect("u"),
        )
        .expect("a");
    let update = {
        let text = forged.get_or_insert_text(MAIN_FILE);
        let mut txn = forged.transact_mut();
        text.insert(&mut txn, 2, "import os");
        txn.encode_update_v1()
    };
    h.send_raw(1, Message::Sync(SyncMessage::Update(update)).encode_v1());
    assert_eq!(
        h.closed.first().map(|c| (c.0, c.1)),
        Some((1, close::INVALID_PAYLOAD)),
        "{:?}",
        h.closed
    );
    assert!(
        h.closed[0].2.contains("belongs to the interviewer"),
        "{}",
        h.closed[0].2
    );
    h.type_at(2, 2, "!");
    assert_eq!(
        h.room_text(),
        "ok!",
        "the interviewer's next keystroke is taken, not swallowed"
    );
}

#[test]
fn ownership_of_client_ids_survives_a_reload_from_the_log() {
    let mut h = Scene::empty();
    h.join(2, Role::Interviewer);
    h.type_at(2, 0, "mine");
    let rebuilt = rebuild(None, h.log.clone()).expect("rebuild");
    let owner = rebuilt.owners.get(&h.people[&2].client_id().get()).copied();
    assert_eq!(owner, Some(Actor::Interviewer));
}

#[test]
fn a_document_cannot_grow_past_its_cap() {
    let config = RoomConfig {
        max_doc_bytes: 10,
        ..RoomConfig::default()
    };
    let mut h = Scene::new(Room::new(config));
    h.join(1, Role::Candidate);
    h.type_at(1, 0, "0123456789");
    assert!(h.closed.is_empty());
    h.type_at(1, 10, "x");
    assert_eq!(h.closed.first().map(|c| c.1), Some(close::POLICY));
    assert!(
        h.closed[0].2.contains("at most 10 bytes"),
        "{}",
        h.closed[0].2
    );
    assert_eq!(h.room_text(), "0123456789");
}

#[test]
fn repeated_sync_requests_are_coalesced_while_an_answer_is_queued() {
    let mut room = Room::new(RoomConfig::default());
    let slots = ReplySlots::default();
    room.join(
        1,
        Role::Reviewer,
        Identity::for_role(Role::Reviewer, "x"),
        slots.clone(),
        1,
    );
    let step1 = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
    let answers = |effects: Vec<Effect>| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Send { reply: Some(_), .. }))
            .count()
    };
    assert_eq!(answers(room.receive(1, &step1, 2)), 1);
    for _ in 0..1000 {
        assert_eq!(
            answers(room.receive(1, &step1, 2)),
            0,
            "nothing more is encoded while the first answer waits"
        );
    }
    slots.sent(duet_core::Reply::Sync);
    assert_eq!(
        answers(room.receive(1, &step1, 3)),
        1,
        "once written, the next request is answered"
    );
}

#[test]
fn reconnect_churn_logs_one_join_and_one_leave() {
    let mut h = Scene::empty();
    for conn in 1..=200 {
        h.join(conn, Role::Reviewer);
        h.leave(conn);
    }
    let effects = h.room.flush_leaves(1_000_000);
    h.carry_out(effects);
    let kinds: Vec<_> = h.log.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [EventKind::Join, EventKind::Leave]);
}

#[test]
fn the_server_replaces_the_program_in_one_edit_everyone_receives() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.join(2, Role::Interviewer);
    h.type_at(1, 0, "old code");
    let effects = h.room.replace_text("def solve():\n    pass\n", 100);
    let edits: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(r) => Some((r.kind, r.by)),
            _ => None,
        })
        .collect();
    assert_eq!(edits, [(EventKind::Edit, Actor::Server)]);
    h.carry_out(effects);
    for conn in [1, 2] {
        assert_eq!(h.text_of(conn), "def solve():\n    pass\n");
    }
    assert_eq!(
        rebuild(None, h.log.clone()).expect("rebuild").text(),
        "def solve():\n    pass\n"
    );
    h.type_at(1, 0, "# ");
    assert_eq!(h.room_text(), "# def solve():\n    pass\n");
}

#[test]
fn an_edit_after_the_end_closes_its_sender_and_nothing_is_stored() {
    let mut h = Scene::empty();
    h.join(1, Role::Candidate);
    h.type_at(1, 0, "abc");
    // A deletion, so every full-state step 2 carries a delete set.
    let update = {
        let doc = &h.people[&1];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let mut txn = doc.transact_mut();
        text.remove_range(&mut txn, 0, 1);
        txn.encode_update_v1()
    };
    h.send_raw(1, Message::Sync(SyncMessage::Update(update)).encode_v1());
    let now = h.tick();
    let effects = h.room.end(now);
    h.carry_out(effects);
    let stored = h.log.len();

    // The candidate's page reconnects and answers the server's step 1 with all it has: nothing
    // new, so the connection stays.
    let everything = h.people[&1]
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    h.send_raw(
        1,
        Message::Sync(SyncMessage::SyncStep2(everything)).encode_v1(),
    );
    assert!(h.closed.is_empty(), "a step 2 with nothing new is no edit");

    // Then the candidate types: refused, and said why.
    h.type_at(1, 0, "x");
    assert_eq!(h.log.len(), stored, "nothing is stored after the end");
    assert_eq!(h.room_text(), "bc");
    assert_eq!(
        h.closed.first().cloned(),
        Some((1, close::POLICY, "the interview has ended".to_owned()))
    );
}
