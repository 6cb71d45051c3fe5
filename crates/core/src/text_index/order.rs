//! Where every character of `main.py` sits, by Yjs item id: the text's items (tombstones
//! included) in document order, so each logged update says by itself where its text goes.
//!
//! An update names, for each item it inserts, the ids of its neighbours when it was typed
//! (origin and right origin) and, in its delete set, the id ranges it removes. Placing an item is
//! Yjs' own integration (YATA, as `Item::integrate` and `resolve_conflict` in yrs do it), run
//! against this order instead of yrs' linked list; an item's character position is then a
//! prefix sum. The order is kept in chunks of at most [`CHUNK`] segments, each chunk knowing
//! how many visible characters it holds (summed in a Fenwick tree), with a map from each
//! segment's first id to its chunk: finding an id and its position costs a map lookup, a scan
//! of one chunk and a logarithmic prefix sum, never a walk of every item (which is what yrs'
//! change delta does, per edit).
//!
//! A segment is a run of one client's consecutive ids, cut wherever another item is placed
//! inside it or a delete ends inside it, and joined (as yrs squashes items) when a client keeps
//! typing at its own end or deletes next to its own tombstone. How the items are cut into
//! segments does not change where anything goes: Yjs integration is defined so that splitting
//! an item changes nothing. Segments hold no text: the text is the caller's rope, which every
//! step is applied to as soon as it is found, so the two always agree.
//!
//! Anything this order cannot follow exactly (an item whose neighbours are missing or
//! garbage-collected, content other than text in the text, a cut inside a surrogate pair)
//! is an [`Unfollowable`] update: the index gives up rather than guess.

use super::Step;
use ropey::Rope;
use std::collections::{BTreeMap, HashMap};
use yrs::ID;

mod chunks;
mod decode;
#[cfg(test)]
mod tests;

use chunks::{Chunk, Sums};
pub(super) use decode::{decode, Block, Decoded, Holds, Parent};

/// Segments a chunk holds before it splits in two.
const CHUNK: usize = 128;

/// An update the order cannot follow exactly; the words say why (for tests and debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unfollowable(pub &'static str);

impl From<yrs::encoding::read::Error> for Unfollowable {
    fn from(_: yrs::encoding::read::Error) -> Self {
        Unfollowable("the update does not decode")
    }
}

/// An id with its client interned (an index into [`TextOrder::clients`]): 8 bytes, not 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id {
    client: u32,
    clock: u32,
}

/// A run of one client's consecutive ids in the text.
#[derive(Debug, Clone)]
struct Seg {
    id: Id,
    /// Clock units: UTF-16 code units of the text, as Yjs counts them.
    len: u32,
    origin: Option<Id>,
    right_origin: Option<Id>,
    /// Visible characters; 0 once deleted (visible text is never empty).
    chars: u32,
}

impl Seg {
    fn end(&self) -> u32 {
        self.id.clock + self.len
    }

    fn last_id(&self) -> Id {
        Id {
            client: self.id.client,
            clock: self.end() - 1,
        }
    }

    fn deleted(&self) -> bool {
        self.chars == 0
    }

    /// Whether `right`, placed right after this segment, continues it as one yrs item would
    /// (yrs' squash): the same client's next ids, typed after its last, with the same right
    /// origin, both visible or both deleted.
    fn continued_by(&self, right: &Seg) -> bool {
        self.id.client == right.id.client
            && self.end() == right.id.clock
            && right.origin == Some(self.last_id())
            && self.right_origin == right.right_origin
            && self.deleted() == right.deleted()
    }
}

/// A segment's place: its chunk's index in document order, and its index in that chunk.
/// Valid until the order next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    chunk: usize,
    seg: usize,
}

/// Ids that are not the text's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Other {
    /// Items of another root type (the board) or of no root: nothing here depends on them.
    Elsewhere,
    /// Garbage-collected ranges: they have no neighbours any more.
    Gc,
}

/// Where an id is.
enum Place {
    Text(Pos),
    Other(Other),
    Missing,
}

/// The text's items in document order (see the module's documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct TextOrder {
    /// Chunks by id (never removed); `order` lists them in document order.
    chunks: Vec<Chunk>,
    order: Vec<usize>,
    /// The chunks' visible characters, by their index in `order`.
    sums: Sums,
    /// Client ids by their interned index, and back.
    clients: Vec<u64>,
    interned: HashMap<u64, u32>,
    /// Per interned client: the first clock of each of its text segments, to its chunk.
    text: Vec<BTreeMap<u32, usize>>,
    /// Per interned client: ranges of ids that are not the text's, `start -> (len, what)`.
    other: Vec<BTreeMap<u32, (u32, Other)>>,
    /// Per interned client: the next clock; every id below it is placed.
    next: Vec<u32>,
    segs: usize,
}

