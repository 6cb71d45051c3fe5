//! What a replay snapshot of every file and the board costs once the index is built (issues
//! 19 and 20): the index's answer for a moment (every listed file's text, the board's
//! elements) and its JSON as `GET /snapshot` serves it, at 2,000 random moments of
//!
//! - a 20-file project: 20,000 edits spread over 20 files, and
//! - a two-hour session: 20,000 code edits and 5,000 board edits (300 elements, freehand
//!   strokes among them) interleaved.
//!
//! Each moment is answered three times: the first answer's time is the figure a request sees on
//! this machine as it is; the best of the three is the cost itself, without the moments this
//! process waited for a core (the machine these figures were taken on is shared: under load,
//! a thread loses its core for milliseconds at a time). A measurement for BENCHMARKS.md, not a
//! check:
//!
//! `cargo run --release -p duet-core --example snapshot_cost`

use duet_core::TextIndex;
use duet_protocol::{Actor, BoardElement, EventKind, LogRecord, Snapshot, BOARD, MAIN_FILE};
use std::time::{Duration, Instant};
use yrs::{Doc, Map, Text, Transact};

/// A small deterministic generator (no dependency for an example).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One typed key in `path` at a cursor that mostly moves on by one (a fifth backspaces).
fn key(doc: &Doc, rng: &mut Lcg, cursor: &mut u32, path: &str) -> Vec<u8> {
    let text = doc.get_or_insert_text(path);
    let mut txn = doc.transact_mut();
    let len = text.len(&txn);
    if rng.below(50) == 0 {
        *cursor = rng.below(u64::from(len) + 1) as u32;
    }
    let at = (*cursor).min(len);
    if rng.below(5) == 0 && at > 0 {
        text.remove_range(&mut txn, at - 1, 1);
        *cursor = at - 1;
    } else {
        let k = if rng.below(30) == 0 { "\n" } else { "x" };
        text.insert(&mut txn, at, k);
        *cursor = at + 1;
    }
    txn.encode_update_v1()
}

/// One board edit: an element drawn or changed (rectangles, text, freehand strokes).
fn stroke(doc: &Doc, rng: &mut Lcg, version: u64) -> Vec<u8> {
    let board = doc.get_or_insert_map(BOARD);
    let n = rng.below(300);
    let (x, y) = (rng.below(2000), rng.below(1200));
    let json = match n % 3 {
        0 => format!(
            r##"{{"id":"el{n}","type":"rectangle","x":{x},"y":{y},"width":120,"height":60,"angle":0,"strokeColor":"#1e1e1e","backgroundColor":"transparent","strokeWidth":2,"opacity":100,"version":{version},"index":"a{n}"}}"##
        ),
        1 => format!(
            r##"{{"id":"el{n}","type":"text","x":{x},"y":{y},"width":200,"height":25,"text":"queue worker {version}","fontSize":20,"strokeColor":"#1e1e1e","version":{version},"index":"a{n}"}}"##
        ),
        _ => {
            let points: Vec<String> = (0..40).map(|i| format!("[{i},{}]", i * 2 % 17)).collect();
            format!(
                r##"{{"id":"el{n}","type":"freedraw","x":{x},"y":{y},"width":40,"height":17,"points":[{}],"strokeColor":"#1971c2","version":{version},"index":"a{n}"}}"##,
                points.join(",")
            )
        }
    };
    let mut txn = doc.transact_mut();
    board.insert(&mut txn, format!("el{n}"), json);
    txn.encode_update_v1()
}

fn record(seq: u64, at_ms: i64, data: Vec<u8>) -> LogRecord {
    LogRecord {
        seq,
        at_ms,
        kind: EventKind::Edit,
        by: Actor::Candidate,
        data,
    }
}

/// 20,000 edits over 20 files (the first creates each).
fn project_log() -> Vec<LogRecord> {
    let doc = Doc::new();
    let mut rng = Lcg(11);
    let paths: Vec<String> = (0..20)
        .map(|i| match i {
            0 => MAIN_FILE.to_owned(),
            i => format!("pkg/module_{i}.py"),
        })
        .collect();
    let mut cursors = vec![0u32; paths.len()];
    let mut log = Vec::new();
    let mut file = 0usize;
    for seq in 1..=20_000u64 {
        if seq <= 20 {
            file = seq as usize - 1; // each file begins with a key
        } else if rng.below(200) == 0 {
            file = rng.below(paths.len() as u64) as usize;
        }
        let update = key(&doc, &mut rng, &mut cursors[file], &paths[file]);
        log.push(record(seq, seq as i64 * 360, update));
    }
    log
}

/// Two hours: 20,000 keys in main.py and 5,000 board edits, interleaved in runs.
fn session_log() -> Vec<LogRecord> {
    let doc = Doc::new();
    let mut rng = Lcg(5);
    let mut cursor = 0u32;
    let (mut keys, mut strokes) = (0u32, 0u32);
    let mut log = Vec::new();
    let mut drawing = false;
    let mut seq = 0u64;
    while keys < 20_000 || strokes < 5_000 {
        if rng.below(40) == 0 {
            drawing = !drawing;
        }
        let draw = (drawing && strokes < 5_000) || keys >= 20_000;
        seq += 1;
        let update = if draw {
            strokes += 1;
            stroke(&doc, &mut rng, seq)
        } else {
            keys += 1;
            key(&doc, &mut rng, &mut cursor, MAIN_FILE)
        };
        log.push(record(seq, seq as i64 * 288, update));
    }
    log
}

fn measure(name: &str, log: Vec<LogRecord>) {
    let n = log.len() as u64;
    let began = Instant::now();
    let mut index = TextIndex::default();
    index.extend(None, Vec::new(), log, n).expect("indexes");
    let build = began.elapsed();
    assert!(
        index.is_exact(),
        "the index gave up: {:?}",
        index.gave_up_because()
    );
    let mut rng = Lcg(99);
    let mut times: Vec<Duration> = Vec::new();
    let mut best: Vec<Duration> = Vec::new();
    let (mut files, mut elements, mut bytes) = (0usize, 0usize, 0usize);
    for _ in 0..2_000 {
        let seq = rng.below(n + 1);
        let mut tries = Vec::new();
        for _ in 0..3 {
            let began = Instant::now();
            let doc = index.doc_at(seq).expect("indexed");
            let snapshot = Snapshot {
                seq,
                at: 0,
                board: doc
                    .board
                    .iter()
                    .filter_map(|(_, json)| BoardElement::from_json(json))
                    .collect(),
                files: doc.files.into_iter().collect(),
            };
            let body = serde_json::to_vec(&snapshot).expect("serializes");
            tries.push(began.elapsed());
            files = files.max(snapshot.files.len());
            elements = elements.max(snapshot.board.len());
            bytes = bytes.max(body.len());
        }
        times.push(tries[0]);
        best.push(tries.iter().copied().min().unwrap_or_default());
    }
    times.sort();
    best.sort();
    let at = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: {n} edits, index built in {build:?} ({} KiB); snapshot of up to {files} files and {elements} elements (up to {} KiB of JSON) at 2,000 random moments: first answer p50 {:?}, p99 {:?}, max {:?}; best of three p50 {:?}, p99 {:?}, max {:?}",
        index.approx_bytes() / 1024,
        bytes / 1024,
        at(&times, 0.5),
        at(&times, 0.99),
        times[times.len() - 1],
        at(&best, 0.5),
        at(&best, 0.99),
        best[best.len() - 1],
    );
}

fn main() {
    measure("20-file project", project_log());
    measure("two-hour session with a board", session_log());
}
