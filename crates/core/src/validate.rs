//! Checking a participant's Yjs update before anything of it touches the document.
//!
//! The shared document holds one thing: the text of `main.py`. So an update is accepted only if,
//! read with a strict parser of the v1 update format (not yrs's lenient one), it:
//! - inserts only text (string content) into the root `main.py`, or carries deleted content,
//!   garbage-collected ranges and skips (which stock clients send after garbage collection);
//! - names, as every origin and right origin, a struct the document has or that comes earlier in
//!   the same update, so nothing of it would wait as "pending" for a dependency;
//! - deletes only ranges that exist once it is applied;
//! - spells every number canonically (shortest varint form) and in range: client ids below
//!   2^53 (what JavaScript reads exactly), clocks within u32 (what yrs reads exactly).
//!
//! yrs and yjs disagree on numbers outside those ranges (a fifth varint byte that overflows 32
//! bits wraps in yrs and not in yjs), and yrs recurses through nested types when deleting and
//! collecting garbage; with no nested type accepted, no input can recurse. The parser does work
//! linear in the bytes it is given and never recurses.

use std::collections::HashMap;
use std::fmt;

/// The only root type a document may hold.
pub const ROOT: &str = duet_protocol::MAIN_FILE;

/// Largest client id: JavaScript reads integers exactly up to 2^53 - 1.
const MAX_CLIENT: u64 = (1 << 53) - 1;

/// Why an update was refused, in words a developer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid<T>(why: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(why.into()))
}

/// A struct's id: the client that made it and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    pub client: u64,
    pub clock: u32,
}

/// What one struct of an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A garbage-collected range: it fills clocks, holds nothing.
    Gc,
    /// A gap in the update: the receiver must already have these clocks.
    Skip,
    /// Text (or deleted content) placed between two neighbours.
    Item {
        origin: Option<Id>,
        right_origin: Option<Id>,
    },
}

/// One struct: `len` clocks starting at `clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub clock: u32,
    pub len: u32,
    pub kind: BlockKind,
}

/// An update as the strict parser read it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedUpdate {
    /// Per client, its structs in clock order (contiguous, as the format lays them out).
    pub clients: Vec<(u64, Vec<Block>)>,
    /// Per client, the deleted ranges `(clock, len)`.
    pub deletes: Vec<(u64, Vec<(u32, u32)>)>,
    /// UTF-8 bytes of text the update inserts (an upper bound of what it adds to the document).
    pub text_bytes: usize,
}

impl ParsedUpdate {
    /// Whether the update carries nothing at all.
    pub fn is_empty(&self) -> bool {
        self.clients.iter().all(|(_, b)| b.is_empty())
            && self.deletes.iter().all(|(_, r)| r.is_empty())
    }
}

/// A strict reader of lib0 encodings: canonical varints within a stated range, counts no larger
/// than the bytes left, UTF-8 strings.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn has_content(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// A length-prefixed byte string.
    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], Invalid> {
        let len = self.count(what)?;
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, Invalid> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| Invalid("update ends early".into()))?;
        self.pos += 1;
        Ok(b)
    }

    /// A canonical unsigned varint no larger than `max`.
    pub(crate) fn var(&mut self, max: u64, what: &str) -> Result<u64, Invalid> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            value |= part << shift;
            if b & 0x80 == 0 {
                if part == 0 && shift > 0 {
                    return invalid(format!("{what}: varint not in its shortest form"));
                }
                if value > max {
                    return invalid(format!("{what}: {value} is out of range (at most {max})"));
                }
                return Ok(value);
            }
            shift += 7;
            if shift > 49 {
                // 8 bytes carry 56 bits, enough for every value this format may hold.
                return invalid(format!("{what}: varint too long"));
            }
        }
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, Invalid> {
        Ok(self.var(u64::from(u32::MAX), what)? as u32)
    }

    fn count(&mut self, what: &str) -> Result<usize, Invalid> {
        // Every element takes at least one byte: a count beyond the bytes left is a lie.
        let n = self.var(u64::from(u32::MAX), what)? as usize;
        if n > self.buf.len() - self.pos {
            return invalid(format!("{what}: {n} is more than the update holds"));
        }
        Ok(n)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<&'a str, Invalid> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| Invalid(format!("{what}: not UTF-8")))
    }

    fn id(&mut self, what: &str) -> Result<Id, Invalid> {
        let client = self.var(MAX_CLIENT, what)?;
        let clock = self.u32(what)?;
        Ok(Id { client, clock })
    }
}

