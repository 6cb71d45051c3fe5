//! Checking a participant's Yjs update before anything of it touches the document.
//!
//! The shared document holds the candidate's files (each a root `Y.Text` named by its path,
//! with the root `Y.Map` `files` recording renames and deletes, see [`crate::files`]) and the
//! whiteboard (a root `Y.Map` named `board`, element ids to elements as JSON strings, see
//! [`crate::board`]). So an update is accepted only if, read with a strict parser of the v1
//! update format (not yrs's lenient one), it:
//! - inserts only text (string content) into a root named by a path that passes
//!   [`crate::files::check_path`], only board elements (one JSON string per value, each passing
//!   [`crate::board::check_element`], stored under its own `id`) into `board`, only file
//!   entries (`{"deleted": true}` or `{"text": PATH}`) under a valid path into `files`, or
//!   carries deleted content, garbage-collected ranges and skips (which stock clients send
//!   after garbage collection);
//! - names, as every origin and right origin, a struct the document has or that comes earlier in
//!   the same update, so nothing of it would wait as "pending" for a dependency; an item with
//!   neighbours takes its parent from them (as Yjs does), so both neighbours must be in the same
//!   place, never garbage-collected, and what the item holds must belong there: [`Places`]
//!   remembers where every struct of the document went;
//! - deletes only ranges that exist once it is applied;
//! - spells every number canonically (shortest varint form) and in range: client ids below
//!   2^53 (what JavaScript reads exactly), clocks within u32 (what yrs reads exactly).
//!
//! yrs and yjs disagree on numbers outside those ranges (a fifth varint byte that overflows 32
//! bits wraps in yrs and not in yjs), and yrs recurses through nested types when deleting and
//! collecting garbage; with no nested type accepted, no input can recurse. The parser does work
//! linear in the bytes it is given and never recurses.

use crate::board;
use crate::files::{self, Entry};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The file every document holds from the start.
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

/// Where a struct of the document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the text of the file (root `Y.Text`) with this name.
    Text(Arc<str>),
    /// In the board, under this key.
    Board(Arc<str>),
    /// In the `files` map, under this path.
    Files(Arc<str>),
    /// A garbage-collected range: it has no parent any more.
    Gc,
    /// Nobody could tell (see [`Places::learn_update`]): nothing may be placed next to it.
    Unknown,
}

/// What an item holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Deleted content, of the text or of a board entry.
    Deleted,
    /// A string, for a file's text.
    Text,
    /// Board elements (JSON strings that passed [`board::check_element`]): their ids.
    Elements(Vec<Box<str>>),
    /// Entries of the `files` map.
    Entries(Vec<Entry>),
}

/// What one struct of an update is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    /// A garbage-collected range: it fills clocks, holds nothing.
    Gc,
    /// A gap in the update: the receiver must already have these clocks.
    Skip,
    /// Content placed between two neighbours, or (with neither) directly under a parent.
    Item {
        origin: Option<Id>,
        right_origin: Option<Id>,
        /// The parent it names, when it has no neighbour to take one from.
        parent: Option<Place>,
        /// Whether its flags say it is a map entry (it must then be on the board).
        keyed: bool,
        content: Content,
    },
}

/// One struct: `len` clocks starting at `clock`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// UTF-8 bytes of board elements the update holds.
    pub board_bytes: usize,
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
const CONTENT_ANY: u8 = 8;
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
/// and range. Where each item goes is checked by [`check`].
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

/// Where every struct of a document is (by client, runs of clocks), so an item that takes its
/// parent from a neighbour can be checked before it is applied. A room keeps one beside its
/// document and teaches it every update it applies.
#[derive(Debug, Default, Clone)]
pub struct Places {
    clients: HashMap<u64, Vec<Run>>,
}

/// Clocks `start..end` of one client, all in one place.
#[derive(Debug, Clone)]
struct Run {
    start: u32,
    end: u32,
    place: Place,
}

impl Places {
    /// The places of everything in `update` (the whole state of a document, or an update the
    /// room made itself), learnt without refusing anything: a struct whose place cannot be told
    /// is [`Place::Unknown`], so nothing may later be put next to it. For a document whose every
    /// update passed [`check`], nothing is unknown.
    pub fn learn_update(&mut self, update: &[u8]) {
        let Ok(parsed) = parse(update) else {
            return;
        };
        let known = self
            .clients
            .iter()
            .filter_map(|(c, runs)| runs.last().map(|r| (*c, r.end)))
            .collect();
        if let Ok(checked) = resolve(&parsed, &known, self, Mode::Learn) {
            self.learn(checked.placed);
        }
    }

