//! The text of `main.py` at every edit of a log, for fast scrubbing: each edit becomes a few
//! plain-text steps (delete and insert at a character position), and a ropey [`Rope`] keyframe
//! is kept every [`KEYFRAME_EVERY`] edits. The text at any seq is then a keyframe (an O(1)
//! clone: ropes share their nodes) plus at most that many steps, each O(log n), instead of
//! decoding a whole document state.
//!
//! Where a step goes comes from the update itself: the ids of each inserted item's neighbours
//! and the ids it deletes, placed by Yjs' own integration rules in an order of the text's items
//! kept beside the index (`order.rs`). An edit costs about what yrs pays to apply it, not a walk
//! of the whole text (yrs' change delta walks every item from the start, per edit: building
//! the index grew with the square of the log, 17.5 to 38 s for 50,000 edits, see
//! BENCHMARKS.md).
//!
//! Exactness: every edit is also applied to a real yrs document (which checks it as replay
//! always did), and at every keyframe and at the end of each extension the index's text is
//! compared with yrs' own. An update the order cannot follow, or a text that differs, makes the
//! index give up ([`TextIndex::text_at`] answers `None`) so the caller falls back to
//! rebuilding the document from a checkpoint. Tests check it against yrs' text at every seq.

mod order;
#[cfg(test)]
mod tests;

use crate::history::{apply, apply_edit, ClientOwners, RebuildError};
use crate::replay::Base;
use duet_protocol::{EventKind, LogRecord, MAIN_FILE};
use order::TextOrder;
use ropey::Rope;
use yrs::{Doc, GetString, Transact};

/// Edits between two keyframes.
pub const KEYFRAME_EVERY: usize = 512;

/// One plain-text step: at character `at`, delete `delete` characters, then insert `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    at: usize,
    delete: usize,
    insert: String,
}

/// A step as the index keeps it: what it inserts is `inserted[previous step's end..end]`.
/// 16 bytes, and the inserted text in one string, rather than a string per step.
#[derive(Debug, Clone, Copy)]
struct Kept {
    at: u32,
    delete: u32,
    end: usize,
}

/// One edit: its seq and the index of its first step in [`TextIndex::steps`] (its steps run
/// to the next edit's first).
#[derive(Debug, Clone, Copy)]
struct TextOp {
    seq: u64,
    first: usize,
}

/// The text at every edit of one log, up to [`TextIndex::seq`].
#[derive(Debug, Clone)]
pub struct TextIndex {
    seq: u64,
    ops: Vec<TextOp>,
    steps: Vec<Kept>,
    /// The text every step inserts, one after another.
    inserted: String,
    /// `keyframes[k]` is the text after `ops[..k * KEYFRAME_EVERY]`.
    keyframes: Vec<Rope>,
    tip: Rope,
    /// The text's items in document order at `seq`, to place the next edits.
    order: TextOrder,
    exact: bool,
    /// Why the index gave up, once it has.
    why_not: Option<&'static str>,
    /// Past this many bytes ([`TextIndex::approx_bytes`]) the index gives up.
    limit: usize,
}

impl Default for TextIndex {
    fn default() -> Self {
        TextIndex {
            seq: 0,
            ops: Vec::new(),
            steps: Vec::new(),
            inserted: String::new(),
            keyframes: vec![Rope::new()],
            tip: Rope::new(),
            order: TextOrder::default(),
            exact: true,
            why_not: None,
            limit: usize::MAX,
        }
    }
}