const GC: u8 = 0;
const CONTENT_DELETED: u8 = 1;
const CONTENT_STRING: u8 = 4;
const SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0x80;
const HAS_RIGHT_ORIGIN: u8 = 0x40;
const HAS_PARENT_SUB: u8 = 0x20;

fn content_name(r: u8) -> &'static str {
    match r {
        2 => "JSON content",
        3 => "binary content",
        5 => "an embed",
        6 => "formatting",
        7 => "a nested shared type",
        8 => "Any content",
        9 => "a subdocument",
        _ => "an unknown content type",
    }
}

/// Reads a v1 update strictly. Refuses anything but text in `main.py`, deletions, GC ranges and
/// skips, and any number not in its canonical form and range.
pub fn parse(bytes: &[u8]) -> Result<ParsedUpdate, Invalid> {
    let mut r = Reader::new(bytes);
    let mut out = ParsedUpdate::default();
    let clients = r.count("number of clients")?;
    let mut seen = HashMap::with_capacity(clients);
    for _ in 0..clients {
        let structs = r.count("number of structs")?;
        let client = r.var(MAX_CLIENT, "client id")?;
        if seen.insert(client, ()).is_some() {
            return invalid(format!("client {client} appears twice"));
        }
        let mut clock = r.u32("clock")?;
        let mut blocks = Vec::with_capacity(structs);
        for _ in 0..structs {
            let info = r.byte()?;
            let content = info & 0x1f;
            let (kind, len) = match content {
                GC | SKIP => {
                    if info != content {
                        return invalid("GC and skip structs take no flags");
                    }
                    let len = r.u32("length")?;
                    (
                        if content == GC {
                            BlockKind::Gc
                        } else {
                            BlockKind::Skip
                        },
                        len,
                    )
                }
                CONTENT_DELETED | CONTENT_STRING => {
                    if info & HAS_PARENT_SUB != 0 {
                        return invalid("text items have no parent key (a map entry is not text)");
                    }
                    let origin = if info & HAS_ORIGIN != 0 {
                        Some(r.id("origin")?)
                    } else {
                        None
                    };
                    let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
                        Some(r.id("right origin")?)
                    } else {
                        None
                    };
                    if origin.is_none() && right_origin.is_none() {
                        match r.var(1, "parent kind")? {
                            1 => {
                                let name = r.string("parent name")?;
                                if name != ROOT {
                                    return invalid(format!(
                                        "only the text {ROOT:?} may be edited, not {name:?}"
                                    ));
                                }
                            }
                            _ => {
                                return invalid(
                                    "a parent inside another type (nested types are not accepted)",
                                )
                            }
                        }
                    }
                    let len = if content == CONTENT_DELETED {
                        r.u32("deleted length")?
                    } else {
                        let text = r.string("text")?;
                        out.text_bytes += text.len();
                        u32::try_from(text.encode_utf16().count())
                            .map_err(|_| Invalid("text too long".into()))?
                    };
                    (
                        BlockKind::Item {
                            origin,
                            right_origin,
                        },
                        len,
                    )
                }
                other => {
                    return invalid(format!(
                        "only text may be inserted, not {}",
                        content_name(other)
                    ))
                }
            };
            if len == 0 {
                return invalid("a struct of length 0");
            }
            let end = clock
                .checked_add(len)
                .ok_or_else(|| Invalid("clock overflows 32 bits".into()))?;
            blocks.push(Block { clock, len, kind });
            clock = end;
        }
        out.clients.push((client, blocks));
    }
    let ds_clients = r.count("number of delete-set clients")?;
    let mut seen = HashMap::with_capacity(ds_clients);
    for _ in 0..ds_clients {
        let client = r.var(MAX_CLIENT, "delete-set client id")?;
        if seen.insert(client, ()).is_some() {
            return invalid(format!("delete-set client {client} appears twice"));
        }
        let ranges = r.count("number of deleted ranges")?;
        let mut list = Vec::with_capacity(ranges);
        for _ in 0..ranges {
            let clock = r.u32("deleted clock")?;
            let len = r.u32("deleted length")?;
            if len == 0 {
                return invalid("a deleted range of length 0");
            }
            clock
                .checked_add(len)
                .ok_or_else(|| Invalid("deleted range overflows 32 bits".into()))?;
            list.push((clock, len));
        }
        out.deletes.push((client, list));
    }
    if r.pos != bytes.len() {
        return invalid(format!(
            "{} bytes after the end of the update",
            bytes.len() - r.pos
        ));
    }
    Ok(out)
}