    /// Takes in the places [`check`] found for an update that was then applied.
    pub fn learn(&mut self, placed: Vec<(u64, u32, u32, Place)>) {
        for (client, start, end, place) in placed {
            let runs = self.clients.entry(client).or_default();
            match runs.last_mut() {
                Some(last) if last.end > start => {} // known already (never happens: clocks only grow)
                Some(last) if last.end == start && last.place == place => last.end = end,
                _ => runs.push(Run { start, end, place }),
            }
        }
    }

    /// Whether any struct of `client` in clocks `start..end` is somewhere `pred` accepts.
    pub fn any_in(&self, client: u64, start: u32, end: u32, pred: impl Fn(&Place) -> bool) -> bool {
        let Some(runs) = self.clients.get(&client) else {
            return false;
        };
        let first = runs.partition_point(|r| r.end <= start);
        runs[first..]
            .iter()
            .take_while(|r| r.start < end)
            .any(|r| pred(&r.place))
    }

    /// Where the struct with `id` is, if the document has it.
    pub fn get(&self, id: Id) -> Option<&Place> {
        let runs = self.clients.get(&id.client)?;
        let i = runs.partition_point(|r| r.end <= id.clock);
        runs.get(i)
            .filter(|r| r.start <= id.clock)
            .map(|r| &r.place)
    }
}

/// What [`check`] found: an update that can be applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The clients under which the update creates new structs (so their ownership can be
    /// checked), in the order they first advance.
    pub creates: Vec<u64>,
    /// Where its new structs go: `(client, start clock, end clock, place)`, for
    /// [`Places::learn`] once it is applied.
    pub placed: Vec<(u64, u32, u32, Place)>,
    /// The board keys it writes an element under, each once.
    pub board_keys: Vec<Arc<str>>,
    /// The `files` keys it writes an entry under, each once.
    pub file_keys: Vec<Arc<str>>,
    /// The files whose text it inserts into, each once.
    pub texts: Vec<Arc<str>>,
    /// Whether it deletes an entry of `files` (which may list a file again).
    pub deletes_entries: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A participant's update: anything out of place is refused.
    Check,
    /// The document's own structs: anything out of place is noted as unknown.
    Learn,
}

/// Checks that every struct of `update` could be integrated into a document whose state
/// vector is `known` (client to next clock) and whose structs are where `places` says, with
/// nothing left pending, each item in a place that accepts what it holds (text in `main.py`,
/// elements under their own id on the board), and that every deletion names clocks that exist
/// afterwards.
pub fn check(
    update: &ParsedUpdate,
    known: &HashMap<u64, u32>,
    places: &Places,
) -> Result<Checked, Invalid> {
    resolve(update, known, places, Mode::Check)
}

