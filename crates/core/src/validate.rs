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

use crate::files::{self, Entry};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

mod parse;
#[cfg(test)]
mod tests;

pub(crate) use parse::Reader;
pub use parse::{parse, parse_awareness, parse_state_vector, AwarenessEntry};

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
    /// Board elements (JSON strings that passed [`crate::board::check_element`]): their ids.
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
