use super::*;
use duet_protocol::Actor;
use yrs::{GetString, Text, Transact};

fn random_log(n: u64, seed: u64) -> (Vec<LogRecord>, Vec<String>) {
    let docs = [Doc::new(), Doc::new()];
    let mut log = Vec::new();
    let mut texts = vec![String::new()];
    let mut state = seed;
    for seq in 1..=n {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let who = ((state >> 40) & 1) as usize;
        let doc = &docs[who];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let chars = text.get_string(&doc.transact()).chars().count() as u32;
        let pos = (state >> 33) as u32 % (chars + 1);
        let update = {
            let mut txn = doc.transact_mut();
            if chars > 2 && state & 3 == 0 {
                let at = pos.min(chars - 2);
                // Byte offsets: delete whole characters by measuring them.
                let s = text.get_string(&txn);
                let from = s.char_indices().nth(at as usize).map_or(s.len(), |c| c.0);
                let to = s
                    .char_indices()
                    .nth(at as usize + 2)
                    .map_or(s.len(), |c| c.0);
                text.remove_range(&mut txn, from as u32, (to - from) as u32);
            } else {
                let s = text.get_string(&txn);
                let at = s.char_indices().nth(pos as usize).map_or(s.len(), |c| c.0);
                let piece = ["a", "é", "🐍", "xy\n"][(state >> 20) as usize % 4];
                text.insert(&mut txn, at as u32, piece);
            }
            txn.encode_update_v1()
        };
        docs[1 - who]
            .transact_mut()
            .apply_update(yrs::Update::decode_v1(&update).expect("decodes"))
            .expect("applies");
        log.push(LogRecord {
            seq,
            at_ms: seq as i64,
            kind: EventKind::Edit,
            by: if who == 0 {
                Actor::Candidate
            } else {
                Actor::Interviewer
            },
            data: update,
        });
        texts.push(text.get_string(&doc.transact()));
    }
    (log, texts)
}

use yrs::updates::decoder::Decode;

#[test]
fn the_index_gives_yrs_own_text_at_every_seq() {
    let (log, texts) = random_log(1_500, 9);
    let mut index = TextIndex::default();
    index
        .extend(None, Vec::new(), log.clone(), 1_500)
        .expect("indexes");
    assert!(index.is_exact(), "{:?}", index.why_not);
    for (seq, text) in texts.iter().enumerate() {
        assert_eq!(
            index.text_at(seq as u64).as_deref(),
            Some(text.as_str()),
            "seq {seq}"
        );
    }
    assert_eq!(index.text_at(1_501), None, "past the end");
}

#[test]
fn the_text_at_an_edit_that_completes_a_keyframe_is_that_keyframe() {
    // Exactly two keyframes' worth of edits, every one changing the text: the last seq
    // (and any later one) is answered from the last keyframe with no step after it.
    let edits = 2 * KEYFRAME_EVERY as u64;
    let (log, texts) = random_log(edits, 5);
    let mut index = TextIndex::default();
    index
        .extend(None, Vec::new(), log, edits + 3)
        .expect("indexes");
    assert_eq!(
        index.texts[MAIN_FILE].keyframes.len(),
        3,
        "a keyframe at 0, 512 and 1,024 edits"
    );
    for seq in [edits - 1, edits, edits + 3] {
        let last = texts[(seq.min(edits)) as usize].as_str();
        assert_eq!(index.text_at(seq).as_deref(), Some(last), "seq {seq}");
    }
}

#[test]
fn an_index_past_its_limit_gives_up_frees_what_it_held_and_stops_answering() {
    let (log, _) = random_log(1_500, 3);
    let mut whole = TextIndex::default();
    whole
        .extend(None, Vec::new(), log.clone(), 1_500)
        .expect("indexes");
    let full = whole.approx_bytes();

    let mut bounded = TextIndex::default();
    bounded.set_limit(full / 2);
    bounded
        .extend(None, Vec::new(), log, 1_500)
        .expect("a limit is not an error");
    assert!(!bounded.is_exact(), "over its limit, the index gives up");
    assert!(bounded.approx_bytes() < full / 2, "and holds less than it");
    assert_eq!(bounded.text_at(10), None, "the caller rebuilds instead");
    assert_eq!(bounded.seq(), 1_500, "it is not retried edit by edit");
}

