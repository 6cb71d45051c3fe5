//! The writer thread, through which every write goes: [`Write`] is what it is asked to do,
//! [`writer_loop`] gathers what has queued up into one batch, [`commit`]s it in one transaction
//! and answers each write's ticket; its failure gate holds back a room whose record failed, so
//! the room's log never has a gap. Also the writer's connection settings ([`open_writer`]).

use super::outbox::OutboxWrite;
use super::schema::seq_to_sql;
use super::wal::{finish_checkpoint, truncate_wal, Shared};
use super::{open, Durability, SqliteConfig};
use crate::people::PeopleWrite;
use crate::{Checkpoint, Interview, Result, StoreError, TokenHash};
use duet_protocol::{InterviewId, LogRecord, Role};
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use tokio::sync::oneshot;

pub(super) enum Write {
    Append {
        id: InterviewId,
        record: LogRecord,
        ack: oneshot::Sender<Result<()>>,
    },
    Checkpoint {
        id: InterviewId,
        checkpoint: Checkpoint,
        ack: oneshot::Sender<Result<()>>,
    },
    Probe {
        ack: oneshot::Sender<Result<()>>,
    },
    Erase {
        id: InterviewId,
        ack: oneshot::Sender<Result<()>>,
    },
    CreateInterview {
        interview: Interview,
        tokens: Vec<(Role, TokenHash)>,
        ack: oneshot::Sender<Result<()>>,
    },
    /// An interview's role tokens are replaced: the old ones stop working at once.
    ReplaceTokens {
        id: InterviewId,
        tokens: Vec<(Role, TokenHash)>,
        ack: oneshot::Sender<Result<()>>,
    },
    /// A room loads afresh: its earlier failure no longer holds its appends back.
    Reopen {
        id: InterviewId,
        ack: oneshot::Sender<Result<()>>,
    },
    /// A write to the people tables: committed on its own, outside the batch
    /// ([`super::people::apply`]).
    People {
        write: Box<PeopleWrite>,
        ack: oneshot::Sender<Result<()>>,
    },
    /// A write to the outbox (webhook endpoints, delivery attempts, mail): committed on its
    /// own, outside the batch ([`super::outbox::apply`]).
    Outbox {
        write: Box<OutboxWrite>,
        ack: oneshot::Sender<Result<()>>,
    },
}

impl Write {
    /// The room whose log this write extends, if any.
    fn room(&self) -> Option<&InterviewId> {
        match self {
            Write::Append { id, .. } | Write::Checkpoint { id, .. } => Some(id),
            _ => None,
        }
    }

    pub(super) fn into_ack(self) -> oneshot::Sender<Result<()>> {
        match self {
            Write::Append { ack, .. }
            | Write::Checkpoint { ack, .. }
            | Write::Probe { ack }
            | Write::Erase { ack, .. }
            | Write::CreateInterview { ack, .. }
            | Write::ReplaceTokens { ack, .. }
            | Write::Reopen { ack, .. }
            | Write::People { ack, .. }
            | Write::Outbox { ack, .. } => ack,
        }
    }
}

