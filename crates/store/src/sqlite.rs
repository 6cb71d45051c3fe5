//! The embedded store: one SQLite database in WAL mode.
//!
//! Reads use a small pool of connections, from blocking threads. Every write (log appends,
//! checkpoints, interview metadata, probes) goes to a dedicated writer thread that commits
//! whatever has queued up in one transaction (group commit), so a burst of keystrokes costs one
//! commit per batch rather than one per keystroke, and answers each write's ticket. A syncer
//! thread, once a second while there are writes, fsyncs the WAL file and copies it into the
//! database; the writer finishes that copy now and then so the WAL starts over (see
//! [`wal::finish_checkpoint`]).
//!
//! This file holds [`SqliteStore`] and its configuration, how it opens its connections and
//! starts its threads, and the store traits' entry points, each a line or two: a write is
//! handed to the writer, a read runs on a read connection. The rest is in the files named for
//! it: `schema` (tables, migrations), `writer` (the writer thread, batching, commit, the failure
//! gate), `wal` (the syncer, checkpoints, WAL truncation), `reads` (the read queries) and
//! `people` (staff accounts, sessions, panels, the audit log: reads and writes).

pub(crate) mod integrations;
pub(crate) mod outbox;
mod people;
mod reads;
mod schema;
#[cfg(test)]
pub(crate) use schema::SCHEMA_VERSION;
#[cfg(test)]
mod testing;
mod wal;
mod writer;

use crate::{
    Checkpoint, History, Interview, InterviewStore, LogStore, Result, StoreError, StoreHealth,
    Ticket, TokenHash,
};
use duet_protocol::{EventKind, InterviewId, LogEntry, LogRecord, Role};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use wal::Shared;
use writer::Write;

/// Where and how to keep the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; its folder is created if missing.
    pub path: PathBuf,
    /// Read connections, used from blocking threads.
    pub readers: usize,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// How often, while there are writes, the WAL is fsynced and copied into the database.
    pub sync_interval: Duration,
    /// When a commit is durable against a power cut.
    pub sync: Durability,
    /// Bytes of WAL past which the writer itself finishes a checkpoint (a pause of two fsyncs)
    /// so the WAL starts over; under steady load nothing else keeps it from growing.
    pub wal_limit: u64,
}

impl SqliteConfig {
    pub fn at(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            readers: 4,
            max_batch: 2_048,
            sync_interval: Duration::from_secs(1),
            wal_limit: 64 << 20,
            sync: Durability::Interval,
        }
    }
}

/// When a commit survives a power cut. Either way it survives a crash of the server (it is in
/// the WAL, in the operating system's hands) before anyone is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The syncer fsyncs the WAL every `sync_interval`: a power cut loses at most that much.
    #[default]
    Interval,
    /// Every commit is fsynced before its writes are acknowledged (`synchronous=FULL`): nothing
    /// acknowledged is lost to a power cut, at the price of an fsync per batch (BENCHMARKS.md).
    EveryCommit,
}

/// SQLite behind the [`Store`] trait.
pub struct SqliteStore {
    path: PathBuf,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    /// Unbounded: `append` never blocks a room task. Backpressure is the room's: it stops taking
    /// commands while too many of its records are in flight.
    writer: Sender<Write>,
}

fn open(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // 1 KiB pages, for a new database (an existing one keeps its own): each commit writes one
    // page per room it touches, so the page size is what a keystroke costs the WAL and the
    // disk (4 KiB pages wrote about 2.3 times the bytes under 500 busy rooms).
    conn.pragma_update(None, "page_size", 1024)?;
    // WAL: readers never block the writer. NORMAL: a commit is a write into the WAL (survives a
    // process crash) without an fsync each time; the syncer thread fsyncs on its interval.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten, so an erased interview leaves no text in freed pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database and starts its writer thread.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut first = open(&config.path)?;
        schema::migrate(&mut first)?;
        let mut readers = vec![Mutex::new(first)];
        for _ in 1..config.readers.max(1) {
            readers.push(Mutex::new(open(&config.path)?));
        }
        let writer_conn = writer::open_writer(&config)?;
        let syncer_conn = open(&config.path)?;
        let shared = Arc::new(Shared {
            dirty: AtomicBool::new(false),
            finish_checkpoint: AtomicBool::new(false),
            wal_limit: config.wal_limit,
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("duet-store-writer".into())
            .spawn({
                let db = config.path.clone();
                move || writer::writer_loop(writer_conn, db, rx, config.max_batch, &writer_shared)
            })?;
        let sync_interval = config.sync_interval;
        let mut wal = config.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        std::thread::Builder::new()
            .name("duet-store-syncer".into())
            .spawn(move || wal::syncer_loop(syncer_conn, wal, shared, sync_interval))?;
        Ok(SqliteStore {
            path: config.path.clone(),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            writer: tx,
        })
    }

    /// A free read connection, or (all busy) the next in turn. Callers are blocking threads.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return conn;
            }
        }
        // A panic while holding the lock cannot leave SQLite half-written: take it back.
        self.readers[start % n]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&self, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Write) -> Ticket {
        let (ack, ticket) = oneshot::channel();
        if let Err(mpsc::SendError(write)) = self.writer.send(make(ack)) {
            let _ = write.into_ack().send(Err(StoreError::WriterGone));
        }
        ticket
    }
}