#[test]
fn the_index_extends_from_a_checkpoint_as_a_live_log_grows() {
    let (log, texts) = random_log(1_200, 4);
    let mut index = TextIndex::default();
    let first: Vec<LogRecord> = log.iter().filter(|r| r.seq <= 700).cloned().collect();
    index
        .extend(None, Vec::new(), first, 700)
        .expect("first part");
    // Later: the document at 700 comes from a checkpoint at 600 plus the edits after it.
    let cp = crate::replay::state_at(None, log.clone(), 600).expect("checkpoint");
    let catch_up: Vec<LogRecord> = log
        .iter()
        .filter(|r| r.seq > 600 && r.seq <= 700)
        .cloned()
        .collect();
    let rest: Vec<LogRecord> = log.iter().filter(|r| r.seq > 700).cloned().collect();
    index
        .extend(
            Some(Base {
                seq: 600,
                state: &cp.state,
            }),
            catch_up,
            rest,
            1_200,
        )
        .expect("the rest");
    for seq in [0usize, 1, 511, 512, 699, 700, 701, 1_023, 1_024, 1_200] {
        assert_eq!(
            index.text_at(seq as u64).as_deref(),
            Some(texts[seq].as_str()),
            "seq {seq}"
        );
    }
}

/// One person's editor: a document with its own client id, an undo manager, and how far
/// into the server's log it has received.
struct Peer {
    doc: Doc,
    text: yrs::TextRef,
    undo: yrs::UndoManager,
    by: Actor,
    seen: usize,
    /// The updates this document emitted since last drained.
    out: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Peer {
    fn new(client: u64, by: Actor) -> Peer {
        let doc = Doc::with_client_id(client);
        let text = doc.get_or_insert_text(MAIN_FILE);
        let mut undo = yrs::UndoManager::new();
        undo.expand_scope(&doc, &text);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        doc.observe_update_v1("log", move |_, e: &yrs::UpdateEvent| {
            sink.lock().expect("sink").push(e.update.clone())
        })
        .expect("observes");
        Peer {
            doc,
            text,
            undo,
            by,
            seen: 0,
            out,
        }
    }

    fn drain(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.out.lock().expect("sink"))
    }