/// The writer thread's connection.
pub(super) fn open_writer(config: &SqliteConfig) -> Result<Connection> {
    let conn = open(&config.path)?;
    // No checkpoints on the writer: SQLite's default runs one inside the commit that takes the
    // WAL past 1,000 pages, and a checkpoint fsyncs, stalling every room's commits for as long as
    // the disk takes. The syncer thread checkpoints every second instead, off the commit path
    // (and the writer finishes one only now and then: [`finish_checkpoint`]).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    if config.sync == Durability::EveryCommit {
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

pub(super) fn writer_loop(
    mut conn: Connection,
    db: PathBuf,
    rx: mpsc::Receiver<Write>,
    max_batch: usize,
    shared: &Shared,
) {
    // Rooms whose records failed to commit: nothing more of theirs commits until the room loads
    // afresh (`Reopen`), so a log never gets a gap and no checkpoint covers a record that failed.
    let mut failed: HashSet<InterviewId> = HashSet::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let mut to_commit = Vec::with_capacity(batch.len());
        for write in batch {
            match write {
                Write::Reopen { id, ack } => {
                    failed.remove(&id);
                    let _ = ack.send(Ok(()));
                }
                Write::People { write, ack } => {
                    let done = super::people::apply(&mut conn, &write).map_err(|e| match e {
                        e @ StoreError::Sqlite(_) => diagnose(e, &db).for_each_write(),
                        refused => refused,
                    });
                    let _ = ack.send(done);
                    shared.dirty.store(true, Ordering::Release);
                }
                Write::Outbox { write, ack } => {
                    let done = super::outbox::apply(&mut conn, &write).map_err(|e| match e {
                        e @ StoreError::Sqlite(_) => diagnose(e, &db).for_each_write(),
                        refused => refused,
                    });
                    let _ = ack.send(done);
                    shared.dirty.store(true, Ordering::Release);
                }
                write if write.room().is_some_and(|room| failed.contains(room)) => {
                    let _ = write.into_ack().send(Err(StoreError::RoomFailed));
                }
                write => to_commit.push(write),
            }
        }
        if to_commit.is_empty() {
            continue;
        }
        let committed = commit(&mut conn, &to_commit).map_err(|e| diagnose(e, &db));
        let refused = match &committed {
            Ok(refused) => refused.clone(),
            Err(_) => vec![false; to_commit.len()],
        };
        let mut outcome = committed.map(|_| ());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = to_commit.len(), "store: batch commit failed");
            failed.extend(to_commit.iter().filter_map(|w| w.room().cloned()));
        } else if to_commit.iter().any(|w| matches!(w, Write::Erase { .. })) {
            // The erased rows' old versions still sit in WAL frames: copy everything back and
            // truncate the WAL, so no file keeps them.
            outcome = truncate_wal(&conn);
        }
        let outcome = outcome.map_err(|e| e.for_each_write());
        for (write, refused) in to_commit.into_iter().zip(refused) {
            if refused {
                // Nothing more of this room is stored until it loads afresh (and a room of an
                // interview that does not exist does not load).
                if let Some(room) = write.room() {
                    tracing::warn!(interview = %room, "store: a write for an interview that does not exist was refused");
                    failed.insert(room.clone());
                }
                let _ = write.into_ack().send(Err(StoreError::NoSuchInterview));
                continue;
            }
            let _ = write.into_ack().send(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(StoreError::for_each_write),
            );
        }
        shared.dirty.store(true, Ordering::Release);
        if shared.finish_checkpoint.swap(false, Ordering::AcqRel) && !finish_checkpoint(&conn) {
            // The syncer was copying at the same moment: try again after the next batch.
            shared.finish_checkpoint.store(true, Ordering::Release);
        }
    }
    // The senders are gone: the store is closing. One last sync below, from the syncer.
    shared.dirty.store(true, Ordering::Release);
}

/// SQLite reports a write that a read-only file system refused (one the kernel remounted
/// read-only after an error, say) as a plain I/O error; the file system says which it was.
fn diagnose(e: StoreError, db: &std::path::Path) -> StoreError {
    if !matches!(e.failure(), crate::Failure::Io | crate::Failure::Other) {
        return e;
    }
    match std::fs::OpenOptions::new().append(true).open(db) {
        Err(os) if os.kind() == std::io::ErrorKind::ReadOnlyFilesystem => StoreError::WriteFailed {
            failure: crate::Failure::ReadOnly,
            message: format!("{e} ({}: read-only file system)", db.display()),
        },
        _ => e,
    }
}