impl InterviewStore for SqliteStore {
    fn create_interview(&self, interview: &Interview, tokens: &[(Role, TokenHash)]) -> Ticket {
        self.submit(|ack| Write::CreateInterview {
            interview: interview.clone(),
            tokens: tokens.to_vec(),
            ack,
        })
    }

    fn replace_tokens(&self, id: &InterviewId, tokens: &[(Role, TokenHash)]) -> Ticket {
        self.submit(|ack| Write::ReplaceTokens {
            id: id.clone(),
            tokens: tokens.to_vec(),
            ack,
        })
    }

    fn list_interviews(&self) -> Result<Vec<Interview>> {
        reads::list_interviews(&self.reader())
    }

    fn get_interview(&self, id: &InterviewId) -> Result<Option<Interview>> {
        reads::get_interview(&self.reader(), id)
    }

    fn status(&self, id: &InterviewId) -> Result<duet_protocol::InterviewStatus> {
        reads::status(&self.reader(), id)
    }

    fn interviews_of(&self, candidate_ref: &str) -> Result<Vec<Interview>> {
        reads::interviews_of(&self.reader(), candidate_ref)
    }

    fn ended_before(&self, cutoff_ms: i64) -> Result<Vec<InterviewId>> {
        reads::ended_before(&self.reader(), cutoff_ms)
    }

    fn take_homes_in_progress(&self) -> Result<Vec<InterviewId>> {
        reads::take_homes_in_progress(&self.reader())
    }

    fn erase(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Erase {
            id: id.clone(),
            ack,
        })
    }

    fn find_token(&self, hash: &TokenHash) -> Result<Option<(InterviewId, Role)>> {
        reads::find_token(&self.reader(), hash)
    }
}

impl LogStore for SqliteStore {
    fn reopen(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Reopen {
            id: id.clone(),
            ack,
        })
    }

    fn load_history(&self, id: &InterviewId) -> Result<History> {
        // The read connection goes back to the pool before the records are read on another.
        let (checkpoint, log_bytes) = reads::newest_checkpoint(&self.reader(), id)?;
        let after = checkpoint.as_ref().map_or(0, |cp| cp.seq);
        Ok(History {
            checkpoint,
            records: self.read_log(id, after)?,
            log_bytes,
        })
    }

    fn read_log(&self, id: &InterviewId, after: u64) -> Result<Vec<LogRecord>> {
        reads::read_log(&self.reader(), id, after)
    }

    fn read_kinds(&self, id: &InterviewId, kinds: &[EventKind]) -> Result<Vec<LogRecord>> {
        self.read_kinds_in(id, kinds, 0, u64::MAX)
    }

    fn checkpoint_at_or_before(&self, id: &InterviewId, seq: u64) -> Result<Option<Checkpoint>> {
        reads::checkpoint_at_or_before(&self.reader(), id, seq)
    }

    fn read_range(&self, id: &InterviewId, after: u64, upto: u64) -> Result<Vec<LogRecord>> {
        reads::read_range(&self.reader(), id, after, upto)
    }

    fn read_kinds_in(
        &self,
        id: &InterviewId,
        kinds: &[EventKind],
        after: u64,
        upto: u64,
    ) -> Result<Vec<LogRecord>> {
        reads::read_kinds_in(&self.reader(), id, kinds, after, upto)
    }

    fn read_index(&self, id: &InterviewId, after: u64) -> Result<Vec<LogEntry>> {
        reads::read_index(&self.reader(), id, after)
    }

    fn append(&self, id: &InterviewId, record: LogRecord) -> Ticket {
        self.submit(|ack| Write::Append {
            id: id.clone(),
            record,
            ack,
        })
    }

    fn checkpoint(&self, id: &InterviewId, checkpoint: Checkpoint) -> Ticket {
        self.submit(|ack| Write::Checkpoint {
            id: id.clone(),
            checkpoint,
            ack,
        })
    }
}

impl StoreHealth for SqliteStore {
    fn probe_write(&self) -> Ticket {
        self.submit(|ack| Write::Probe { ack })
    }

    fn ping(&self) -> Result<()> {
        // SQLite goes on writing to a deleted file without a word: look for it by name.
        std::fs::metadata(&self.path).map_err(|e| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            ))
        })?;
        self.reader().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}