    fn string(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// The byte offset of character `c` (the documents count in UTF-8 bytes).
    fn byte(&self, c: usize) -> u32 {
        let s = self.string();
        s.char_indices().nth(c).map_or(s.len(), |(b, _)| b) as u32
    }
}

/// A seeded session as the server logs it: three editors (the candidate in two tabs and
/// the interviewer) type, paste, delete ranges, replace selections and undo, each seeing
/// the others' updates only after a random lag, so their edits cross; the log is every
/// update in the order the server received it, with joins between. Returns the log and
/// the text of a full rebuild (every edit applied in log order) at every seq.
fn crossing_log(n: usize, seed: u64) -> (Vec<LogRecord>, Vec<String>) {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut peers: Vec<Peer> = [Actor::Candidate, Actor::Candidate, Actor::Interviewer]
        .into_iter()
        .map(|by| Peer::new(rng.gen_range(1..1u64 << 53), by))
        .collect();
    let reference = Doc::new();
    let reference_text = reference.get_or_insert_text(MAIN_FILE);
    let mut log: Vec<LogRecord> = Vec::new();
    let mut texts = vec![String::new()];
    let pieces = ["a", "é", "🐍", "xy\n", "def f():\n    return 1\n", "ÿ🐍z"];
    while log.len() < n {
        let p = rng.gen_range(0..peers.len());
        let peer = &mut peers[p];
        // The server's broadcasts reach this editor up to some point.
        let upto = rng.gen_range(peer.seen..=log.len());
        for record in &log[peer.seen..upto] {
            if record.kind == EventKind::Edit {
                let update = yrs::Update::decode_v1(&record.data).expect("decodes");
                peer.doc
                    .transact_mut_with("remote")
                    .apply_update(update)
                    .expect("applies");
            }
        }
        peer.seen = upto;
        peer.drain();
        let chars = peer.string().chars().count();
        let at = rng.gen_range(0..=chars);
        match rng.gen_range(0..100) {
            0..=44 => {
                let piece = pieces[rng.gen_range(0..4)];
                let b = peer.byte(at);
                peer.text.insert(&mut peer.doc.transact_mut(), b, piece);
            }
            45..=59 => {
                let lines = rng.gen_range(1..6);
                let paste: String = (0..lines)
                    .map(|_| pieces[rng.gen_range(0..pieces.len())])
                    .collect();
                let b = peer.byte(at);
                peer.text.insert(&mut peer.doc.transact_mut(), b, &paste);
            }
            60..=79 if chars > 0 => {
                let at = at.min(chars - 1);
                let len = rng.gen_range(1..=(chars - at).min(40));
                let (from, to) = (peer.byte(at), peer.byte(at + len));
                peer.text
                    .remove_range(&mut peer.doc.transact_mut(), from, to - from);
            }
            80..=89 => {
                peer.undo.undo_blocking();
            }
            _ if chars > 0 => {
                // A paste over a selection: one transaction deletes and inserts.
                let at = at.min(chars - 1);
                let len = rng.gen_range(1..=(chars - at).min(10));
                let (from, to) = (peer.byte(at), peer.byte(at + len));
                let mut txn = peer.doc.transact_mut();
                peer.text.remove_range(&mut txn, from, to - from);
                peer.text.insert(&mut txn, from, "🐍 pasted\n");
            }
            _ => {}
        }
        peer.undo.reset(); // every action is its own undo step
        let by = peer.by;
        for update in peer.drain() {
            let seq = log.len() as u64 + 1;
            reference
                .transact_mut()
                .apply_update(yrs::Update::decode_v1(&update).expect("decodes"))
                .expect("applies");
            log.push(LogRecord {
                seq,
                at_ms: seq as i64,
                kind: EventKind::Edit,
                by,
                data: update,
            });
            texts.push(reference_text.get_string(&reference.transact()));
        }
        if rng.gen_bool(0.05) {
            let seq = log.len() as u64 + 1;
            log.push(LogRecord {
                seq,
                at_ms: seq as i64,
                kind: EventKind::Join,
                by,
                data: Vec::new(),
            });
            texts.push(texts[texts.len() - 1].clone());
        }
    }
    (log, texts)
}

/// Extends a fresh index over `log` in slices ending at `cuts`, as the server does while a
/// log grows: each slice after the first rebuilds the document from a checkpoint taken at
/// a random earlier seq.
fn index_in_slices(log: &[LogRecord], cuts: &[u64], seed: u64) -> TextIndex {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index = TextIndex::default();
    for &upto in cuts {
        let from = index.seq();
        let checkpoint = (from > 0).then(|| {
            let at = rng.gen_range(0..=from);
            (
                at,
                crate::replay::state_at(None, log.to_vec(), at).expect("checkpoint"),
            )
        });
        let cp_seq = checkpoint.as_ref().map_or(0, |(at, _)| *at);
        let catch_up = log
            .iter()
            .filter(|r| r.seq > cp_seq && r.seq <= from)
            .cloned()
            .collect();
        let new = log
            .iter()
            .filter(|r| r.seq > from && r.seq <= upto)
            .cloned()
            .collect();
        let base = checkpoint.as_ref().map(|(at, cp)| Base {
            seq: *at,
            state: &cp.state,
        });
        index.extend(base, catch_up, new, upto).expect("extends");
    }
    index
}

#[test]
fn crossing_edits_undo_and_checkpoints_give_a_full_rebuilds_text_at_every_seq() {
    for seed in 0..8u64 {
        let (log, texts) = crossing_log(500, seed);
        let last = log.len() as u64;
        let cuts = [1, 90, 250, 251, 400, last];
        let index = index_in_slices(&log, &cuts, seed);
        assert!(
            index.is_exact(),
            "seed {seed}: gave up: {:?}",
            index.why_not
        );
        for (seq, text) in texts.iter().enumerate() {
            assert_eq!(
                index.text_at(seq as u64).as_deref(),
                Some(text.as_str()),
                "seed {seed}, seq {seq}"
            );
        }
    }
}

#[test]
fn three_people_typing_at_one_place_unseen_land_where_yrs_puts_them() {
    // Ids chosen so every order of client ids occurs among the three.
    let peers = [
        Peer::new(7, Actor::Candidate),
        Peer::new(3, Actor::Interviewer),
        Peer::new(11, Actor::Candidate),
    ];
    let mut log = Vec::new();
    let record = |peer: &Peer, log: &mut Vec<LogRecord>| {
        for data in peer.drain() {
            let seq = log.len() as u64 + 1;
            log.push(LogRecord {
                seq,
                at_ms: seq as i64,
                kind: EventKind::Edit,
                by: peer.by,
                data,
            });
        }
    };
    peers[0]
        .text
        .insert(&mut peers[0].doc.transact_mut(), 0, "def f():\n    pass\n");
    record(&peers[0], &mut log);
    for peer in &peers[1..] {
        let update = yrs::Update::decode_v1(&log[0].data).expect("decodes");
        peer.doc
            .transact_mut_with("remote")
            .apply_update(update)
            .expect("applies");
        peer.drain();
    }
    // Nobody sees the others: all three type at the start of `pass`, twice.
    for round in 0..2 {
        for (i, peer) in peers.iter().enumerate() {
            let at = peer.byte(13);
            let word = format!("<{i}{round}>");
            peer.text.insert(&mut peer.doc.transact_mut(), at, &word);
            record(peer, &mut log);
        }
    }
    let (log, texts) = {
        let reference = Doc::new();
        let text = reference.get_or_insert_text(MAIN_FILE);
        let mut texts = vec![String::new()];
        for r in &log {
            let update = yrs::Update::decode_v1(&r.data).expect("decodes");
            reference
                .transact_mut()
                .apply_update(update)
                .expect("applies");
            texts.push(text.get_string(&reference.transact()));
        }
        (log, texts)
    };
    let last = log.len() as u64;
    let mut index = TextIndex::default();
    index.extend(None, Vec::new(), log, last).expect("indexes");
    assert!(index.is_exact(), "{:?}", index.why_not);
    for (seq, text) in texts.iter().enumerate() {
        assert_eq!(
            index.text_at(seq as u64).as_deref(),
            Some(text.as_str()),
            "seq {seq}"
        );
    }
    assert!(
        texts[texts.len() - 1].contains("<00>") && texts[texts.len() - 1].contains("<21>"),
        "all six words are in the text"
    );
}

#[test]
fn a_delete_through_the_middle_of_a_character_makes_the_index_give_up_not_guess() {
    // A client counting in UTF-16 can delete half of a surrogate pair; yrs keeps a
    // replacement character. The index cannot place a cut inside a character: it gives up
    // and the caller rebuilds the document instead.
    let doc = Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::with_client_id(yrs::block::ClientID::new(5))
    });
    let text = doc.get_or_insert_text(MAIN_FILE);
    let mut log = Vec::new();
    for (seq, change) in [(1u64, true), (2, false)] {
        let mut txn = doc.transact_mut();
        if change {
            text.insert(&mut txn, 0, "a🐍b");
        } else {
            text.remove_range(&mut txn, 2, 1); // the snake's second half
        }
        log.push(LogRecord {
            seq,
            at_ms: seq as i64,
            kind: EventKind::Edit,
            by: Actor::Candidate,
            data: txn.encode_update_v1(),
        });
    }
    let mut index = TextIndex::default();
    index
        .extend(None, Vec::new(), log, 2)
        .expect("a give-up is not an error");
    assert!(!index.is_exact());
    assert_eq!(index.why_not, Some("a cut inside a character"));
    assert_eq!(
        index.text_at(1),
        None,
        "it answers nothing rather than a guess"
    );
}

