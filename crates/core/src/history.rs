//! Rebuilding a document from its durable history: an optional checkpoint plus the log after it.
//!
//! The server uses this to load a room; replay uses it to answer "what did the code look like
//! at seq N". Each update goes in its own transaction: applying many updates in a single yrs
//! transaction is superlinear, one per update is about a microsecond each. Every stored edit is
//! read with the same strict parser live edits pass (so a log written before that parser existed
//! cannot smuggle a nested type past it), and the log must have no gap.

use crate::validate;
use duet_protocol::{Actor, EventKind, LogRecord, MAIN_FILE};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Transact, Update};

/// Which participant (or the server) first wrote structs under each Yjs client id. Structs
/// under an id belong to that author alone.
pub type ClientOwners = HashMap<u64, Actor>;

/// A stored checkpoint: the whole document as one update at `seq`, with its client owners.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointRef<'a> {
    pub seq: u64,
    pub state: &'a [u8],
    /// [`encode_owners`] of the owners at `seq`.
    pub owners: &'a [u8],
}

/// A document rebuilt from history, and the sequence number it stands at.
pub struct Rebuilt {
    pub doc: Doc,
    pub last_seq: u64,
    pub owners: ClientOwners,
}

impl Rebuilt {
    pub fn empty() -> Rebuilt {
        Rebuilt {
            doc: Doc::new(),
            last_seq: 0,
            owners: ClientOwners::new(),
        }
    }

    /// The text of `main.py` in the rebuilt document.
    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text(MAIN_FILE);
        let txn = self.doc.transact();
        text.get_string(&txn)
    }
}

/// Why stored history could not be turned back into a document. A room that gets one of these
/// must refuse connections rather than start empty and later overwrite the real history.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The checkpoint's bytes are not a Yjs update, or its owners are unreadable.
    #[error("checkpoint at seq {seq} is not a valid Yjs update")]
    BadCheckpoint { seq: u64 },
    /// A logged edit's bytes are not an acceptable Yjs update, or yrs refused to apply them.
    #[error("logged edit at seq {seq} is not an acceptable Yjs update: {why}")]
    BadEdit { seq: u64, why: String },
    /// The log's sequence numbers skip one: a record is missing.
    #[error("the log has a gap: seq {seq} follows {after}")]
    Gap { seq: u64, after: u64 },
}

/// Rebuilds a document from a checkpoint taken at some seq and the records after it, in order.
pub fn rebuild(
    checkpoint: Option<CheckpointRef<'_>>,
    records: impl IntoIterator<Item = LogRecord>,
) -> Result<Rebuilt, RebuildError> {
    let doc = Doc::new();
    let mut last_seq = 0;
    let mut owners = ClientOwners::new();
    if let Some(cp) = checkpoint {
        apply(&doc, cp.state).map_err(|_| RebuildError::BadCheckpoint { seq: cp.seq })?;
        owners = decode_owners(cp.owners).ok_or(RebuildError::BadCheckpoint { seq: cp.seq })?;
        last_seq = cp.seq;
    }
    for record in records {
        if record.seq != last_seq + 1 {
            return Err(RebuildError::Gap {
                seq: record.seq,
                after: last_seq,
            });
        }
        last_seq = record.seq;
        if record.kind == EventKind::Edit {
            apply_edit(&doc, &mut owners, &record)?;
        }
    }
    Ok(Rebuilt {
        doc,
        last_seq,
        owners,
    })
}

/// Applies one logged edit in its own transaction, noting which author owns its client ids.
pub(crate) fn apply_edit(
    doc: &Doc,
    owners: &mut ClientOwners,
    record: &LogRecord,
) -> Result<(), RebuildError> {
    let parsed = validate::parse(&record.data).map_err(|e| RebuildError::BadEdit {
        seq: record.seq,
        why: e.0,
    })?;
    for (client, blocks) in &parsed.clients {
        if blocks.iter().any(|b| b.kind != validate::BlockKind::Skip) {
            owners.entry(*client).or_insert(record.by);
        }
    }
    apply(doc, &record.data).map_err(|why| RebuildError::BadEdit {
        seq: record.seq,
        why,
    })
}

pub(crate) fn apply(doc: &Doc, bytes: &[u8]) -> Result<(), String> {
    let update = catch_unwind(|| Update::decode_v1(bytes))
        .map_err(|_| "yrs panicked decoding it".to_owned())?
        .map_err(|e| e.to_string())?;
    catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update)))
        .map_err(|_| "yrs panicked applying it".to_owned())?
        .map_err(|e| e.to_string())
}

/// The owners as stored beside a checkpoint: JSON `{"<client id>": "<actor>"}`.
pub fn encode_owners(owners: &ClientOwners) -> Vec<u8> {
    let map: HashMap<String, Actor> = owners.iter().map(|(c, a)| (c.to_string(), *a)).collect();
    serde_json::to_vec(&map).unwrap_or_else(|_| b"{}".to_vec())
}

fn decode_owners(bytes: &[u8]) -> Option<ClientOwners> {
    if bytes.is_empty() {
        return Some(ClientOwners::new()); // a checkpoint written before owners were kept
    }
    let map: HashMap<String, Actor> = serde_json::from_slice(bytes).ok()?;
    map.into_iter()
        .map(|(c, a)| Some((c.parse().ok()?, a)))
        .collect()
}
