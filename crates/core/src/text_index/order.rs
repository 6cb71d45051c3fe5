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
use duet_protocol::MAIN_FILE;
use ropey::Rope;
use std::collections::{BTreeMap, HashMap};
use yrs::block::ItemContent;
use yrs::encoding::read::Read;
use yrs::updates::decoder::{Decoder, DecoderV1};
use yrs::ID;

/// Segments a chunk holds before it splits in two.
const CHUNK: usize = 128;

const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0x80;
const HAS_RIGHT_ORIGIN: u8 = 0x40;
const HAS_PARENT_SUB: u8 = 0x20;

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

#[derive(Debug, Clone, Default)]
struct Chunk {
    segs: Vec<Seg>,
    /// Visible characters in `segs`.
    chars: usize,
    /// This chunk's index in [`TextOrder::order`].
    at: usize,
}

/// The visible characters of the chunks in document order, as a Fenwick tree: the characters
/// before a chunk are a sum of O(log n) entries, and a chunk's count changes in O(log n).
#[derive(Debug, Clone, Default)]
struct Sums(Vec<usize>);

impl Sums {
    /// Built in O(n) from each chunk's count, in document order.
    fn new(chars: impl Iterator<Item = usize>) -> Sums {
        let mut tree: Vec<usize> = chars.collect();
        for i in 0..tree.len() {
            let parent = i | (i + 1);
            if parent < tree.len() {
                tree[parent] += tree[i];
            }
        }
        Sums(tree)
    }

    fn add(&mut self, mut at: usize, n: usize) {
        while at < self.0.len() {
            self.0[at] += n;
            at |= at + 1;
        }
    }

    fn sub(&mut self, mut at: usize, n: usize) {
        while at < self.0.len() {
            self.0[at] -= n;
            at |= at + 1;
        }
    }