/// Reads a state vector (sync step 1) strictly: client to next clock.
pub fn parse_state_vector(bytes: &[u8]) -> Result<HashMap<u64, u32>, Invalid> {
    let mut r = Reader::new(bytes);
    let n = r.count("state vector length")?;
    let mut sv = HashMap::new();
    for _ in 0..n {
        let client = r.var(MAX_CLIENT, "client id")?;
        let clock = r.u32("clock")?;
        sv.insert(client, clock);
    }
    if r.has_content() {
        return invalid("bytes after the end of the state vector");
    }
    Ok(sv)
}

/// One entry of an awareness update: `(client, clock, state JSON)`.
pub type AwarenessEntry<'a> = (u64, u32, &'a str);

/// Reads an awareness update strictly.
pub fn parse_awareness(bytes: &[u8]) -> Result<Vec<AwarenessEntry<'_>>, Invalid> {
    let mut r = Reader::new(bytes);
    let n = r.count("number of awareness entries")?;
    let mut out = Vec::new();
    for _ in 0..n {
        let client = r.var(MAX_CLIENT, "awareness client id")?;
        let clock = r.u32("awareness clock")?;
        let json = r.string("awareness state")?;
        out.push((client, clock, json));
    }
    if r.has_content() {
        return invalid("bytes after the end of the awareness update");
    }
    Ok(out)
}

