//! The order's storage: segments in chunks of at most [`CHUNK`] (document order through
//! `order`), each chunk's visible characters summed in a Fenwick tree, and the moves that find,
//! count, cut and insert segments.

use super::{Id, Pos, Seg, TextOrder, Unfollowable, CHUNK};
use ropey::Rope;

#[derive(Debug, Clone, Default)]
pub(super) struct Chunk {
    pub(super) segs: Vec<Seg>,
    /// Visible characters in `segs`.
    pub(super) chars: usize,
    /// This chunk's index in [`TextOrder::order`].
    pub(super) at: usize,
}

/// The visible characters of the chunks in document order, as a Fenwick tree: the characters
/// before a chunk are a sum of O(log n) entries, and a chunk's count changes in O(log n).
#[derive(Debug, Clone, Default)]
pub(super) struct Sums(Vec<usize>);

impl Sums {
    /// Built in O(n) from each chunk's count, in document order.
    pub(super) fn new(chars: impl Iterator<Item = usize>) -> Sums {
        let mut tree: Vec<usize> = chars.collect();
        for i in 0..tree.len() {
            let parent = i | (i + 1);
            if parent < tree.len() {
                tree[parent] += tree[i];
            }
        }
        Sums(tree)
    }

    pub(super) fn add(&mut self, mut at: usize, n: usize) {
        while at < self.0.len() {
            self.0[at] += n;
            at |= at + 1;
        }
    }

    pub(super) fn sub(&mut self, mut at: usize, n: usize) {
        while at < self.0.len() {
            self.0[at] -= n;
            at |= at + 1;
        }
    }

    /// The characters of the chunks before the one at `at`.
    pub(super) fn before(&self, at: usize) -> usize {
        let mut sum = 0;
        let mut end = at;
        while end > 0 {
            sum += self.0[end - 1];
            end &= end - 1;
        }
        sum
    }
}

impl TextOrder {
    pub(super) fn seg(&self, p: Pos) -> &Seg {
        &self.chunks[self.order[p.chunk]].segs[p.seg]
    }

    pub(super) fn first(&self) -> Option<Pos> {
        let chunk = self.order.first()?;
        (!self.chunks[*chunk].segs.is_empty()).then_some(Pos { chunk: 0, seg: 0 })
    }

    pub(super) fn next(&self, p: Pos) -> Option<Pos> {
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
    pub(super) fn rank(&self, p: Pos) -> usize {
        let before = self.sums.before(p.chunk);
        let within: usize = self.chunks[self.order[p.chunk]].segs[..p.seg]
            .iter()
            .map(|s| s.chars as usize)
            .sum();
        before + within
    }

    /// The text segment holding `id`.
    pub(super) fn text_pos(&self, id: Id) -> Option<Pos> {
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

    /// Cuts the segment at `p` after `off` clock units. A visible segment's characters are
    /// counted in `tip`, where it starts at its rank.
    pub(super) fn split(&mut self, p: Pos, off: u32, tip: &Rope) -> Result<(), Unfollowable> {
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
    pub(super) fn insert_after(&mut self, p: Pos, seg: Seg) {
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
    pub(super) fn insert_at(&mut self, chunk_at: usize, seg_at: usize, seg: Seg) {
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
