//! The text of `main.py` at every edit of a log, for fast scrubbing: each edit becomes a few
//! plain-text steps (delete and insert at a character position) taken from yrs' own change
//! events, and a ropey [`Rope`] keyframe is kept every [`KEYFRAME_EVERY`] edits. The text at
//! any seq is then a keyframe (an O(1) clone: ropes share their nodes) plus at most that many
//! steps, each O(log n), instead of decoding a whole document state.
//!
//! Exactness: the steps are the deltas yrs reports while applying the logged updates, one
//! transaction each, to a real document; a text holding anything but strings (an embed) makes
//! the index refuse ([`TextIndex::text_at`] answers `None`) so the caller falls back to
//! rebuilding the document. Tests check it against yrs' own text at every seq.

use crate::history::{apply, apply_edit, ClientOwners, RebuildError};
use crate::replay::Base;
use duet_protocol::{EventKind, LogRecord, MAIN_FILE};
use ropey::Rope;
use std::sync::{Arc, Mutex};
use yrs::types::Delta;
use yrs::{Doc, Observable, Out};

/// Edits between two keyframes.
pub const KEYFRAME_EVERY: usize = 512;

/// One plain-text step: at character `at`, delete `delete` characters, then insert `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    at: usize,
    delete: usize,
    insert: String,
}

#[derive(Debug, Clone)]
struct TextOp {
    seq: u64,
    steps: Vec<Step>,
}

/// The text at every edit of one log, up to [`TextIndex::seq`].
#[derive(Debug, Clone)]
pub struct TextIndex {
    seq: u64,
    ops: Vec<TextOp>,
    /// `keyframes[k]` is the text after `ops[..k * KEYFRAME_EVERY]`.
    keyframes: Vec<Rope>,
    tip: Rope,
    exact: bool,
    bytes: usize,
    /// Past this many bytes ([`TextIndex::approx_bytes`]) the index gives up.
    limit: usize,
}

impl Default for TextIndex {
    fn default() -> Self {
        TextIndex {
            seq: 0,
            ops: Vec::new(),
            keyframes: vec![Rope::new()],
            tip: Rope::new(),
            exact: true,
            bytes: 0,
            limit: usize::MAX,
        }
    }
}

impl TextIndex {
    /// The seq the index reaches: the text at any seq up to here is known.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the index answers: the log so far could be indexed (only strings in the text)
    /// within the index's byte limit.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Bounds the index: once it would hold more than `limit` bytes it drops what it holds and
    /// stops indexing (as for an embed), so the caller falls back to rebuilding documents. A
    /// log of large pastes and deletes (each kept as a step) can otherwise grow an index far
    /// past the text's own size, and cost a build in proportion.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Stops indexing and frees what the index held.
    fn give_up(&mut self) {
        self.exact = false;
        self.ops = Vec::new();
        self.keyframes = vec![Rope::new()];
        self.tip = Rope::new();
        self.bytes = 0;
    }

    /// Roughly the heap bytes held (steps, plus the text once per keyframe as an upper bound
    /// for the nodes keyframes do not share).
    pub fn approx_bytes(&self) -> usize {
        self.bytes
            + self.keyframes.len() * self.tip.len_bytes().min(16 * 1024)
            + self.tip.len_bytes()
    }