impl TextOrder {
    /// Roughly the heap bytes held.
    pub(crate) fn approx_bytes(&self) -> usize {
        // A segment, and its entry in a B-tree map (key, value and the node's slack).
        self.segs * (std::mem::size_of::<Seg>() + 24)
            + self.chunks.len() * std::mem::size_of::<Chunk>()
            + self.clients.len() * 128
    }

    /// Integrates one update (one transaction, already accepted by yrs and the strict parser):
    /// applies the plain-text steps it makes to `tip` (the text so far) and appends them, in
    /// order, to `steps`. On an error the order and `tip` are left half-changed: the caller
    /// drops both.
    #[cfg(test)]
    pub(crate) fn apply(
        &mut self,
        update: &[u8],
        tip: &mut Rope,
        steps: &mut Vec<Step>,
    ) -> Result<(), Unfollowable> {
        let decoded = decode(update)?;
        self.apply_decoded(&decoded, duet_protocol::MAIN_FILE, tip, steps)
    }

    /// [`TextOrder::apply`] for the text of the root named `root`, the update decoded once
    /// (by [`decode`]) for every text it may touch. With a `root` no item names, the order only
    /// learns that every id of the update is elsewhere: the seed of a text not begun yet.
    pub(crate) fn apply_decoded(
        &mut self,
        (clients, deletes): &Decoded,
        root: &str,
        tip: &mut Rope,
        steps: &mut Vec<Step>,
    ) -> Result<(), Unfollowable> {
        // Integrate in an order where every block's neighbours exist: each client's blocks in
        // clock order, the clients in turn until none can move on (yrs does the same with its
        // stack of clients; where concurrent items land does not depend on the order).
        let mut next = vec![0usize; clients.len()];
        loop {
            let mut progress = false;
            let mut remaining = false;
            for (i, blocks) in clients.iter().enumerate() {
                while let Some(block) = blocks.get(next[i]) {
                    let (id, len) = block.range();
                    let client = self.intern(id.client.get());
                    let known = self.next[client as usize];
                    if id.clock + len <= known {
                        next[i] += 1; // placed already (or a skip over placed ids)
                        progress = true;
                        continue;
                    }
                    if id.clock != known || matches!(block, Block::Skip { .. }) {
                        return Err(Unfollowable("a gap or an overlap in a client's clocks"));
                    }
                    if !self.ready(block) {
                        break; // its neighbour comes later in this update
                    }
                    self.integrate(block, root, tip, steps)?;
                    self.next[client as usize] = id.clock + len;
                    next[i] += 1;
                    progress = true;
                }
                remaining |= next[i] < blocks.len();
            }
            if !remaining {
                break;
            }
            if !progress {
                return Err(Unfollowable("an item waits for a neighbour nobody sent"));
            }
        }
        for (client, ranges) in deletes {
            let Some(client) = self.interned.get(client).copied() else {
                return Err(Unfollowable("a delete of ids nobody has"));
            };
            for (clock, len) in ranges {
                self.delete(client, *clock, *len, tip, steps)?;
            }
        }
        Ok(())
    }

    fn intern(&mut self, client: u64) -> u32 {
        if let Some(i) = self.interned.get(&client) {
            return *i;
        }
        let i = self.clients.len() as u32;
        self.clients.push(client);
        self.interned.insert(client, i);
        self.text.push(BTreeMap::new());
        self.other.push(BTreeMap::new());
        self.next.push(0);
        i
    }

    /// The interned form of a placed id (`None` if its client never placed anything).
    fn id(&self, id: ID) -> Option<Id> {
        Some(Id {
            client: *self.interned.get(&id.client.get())?,
            clock: id.clock,
        })
    }

    /// Whether a block's neighbours are placed.
    fn ready(&self, block: &Block) -> bool {
        let placed = |id: Option<ID>| {
            id.is_none_or(|id| {
                self.id(id)
                    .is_some_and(|id| id.clock < self.next[id.client as usize])
            })
        };
        match block {
            Block::Item(item) => placed(item.origin) && placed(item.right_origin),
            _ => true,
        }
    }

