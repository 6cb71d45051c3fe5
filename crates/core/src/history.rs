//! Rebuilding a document from its durable history: an optional checkpoint plus the log after it.
//!
//! The server uses this to load a room; replay will use it to answer "what did the code look
//! like at seq N". Each update goes in its own transaction: applying many updates in a single
//! yrs transaction is superlinear, one per update is about a microsecond each.

use duet_protocol::{EventKind, LogRecord, MAIN_FILE};
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Transact, Update};

/// A document rebuilt from history, and the sequence number it stands at.
pub struct Rebuilt {
    pub doc: Doc,
    pub last_seq: u64,
}

impl Rebuilt {
    pub fn empty() -> Rebuilt {
        Rebuilt { doc: Doc::new(), last_seq: 0 }
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
    /// The checkpoint's bytes are not a Yjs update.
    #[error("checkpoint at seq {seq} is not a valid Yjs update")]
    BadCheckpoint { seq: u64 },
    /// A logged edit's bytes are not a Yjs update, or yrs refused to apply them.
    #[error("logged edit at seq {seq} is not a valid Yjs update")]
    BadEdit { seq: u64 },
    /// The log's sequence numbers go backwards or repeat.
    #[error("log out of order at seq {seq} (after {after})")]
    OutOfOrder { seq: u64, after: u64 },
}

/// Rebuilds a document from a checkpoint taken at some seq and the records after it, in order.
pub fn rebuild(
    checkpoint: Option<(u64, &[u8])>,
    records: impl IntoIterator<Item = LogRecord>,
) -> Result<Rebuilt, RebuildError> {
    let doc = Doc::new();
    let mut last_seq = 0;
    if let Some((seq, state)) = checkpoint {
        apply(&doc, state).ok_or(RebuildError::BadCheckpoint { seq })?;
        last_seq = seq;
    }
    for record in records {
        if record.seq <= last_seq {
            return Err(RebuildError::OutOfOrder { seq: record.seq, after: last_seq });
        }
        last_seq = record.seq;
        if record.kind == EventKind::Edit {
            apply(&doc, &record.data).ok_or(RebuildError::BadEdit { seq: record.seq })?;
        }
    }
    Ok(Rebuilt { doc, last_seq })
}

fn apply(doc: &Doc, bytes: &[u8]) -> Option<()> {
    let update = catch_unwind(|| Update::decode_v1(bytes)).ok()?.ok()?;
    catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update))).ok()?.ok()
}
