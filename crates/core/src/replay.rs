//! Replay, sans-IO: moments resolved to sequence
//! numbers, and the document reconstructed at any seq from a base state plus the edits after it.
//!
//! The server reads the store (checkpoints, the light index, edits in a range) and caches what
//! this module returns; nothing here touches a database or a clock. Snapshots are built by
//! applying logged updates one transaction each onto a base state (a checkpoint or an earlier
//! replay state), never with yrs' `encode_state_from_snapshot`, which was seen to produce
//! undecodable updates for real editing traces.

use crate::history::{apply, apply_edit, ClientOwners, RebuildError};
use crate::text_index::DocAt;
use duet_protocol::{EventKind, LogEntry, LogRecord, BOARD, MAIN_FILE};
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::timeline::{timeline, timeline_needs_data, EditFacts, FileChange, BURST_GAP_MS};
use yrs::{Doc, GetString, Map, Out, ReadTxn, StateVector, Transact};

/// Every seq of a log with its time, to turn a moment into a seq. Times are made monotonic
/// (a running maximum), so a clock that stepped back cannot make "the moment T" ambiguous:
/// the state at T is the state after the last record whose running-maximum time is <= T.
#[derive(Debug, Default, Clone)]
pub struct Moments {
    /// `entries[i]` is seq `i + 1` (the light index, kept for the timeline).
    entries: Vec<LogEntry>,
    /// `at_max[i]` is the running maximum time of seq `i + 1`.
    at_max: Vec<i64>,
    /// The seqs of edits, ascending (a snapshot only changes at an edit).
    edits: Vec<u64>,
}

impl Moments {
    /// Adds the next entries; they must continue the log without a gap.
    pub fn extend(&mut self, entries: &[LogEntry]) -> Result<(), RebuildError> {
        for entry in entries {
            let after = self.last_seq();
            if entry.seq != after + 1 {
                return Err(RebuildError::Gap {
                    seq: entry.seq,
                    after,
                });
            }
            let at = self
                .at_max
                .last()
                .map_or(entry.at_ms, |m| entry.at_ms.max(*m));
            self.at_max.push(at);
            self.entries.push(*entry);
            if entry.kind == Some(EventKind::Edit) {
                self.edits.push(entry.seq);
            }
        }
        Ok(())
    }

    pub fn last_seq(&self) -> u64 {
        self.at_max.len() as u64
    }

    /// The entries with seq > `after`, in order.
    pub fn entries_after(&self, after: u64) -> &[LogEntry] {
        let from = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        &self.entries[from..]
    }

    /// The (monotonic) time of `seq`, `None` for 0 or a seq past the end.
    pub fn at_of(&self, seq: u64) -> Option<i64> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.at_max.get(i).copied()
    }

    /// The time of the last record, if any.
    pub fn last_at(&self) -> Option<i64> {
        self.at_max.last().copied()
    }

    /// The last seq at or before moment `at` (0 before the first record).
    pub fn seq_at(&self, at: i64) -> u64 {
        self.at_max.partition_point(|t| *t <= at) as u64
    }

    /// The last edit at or before `seq` (0 if none): the snapshot at `seq` is the one there.
    pub fn edit_at_or_before(&self, seq: u64) -> u64 {
        let i = self.edits.partition_point(|s| *s <= seq);
        if i == 0 {
            0
        } else {
            self.edits[i - 1]
        }
    }

    /// Bytes this index holds (for a cache's budget).
    pub fn heap_bytes(&self) -> usize {
        self.at_max.capacity() * 8
            + self.edits.capacity() * 8
            + self.entries.capacity() * std::mem::size_of::<LogEntry>()
    }
}

/// The document as it stood at one seq: its state (one Yjs update), the text of `main.py`,
/// and every listed file and the board's elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayState {
    pub seq: u64,
    pub state: Vec<u8>,
    pub text: String,
    pub doc: DocAt,
}