    fn integrate(
        &mut self,
        block: &Block,
        root: &str,
        tip: &mut Rope,
        steps: &mut Vec<Step>,
    ) -> Result<(), Unfollowable> {
        let item = match block {
            Block::Gc { id, len } => {
                self.note_other(*id, *len, Other::Gc);
                return Ok(());
            }
            Block::Skip { .. } => return Err(Unfollowable("a skip over ids nobody has")),
            Block::Item(item) => item,
        };
        // `ready` found both neighbours placed, so both intern.
        let origin = item.origin.and_then(|id| self.id(id));
        let right_origin = item.right_origin.and_then(|id| self.id(id));
        let in_text = match &item.parent {
            Parent::Root(name) => **name == *root,
            Parent::Elsewhere => false,
            Parent::Neighbours => {
                let side = |id: Option<Id>| id.map(|id| self.place(id));
                match (side(origin), side(right_origin)) {
                    (Some(Place::Text(_)), None | Some(Place::Text(_)))
                    | (None, Some(Place::Text(_))) => true,
                    (
                        Some(Place::Other(Other::Elsewhere)),
                        None | Some(Place::Other(Other::Elsewhere)),
                    )
                    | (None, Some(Place::Other(Other::Elsewhere))) => false,
                    _ => {
                        return Err(Unfollowable(
                            "an item next to a garbage-collected neighbour",
                        ))
                    }
                }
            }
        };
        if !in_text {
            self.note_other(item.id, item.len, Other::Elsewhere);
            return Ok(());
        }
        let text = match &item.holds {
            Holds::Text(s) => Some(s.as_str()),
            Holds::Deleted => None,
            Holds::Other => return Err(Unfollowable("content other than text in the text")),
        };
        let seg = Seg {
            id: Id {
                client: self.intern(item.id.client.get()),
                clock: item.id.clock,
            },
            len: item.len,
            origin,
            right_origin,
            chars: text.map_or(0, |t| t.chars().count() as u32),
        };
        let at = self.place_item(seg, tip)?;
        if let Some(text) = text {
            if at > tip.len_chars() {
                return Err(Unfollowable("an insert past the end of the text"));
            }
            tip.insert(at, text);
            steps.push(Step {
                at,
                delete: 0,
                insert: text.to_owned(),
            });
        }
        Ok(())
    }

    /// Places a new item in the order (Yjs' integration); answers its character position.
    fn place_item(&mut self, seg: Seg, tip: &Rope) -> Result<usize, Unfollowable> {
        // Cut the segments so the origin ends one and the right origin starts one.
        if let Some(o) = seg.origin {
            let p = self
                .text_pos(o)
                .ok_or(Unfollowable("an origin outside the text"))?;
            let s = self.seg(p);
            if o.clock + 1 < s.end() {
                let off = o.clock + 1 - s.id.clock;
                self.split(p, off, tip)?;
            }
        }
        if let Some(r) = seg.right_origin {
            let p = self
                .text_pos(r)
                .ok_or(Unfollowable("a right origin outside the text"))?;
            let off = r.clock - self.seg(p).id.clock;
            if off > 0 {
                self.split(p, off, tip)?;
            }
        }
        let mut left = seg.origin.and_then(|o| self.text_pos(o));
        let right = seg.right_origin.and_then(|r| self.text_pos(r));
        let conflict = match (left, right) {
            (None, None) => true,
            (None, Some(r)) => Some(r) != self.first(),
            (Some(l), r) => self.next(l) != r,
        };
        if conflict {
            // yrs' `resolve_conflict`, over the items placed between origin and right origin
            // since this one was typed. Its two sets are runs of the order ending at the item
            // looked at: `visited` from the first, `conflicting` from just after the last
            // item that became the left neighbour (emptying it is starting it anew).
            let mut o = match left {
                Some(l) => self.next(l),
                None => self.first(),
            };
            let visited = o;
            let mut conflicting = o;
            while let Some(p) = o {
                if Some(p) == right {
                    break;
                }
                let item = self.seg(p);
                if item.origin == seg.origin {
                    let (theirs, ours) = (
                        self.clients[item.id.client as usize],
                        self.clients[seg.id.client as usize],
                    );
                    if theirs < ours {
                        left = Some(p);
                        conflicting = self.next(p);
                    } else if item.right_origin == seg.right_origin {
                        break;
                    }
                } else if let Some(origin_left) = item.origin.and_then(|id| self.text_pos(id)) {
                    let within = |from: Option<Pos>| {
                        from.is_some_and(|f| f <= origin_left) && origin_left <= p
                    };
                    if within(visited) {
                        if !within(conflicting) {
                            left = Some(p);
                            conflicting = self.next(p);
                        }
                    } else {
                        break;
                    }
                } else {
                    break;
                }
                o = self.next(p);
            }
        }
        Ok(match left {
            Some(l) => {
                let at = self.rank(l) + self.seg(l).chars as usize;
                self.insert_after(l, seg);
                at
            }
            None => {
                self.insert_at(0, 0, seg);
                0
            }
        })
    }