impl TextIndex {
    /// The seq the index reaches: the text at any seq up to here is known.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the index answers: the log so far could be indexed (only text the order can
    /// follow, the same text as yrs') within the index's byte limit.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Why the index stopped answering, once it has (an update it could not place, a text
    /// that differed from yrs', or its byte limit), for the server's log.
    pub fn gave_up_because(&self) -> Option<&'static str> {
        self.why_not
    }

    /// Bounds the index: once it would hold more than `limit` bytes it drops what it holds and
    /// stops indexing, so the caller falls back to rebuilding documents. A log of large pastes
    /// and deletes (each kept as a step) can otherwise grow an index far past the text's own
    /// size.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Stops indexing and frees what the index held.
    fn give_up(&mut self, why: &'static str) {
        self.exact = false;
        self.why_not.get_or_insert(why);
        self.ops = Vec::new();
        self.steps = Vec::new();
        self.inserted = String::new();
        self.keyframes = vec![Rope::new()];
        self.tip = Rope::new();
        self.order = TextOrder::default();
    }

    /// Roughly the heap bytes held (edits and steps, the order of items, plus the text once
    /// per keyframe as an upper bound for the nodes keyframes do not share).
    pub fn approx_bytes(&self) -> usize {
        self.ops.capacity() * std::mem::size_of::<TextOp>()
            + self.steps.capacity() * std::mem::size_of::<Kept>()
            + self.inserted.capacity()
            + self.order.approx_bytes()
            + self.keyframes.len() * self.tip.len_bytes().min(16 * 1024)
            + self.tip.len_bytes()
    }

    /// Extends the index from [`TextIndex::seq`] to `upto`. The caller rebuilds the document at
    /// `self.seq()` from `base` (a checkpoint at or before it, or `None` for the empty
    /// document) plus `catch_up` (the edits in `(base, self.seq()]`), and passes the new edits
    /// in `(self.seq(), upto]` as `new_edits`. The document only checks the new edits and the
    /// index's text; where each edit goes comes from the index's own order of items.
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
        let doc = Doc::new();
        if let Some(base) = base {
            apply(&doc, base.state).map_err(|_| RebuildError::BadCheckpoint { seq: base.seq })?;
        }
        let mut owners = ClientOwners::new();
        for record in catch_up.iter().filter(|r| r.kind == EventKind::Edit) {
            apply_edit(&doc, &mut owners, record)?;
        }
        let text = doc.get_or_insert_text(MAIN_FILE);
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
            let mut steps = Vec::new();
            if let Err(e) = self.order.apply(&record.data, &mut self.tip, &mut steps) {
                self.give_up(e.0);
                break;
            }
            if !steps.is_empty() && self.record(record.seq, steps) {
                // A keyframe: the text so far must be yrs' own.
                let same = self.tip == text.get_string(&doc.transact()).as_str();
                if !same {
                    self.give_up("the text differs from yrs' at a keyframe");
                }
            }
        }
        if self.exact && self.tip != text.get_string(&doc.transact()).as_str() {
            self.give_up("the text differs from yrs'");
        }
        self.seq = self.seq.max(upto);
        Ok(())
    }

    /// Records one edit's steps (already applied to the tip); answers whether a keyframe was
    /// taken.
    fn record(&mut self, seq: u64, steps: Vec<Step>) -> bool {
        self.ops.push(TextOp {
            seq,
            first: self.steps.len(),
        });
        for step in steps {
            let (Ok(at), Ok(delete)) = (u32::try_from(step.at), u32::try_from(step.delete)) else {
                self.give_up("a text past 4 billion characters");
                return false;
            };
            self.inserted.push_str(&step.insert);
            self.steps.push(Kept {
                at,
                delete,
                end: self.inserted.len(),
            });
        }
        let keyframe = self.ops.len() == self.keyframes.len() * KEYFRAME_EVERY;
        if keyframe {
            self.keyframes.push(self.tip.clone());
        }
        if self.approx_bytes() > self.limit {
            self.give_up("over its byte limit");
            return false;
        }
        keyframe
    }

    /// The text at `seq`, or `None` past [`TextIndex::seq`] or when the index is not exact.
    pub fn text_at(&self, seq: u64) -> Option<String> {
        if !self.exact || seq > self.seq {
            return None;
        }
        let n = self.ops.partition_point(|op| op.seq <= seq);
        let k = n / KEYFRAME_EVERY;
        let mut rope = self.keyframes.get(k)?.clone();
        let first = self
            .ops
            .get(k * KEYFRAME_EVERY)
            .map_or(self.steps.len(), |op| op.first);
        let last = self.ops.get(n).map_or(self.steps.len(), |op| op.first);
        let mut start = first
            .checked_sub(1)
            .map_or(0, |previous| self.steps[previous].end);
        for step in &self.steps[first..last] {
            let at = step.at as usize;
            if step.delete > 0 {
                rope.remove(at..at + step.delete as usize);
            }
            if step.end > start {
                rope.insert(at, &self.inserted[start..step.end]);
            }
            start = step.end;
        }
        Some(rope.to_string())
    }
}
