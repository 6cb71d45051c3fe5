//! The strict reader of lib0 encodings and, on it, of v1 updates, state vectors and awareness
//! updates: what [`super`] checks an update with before anything of it touches the document.

use super::{invalid, Block, BlockKind, Content, Id, Invalid, ParsedUpdate, Place, MAX_CLIENT};
use crate::board;
use crate::files::{self, Entry};
use std::collections::HashMap;
use std::sync::Arc;

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

pub(super) const GC: u8 = 0;
pub(super) const CONTENT_DELETED: u8 = 1;
pub(super) const CONTENT_STRING: u8 = 4;
pub(super) const CONTENT_ANY: u8 = 8;
pub(super) const SKIP: u8 = 10;
pub(super) const HAS_ORIGIN: u8 = 0x80;
pub(super) const HAS_RIGHT_ORIGIN: u8 = 0x40;
pub(super) const HAS_PARENT_SUB: u8 = 0x20;

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

/// Reads the parent an item names itself: a root, a file (no key), `board` or `files` (with
/// a key).
fn read_parent(r: &mut Reader<'_>, keyed: bool) -> Result<Place, Invalid> {
    if r.var(1, "parent kind")? != 1 {
        return invalid("a parent inside another type (nested types are not accepted)");
    }
    let name = r.string("parent name")?;
    match (name, keyed) {
        (files::FILES, true) => {
            let key = r.string("files key")?;
            files::check_path(key)?;
            Ok(Place::Files(Arc::from(key)))
        }
        (files::FILES, false) => invalid(format!(
            "{:?} is a map: its entries need a key",
            files::FILES
        )),
        (board::BOARD, true) => {
            let key = r.string("board key")?;
            if key.is_empty() || key.len() > board::MAX_KEY_BYTES {
                return invalid(format!(
                    "a board key must be 1 to {} bytes",
                    board::MAX_KEY_BYTES
                ));
            }
            Ok(Place::Board(Arc::from(key)))
        }
        (board::BOARD, false) => invalid(format!(
            "{:?} is a map: its entries need a key",
            board::BOARD
        )),
        (path, keyed) => match files::check_path(path) {
            Ok(()) if keyed => invalid(format!("{path:?} is a text: its items have no key")),
            Ok(()) => Ok(Place::Text(Arc::from(path))),
            // Only files, `board` and `files` are roots: say why this name is not a file's.
            Err(why) => Err(why),
        },
    }
}

const ANY_TRUE: u8 = 120;
const ANY_STRING: u8 = 119;
const ANY_OBJECT: u8 = 118;

/// Reads Any content as map values: board elements (each a string holding an acceptable
/// element) or file entries (each a flat object), never both. Returns them and their bytes.
fn read_values(r: &mut Reader<'_>) -> Result<(Content, usize), Invalid> {
    let n = r.count("number of values")?;
    let mut ids = Vec::new();
    let mut entries = Vec::new();
    let mut bytes = 0;
    for _ in 0..n {
        match r.byte()? {
            ANY_STRING => {
                let json = r.string("board element")?;
                ids.push(board::check_element(json)?);
                bytes += json.len();
            }
            ANY_OBJECT => entries.push(read_entry(r)?),
            _ => return invalid(
                "a map value must be a board element (a JSON string) or a file entry (an object such as {\"deleted\": true}), not another value",
            ),
        }
    }
    match (ids.is_empty(), entries.is_empty()) {
        (_, true) => Ok((Content::Elements(ids), bytes)),
        (true, false) => Ok((Content::Entries(entries), bytes)),
        (false, false) => invalid("board elements and file entries in one item"),
    }
}

/// Reads a file entry (after its object tag): `{"deleted": true}` or `{"text": PATH}`.
fn read_entry(r: &mut Reader<'_>) -> Result<Entry, Invalid> {
    const SHAPE: &str =
        "a file entry must be {\"deleted\": true} or {\"text\": PATH}, with nothing else";
    if r.u32("file entry fields")? != 1 {
        return invalid(SHAPE);
    }
    match (r.string("file entry field")?, r.byte()?) {
        ("deleted", ANY_TRUE) => Ok(Entry::Deleted),
        ("text", ANY_STRING) => {
            let root = r.string("file entry text")?;
            files::check_path(root)?;
            Ok(Entry::Shows(root.into()))
        }
        _ => invalid(SHAPE),
    }
}

/// Reads a v1 update strictly. Refuses anything but strings, board elements and deleted content
/// under a root of the document, GC ranges and skips, and any number not in its canonical form
/// and range. Where each item goes is checked by [`check`](super::check).
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
                CONTENT_DELETED | CONTENT_STRING | CONTENT_ANY => {
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
                    let keyed = info & HAS_PARENT_SUB != 0;
                    // With a neighbour, the parent and key are not written: they are the
                    // neighbour's, found when the update is checked against the document.
                    let parent = if origin.is_none() && right_origin.is_none() {
                        Some(read_parent(&mut r, keyed)?)
                    } else {
                        None
                    };
                    let (len, content) = match content {
                        CONTENT_DELETED => (r.u32("deleted length")?, Content::Deleted),
                        CONTENT_STRING => {
                            let text = r.string("text")?;
                            out.text_bytes += text.len();
                            let len = u32::try_from(text.encode_utf16().count())
                                .map_err(|_| Invalid("text too long".into()))?;
                            (len, Content::Text)
                        }
                        _ => {
                            let (values, bytes) = read_values(&mut r)?;
                            out.board_bytes += bytes;
                            let len = match &values {
                                Content::Elements(ids) => ids.len(),
                                Content::Entries(entries) => entries.len(),
                                _ => 0,
                            };
                            (len as u32, values)
                        }
                    };
                    (
                        BlockKind::Item {
                            origin,
                            right_origin,
                            parent,
                            keyed,
                            content,
                        },
                        len,
                    )
                }
                other => {
                    return invalid(format!(
                        "only text and board elements may be inserted, not {}",
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
