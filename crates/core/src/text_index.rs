//! Every file's text and the board at every edit of a log, for fast scrubbing: each edit
//! becomes a few plain-text steps per text it touches (delete and insert at a character
//! position), and a ropey [`Rope`] keyframe is kept for each text every [`KEYFRAME_EVERY`] of
//! its edits. The text at any seq is then a keyframe (an O(1) clone: ropes share their nodes)
//! plus at most that many steps, each O(log n), instead of decoding a whole document state. The
//! board and the list of files are kept beside ([`crate::board_index`]): each element's writes
//! by seq, and the files listed at each change of the list.
//!
//! Where a step goes comes from the update itself: the ids of each inserted item's neighbours
//! and the ids it deletes, placed by Yjs' own integration rules in an order of each text's
//! items kept beside the index (`order.rs`). An edit costs about what yrs pays to apply it, not
//! a walk of the whole text (yrs' change delta walks every item from the start, per edit:
//! building the index grew with the square of the log, 17.5 to 38 s for 50,000 edits, see
//! BENCHMARKS.md). An update is decoded once and shown to every text's order (a text that it
//! does not touch only notes its ids as elsewhere, a few hundred nanoseconds).
//!
//! Exactness: every edit is also applied to a real yrs document (which checks it as replay
//! always did); the board's and the files' changes are read from that document (yrs' own
//! observers say which keys changed), and at every keyframe of a text and at the end of each
//! extension the index's texts are compared with yrs' own. An update an order cannot follow,
//! or a text that differs, makes the index give up ([`TextIndex::text_at`] answers `None`) so
//! the caller falls back to rebuilding the document from a checkpoint. Tests check it against
//! yrs at every seq.

mod order;
#[cfg(test)]
mod tests;

use crate::board_index::{BoardIndex, Listings};
use crate::history::{apply, apply_edit, ClientOwners, RebuildError};
use crate::replay::Base;
use crate::timeline::{EditFacts, FileChange};
use duet_protocol::{EventKind, LogRecord, BOARD, FILES, MAIN_FILE};
use order::{decode, Block, Parent, TextOrder};
use ropey::Rope;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use yrs::{Doc, GetString, Map, Observable, Out, Transact};

/// Edits of one text between two of its keyframes.
pub const KEYFRAME_EVERY: usize = 128;

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

/// One edit of a text: its seq and the index of its first step in [`OneText::steps`] (its
/// steps run to the next edit's first).
#[derive(Debug, Clone, Copy)]
struct TextOp {
    seq: u64,
    first: usize,
}

/// One root text's edits, steps and keyframes, and the order of its items.
#[derive(Debug, Clone)]
struct OneText {
    ops: Vec<TextOp>,
    steps: Vec<Kept>,
    /// The text every step inserts, one after another.
    inserted: String,
    /// `keyframes[k]` is the text after `ops[..k * KEYFRAME_EVERY]`.
    keyframes: Vec<Rope>,
    tip: Rope,
    /// The text's items in document order at the index's seq, to place the next edits.
    order: TextOrder,
}

impl OneText {
    fn new(order: TextOrder) -> OneText {
        OneText {
            ops: Vec::new(),
            steps: Vec::new(),
            inserted: String::new(),
            keyframes: vec![Rope::new()],
            tip: Rope::new(),
            order,
        }
    }

    fn approx_bytes(&self) -> usize {
        self.ops.capacity() * std::mem::size_of::<TextOp>()
            + self.steps.capacity() * std::mem::size_of::<Kept>()
            + self.inserted.capacity()
            + self.order.approx_bytes()
            + self.keyframes.len() * self.tip.len_bytes().min(16 * 1024)
            + self.tip.len_bytes()
    }