fn resolve(
    update: &ParsedUpdate,
    known: &HashMap<u64, u32>,
    places: &Places,
    mode: Mode,
) -> Result<Checked, Invalid> {
    let mut available = known.clone();
    let mut next: Vec<usize> = vec![0; update.clients.len()];
    let mut out = Checked::default();
    let mut new_places = Places::default();
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
                let place = match &block.kind {
                    BlockKind::Item {
                        origin,
                        right_origin,
                        ..
                    } => {
                        let exists = |id: &Option<Id>| {
                            id.is_none_or(|id| {
                                id.clock < available.get(&id.client).copied().unwrap_or(0)
                            })
                        };
                        if !exists(origin) || !exists(right_origin) {
                            break;
                        }
                        let lookup = |id: Id| new_places.get(id).or_else(|| places.get(id));
                        match place_item(block, lookup) {
                            Ok(place) => place,
                            Err(why) if mode == Mode::Check => {
                                return invalid(format!(
                                    "struct {client}:{}: {}",
                                    block.clock, why.0
                                ))
                            }
                            Err(_) => Place::Unknown,
                        }
                    }
                    _ => Place::Gc,
                };
                if let BlockKind::Item { content, .. } = &block.kind {
                    let list = match (&place, content) {
                        (Place::Board(key), Content::Elements(_)) => {
                            Some((&mut out.board_keys, key))
                        }
                        (Place::Files(key), Content::Entries(_)) => Some((&mut out.file_keys, key)),
                        (Place::Text(name), Content::Text) => Some((&mut out.texts, name)),
                        _ => None,
                    };
                    if let Some((list, key)) = list {
                        if !list.contains(key) {
                            list.push(key.clone());
                        }
                    }
                }
                let run = (*client, block.clock.max(have), end, place);
                new_places.learn(vec![run.clone()]);
                out.placed.push(run);
                available.insert(*client, end);
                if !out.creates.contains(client) {
                    out.creates.push(*client);
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
            if mode == Mode::Learn {
                break; // what depends on the unknown stays unknown
            }
            let (client, clock) = update
                .clients
                .iter()
                .enumerate()
                .find_map(|(i, (c, b))| b.get(next[i]).map(|b| (*c, b.clock)))
                .unwrap_or((0, 0));
            return invalid(format!(
                "struct {client}:{clock} depends on something the document does not have (it would stay pending)"
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
        out.deletes_entries |= ranges.iter().any(|(clock, len)| {
            let is_entry = |p: &Place| matches!(p, Place::Files(_));
            places.any_in(*client, *clock, clock + len, is_entry)
                || new_places.any_in(*client, *clock, clock + len, is_entry)
        });
    }
    Ok(out)
}

/// Where an item goes (the parent it names, else its neighbours'), and whether what it holds
/// belongs there.
fn place_item<'a>(
    block: &Block,
    lookup: impl Fn(Id) -> Option<&'a Place>,
) -> Result<Place, Invalid> {
    let BlockKind::Item {
        origin,
        right_origin,
        parent,
        keyed,
        content,
    } = &block.kind
    else {
        return Ok(Place::Gc);
    };
    let place = match parent {
        Some(parent) => parent.clone(),
        None => {
            let neighbour = |id: &Option<Id>| -> Result<Option<Place>, Invalid> {
                let Some(id) = id else { return Ok(None) };
                match lookup(*id) {
                    Some(Place::Gc) => invalid(format!(
                        "its neighbour {}:{} was garbage-collected, so it has no parent",
                        id.client, id.clock
                    )),
                    Some(Place::Unknown) | None => invalid(format!(
                        "the place of its neighbour {}:{} is unknown",
                        id.client, id.clock
                    )),
                    Some(place) => Ok(Some(place.clone())),
                }
            };
            match (neighbour(origin)?, neighbour(right_origin)?) {
                (Some(left), Some(right)) if left != right => {
                    return invalid("its two neighbours are in different places")
                }
                (Some(place), _) | (None, Some(place)) => place,
                (None, None) => return invalid("an item with no parent"),
            }
        }
    };
    match (&place, content) {
        (Place::Text(path), Content::Elements(_)) => {
            invalid(format!("board elements go on the board, not into {path:?}"))
        }
        (Place::Text(path), Content::Entries(_)) => invalid(format!(
            "file entries go into {:?}, not into {path:?}",
            files::FILES
        )),
        (Place::Board(_), Content::Text) => invalid("text goes into a file, not onto the board"),
        (Place::Files(_), Content::Text) => invalid(format!(
            "text goes into a file, not into {:?}",
            files::FILES
        )),
        (Place::Board(_), Content::Entries(_)) => {
            invalid("file entries go into \"files\", not onto the board")
        }
        (Place::Files(_), Content::Elements(_)) => invalid(format!(
            "board elements go on the board, not into {:?}",
            files::FILES
        )),
        (Place::Text(path), _) if *keyed => {
            invalid(format!("{path:?} is a text: its items have no key"))
        }
        (Place::Board(_) | Place::Files(_), _) if !keyed => {
            invalid("a map entry must be flagged as a map entry")
        }
        (Place::Board(_) | Place::Files(_), _) if right_origin.is_some() => {
            invalid("a map entry has no right neighbour")
        }
        (Place::Board(key), Content::Elements(ids)) => match ids.iter().find(|id| ***id != **key) {
            Some(id) => invalid(format!(
                "a board element with id {id:?} is stored under another key, {key:?}"
            )),
            None => Ok(place),
        },
        _ => Ok(place),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    use yrs::{Array, Doc, Map, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

    fn doc(client: u64) -> Doc {
        Doc::with_client_id(client)
    }

    /// The clients `update` creates structs under, checked against a document with `known`
    /// clocks and `places`.
    fn creates(
        update: &[u8],
        known: &HashMap<u64, u32>,
        places: &Places,
    ) -> Result<Vec<u64>, Invalid> {
        check(&parse(update)?, known, places).map(|c| c.creates)
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
        let mut places = Places::default();
        assert_eq!(creates(&first, &HashMap::new(), &places), Ok(vec![7]));
        places.learn_update(&first);
        assert_eq!(
            places.get(Id {
                client: 7,
                clock: 10
            }),
            Some(&Place::Text(Arc::from(ROOT)))
        );
        let second = typed(&d, "\n");
        let known = HashMap::from([(7, 11)]);
        assert_eq!(creates(&second, &known, &places), Ok(vec![7]));
        // Without knowing where 7:10 is, the second keystroke cannot be placed: refused.
        assert!(creates(&second, &known, &Places::default()).is_err());
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
        assert!(check(&parsed, &HashMap::new(), &Places::default()).is_ok());
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
        assert!(check(&parsed, &HashMap::new(), &Places::default()).is_err());
    }

    #[test]
    fn a_gap_in_clocks_would_stay_pending() {
        let d = doc(9);
        typed(&d, "ab");
        let later = typed(&d, "c"); // clock 2, but the receiver has nothing of client 9
        assert!(creates(&later, &HashMap::new(), &Places::default()).is_err());
    }

    #[test]
    fn deleting_what_does_not_exist_is_refused() {
        let bytes = [0, 1, 4, 1, 0, 3];
        let none = Places::default();
        assert!(creates(&bytes, &HashMap::new(), &none).is_err());
        assert!(creates(&bytes, &HashMap::from([(4, 3)]), &none).is_ok());
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

    /// The server's side: a document and where its structs are, taking updates the way the
    /// room does (check, then apply and learn).
    #[derive(Default)]
    struct Server {
        doc: Doc,
        places: Places,
    }

    impl Server {
        fn offer(&mut self, update: &[u8]) -> Result<Checked, Invalid> {
            let known = self
                .doc
                .transact()
                .state_vector()
                .iter()
                .map(|(c, k)| (c.get(), *k))
                .collect();
            let checked = check(&parse(update)?, &known, &self.places)?;
            let decoded = Update::decode_v1(update).map_err(|e| Invalid(e.to_string()))?;
            self.doc
                .transact_mut()
                .apply_update(decoded)
                .map_err(|e| Invalid(e.to_string()))?;
            self.places.learn(checked.placed.clone());
            Ok(checked)
        }

        fn board(&self) -> Vec<(String, String)> {
            let board = self.doc.get_or_insert_map(board::BOARD);
            let txn = self.doc.transact();
            let mut all: Vec<_> = board
                .iter(&txn)
                .map(|(k, v)| (k.to_string(), v.to_string(&txn)))
                .collect();
            all.sort();
            all
        }
    }

    fn element(id: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"{id}","type":"rectangle","x":10,"y":20,"version":1,"versionNonce":7{extra}}}"#
        )
    }

    fn drawn(doc: &Doc, key: &str, value: impl yrs::block::Prelim) -> Vec<u8> {
        let board = doc.get_or_insert_map(board::BOARD);
        let mut txn = doc.transact_mut();
        board.insert(&mut txn, key, value);
        txn.encode_update_v1()
    }

    fn refusal(result: Result<Checked, Invalid>) -> String {
        match result {
            Ok(checked) => panic!("accepted: {checked:?}"),
            Err(e) => e.0,
        }
    }

    /// A lib0 varint.
    fn var(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// An update of one item of `client` at clock 0 with `origin`, flagged `info`, holding
    /// `content` (already encoded), and no deletions.
    fn one_item(client: u64, info: u8, origin: Id, content: &[u8]) -> Vec<u8> {
        let mut out = vec![1, 1];
        var(client, &mut out);
        out.push(0);
        out.push(info);
        var(origin.client, &mut out);
        var(u64::from(origin.clock), &mut out);
        out.extend_from_slice(content);
        out.push(0);
        out
    }

    #[test]
    fn board_elements_drawn_through_a_stock_map_are_accepted_and_placed() {
        let mut server = Server::default();
        let alice = doc(21);
        let first = drawn(&alice, "a", element("a", ""));
        let checked = server.offer(&first).expect("a first element");
        assert_eq!(checked.board_keys, vec![Arc::from("a")]);
        assert_eq!(
            server.places.get(Id {
                client: 21,
                clock: 0
            }),
            Some(&Place::Board(Arc::from("a")))
        );
        // Moving it writes the key again, next to its last value (an origin, no parent written).
        let moved = drawn(&alice, "a", element("a", r#","x":99"#));
        assert!(parse(&moved).is_ok_and(|p| matches!(
            &p.clients[0].1[0].kind,
            BlockKind::Item {
                origin: Some(_),
                parent: None,
                ..
            }
        )));
        server.offer(&moved).expect("the element moved");
        // Another person draws beside it; text still goes into main.py.
        let bob = doc(22);
        server
            .offer(&drawn(&bob, "b", element("b", "")))
            .expect("a second element");
        server
            .offer(&typed(&bob, "print(1)"))
            .expect("text beside the board");
        let board = server.board();
        assert_eq!(board.len(), 2);
        assert!(board[0].1.contains(r#""x":99"#), "{board:?}");
    }

    #[test]
    fn an_element_is_refused_unless_it_is_an_acceptable_json_object() {
        let big = format!(r#","text":"{}""#, "x".repeat(board::MAX_ELEMENT_BYTES));
        let cases: Vec<(&str, String, &str)> = vec![
            ("k", "not json".into(), "not JSON"),
            ("k", "[1, 2]".into(), "JSON object"),
            ("k", element("k", &big), "over the 64 KiB cap"),
            (
                "k",
                element("k", "").replace("rectangle", "image"),
                "\"image\"",
            ),
            ("k", element("k", r#","fileId":"f1""#), "fileId"),
            (
                "k",
                element("k", r#","link":"data:text/html,<b>hi</b>""#),
                "data: URL",
            ),
            (
                "k",
                element("k", r#","customData":{"a":["DATA:image/png;base64,AA"]}"#),
                "data: URL",
            ),
            (
                "k",
                r#"{"type":"rectangle"}"#.into(),
                "needs a string \"id\"",
            ),
            ("k", element("other", ""), "stored under another key"),
            (
                "k",
                element("k", "").replace(r#""type":"rectangle","#, ""),
                "\"type\"",
            ),
        ];
        for (key, value, why) in cases {
            let mut server = Server::default();
            let said = refusal(server.offer(&drawn(&doc(30), key, value.as_str())));
            assert!(
                said.contains(why),
                "{value:.80}: said {said:?}, not {why:?}"
            );
            assert!(server.board().is_empty(), "nothing of it was applied");
        }
        // A value that is not a string at all.
        let said = refusal(Server::default().offer(&drawn(&doc(31), "k", 4)));
        assert!(said.contains("JSON string"), "{said}");
        // An element's text that looks like markup is data, and accepted as such.
        let html = element("h", r#","type2":"<img src=x onerror=alert(1)>""#);
        Server::default()
            .offer(&drawn(&doc(32), "h", html.as_str()))
            .expect("markup in a field is just text");
    }

    #[test]
    fn nested_types_under_the_board_are_refused() {
        let said =
            refusal(Server::default().offer(&drawn(&doc(40), "k", yrs::MapPrelim::default())));
        assert!(said.contains("nested shared type"), "{said}");
        let said =
            refusal(Server::default().offer(&drawn(&doc(41), "k", yrs::TextPrelim::new("x"))));
        assert!(said.contains("nested shared type"), "{said}");
    }

    #[test]
    fn each_root_keeps_its_own_shape() {
        // A text named "board", a map named "main.py", and another root altogether.
        let d = doc(50);
        let text_board = {
            let t = d.get_or_insert_text(board::BOARD);
            let mut txn = d.transact_mut();
            t.insert(&mut txn, 0, "x");
            txn.encode_update_v1()
        };
        assert!(refusal(Server::default().offer(&text_board)).contains("is a map"));
        let d = doc(51);
        let map_main = {
            let m = d.get_or_insert_map(ROOT);
            let mut txn = d.transact_mut();
            m.insert(&mut txn, "k", element("k", ""));
            txn.encode_update_v1()
        };
        assert!(refusal(Server::default().offer(&map_main)).contains("is a text"));
        let d = doc(52);
        let other = {
            let m = d.get_or_insert_map("notes");
            let mut txn = d.transact_mut();
            m.insert(&mut txn, "k", element("k", ""));
            txn.encode_update_v1()
        };
        assert!(refusal(Server::default().offer(&other)).contains("file name \"notes\""));
    }

    #[test]
    fn text_cannot_follow_a_board_entry_nor_an_element_follow_text() {
        let mut server = Server::default();
        server
            .offer(&drawn(&doc(60), "a", element("a", "")))
            .expect("an element");
        server.offer(&typed(&doc(61), "ab")).expect("some text");
        // A string whose origin is the board entry 60:0 would land in the map.
        let mut string = vec![1, b'x'];
        let text_on_board = one_item(
            62,
            CONTENT_STRING | HAS_ORIGIN,
            Id {
                client: 60,
                clock: 0,
            },
            &string,
        );
        let said = refusal(server.offer(&text_on_board));
        assert!(said.contains("not onto the board"), "{said}");
        // Flagged as a map entry, the same string is still refused.
        string[0] = 1;
        let keyed = one_item(
            62,
            CONTENT_STRING | HAS_ORIGIN | HAS_PARENT_SUB,
            Id {
                client: 60,
                clock: 0,
            },
            &string,
        );
        assert!(refusal(server.offer(&keyed)).contains("not onto the board"));
        // An element whose origin is the text 61:1 would land in main.py.
        let json = element("a", "");
        let mut any = vec![1, 119];
        var(json.len() as u64, &mut any);
        any.extend_from_slice(json.as_bytes());
        let element_in_text = one_item(
            63,
            CONTENT_ANY | HAS_ORIGIN,
            Id {
                client: 61,
                clock: 1,
            },
            &any,
        );
        let said = refusal(server.offer(&element_in_text));
        assert!(said.contains("not into \"main.py\""), "{said}");
        // The same element next to the board entry, flagged as a map entry, is an overwrite.
        let overwrite = one_item(
            63,
            CONTENT_ANY | HAS_ORIGIN | HAS_PARENT_SUB,
            Id {
                client: 60,
                clock: 0,
            },
            &any,
        );
        server.offer(&overwrite).expect("an overwrite of a");
        // Unflagged, it is refused: every stock client flags map entries.
        let unflagged = one_item(
            64,
            CONTENT_ANY | HAS_ORIGIN,
            Id {
                client: 63,
                clock: 0,
            },
            &any,
        );
        assert!(refusal(server.offer(&unflagged)).contains("flagged as a map entry"));
        assert_eq!(server.board().len(), 1);
    }

    #[test]
    fn deleted_board_entries_in_a_whole_state_are_accepted_by_a_fresh_server() {
        let d = doc(70);
        for round in 0..3 {
            drawn(&d, "a", element("a", &format!(r#","x":{round}"#)));
        }
        drawn(&d, "b", element("b", ""));
        {
            let board = d.get_or_insert_map(board::BOARD);
            let mut txn = d.transact_mut();
            board.remove(&mut txn, "b");
        }
        let whole = d
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let mut server = Server::default();
        server.offer(&whole).expect("a whole state with tombstones");
        assert_eq!(server.board().len(), 1);
        // A server that learnt the places from the whole state takes a later overwrite.
        let mut reloaded = Server::default();
        reloaded.offer(&whole).expect("whole state");
        let mut learnt = Places::default();
        learnt.learn_update(&whole);
        reloaded.places = learnt;
        reloaded
            .offer(&drawn(&d, "a", element("a", r#","x":9"#)))
            .expect("an overwrite after a reload");
    }

    #[test]
    fn every_truncation_of_a_board_update_is_refused_without_panicking() {
        let d = doc(80);
        let full = drawn(&d, "a", element("a", r#","text":"héllo""#));
        for cut in 0..full.len() {
            assert!(
                parse(&full[..cut]).is_err(),
                "a prefix of {cut} bytes was accepted"
            );
        }
        assert!(parse(&full).is_ok());
    }
}