/// The files `doc` lists with their text, and its board's elements, each sorted.
pub fn doc_at(doc: &Doc) -> DocAt {
    let files = crate::files::contents(doc);
    let board = doc.get_or_insert_map(BOARD);
    let txn = doc.transact();
    let mut elements: Vec<(Arc<str>, Arc<str>)> = board
        .iter(&txn)
        .filter_map(|(id, value)| match value {
            Out::Any(yrs::Any::String(json)) => Some((Arc::from(id), json)),
            _ => None,
        })
        .collect();
    elements.sort();
    DocAt {
        files,
        board: elements,
    }
}

/// Where a reconstruction starts: nothing (seq 0), a checkpoint's or a cached replay state.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    pub seq: u64,
    pub state: &'a [u8],
}

/// The document at `upto`: `base` plus `edits` (the log's edits in `(base.seq, upto]`, in
/// order; other kinds are ignored), one transaction per edit.
pub fn state_at(
    base: Option<Base<'_>>,
    edits: impl IntoIterator<Item = LogRecord>,
    upto: u64,
) -> Result<ReplayState, RebuildError> {
    let doc = Doc::new();
    let mut last = 0;
    if let Some(base) = base {
        apply(&doc, base.state).map_err(|_| RebuildError::BadCheckpoint { seq: base.seq })?;
        last = base.seq;
    }
    let mut owners = ClientOwners::new();
    for record in edits {
        if record.kind != EventKind::Edit || record.seq > upto {
            continue;
        }
        if record.seq <= last {
            return Err(RebuildError::Gap {
                seq: record.seq,
                after: last,
            });
        }
        last = record.seq;
        apply_edit(&doc, &mut owners, &record)?;
    }
    let text = doc.get_or_insert_text(MAIN_FILE);
    let at = doc_at(&doc);
    let txn = doc.transact();
    Ok(ReplayState {
        seq: upto,
        state: txn.encode_state_as_update_v1(&StateVector::default()),
        text: text.get_string(&txn),
        doc: at,
    })
}