    /// Deletes the text's ids in `[clock, clock + len)` of `client`, removing each visible
    /// run from `tip` and noting it as a step.
    fn delete(
        &mut self,
        client: u32,
        clock: u32,
        len: u32,
        tip: &mut Rope,
        steps: &mut Vec<Step>,
    ) -> Result<(), Unfollowable> {
        let end = clock
            .checked_add(len)
            .ok_or(Unfollowable("a delete past 32 bits of clock"))?;
        let mut cur = clock;
        while cur < end {
            let p = match self.place(Id { client, clock: cur }) {
                Place::Text(p) => p,
                Place::Other(_) => {
                    cur = self.other_end(client, cur);
                    continue;
                }
                Place::Missing => return Err(Unfollowable("a delete of ids nobody has")),
            };
            let s = self.seg(p);
            if s.deleted() {
                cur = s.end();
                continue;
            }
            if s.id.clock < cur {
                let off = cur - s.id.clock;
                self.split(p, off, tip)?;
                continue; // find the right part anew
            }
            if s.end() > end {
                self.split(p, end - cur, tip)?;
                continue;
            }
            let at = self.rank(p);
            let gone = s.chars as usize;
            cur = s.end();
            if at + gone > tip.len_chars() {
                return Err(Unfollowable("a delete past the end of the text"));
            }
            tip.remove(at..at + gone);
            steps.push(Step {
                at,
                delete: gone,
                insert: String::new(),
            });
            let chunk = self.order[p.chunk];
            self.chunks[chunk].segs[p.seg].chars = 0;
            self.chunks[chunk].chars -= gone;
            self.sums.sub(p.chunk, gone);
            self.join_tombstones(p);
        }
        Ok(())
    }

    /// Joins the newly deleted segment at `p` with deleted neighbours it continues or that
    /// continue it, within its chunk (a typist's backspaces become one tombstone).
    fn join_tombstones(&mut self, p: Pos) {
        let chunk = self.order[p.chunk];
        let segs = &mut self.chunks[chunk].segs;
        let mut at = p.seg;
        if at + 1 < segs.len() && segs[at].continued_by(&segs[at + 1]) {
            let right = segs.remove(at + 1);
            segs[at].len += right.len;
            self.text[right.id.client as usize].remove(&right.id.clock);
            self.segs -= 1;
        }
        if at > 0 && segs[at - 1].continued_by(&segs[at]) {
            let right = segs.remove(at);
            at -= 1;
            segs[at].len += right.len;
            self.text[right.id.client as usize].remove(&right.id.clock);
            self.segs -= 1;
        }
    }

    fn other_range(&self, client: u32, clock: u32) -> Option<(u32, u32, Other)> {
        let (start, (len, what)) = self.other[client as usize].range(..=clock).next_back()?;
        (clock < start + len).then_some((*start, *len, *what))
    }

    fn other_end(&self, client: u32, clock: u32) -> u32 {
        self.other_range(client, clock)
            .map_or(clock + 1, |(start, len, _)| start + len)
    }

    fn place(&self, id: Id) -> Place {
        if let Some(p) = self.text_pos(id) {
            return Place::Text(p);
        }
        match self.other_range(id.client, id.clock) {
            Some((_, _, what)) => Place::Other(what),
            None => Place::Missing,
        }
    }

    fn note_other(&mut self, id: ID, len: u32, what: Other) {
        let client = self.intern(id.client.get());
        let ranges = &mut self.other[client as usize];
        if let Some((start, (prev_len, prev))) = ranges.range_mut(..id.clock).next_back() {
            if *prev == what && start + *prev_len == id.clock {
                *prev_len += len;
                return;
            }
        }
        ranges.insert(id.clock, (len, what));
    }
}