    /// The characters of the chunks before the one at `at`.
    fn before(&self, at: usize) -> usize {
        let mut sum = 0;
        let mut end = at;
        while end > 0 {
            sum += self.0[end - 1];
            end &= end - 1;
        }
        sum
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

/// What a block of an update holds, as far as the text is concerned.
enum Holds {
    /// Visible text.
    Text(String),
    /// Deleted content (a tombstone), of whatever type.
    Deleted,
    /// Anything else: map values, embeds, formatting, nested types.
    Other,
}

/// Which type an item belongs to, as its header says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Text,
    Elsewhere,
    /// It has neighbours: its parent is theirs.
    Neighbours,
}

struct Item {
    id: ID,
    len: u32,
    origin: Option<ID>,
    right_origin: Option<ID>,
    parent: Parent,
    holds: Holds,
}

enum Block {
    Item(Item),
    Gc { id: ID, len: u32 },
    Skip { id: ID, len: u32 },
}

impl Block {
    fn range(&self) -> (ID, u32) {
        match self {
            Block::Item(Item { id, len, .. }) | Block::Gc { id, len } | Block::Skip { id, len } => {
                (*id, *len)
            }
        }
    }
}

/// A v1 update read with yrs' own decoder: per client its blocks, then the delete set.
type Decoded = (Vec<Vec<Block>>, Vec<(u64, Vec<(u32, u32)>)>);

fn decode(update: &[u8]) -> Result<Decoded, Unfollowable> {
    let mut d = DecoderV1::from(update);
    let clients: u32 = d.read_var()?;
    let mut out = Vec::new();
    for _ in 0..clients {
        let structs: u32 = d.read_var()?;
        let client = d.read_client()?;
        let mut clock: u32 = d.read_var()?;
        let mut blocks = Vec::new();
        for _ in 0..structs {
            let id = ID::new(client, clock);
            let info = d.read_info()?;
            let block = match info {
                BLOCK_SKIP => Block::Skip {
                    id,
                    len: d.read_var()?,
                },
                BLOCK_GC => Block::Gc {
                    id,
                    len: d.read_len()?,
                },
                _ => Block::Item(decode_item(&mut d, id, info)?),
            };
            let (_, len) = block.range();
            if len == 0 {
                return Err(Unfollowable("a struct of length 0"));
            }
            clock = clock
                .checked_add(len)
                .ok_or(Unfollowable("a clock past 32 bits"))?;
            blocks.push(block);
        }
        out.push(blocks);
    }
    let mut deletes = Vec::new();
    let clients: u32 = d.read_var()?;
    for _ in 0..clients {
        let client: u64 = d.read_var()?;
        let ranges: u32 = d.read_var()?;
        let mut list = Vec::new();
        for _ in 0..ranges {
            list.push((d.read_ds_clock()?, d.read_ds_len()?));
        }
        deletes.push((client, list));
    }
    Ok((out, deletes))
}

fn decode_item(d: &mut DecoderV1<'_>, id: ID, info: u8) -> Result<Item, Unfollowable> {
    let origin = (info & HAS_ORIGIN != 0)
        .then(|| d.read_left_id())
        .transpose()?;
    let right_origin = (info & HAS_RIGHT_ORIGIN != 0)
        .then(|| d.read_right_id())
        .transpose()?;
    let parent = if origin.is_none() && right_origin.is_none() {
        let text = if d.read_parent_info()? {
            d.read_string()? == MAIN_FILE
        } else {
            d.read_left_id()?; // the item of a nested type
            false
        };
        let keyed = info & HAS_PARENT_SUB != 0;
        if keyed {
            d.read_string()?; // a map entry's key
        }
        if text && !keyed {
            Parent::Text
        } else {
            Parent::Elsewhere
        }
    } else {
        Parent::Neighbours
    };
    let content = ItemContent::decode(d, info)?;
    let len = content.len_utf16();
    let holds = match content {
        ItemContent::String(s) => Holds::Text(s.as_str().to_owned()),
        ItemContent::Deleted(_) => Holds::Deleted,
        _ => Holds::Other,
    };
    Ok(Item {
        id,
        len,
        origin,
        right_origin,
        parent,
        holds,
    })
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
    pub(crate) fn apply(
        &mut self,
        update: &[u8],
        tip: &mut Rope,
        steps: &mut Vec<Step>,
    ) -> Result<(), Unfollowable> {
        let (clients, deletes) = decode(update)?;
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
                    self.integrate(block, tip, steps)?;
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
            let Some(client) = self.interned.get(&client).copied() else {
                return Err(Unfollowable("a delete of ids nobody has"));
            };
            for (clock, len) in ranges {
                self.delete(client, clock, len, tip, steps)?;
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
        let in_text = match item.parent {
            Parent::Text => true,
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

    fn seg(&self, p: Pos) -> &Seg {
        &self.chunks[self.order[p.chunk]].segs[p.seg]
    }

    fn first(&self) -> Option<Pos> {
        let chunk = self.order.first()?;
        (!self.chunks[*chunk].segs.is_empty()).then_some(Pos { chunk: 0, seg: 0 })
    }

    fn next(&self, p: Pos) -> Option<Pos> {
        if p.seg + 1 < self.chunks[self.order[p.chunk]].segs.len() {
            return Some(Pos {
                chunk: p.chunk,
                seg: p.seg + 1,
            });
        }
        (p.chunk + 1 < self.order.len()).then_some(Pos {
            chunk: p.chunk + 1,
            seg: 0,
        })
    }

    /// Visible characters before the segment at `p`.
    fn rank(&self, p: Pos) -> usize {
        let before = self.sums.before(p.chunk);
        let within: usize = self.chunks[self.order[p.chunk]].segs[..p.seg]
            .iter()
            .map(|s| s.chars as usize)
            .sum();
        before + within
    }

    /// The text segment holding `id`.
    fn text_pos(&self, id: Id) -> Option<Pos> {
        let (start, chunk) = self.text[id.client as usize]
            .range(..=id.clock)
            .next_back()?;
        let chunk = &self.chunks[*chunk];
        let seg = chunk
            .segs
            .iter()
            .position(|s| s.id.client == id.client && s.id.clock == *start)?;
        (id.clock < chunk.segs[seg].end()).then_some(Pos {
            chunk: chunk.at,
            seg,
        })
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

    /// Cuts the segment at `p` after `off` clock units. A visible segment's characters are
    /// counted in `tip`, where it starts at its rank.
    fn split(&mut self, p: Pos, off: u32, tip: &Rope) -> Result<(), Unfollowable> {
        let chars = if self.seg(p).deleted() {
            0
        } else {
            let start = self.rank(p);
            let cut = tip
                .try_char_to_utf16_cu(start)
                .ok()
                .map(|units| units + off as usize)
                .and_then(|units| {
                    let c = tip.try_utf16_cu_to_char(units).ok()?;
                    // A cut between the halves of a surrogate pair has no character position.
                    (tip.try_char_to_utf16_cu(c).ok()? == units).then_some(c)
                })
                .ok_or(Unfollowable("a cut inside a character"))?;
            let left = cut - start;
            if left == 0 || left >= self.seg(p).chars as usize {
                return Err(Unfollowable("a cut outside the segment's text"));
            }
            self.seg(p).chars - left as u32
        };
        let chunk = self.order[p.chunk];
        let s = &mut self.chunks[chunk].segs[p.seg];
        let at = s.id.clock + off;
        let right = Seg {
            id: Id {
                client: s.id.client,
                clock: at,
            },
            len: s.len - off,
            origin: Some(Id {
                client: s.id.client,
                clock: at - 1,
            }),
            right_origin: s.right_origin,
            chars,
        };
        s.len = off;
        s.chars -= chars;
        // The right part's characters move: `insert_at` counts them again.
        self.chunks[chunk].chars -= chars as usize;
        self.sums.sub(p.chunk, chars as usize);
        self.insert_at(p.chunk, p.seg + 1, right);
        Ok(())
    }

    /// Puts `seg` right after the segment at `p`, joined to it when it continues it.
    fn insert_after(&mut self, p: Pos, seg: Seg) {
        let chunk = self.order[p.chunk];
        let left = &mut self.chunks[chunk].segs[p.seg];
        if left.continued_by(&seg) {
            left.len += seg.len;
            left.chars += seg.chars;
            self.chunks[chunk].chars += seg.chars as usize;
            self.sums.add(p.chunk, seg.chars as usize);
            return;
        }
        self.insert_at(p.chunk, p.seg + 1, seg);
    }

    /// Inserts `seg` at index `seg_at` of the chunk at `chunk_at` in document order.
    fn insert_at(&mut self, chunk_at: usize, seg_at: usize, seg: Seg) {
        if self.order.is_empty() {
            self.chunks.push(Chunk::default());
            self.order.push(self.chunks.len() - 1);
            self.sums = Sums::new([0].into_iter());
        }
        let id = self.order[chunk_at];
        self.text[seg.id.client as usize].insert(seg.id.clock, id);
        self.segs += 1;
        self.sums.add(chunk_at, seg.chars as usize);
        let chunk = &mut self.chunks[id];
        chunk.chars += seg.chars as usize;
        chunk.segs.insert(seg_at, seg);
        if chunk.segs.len() > CHUNK {
            self.split_chunk(chunk_at);
        }
    }

    /// Moves the second half of a full chunk to a new chunk right after it.
    fn split_chunk(&mut self, chunk_at: usize) {
        let id = self.order[chunk_at];
        let moved = self.chunks[id].segs.split_off(CHUNK / 2);
        let chars: usize = moved.iter().map(|s| s.chars as usize).sum();
        self.chunks[id].chars -= chars;
        let new = self.chunks.len();
        for s in &moved {
            self.text[s.id.client as usize].insert(s.id.clock, new);
        }
        self.chunks.push(Chunk {
            segs: moved,
            chars,
            at: chunk_at + 1,
        });
        self.order.insert(chunk_at + 1, new);
        for (at, c) in self.order.iter().enumerate().skip(chunk_at + 1) {
            self.chunks[*c].at = at;
        }
        // Every later chunk moved one place: rebuild the sums (once per CHUNK / 2 segments).
        self.sums = Sums::new(self.order.iter().map(|c| self.chunks[*c].chars));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::encoding::write::Write;
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    use yrs::{Doc, GetString, Map, Text, Transact};

    #[test]
    fn whiteboard_entries_in_the_same_updates_leave_the_text_where_yrs_puts_it() {
        let doc = Doc::with_client_id(9);
        let text = doc.get_or_insert_text(MAIN_FILE);
        let board = doc.get_or_insert_map("board");
        let (mut order, mut tip) = (TextOrder::default(), Rope::new());
        for i in 0..60u32 {
            let update = {
                let mut txn = doc.transact_mut();
                // Setting a key again replaces (and tombstones) the entry before.
                board.insert(&mut txn, format!("e{}", i % 7), format!("{{\"id\":{i}}}"));
                let len = text.len(&txn);
                text.insert(&mut txn, (i * 7) % (len + 1), "ab");
                if i % 5 == 4 {
                    board.remove(&mut txn, "e1");
                    text.remove_range(&mut txn, 1, 2);
                }
                txn.encode_update_v1()
            };
            order
                .apply(&update, &mut tip, &mut Vec::new())
                .expect("the order follows it");
            assert_eq!(
                tip.to_string(),
                text.get_string(&doc.transact()),
                "edit {i}"
            );
        }
    }

    #[test]
    fn text_anchored_on_a_garbage_collected_range_is_refused_not_guessed() {
        // Client 1 sends two collected clocks, then "x" typed after the second: yrs cannot
        // tell which type "x" belongs to and drops it; the order refuses to guess.
        let mut e = EncoderV1::new();
        e.write_var(1u32); // one client
        e.write_var(2u32); // two structs
        e.write_client(yrs::block::ClientID::new(1));
        e.write_var(0u32); // from clock 0
        e.write_info(BLOCK_GC);
        e.write_len(2);
        e.write_info(HAS_ORIGIN | 4); // a string with an origin
        e.write_left_id(&ID::new(yrs::block::ClientID::new(1), 1));
        e.write_string("x");
        e.write_var(0u32); // no deletes
        let update = e.to_vec();
        let doc = Doc::new();
        let decoded = yrs::Update::decode_v1(&update).expect("decodes");
        doc.transact_mut()
            .apply_update(decoded)
            .expect("yrs takes it");
        let text = doc.get_or_insert_text(MAIN_FILE);
        assert_eq!(
            text.get_string(&doc.transact()),
            "",
            "yrs keeps no text of it"
        );
        let (mut order, mut tip) = (TextOrder::default(), Rope::new());
        assert_eq!(
            order.apply(&update, &mut tip, &mut Vec::new()),
            Err(Unfollowable(
                "an item next to a garbage-collected neighbour"
            ))
        );
    }
}