/// Replays a whole log once (gapless, from seq 1), noting the text of `main.py` at each of
/// `wanted` (seqs, ascending or not). Returns those texts and the final document (every file,
/// the board). For an export: every run's code in one pass, one transaction per edit.
pub fn texts_at(
    records: &[LogRecord],
    wanted: &[u64],
) -> Result<(HashMap<u64, String>, DocAt), RebuildError> {
    let mut wanted: Vec<u64> = wanted.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut pending = wanted.into_iter().peekable();
    let doc = Doc::new();
    let text = doc.get_or_insert_text(MAIN_FILE);
    let mut owners = ClientOwners::new();
    let mut out = HashMap::new();
    let mut last = 0;
    for record in records {
        if record.seq != last + 1 {
            return Err(RebuildError::Gap {
                seq: record.seq,
                after: last,
            });
        }
        while let Some(w) = pending.next_if(|w| *w < record.seq) {
            out.insert(w, text.get_string(&doc.transact()));
        }
        last = record.seq;
        if record.kind == EventKind::Edit {
            apply_edit(&doc, &mut owners, record)?;
        }
    }
    let final_text = text.get_string(&doc.transact());
    for w in pending {
        out.insert(w, final_text.clone());
    }
    Ok((out, doc_at(&doc)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use duet_protocol::Actor;
    use yrs::{Text, Transact};

    pub(crate) fn edit(
        doc: &Doc,
        seq: u64,
        at: i64,
        by: Actor,
        f: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut),
    ) -> LogRecord {
        let text = doc.get_or_insert_text(MAIN_FILE);
        let mut txn = doc.transact_mut();
        f(&text, &mut txn);
        LogRecord {
            seq,
            at_ms: at,
            kind: EventKind::Edit,
            by,
            data: txn.encode_update_v1(),
        }
    }

    pub(crate) fn entry(r: &LogRecord) -> LogEntry {
        LogEntry {
            seq: r.seq,
            at_ms: r.at_ms,
            kind: Some(r.kind),
            by: Some(r.by),
        }
    }

    #[test]
    fn moments_resolve_to_the_last_seq_at_or_before_them_even_if_the_clock_stepped_back() {
        let mut m = Moments::default();
        let e = |seq, at_ms, kind| LogEntry {
            seq,
            at_ms,
            kind: Some(kind),
            by: Some(Actor::Candidate),
        };
        m.extend(&[
            e(1, 100, EventKind::Edit),
            e(2, 200, EventKind::Join),
            e(3, 150, EventKind::Edit),
            e(4, 300, EventKind::Edit),
        ])
        .expect("no gap");
        assert_eq!(m.seq_at(99), 0);
        assert_eq!(m.seq_at(100), 1);
        assert_eq!(
            m.seq_at(250),
            3,
            "seq 3 stepped back to 150 but counts at 200"
        );
        assert_eq!(m.seq_at(10_000), 4);
        assert_eq!(m.edit_at_or_before(2), 1);
        assert_eq!(m.at_of(3), Some(200));
        assert!(matches!(
            m.extend(&[e(6, 400, EventKind::Edit)]),
            Err(RebuildError::Gap { seq: 6, after: 4 })
        ));
    }

    #[test]
    fn one_pass_gives_the_text_at_each_wanted_seq() {
        let doc = Doc::new();
        let log = vec![
            edit(&doc, 1, 1, Actor::Candidate, |t, x| t.insert(x, 0, "ab")),
            LogRecord {
                seq: 2,
                at_ms: 2,
                kind: EventKind::Join,
                by: Actor::Reviewer,
                data: vec![],
            },
            edit(&doc, 3, 3, Actor::Candidate, |t, x| t.insert(x, 2, "c")),
        ];
        let (texts, last) = texts_at(&log, &[3, 0, 2, 9]).expect("replays");
        assert_eq!(
            (
                texts[&0].as_str(),
                texts[&2].as_str(),
                texts[&3].as_str(),
                texts[&9].as_str()
            ),
            ("", "ab", "abc", "abc")
        );
        assert_eq!(last.files, vec![("main.py".to_owned(), "abc".to_owned())]);
    }

    #[test]
    fn a_state_rebuilt_from_an_earlier_replay_state_equals_one_rebuilt_from_scratch() {
        let doc = Doc::new();
        let mut log = Vec::new();
        let mut texts = vec![String::new()];
        let mut rng_state = 7u64;
        for seq in 1..=300u64 {
            rng_state = rng_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = doc
                .get_or_insert_text(MAIN_FILE)
                .get_string(&doc.transact())
                .len() as u32;
            let pos = (rng_state >> 33) as u32 % (len + 1);
            let by = if seq % 3 == 0 {
                Actor::Interviewer
            } else {
                Actor::Candidate
            };
            log.push(if len > 0 && rng_state & 3 == 0 {
                edit(&doc, seq, seq as i64, by, |t, x| {
                    t.remove_range(x, pos.min(len - 1), 1)
                })
            } else {
                edit(&doc, seq, seq as i64, by, |t, x| t.insert(x, pos, "xy"))
            });
            texts.push(
                doc.get_or_insert_text(MAIN_FILE)
                    .get_string(&doc.transact()),
            );
        }
        for target in [0u64, 1, 57, 150, 299, 300] {
            let scratch = state_at(None, log.clone(), target).expect("replays");
            assert_eq!(scratch.text, texts[target as usize], "seq {target}");
            for base_seq in [0u64, 10, 57] {
                if base_seq > target {
                    continue;
                }
                let base = state_at(None, log.clone(), base_seq).expect("base");
                let later: Vec<LogRecord> =
                    log.iter().filter(|r| r.seq > base_seq).cloned().collect();
                let from_base = state_at(
                    Some(Base {
                        seq: base_seq,
                        state: &base.state,
                    }),
                    later,
                    target,
                )
                .expect("from base");
                assert_eq!(
                    from_base.text, texts[target as usize],
                    "seq {target} from {base_seq}"
                );
            }
        }
    }
}