    /// Extends the index from [`TextIndex::seq`] to `upto`. The caller rebuilds the document at
    /// `self.seq()` from `base` (a checkpoint at or before it, or `None` for the empty
    /// document) plus `catch_up` (the edits in `(base, self.seq()]`), and passes the new edits
    /// in `(self.seq(), upto]` as `new_edits`.
    pub fn extend(
        &mut self,
        base: Option<Base<'_>>,
        catch_up: Vec<LogRecord>,
        new_edits: Vec<LogRecord>,
        upto: u64,
    ) -> Result<(), RebuildError> {
        if !self.exact {
            self.seq = self.seq.max(upto);
            return Ok(());
        }
        let doc = Doc::new(); // UTF-8 byte offsets in the deltas
        if let Some(base) = base {
            apply(&doc, base.state).map_err(|_| RebuildError::BadCheckpoint { seq: base.seq })?;
        }
        let mut owners = ClientOwners::new();
        for record in catch_up.iter().filter(|r| r.kind == EventKind::Edit) {
            apply_edit(&doc, &mut owners, record)?;
        }
        let text = doc.get_or_insert_text(MAIN_FILE);
        let deltas: Arc<Mutex<Vec<Delta>>> = Arc::default();
        let sink = deltas.clone();
        text.observe("replay-index", move |txn, event| {
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            sink.extend(event.delta(txn).iter().cloned());
        });
        let mut last = self.seq;
        for record in new_edits.iter().filter(|r| r.kind == EventKind::Edit) {
            if !self.exact {
                break; // nothing more to learn: the index no longer answers
            }
            if record.seq <= last || record.seq > upto {
                return Err(RebuildError::Gap {
                    seq: record.seq,
                    after: last,
                });
            }
            last = record.seq;
            apply_edit(&doc, &mut owners, record)?;
            let taken = std::mem::take(&mut *deltas.lock().unwrap_or_else(|p| p.into_inner()));
            if !taken.is_empty() && self.exact {
                self.push(record.seq, &taken);
            }
        }
        self.seq = self.seq.max(upto);
        Ok(())
    }

    /// Turns one edit's deltas (UTF-8 byte offsets) into steps on the tip and records them.
    fn push(&mut self, seq: u64, deltas: &[Delta]) {
        let mut steps = Vec::new();
        let mut byte = 0usize;
        for delta in deltas {
            match delta {
                Delta::Retain(n, _) => byte += *n as usize,
                Delta::Deleted(n) => {
                    let end = byte + *n as usize;
                    if end > self.tip.len_bytes() {
                        self.exact = false;
                        return;
                    }
                    let (from, to) = (self.tip.byte_to_char(byte), self.tip.byte_to_char(end));
                    self.tip.remove(from..to);
                    steps.push(Step {
                        at: from,
                        delete: to - from,
                        insert: String::new(),
                    });
                }
                Delta::Inserted(Out::Any(yrs::Any::String(s)), _) => {
                    if byte > self.tip.len_bytes() {
                        self.exact = false;
                        return;
                    }
                    let at = self.tip.byte_to_char(byte);
                    self.tip.insert(at, s);
                    byte += s.len();
                    steps.push(Step {
                        at,
                        delete: 0,
                        insert: s.to_string(),
                    });
                }
                Delta::Inserted(..) => {
                    self.exact = false; // an embed: plain text cannot say where it sits
                    return;
                }
            }
        }
        self.bytes += 48 + steps.iter().map(|s| 32 + s.insert.len()).sum::<usize>();
        self.ops.push(TextOp { seq, steps });
        if self.ops.len() == self.keyframes.len() * KEYFRAME_EVERY {
            self.keyframes.push(self.tip.clone());
        }
        if self.approx_bytes() > self.limit {
            self.give_up();
        }
    }

    /// The text at `seq`, or `None` past [`TextIndex::seq`] or when the index is not exact.
    pub fn text_at(&self, seq: u64) -> Option<String> {
        if !self.exact || seq > self.seq {
            return None;
        }
        let n = self.ops.partition_point(|op| op.seq <= seq);
        let k = n / KEYFRAME_EVERY;
        let mut rope = self.keyframes.get(k)?.clone();
        for op in &self.ops[k * KEYFRAME_EVERY..n] {
            for step in &op.steps {
                if step.delete > 0 {
                    rope.remove(step.at..step.at + step.delete);
                }
                if !step.insert.is_empty() {
                    rope.insert(step.at, &step.insert);
                }
            }
        }
        Some(rope.to_string())
    }
}

#[cfg(test)]
mod tests {
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
        assert!(index.is_exact());
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
}