/// Two people editing several files and the board at once, each seeing the other's edits
/// late: typing in any listed file (UTF-8 of several widths), creating files, renaming and
/// deleting them, drawing, changing and erasing elements. Returns the log in the order the
/// server took it.
fn project_log(n: u64, seed: u64) -> Vec<LogRecord> {
    use rand::{Rng, SeedableRng};
    use yrs::{Any, Map};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let docs = [Doc::with_client_id(11), Doc::with_client_id(22)];
    // Updates each person has not received yet.
    let mut inbox: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut log = Vec::new();
    let mut made = 0u32;
    let shows = |root: &str| {
        Any::from(std::collections::HashMap::from([(
            "text".to_owned(),
            Any::from(root),
        )]))
    };
    let deleted = || {
        Any::from(std::collections::HashMap::from([(
            "deleted".to_owned(),
            Any::Bool(true),
        )]))
    };
    for seq in 1..=n {
        let who = rng.gen_range(0..2usize);
        // Now and then a person catches up with what the other did.
        if rng.gen_bool(0.3) {
            for update in std::mem::take(&mut inbox[who]) {
                docs[who]
                    .transact_mut()
                    .apply_update(yrs::Update::decode_v1(&update).expect("decodes"))
                    .expect("applies");
            }
        }
        let doc = &docs[who];
        let listed = crate::files::listing(doc).paths;
        let paths: Vec<(String, String)> = listed
            .into_iter()
            .filter_map(|(p, r)| Some((p, r?)))
            .collect();
        let board = doc.get_or_insert_map(duet_protocol::BOARD);
        let files = doc.get_or_insert_map(duet_protocol::FILES);
        let roll = rng.gen_range(0..100u32);
        let (path, root) = paths[rng.gen_range(0..paths.len())].clone();
        let text = doc.get_or_insert_text(root.as_str());
        made += 1;
        let fresh = doc.get_or_insert_text(format!("pkg{who}/m{made}.py").as_str());
        let update = {
            let mut txn = doc.transact_mut();
            match roll {
                0..=3 => fresh.insert(&mut txn, 0, "import os\n"),
                4..=5 if path != MAIN_FILE => {
                    files.insert(&mut txn, format!("moved{made}.py"), shows(&root));
                    files.insert(&mut txn, path.clone(), deleted());
                }
                6 if path != MAIN_FILE => {
                    files.insert(&mut txn, path.clone(), deleted());
                }
                7..=30 => {
                    let id = format!("e{}", rng.gen_range(0..12u32));
                    if rng.gen_bool(0.2) {
                        board.remove(&mut txn, &id);
                    } else {
                        let json = format!(
                            r#"{{"id":"{id}","type":"rectangle","x":{},"version":{seq}}}"#,
                            rng.gen_range(0..500u32)
                        );
                        board.insert(&mut txn, id, json);
                    }
                }
                _ => {
                    let s = text.get_string(&txn);
                    let chars = s.chars().count();
                    let byte = |c: usize| s.char_indices().nth(c).map_or(s.len(), |x| x.0) as u32;
                    if chars > 2 && rng.gen_bool(0.3) {
                        let at = rng.gen_range(0..chars - 1);
                        let (from, to) = (byte(at), byte(at + 2));
                        text.remove_range(&mut txn, from, to - from);
                    } else {
                        let at = byte(rng.gen_range(0..=chars));
                        let piece = ["a", "é", "🐍", "xy\n"][rng.gen_range(0..4)];
                        text.insert(&mut txn, at, piece);
                    }
                }
            }
            txn.encode_update_v1()
        };
        inbox[1 - who].push(update.clone());
        log.push(LogRecord {
            seq,
            at_ms: seq as i64,
            kind: EventKind::Edit,
            by: if who == 0 {
                Actor::Candidate
            } else {
                Actor::Interviewer
            },
            data: update,
        });
    }
    log
}

