//! The board and the file list at every edit of a log, beside the texts' index
//! ([`crate::TextIndex`]), which feeds them from a real yrs document.
//!
//! - The board ([`BoardIndex`]): for each element id, its writes in seq order (the element's
//!   JSON, or `None` once removed). The board at a seq is, for each id, its last write at or
//!   before it: a binary search per element, a few microseconds for a board of thousands,
//!   with no keyframe to keep (a write is the element's whole state).
//! - The file list ([`Listings`]): the paths listed and the root text each shows, kept whole at
//!   each change (a file created, renamed or deleted: rare), found by binary search.

use crate::files::{self, MAIN_FILE};
use std::collections::BTreeMap;
use std::sync::Arc;
use yrs::Doc;

/// One write of an element: its JSON from `seq` on (`None`: removed).
#[derive(Debug, Clone)]
struct Write {
    seq: u64,
    value: Option<Arc<str>>,
}

/// Every element's writes, by element id.
#[derive(Debug, Clone, Default)]
pub struct BoardIndex {
    elements: BTreeMap<Arc<str>, Vec<Write>>,
    bytes: usize,
}

impl BoardIndex {
    /// Notes that at `seq` the element `id` became `value` (`None`: removed). Seqs only grow.
    pub fn record(&mut self, seq: u64, id: Arc<str>, value: Option<Arc<str>>) {
        self.bytes += std::mem::size_of::<Write>() + value.as_ref().map_or(0, |v| v.len() + 16);
        let writes = self.elements.entry(id).or_insert_with_key(|id| {
            self.bytes += id.len() + 64;
            Vec::new()
        });
        match writes.last_mut() {
            Some(last) if last.seq == seq => last.value = value,
            _ => writes.push(Write { seq, value }),
        }
    }

    /// The elements at `seq`, by id.
    pub fn at(&self, seq: u64) -> Vec<(Arc<str>, Arc<str>)> {
        self.elements
            .iter()
            .filter_map(|(id, writes)| {
                let n = writes.partition_point(|w| w.seq <= seq);
                let value = writes.get(n.checked_sub(1)?)?.value.clone()?;
                Some((id.clone(), value))
            })
            .collect()
    }

    /// Every write in `(after, upto]`: its seq and the element's id.
    pub fn writes_in(&self, after: u64, upto: u64) -> Vec<(u64, Arc<str>)> {
        let mut out = Vec::new();
        for (id, writes) in &self.elements {
            let from = writes.partition_point(|w| w.seq <= after);
            for w in writes[from..].iter().take_while(|w| w.seq <= upto) {
                out.push((w.seq, id.clone()));
            }
        }
        out
    }

    /// Roughly the heap bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }
}

/// The files listed (path, root text) from each change of the list on.
#[derive(Debug, Clone, Default)]
pub struct Listings {
    changes: Vec<(u64, ListAt)>,
    bytes: usize,
}

impl Listings {
    /// Notes the files `doc` lists after the edit at `seq`, if they changed.
    pub fn record(&mut self, seq: u64, doc: &Doc) {
        let listed: Vec<(String, String)> = files::listing(doc)
            .paths
            .into_iter()
            .filter_map(|(path, root)| Some((path, root?)))
            .collect();
        if *self.at(seq) == listed {
            return;
        }
        self.bytes += 48
            + listed
                .iter()
                .map(|(p, r)| p.len() + r.len() + 48)
                .sum::<usize>();
        match self.changes.last_mut() {
            Some((last, list)) if *last == seq => *list = Arc::new(listed),
            _ => self.changes.push((seq, Arc::new(listed))),
        }
    }

    /// The files listed at `seq`: before any change, `main.py` alone.
    pub fn at(&self, seq: u64) -> Arc<Vec<(String, String)>> {
        let n = self.changes.partition_point(|(s, _)| *s <= seq);
        match n.checked_sub(1) {
            Some(i) => self.changes[i].1.clone(),
            None => Arc::new(vec![(MAIN_FILE.to_owned(), MAIN_FILE.to_owned())]),
        }
    }

    /// Each change in `(after, upto]`: its seq, the list before it and the list it made.
    pub fn changes_in(&self, after: u64, upto: u64) -> Vec<(u64, ListAt, ListAt)> {
        let from = self.changes.partition_point(|(s, _)| *s <= after);
        self.changes[from..]
            .iter()
            .take_while(|(s, _)| *s <= upto)
            .map(|(seq, now)| (*seq, self.at(seq - 1), now.clone()))
            .collect()
    }

    /// Roughly the heap bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }
}

/// A file list: (path, root text) by path.
pub type ListAt = Arc<Vec<(String, String)>>;