    /// Records one edit's steps (already applied to the tip); answers whether a keyframe was
    /// taken, or why the index must give up.
    fn record(&mut self, seq: u64, steps: Vec<Step>) -> Result<bool, &'static str> {
        self.ops.push(TextOp {
            seq,
            first: self.steps.len(),
        });
        for step in steps {
            let (Ok(at), Ok(delete)) = (u32::try_from(step.at), u32::try_from(step.delete)) else {
                return Err("a text past 4 billion characters");
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
        Ok(keyframe)
    }

    /// The text at `seq` (the caller checked the index reaches it).
    fn text_at(&self, seq: u64) -> Option<String> {
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

/// The document at one seq as the index answers it: every listed file (path, text) and the
/// board's elements (id, element JSON), both sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocAt {
    pub files: Vec<(String, String)>,
    pub board: Vec<(Arc<str>, Arc<str>)>,
}

/// Every text, the board and the file list at every edit of one log, up to
/// [`TextIndex::seq`].
#[derive(Debug, Clone)]
pub struct TextIndex {
    seq: u64,
    /// By the name of their root text (a file's first path; renames keep the root).
    texts: BTreeMap<Box<str>, OneText>,
    /// Every id seen so far, as elsewhere: the order of a text begun later starts as a copy.
    shadow: TextOrder,
    board: BoardIndex,
    listings: Listings,
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
            texts: BTreeMap::new(),
            shadow: TextOrder::default(),
            board: BoardIndex::default(),
            listings: Listings::default(),
            exact: true,
            why_not: None,
            limit: usize::MAX,
        }
    }
}

/// What a map's observer saw change in one transaction: the keys.
type Changed = Arc<Mutex<Vec<Arc<str>>>>;

fn take(changed: &Changed) -> Vec<Arc<str>> {
    std::mem::take(&mut *changed.lock().unwrap_or_else(|p| p.into_inner()))
}

impl TextIndex {
    /// The seq the index reaches: the text at any seq up to here is known.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the index answers: the log so far could be indexed (only text the orders can
    /// follow, the same texts as yrs') within the index's byte limit.
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
    /// and deletes (each kept as a step), or of large board elements rewritten often, can
    /// otherwise grow an index far past the document's own size.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Stops indexing and frees what the index held.
    fn give_up(&mut self, why: &'static str) {
        self.exact = false;
        self.why_not.get_or_insert(why);
        self.texts = BTreeMap::new();
        self.shadow = TextOrder::default();
        self.board = BoardIndex::default();
        self.listings = Listings::default();
    }

    /// Roughly the heap bytes held (each text's edits, steps and order, plus its text once per
    /// keyframe as an upper bound for the nodes keyframes do not share; the board's writes and
    /// the file lists).
    pub fn approx_bytes(&self) -> usize {
        self.texts
            .iter()
            .map(|(name, t)| name.len() + 64 + t.approx_bytes())
            .sum::<usize>()
            + self.shadow.approx_bytes()
            + self.board.approx_bytes()
            + self.listings.approx_bytes()
    }