#[test]
fn every_file_and_the_board_at_every_seq_are_a_full_rebuilds() {
    // One long log (main.py passes a keyframe), two shorter ones.
    for (seed, n) in [(1u64, 1_200u64), (2, 400), (3, 400)] {
        let log = project_log(n, seed);
        // Indexed in slices, the later ones from a checkpoint, as a live log is.
        let mut index = TextIndex::default();
        let mut from = 0u64;
        for cut in [n / 4, n / 4 + 1, n * 3 / 4, n] {
            let (base, catch_up) = if from == 0 {
                (None, Vec::new())
            } else {
                let cp_seq = from - from % 70;
                let cp = crate::replay::state_at(None, log.clone(), cp_seq).expect("checkpoint");
                let catch_up = log
                    .iter()
                    .filter(|r| r.seq > cp_seq && r.seq <= from)
                    .cloned()
                    .collect();
                (Some((cp_seq, cp.state)), catch_up)
            };
            let new: Vec<LogRecord> = log
                .iter()
                .filter(|r| r.seq > from && r.seq <= cut)
                .cloned()
                .collect();
            index
                .extend(
                    base.as_ref().map(|(seq, state)| Base { seq: *seq, state }),
                    catch_up,
                    new,
                    cut,
                )
                .expect("indexes");
            from = cut;
        }
        assert!(index.is_exact(), "seed {seed}: {:?}", index.why_not);
        // The full rebuild, one seq after another, beside the index's answer.
        let doc = Doc::new();
        let mut owners = ClientOwners::new();
        let (mut most_files, mut most_elements) = (0, 0);
        for seq in 0..=n {
            if seq > 0 {
                apply_edit(&doc, &mut owners, &log[seq as usize - 1]).expect("replays");
            }
            let want = crate::replay::doc_at(&doc);
            most_files = most_files.max(want.files.len());
            most_elements = most_elements.max(want.board.len());
            assert_eq!(index.doc_at(seq), Some(want), "seed {seed}, seq {seq}");
        }
        assert!(
            most_files >= 3 && most_elements >= 8,
            "seed {seed}: the log exercised {most_files} files and {most_elements} elements"
        );
    }
}

