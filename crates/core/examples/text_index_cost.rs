//! What building replay's text index from cold costs, against applying the same edits alone
//! (issue 16, finding 13): the build a server does for the first replay after a restart. It
//! once took each edit's steps from yrs' change delta, which walks the whole text per edit (17.5
//! s for 50,000 edits); now each edit is placed by its own item ids. A measurement for
//! BENCHMARKS.md, not a check:
//!
//! `cargo run --release -p duet-core --example text_index_cost`

use duet_core::TextIndex;
use duet_protocol::{Actor, EventKind, LogRecord, MAIN_FILE};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Text, Transact};

/// A typing-shaped log: one author at a time at a cursor that mostly moves on by one, a
/// fifth of the keys backspaces, now and then a jump elsewhere, a tenth of the edits by
/// the other author.
fn typing_log(n: u64) -> Vec<LogRecord> {
    let docs = [Doc::new(), Doc::new()];
    let mut log = Vec::new();
    let mut state = 7u64;
    let mut cursor = [0u32; 2];
    for seq in 1..=n {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let who = usize::from((state >> 50).is_multiple_of(10));
        let doc = &docs[who];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let len = text.len(&doc.transact());
        if (state >> 20).is_multiple_of(50) {
            cursor[who] = (state >> 30) as u32 % (len + 1);
        }
        let at = cursor[who].min(len);
        let update = {
            let mut txn = doc.transact_mut();
            if (state >> 10).is_multiple_of(5) && at > 0 {
                text.remove_range(&mut txn, at - 1, 1);
                cursor[who] = at - 1;
            } else {
                let key = if (state >> 5).is_multiple_of(30) {
                    "\n"
                } else {
                    "x"
                };
                text.insert(&mut txn, at, key);
                cursor[who] = at + 1;
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
            by: Actor::Candidate,
            data: update,
        });
    }
    log
}

fn main() {
    for n in [5_000u64, 20_000, 50_000] {
        let log = typing_log(n);
        let started = std::time::Instant::now();
        let applied = duet_core::rebuild(None, log.clone()).expect("the log replays");
        let apply_only = started.elapsed();
        let started = std::time::Instant::now();
        let mut index = TextIndex::default();
        index.extend(None, Vec::new(), log, n).expect("indexes");
        let build = started.elapsed();
        let chars = applied.text().chars().count();
        assert!(
            index.is_exact(),
            "the index gave up: the figure would mean nothing"
        );
        assert_eq!(index.text_at(n).as_deref(), Some(applied.text().as_str()));
        println!(
            "{n} edits ({chars} characters at the end): apply alone {apply_only:?}, build the index {build:?} ({:.1} us an edit), index {} KiB",
            build.as_secs_f64() * 1e6 / n as f64,
            index.approx_bytes() / 1024
        );
    }
}