    /// Extends the index from [`TextIndex::seq`] to `upto`. The caller rebuilds the document at
    /// `self.seq()` from `base` (a checkpoint at or before it, or `None` for the empty
    /// document) plus `catch_up` (the edits in `(base, self.seq()]`), and passes the new edits
    /// in `(self.seq(), upto]` as `new_edits`. The document only checks the new edits and the
    /// index's texts, and says which board elements and file entries each edit changed; where
    /// each edit's text goes comes from the index's own orders of items.
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
        let board = doc.get_or_insert_map(BOARD);
        let files = doc.get_or_insert_map(FILES);
        if let Some(base) = base {
            apply(&doc, base.state).map_err(|_| RebuildError::BadCheckpoint { seq: base.seq })?;
        }
        let mut owners = ClientOwners::new();
        for record in catch_up.iter().filter(|r| r.kind == EventKind::Edit) {
            apply_edit(&doc, &mut owners, record)?;
        }
        // From here on, yrs says which keys each edit changed.
        let (board_changed, files_changed) = (Changed::default(), Changed::default());
        for (map, sink) in [(&board, &board_changed), (&files, &files_changed)] {
            let sink = sink.clone();
            map.observe("duet-index", move |txn, event| {
                let keys = event.keys(txn).keys().cloned();
                sink.lock().unwrap_or_else(|p| p.into_inner()).extend(keys);
            });
        }
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
            if let Err(why) = self.index_edit(&doc, record.seq, &record.data) {
                self.give_up(why);
                break;
            }
            let changed = take(&board_changed);
            if !changed.is_empty() {
                let txn = doc.transact();
                for key in changed {
                    let value = match board.get(&txn, &key) {
                        Some(Out::Any(yrs::Any::String(json))) => Some(json),
                        _ => None,
                    };
                    self.board.record(record.seq, key, value);
                }
            }
            if !take(&files_changed).is_empty() {
                self.listings.record(record.seq, &doc);
            }
            if self.approx_bytes() > self.limit {
                self.give_up("over its byte limit");
            }
        }
        if self.exact {
            if let Some(why) = self.check_texts(&doc) {
                self.give_up(why);
            }
        }
        self.seq = self.seq.max(upto);
        Ok(())
    }

    /// Indexes one edit (already applied to `doc`): every text's steps; a new root text
    /// starts its order from the shadow's, and changes the file list.
    fn index_edit(&mut self, doc: &Doc, seq: u64, update: &[u8]) -> Result<(), &'static str> {
        let decoded = decode(update).map_err(|e| e.0)?;
        let mut new_root = false;
        for blocks in &decoded.0 {
            for block in blocks {
                if let Block::Item(item) = block {
                    if let Parent::Root(name) = &item.parent {
                        if crate::files::check_path(name).is_ok()
                            && !self.texts.contains_key(&**name)
                        {
                            self.texts
                                .insert(name.clone(), OneText::new(self.shadow.clone()));
                            new_root = true;
                        }
                    }
                }
            }
        }
        self.shadow
            .apply_decoded(&decoded, "", &mut Rope::new(), &mut Vec::new())
            .map_err(|e| e.0)?;
        for (name, text) in self.texts.iter_mut() {
            let mut steps = Vec::new();
            text.order
                .apply_decoded(&decoded, name, &mut text.tip, &mut steps)
                .map_err(|e| e.0)?;
            if !steps.is_empty() && text.record(seq, steps)? {
                // A keyframe: the text so far must be yrs' own.
                let root = doc.get_or_insert_text(&**name);
                if text.tip != root.get_string(&doc.transact()).as_str() {
                    return Err("a text differs from yrs' at a keyframe");
                }
            }
        }
        if new_root {
            self.listings.record(seq, doc);
        }
        Ok(())
    }

    /// Why the index's texts differ from the document's, if they do.
    fn check_texts(&self, doc: &Doc) -> Option<&'static str> {
        for (name, text) in &self.texts {
            let root = doc.get_or_insert_text(&**name);
            if text.tip != root.get_string(&doc.transact()).as_str() {
                return Some("a text differs from yrs'");
            }
        }
        None
    }

    /// The text of `main.py` at `seq`, or `None` past [`TextIndex::seq`] or when the index is
    /// not exact.
    pub fn text_at(&self, seq: u64) -> Option<String> {
        self.root_text_at(MAIN_FILE, seq)
    }

    fn root_text_at(&self, root: &str, seq: u64) -> Option<String> {
        if !self.exact || seq > self.seq {
            return None;
        }
        match self.texts.get(root) {
            Some(text) => text.text_at(seq),
            None => Some(String::new()), // never written to
        }
    }

    /// Every file listed at `seq` with its text, and the board's elements then; `None` past
    /// [`TextIndex::seq`] or when the index is not exact.
    pub fn doc_at(&self, seq: u64) -> Option<DocAt> {
        if !self.exact || seq > self.seq {
            return None;
        }
        let files = self
            .listings
            .at(seq)
            .iter()
            .map(|(path, root)| Some((path.clone(), self.root_text_at(root, seq)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(DocAt {
            files,
            board: self.board.at(seq),
        })
    }

    /// What each edit in `(after, upto]` changed: the file it typed into (its path then), the
    /// board elements, the changes of the file list. `None` when the index is not exact or
    /// does not reach `upto`.
    pub fn edit_facts(&self, after: u64, upto: u64) -> Option<EditFacts> {
        if !self.exact || upto > self.seq {
            return None;
        }
        let mut facts = EditFacts::default();
        for (root, text) in &self.texts {
            let from = text.ops.partition_point(|op| op.seq <= after);
            for op in text.ops[from..].iter().take_while(|op| op.seq <= upto) {
                if facts.files.contains_key(&op.seq) {
                    continue;
                }
                let listed = self.listings.at(op.seq);
                let path = listed
                    .iter()
                    .find(|(_, r)| **r == **root)
                    .map_or_else(|| root.to_string(), |(p, _)| p.clone());
                facts.files.insert(op.seq, path);
            }
        }
        for (seq, id) in self.board.writes_in(after, upto) {
            facts.board.entry(seq).or_default().push(id);
        }
        for (seq, before, now) in self.listings.changes_in(after, upto) {
            for change in FileChange::between(&before, &now) {
                facts.changes.push((seq, change));
            }
        }
        Some(facts)
    }
}