#[test]
fn the_timeline_names_each_bursts_file_counts_board_elements_and_shows_file_changes() {
    use duet_protocol::{LogEntry, TimelineBody};
    use yrs::{Any, Map};
    let doc = Doc::with_client_id(5);
    let main = doc.get_or_insert_text(MAIN_FILE);
    let cart = doc.get_or_insert_text("shop/cart.py");
    let board = doc.get_or_insert_map(duet_protocol::BOARD);
    let files = doc.get_or_insert_map(duet_protocol::FILES);
    let entry = |path: &str, what: &str| {
        Any::from(std::collections::HashMap::from([(
            what.to_owned(),
            if what == "deleted" {
                Any::Bool(true)
            } else {
                Any::from(path)
            },
        )]))
    };
    type Step<'a> = Box<dyn Fn(&mut yrs::TransactionMut) + 'a>;
    let story: Vec<(i64, Actor, Step)> = vec![
        (0, Actor::Candidate, Box::new(|t| main.insert(t, 0, "im"))),
        (
            100,
            Actor::Candidate,
            Box::new(|t| main.insert(t, 2, "port")),
        ),
        // A new file: its first text, then more typing in it.
        (
            200,
            Actor::Candidate,
            Box::new(|t| cart.insert(t, 0, "class")),
        ),
        (
            300,
            Actor::Candidate,
            Box::new(|t| cart.insert(t, 5, " Cart")),
        ),
        // The interviewer draws two boxes and moves one.
        (
            400,
            Actor::Interviewer,
            Box::new(|t| {
                board.insert(t, "b1", r#"{"id":"b1","type":"rectangle","x":1}"#);
            }),
        ),
        (
            500,
            Actor::Interviewer,
            Box::new(|t| {
                board.insert(t, "b2", r#"{"id":"b2","type":"ellipse","x":1}"#);
            }),
        ),
        (
            600,
            Actor::Interviewer,
            Box::new(|t| {
                board.insert(t, "b1", r#"{"id":"b1","type":"rectangle","x":9}"#);
            }),
        ),
        // The candidate renames the file, types in it, then deletes it.
        (
            5_000,
            Actor::Candidate,
            Box::new(|t| {
                files.insert(t, "shop/basket.py", entry("shop/cart.py", "text"));
                files.insert(t, "shop/cart.py", entry("", "deleted"));
            }),
        ),
        (
            5_100,
            Actor::Candidate,
            Box::new(|t| cart.insert(t, 0, "# ")),
        ),
        (
            9_000,
            Actor::Candidate,
            Box::new(|t| {
                files.insert(t, "shop/basket.py", entry("", "deleted"));
            }),
        ),
    ];
    let mut log = Vec::new();
    for (i, (at, by, step)) in story.iter().enumerate() {
        let mut txn = doc.transact_mut();
        step(&mut txn);
        log.push(LogRecord {
            seq: i as u64 + 1,
            at_ms: *at,
            kind: EventKind::Edit,
            by: *by,
            data: txn.encode_update_v1(),
        });
    }
    let n = log.len() as u64;
    let mut index = TextIndex::default();
    index
        .extend(None, Vec::new(), log.clone(), n)
        .expect("indexes");
    let facts = index.edit_facts(0, n).expect("exact");
    let entries: Vec<LogEntry> = log.iter().map(crate::replay::tests::entry).collect();
    let events = crate::timeline::timeline(&entries, &[], &[], &facts);
    let shape: Vec<String> = events
        .iter()
        .map(|e| {
            let body = match &e.body {
                TimelineBody::Edit {
                    last_seq,
                    edits,
                    file,
                    ..
                } => {
                    format!("edit {file:?} to {last_seq} ({edits})")
                }
                TimelineBody::Board {
                    last_seq,
                    edits,
                    elements,
                    ..
                } => {
                    format!("board to {last_seq} ({edits} edits, {elements} elements)")
                }
                TimelineBody::FileCreated { path } => format!("created {path}"),
                TimelineBody::FileRenamed { from, to } => format!("renamed {from} to {to}"),
                TimelineBody::FileDeleted { path } => format!("deleted {path}"),
                other => format!("{other:?}"),
            };
            format!("{} {} {body}", e.seq(), e.head.by)
        })
        .collect();
    assert_eq!(
        shape,
        [
            "1 candidate edit Some(\"main.py\") to 2 (2)",
            "3 candidate created shop/cart.py",
            "3 candidate edit Some(\"shop/cart.py\") to 4 (2)",
            "5 interviewer board to 7 (3 edits, 2 elements)",
            "8 candidate renamed shop/cart.py to shop/basket.py",
            "9 candidate edit Some(\"shop/basket.py\") to 9 (1)",
            "10 candidate deleted shop/basket.py",
        ]
    );
    // A page that follows with `?after=` sees only what is new, the same way.
    let later = index.edit_facts(8, n).expect("exact");
    assert_eq!(later.changes.len(), 1, "only the delete: {later:?}");
}