/// Checks that every struct of `update` could be integrated into a document whose state
/// vector is `known` (client to next clock) with nothing left pending, and that every deletion
/// names clocks that exist afterwards. Returns the clients under which the update creates new
/// structs (so their ownership can be checked), in the order they first advance.
pub fn check_dependencies(
    update: &ParsedUpdate,
    known: &HashMap<u64, u32>,
) -> Result<Vec<u64>, Invalid> {
    let mut available = known.clone();
    let mut next: Vec<usize> = vec![0; update.clients.len()];
    let mut creates = Vec::new();
    loop {
        let mut progress = false;
        let mut remaining = false;
        for (i, (client, blocks)) in update.clients.iter().enumerate() {
            while let Some(block) = blocks.get(next[i]) {
                let have = available.get(client).copied().unwrap_or(0);
                let end = block.clock + block.len;
                if end <= have {
                    next[i] += 1; // known already: integrating it changes nothing
                    progress = true;
                    continue;
                }
                if block.clock > have || block.kind == BlockKind::Skip {
                    // A gap before it, or a skip over clocks nobody has: it would wait, pending.
                    break;
                }
                if let BlockKind::Item {
                    origin,
                    right_origin,
                } = block.kind
                {
                    let exists = |id: Option<Id>| {
                        id.is_none_or(|id| {
                            id.clock < available.get(&id.client).copied().unwrap_or(0)
                        })
                    };
                    if !exists(origin) || !exists(right_origin) {
                        break;
                    }
                }
                available.insert(*client, end);
                if !creates.contains(client) {
                    creates.push(*client);
                }
                next[i] += 1;
                progress = true;
            }
            remaining |= next[i] < blocks.len();
        }
        if !remaining {
            break;
        }
        if !progress {
            let (client, blocks) = update
                .clients
                .iter()
                .enumerate()
                .find_map(|(i, (c, b))| b.get(next[i]).map(|b| (*c, *b)))
                .unwrap_or((
                    0,
                    Block {
                        clock: 0,
                        len: 0,
                        kind: BlockKind::Gc,
                    },
                ));
            return invalid(format!(
                "struct {client}:{} depends on something the document does not have (it would stay pending)",
                blocks.clock
            ));
        }
    }
    for (client, ranges) in &update.deletes {
        let have = available.get(client).copied().unwrap_or(0);
        if let Some((clock, len)) = ranges.iter().find(|(clock, len)| clock + len > have) {
            return invalid(format!(
                "deletes {client}:{clock}+{len}, which does not exist"
            ));
        }
    }
    Ok(creates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Array, Doc, Map, ReadTxn, StateVector, Text, Transact, WriteTxn};

    fn doc(client: u64) -> Doc {
        Doc::with_client_id(client)
    }

    fn typed(doc: &Doc, text: &str) -> Vec<u8> {
        let t = doc.get_or_insert_text(ROOT);
        let mut txn = doc.transact_mut();
        let len = yrs::GetString::get_string(&t, &txn).len() as u32;
        t.insert(&mut txn, len, text);
        txn.encode_update_v1()
    }

    #[test]
    fn text_typed_by_a_stock_client_is_accepted() {
        let d = doc(7);
        let first = typed(&d, "print('hi')");
        let parsed = parse(&first).unwrap_or_default();
        assert_eq!(parsed.text_bytes, 11);
        assert_eq!(check_dependencies(&parsed, &HashMap::new()), Ok(vec![7]));
        let second = typed(&d, "\n");
        let known = HashMap::from([(7, 11)]);
        assert_eq!(
            check_dependencies(&parse(&second).unwrap_or_default(), &known),
            Ok(vec![7])
        );
    }

    #[test]
    fn deletions_and_garbage_collected_history_are_accepted() {
        let d = doc(3);
        typed(&d, "abcdef");
        {
            let t = d.get_or_insert_text(ROOT);
            let mut txn = d.transact_mut();
            t.remove_range(&mut txn, 1, 3);
        }
        let whole = d
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let parsed = parse(&whole).unwrap_or_default();
        assert!(check_dependencies(&parsed, &HashMap::new()).is_ok());
    }

    #[test]
    fn nested_types_maps_and_other_roots_are_refused() {
        let d = doc(1);
        let nested = {
            let map = d.get_or_insert_map("scorecard");
            let mut txn = d.transact_mut();
            map.insert(&mut txn, "rating", 4);
            txn.encode_update_v1()
        };
        assert!(parse(&nested).is_err());
        let d = doc(2);
        let array = {
            let mut txn = d.transact_mut();
            let a = txn.get_or_insert_array(ROOT);
            a.push_back(&mut txn, yrs::ArrayPrelim::default());
            txn.encode_update_v1()
        };
        let refused = parse(&array);
        assert!(
            refused.as_ref().is_err_and(|e| e.0.contains("not")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_struct_that_names_itself_as_origin_would_stay_pending() {
        // One item of client 5 at clock 0 whose origin is 5:0: itself.
        let bytes = [1, 1, 5, 0, CONTENT_STRING | HAS_ORIGIN, 5, 0, 1, b'x', 0];
        let parsed = parse(&bytes).unwrap_or_default();
        assert!(check_dependencies(&parsed, &HashMap::new()).is_err());
    }

    #[test]
    fn a_gap_in_clocks_would_stay_pending() {
        let d = doc(9);
        typed(&d, "ab");
        let later = typed(&d, "c"); // clock 2, but the receiver has nothing of client 9
        assert!(check_dependencies(&parse(&later).unwrap_or_default(), &HashMap::new()).is_err());
    }

    #[test]
    fn deleting_what_does_not_exist_is_refused() {
        let bytes = [0, 1, 4, 1, 0, 3];
        assert!(check_dependencies(&parse(&bytes).unwrap_or_default(), &HashMap::new()).is_err());
        assert!(
            check_dependencies(&parse(&bytes).unwrap_or_default(), &HashMap::from([(4, 3)]))
                .is_ok()
        );
    }

    #[test]
    fn non_canonical_and_out_of_range_varints_are_refused() {
        // Clock 0 spelled in two bytes.
        assert!(parse(&[1, 1, 5, 0x80, 0x00, 0, 1, 0]).is_err());
        // A clock whose fifth byte overflows 32 bits (yrs wraps it, yjs does not).
        assert!(parse(&[1, 1, 5, 0x81, 0x80, 0x80, 0x80, 0x10, 0, 1, 0]).is_err());
        // A client id past 2^53.
        assert!(
            parse(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 1, 0]).is_err()
        );
        // Trailing bytes.
        assert!(parse(&[0, 0, 0]).is_err());
        // A count larger than the message.
        assert!(parse(&[0x7f]).is_err());
    }

    #[test]
    fn every_truncation_of_a_real_update_is_refused_without_panicking() {
        let d = doc(11);
        typed(&d, "def f():\n    return 1\n");
        let full = d
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        for cut in 0..full.len() {
            assert!(
                parse(&full[..cut]).is_err(),
                "a prefix of {cut} bytes was accepted"
            );
        }
        assert!(parse(&full).is_ok());
    }

    #[test]
    fn a_state_vector_update_round_trips_through_yrs() {
        let d = doc(12);
        typed(&d, "x = 1");
        let sv = d.transact().state_vector().encode_v1();
        assert!(!sv.is_empty());
    }
}