/// Commits `batch` in one transaction. Answers, per write, whether it was refused because its
/// interview does not exist (it was erased, or never was): a log record or checkpoint for an
/// interview that is gone is never stored, so a request that raced a delete cannot bring the
/// interview back. The other writes of the batch are unaffected.
fn commit(conn: &mut Connection, batch: &[Write]) -> Result<Vec<bool>> {
    let mut refused = vec![false; batch.len()];
    let txn = conn.transaction()?;
    {
        let mut exists =
            txn.prepare_cached("SELECT EXISTS(SELECT 1 FROM interviews WHERE id = ?1)")?;
        // What this batch has learned so far: creates and erases in it count, in order.
        let mut known: HashMap<&InterviewId, bool> = HashMap::new();
        let mut append = txn.prepare_cached(
            "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut checkpoint = txn
            .prepare_cached("INSERT OR REPLACE INTO checkpoints (interview_id, seq, state, owners) VALUES (?1, ?2, ?3, ?4)")?;
        let mut probe =
            txn.prepare_cached("INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?1)")?;
        for (i, write) in batch.iter().enumerate() {
            if let Some(id) = write.room() {
                let present = match known.get(id) {
                    Some(present) => *present,
                    None => {
                        let present: bool = exists.query_row([id.as_str()], |r| r.get(0))?;
                        known.insert(id, present);
                        present
                    }
                };
                if !present {
                    refused[i] = true;
                    continue;
                }
            }
            match write {
                Write::Append { id, record, .. } => {
                    append.execute(params![
                        id.as_str(),
                        seq_to_sql(record.seq),
                        record.at_ms,
                        record.kind.as_str(),
                        record.by.as_str(),
                        record.data
                    ])?;
                    // The webhook event this record is, if any: in this transaction.
                    super::outbox::on_append(&txn, id, record)?;
                }
                Write::Checkpoint {
                    id, checkpoint: cp, ..
                } => {
                    checkpoint.execute(params![
                        id.as_str(),
                        seq_to_sql(cp.seq),
                        cp.state,
                        cp.owners
                    ])?;
                }
                Write::Erase { id, .. } => {
                    known.insert(id, false);
                    let tables = super::outbox::ERASED_WITH_INTERVIEW.into_iter();
                    for table in tables.chain(["room_log", "checkpoints", "tokens", "interviews"]) {
                        let column = if table == "interviews" {
                            "id"
                        } else {
                            "interview_id"
                        };
                        txn.execute(
                            &format!("DELETE FROM {table} WHERE {column} = ?1"),
                            [id.as_str()],
                        )?;
                    }
                }
                Write::CreateInterview {
                    interview, tokens, ..
                } => {
                    known.insert(&interview.id, true);
                    txn.execute(
                        "INSERT INTO interviews (id, title, candidate_name, created_at, question_id, candidate_ref, mode, time_limit_minutes, environment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            interview.id.as_str(),
                            interview.title,
                            interview.candidate_name,
                            interview.created_at,
                            interview.question_id,
                            interview.candidate_ref,
                            interview.mode.as_str(),
                            interview.time_limit_minutes,
                            interview.environment
                        ],
                    )?;
                    for (role, hash) in tokens {
                        txn.execute(
                            "INSERT INTO tokens (hash, interview_id, role) VALUES (?1, ?2, ?3)",
                            params![&hash[..], interview.id.as_str(), role.as_str()],
                        )?;
                    }
                    super::outbox::on_created(&txn, interview)?;
                }
                Write::ReplaceTokens { id, tokens, .. } => {
                    txn.execute("DELETE FROM tokens WHERE interview_id = ?1", [id.as_str()])?;
                    // Only for an interview that still exists (a delete may have won the race).
                    for (role, hash) in tokens {
                        txn.execute(
                            "INSERT INTO tokens (hash, interview_id, role) \
                             SELECT ?1, id, ?3 FROM interviews WHERE id = ?2",
                            params![&hash[..], id.as_str(), role.as_str()],
                        )?;
                    }
                }
                Write::Reopen { .. } | Write::People { .. } | Write::Outbox { .. } => {}
                Write::Probe { .. } => {
                    probe.execute([std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64)])?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::open_writer;
    use crate::sqlite::testing::{created, record};
    use crate::sqlite::{Durability, SqliteConfig, SqliteStore};
    use crate::LogStore;
    use duet_protocol::EventKind;

    #[tokio::test]
    async fn with_every_commit_synced_the_writer_fsyncs_each_commit_and_writes_go_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let synchronous = |config: &SqliteConfig| -> i64 {
            open_writer(config)
                .unwrap()
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        let every_commit = SqliteConfig {
            sync: Durability::EveryCommit,
            ..SqliteConfig::at(&path)
        };
        // SQLite's numbers: 1 is NORMAL (the WAL fsynced on the syncer's interval), 2 is FULL.
        assert_eq!(synchronous(&SqliteConfig::at(&path)), 1);
        assert_eq!(synchronous(&every_commit), 2);

        let store = SqliteStore::open(every_commit).unwrap();
        let id = created(&store, "syncedRoom").await;
        let tickets: Vec<_> = (1..=20)
            .map(|seq| store.append(&id, record(seq, EventKind::Edit)))
            .collect();
        for ticket in tickets {
            ticket.await.unwrap().unwrap();
        }
        assert_eq!(store.read_log(&id, 0).unwrap().len(), 20);
    }
}
