//! The embedded store: one SQLite database in WAL mode.
//!
//! Reads and the rare metadata writes share one connection behind a std mutex, held for one
//! query at a time (callers on the async runtime are known debt: issue 8). Log appends,
//! checkpoints and probes go to a dedicated writer thread that commits whatever has queued up in
//! one transaction (group commit), so a burst of keystrokes costs one commit per batch rather
//! than one per keystroke, and answers each write's ticket. A syncer thread fsyncs the WAL file
//! every second while there are writes.

use crate::{Checkpoint, History, Interview, Result, Store, StoreError, Ticket, TokenHash};
use duet_protocol::{Actor, EventKind, InterviewId, LogRecord, Role};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Where and how to keep the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; its folder is created if missing.
    pub path: PathBuf,
    /// How many writes may wait for the writer before `append` blocks (backpressure).
    pub write_queue: usize,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// How often the WAL is fsynced (a passive checkpoint) while there are writes.
    pub sync_interval: Duration,
}

impl SqliteConfig {
    pub fn at(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            write_queue: 65_536,
            max_batch: 2_048,
            sync_interval: Duration::from_secs(1),
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS interviews (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    candidate_name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    hash BLOB PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews(id),
    role TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_log (
    interview_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    role TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (interview_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    interview_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (interview_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS room_log_by_kind ON room_log (interview_id, kind, seq);
";

/// The schema version this code writes. Each step in [`MIGRATIONS`] takes the database one
/// version forward; a database newer than this is refused.
const SCHEMA_VERSION: i64 = 3;
const MIGRATIONS: &[(i64, &str)] = &[
    // 1 -> 2: a checkpoint keeps which role owns each Yjs client id.
    (2, "ALTER TABLE checkpoints ADD COLUMN owners BLOB NOT NULL DEFAULT x''; CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);"),
    // 2 -> 3: the question an interview is on.
    (3, "ALTER TABLE interviews ADD COLUMN question_id TEXT;"),
];

/// Creates the schema or migrates it forward to [`SCHEMA_VERSION`].
fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let txn = conn.transaction()?;
    if found == 0 {
        txn.execute_batch(SCHEMA)?;
        for (_, step) in MIGRATIONS {
            txn.execute_batch(step)?;
        }
    } else {
        for (version, step) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            txn.execute_batch(step)?;
            tracing::info!(version, "store: migrated the schema");
        }
    }
    txn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    txn.commit()?;
    Ok(())
}

enum Write {
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
}

impl Write {
    fn into_ack(self) -> oneshot::Sender<Result<()>> {
        match self {
            Write::Append { ack, .. } | Write::Checkpoint { ack, .. } | Write::Probe { ack } => ack,
        }
    }
}

/// SQLite behind the [`Store`] trait.
pub struct SqliteStore {
    reader: Mutex<Connection>,
    writer: SyncSender<Write>,
}

fn open(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers never block the writer. NORMAL: a commit is a write into the WAL (survives a
    // process crash) without an fsync each time; the writer thread fsyncs on its interval.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database and starts its writer thread.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut reader = open(&config.path)?;
        migrate(&mut reader)?;
        let writer_conn = open(&config.path)?;
        let syncer_conn = open(&config.path)?;
        let dirty = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(config.write_queue);
        let writer_dirty = dirty.clone();
        std::thread::Builder::new()
            .name("duet-store-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, config.max_batch, &writer_dirty))?;
        let sync_interval = config.sync_interval;
        let mut wal = config.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        std::thread::Builder::new()
            .name("duet-store-syncer".into())
            .spawn(move || syncer_loop(syncer_conn, wal, dirty, sync_interval))?;
        Ok(SqliteStore {
            reader: Mutex::new(reader),
            writer: tx,
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: take it back.
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&self, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Write) -> Ticket {
        let (ack, ticket) = oneshot::channel();
        if let Err(mpsc::SendError(write)) = self.writer.send(make(ack)) {
            let _ = write.into_ack().send(Err(StoreError::WriterGone));
        }
        ticket
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Write>,
    max_batch: usize,
    dirty: &AtomicBool,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let outcome = commit(&mut conn, &batch);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = batch.len(), "store: batch commit failed");
        }
        for write in batch {
            let _ = write.into_ack().send(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| StoreError::WriteFailed(e.to_string())),
            );
        }
        dirty.store(true, Ordering::Release);
    }
    // The senders are gone: the store is closing. One last sync below, from the syncer.
    dirty.store(true, Ordering::Release);
}

/// Every `interval` while there were writes, fsyncs the WAL file itself (so everything
/// committed before the sync survives a power cut, whether or not a checkpoint could run), then
/// copies what it can into the main database without waiting for readers. It runs on its own
/// connection and thread, so a slow fsync never holds up commits, and so never holds up any
/// room's deliveries.
fn syncer_loop(conn: Connection, wal: PathBuf, dirty: Arc<AtomicBool>, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        if dirty.swap(false, Ordering::AcqRel) {
            sync(&conn, &wal);
        }
        if Arc::strong_count(&dirty) == 1 {
            sync(&conn, &wal); // the writer has stopped: a final sync, then done
            return;
        }
    }
}

fn sync(conn: &Connection, wal: &std::path::Path) {
    // fsync flushes the file (the inode), whichever descriptor asks.
    match std::fs::File::open(wal).and_then(|f| f.sync_data()) {
        Ok(()) => {}
        // No WAL file: a checkpoint truncated it, and the main database was synced then.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(error = %e, wal = %wal.display(), "store: fsync of the WAL failed"),
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "store: WAL checkpoint failed");
    }
}

fn commit(conn: &mut Connection, batch: &[Write]) -> Result<()> {
    let txn = conn.transaction()?;
    {
        let mut append = txn.prepare_cached(
            "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut checkpoint = txn
            .prepare_cached("INSERT OR REPLACE INTO checkpoints (interview_id, seq, state, owners) VALUES (?1, ?2, ?3, ?4)")?;
        let mut probe =
            txn.prepare_cached("INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?1)")?;
        for write in batch {
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
                Write::Probe { .. } => {
                    probe.execute([std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64)])?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_from_sql(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq}")))
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, String, String, Vec<u8>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_record(
    (seq, at_ms, kind, by, data): (i64, i64, String, String, Vec<u8>),
) -> Result<LogRecord> {
    let kind = EventKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?;
    let by =
        Actor::parse(&by).ok_or_else(|| StoreError::Corrupt(format!("unknown author {by:?}")))?;
    Ok(LogRecord {
        seq: seq_from_sql(seq)?,
        at_ms,
        kind,
        by,
        data,
    })
}

type InterviewRow = (String, String, String, i64, Option<String>);

fn to_interview(row: &rusqlite::Row<'_>) -> rusqlite::Result<InterviewRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn interview_from(
    (id, title, candidate_name, created_at, question_id): InterviewRow,
) -> Result<Interview> {
    let id = InterviewId::parse(&id)
        .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))?;
    Ok(Interview {
        id,
        title,
        candidate_name,
        created_at,
        question_id,
    })
}

impl Store for SqliteStore {
    fn create_interview(&self, interview: &Interview, tokens: &[(Role, TokenHash)]) -> Result<()> {
        let mut conn = self.reader();
        let txn = conn.transaction()?;
        txn.execute(
            "INSERT INTO interviews (id, title, candidate_name, created_at, question_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![interview.id.as_str(), interview.title, interview.candidate_name, interview.created_at, interview.question_id],
        )?;
        for (role, hash) in tokens {
            txn.execute(
                "INSERT INTO tokens (hash, interview_id, role) VALUES (?1, ?2, ?3)",
                params![&hash[..], interview.id.as_str(), role.as_str()],
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    fn list_interviews(&self) -> Result<Vec<Interview>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, title, candidate_name, created_at, question_id FROM interviews ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([], to_interview)?;
        rows.map(|r| interview_from(r?)).collect()
    }

    fn get_interview(&self, id: &InterviewId) -> Result<Option<Interview>> {
        let conn = self.reader();
        let row = conn
            .prepare_cached(
                "SELECT id, title, candidate_name, created_at, question_id FROM interviews WHERE id = ?1",
            )?
            .query_row([id.as_str()], to_interview)
            .optional()?;
        row.map(interview_from).transpose()
    }

    fn set_question(&self, id: &InterviewId, question_id: &str) -> Result<()> {
        self.reader().execute(
            "UPDATE interviews SET question_id = ?2 WHERE id = ?1",
            params![id.as_str(), question_id],
        )?;
        Ok(())
    }

    fn find_token(&self, hash: &TokenHash) -> Result<Option<(InterviewId, Role)>> {
        let conn = self.reader();
        let row: Option<(String, String)> = conn
            .prepare_cached("SELECT interview_id, role FROM tokens WHERE hash = ?1")?
            .query_row([&hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((id, role)) = row else {
            return Ok(None);
        };
        let id = InterviewId::parse(&id)
            .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))?;
        let role = Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?;
        Ok(Some((id, role)))
    }

    fn load_history(&self, id: &InterviewId) -> Result<History> {
        type CheckpointRow = (i64, Vec<u8>, Vec<u8>);
        let (checkpoint, log_bytes): (Option<CheckpointRow>, i64) = {
            let conn = self.reader();
            let mut stmt = conn.prepare_cached(
                "SELECT seq, state, owners FROM checkpoints WHERE interview_id = ?1 ORDER BY seq DESC LIMIT 1",
            )?;
            let row = stmt
                .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let bytes = conn
                .prepare_cached(
                    "SELECT coalesce(sum(length(data)), 0) FROM room_log WHERE interview_id = ?1",
                )?
                .query_row([id.as_str()], |r| r.get(0))?;
            (row, bytes)
        };
        let checkpoint = checkpoint
            .map(|(seq, state, owners)| {
                Ok::<_, StoreError>(Checkpoint {
                    seq: seq_from_sql(seq)?,
                    state,
                    owners,
                })
            })
            .transpose()?;
        let after = checkpoint.as_ref().map_or(0, |cp| cp.seq);
        Ok(History {
            checkpoint,
            records: self.read_log(id, after)?,
            log_bytes: log_bytes.max(0) as u64,
        })
    }

    fn read_log(&self, id: &InterviewId, after: u64) -> Result<Vec<LogRecord>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![id.as_str(), seq_to_sql(after)], row_to_record)?;
        rows.map(|r| to_record(r?)).collect()
    }

    fn read_kinds(&self, id: &InterviewId, kinds: &[EventKind]) -> Result<Vec<LogRecord>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND kind = ?2 ORDER BY seq",
        )?;
        let mut out = Vec::new();
        for kind in kinds {
            let rows = stmt.query_map(params![id.as_str(), kind.as_str()], row_to_record)?;
            for row in rows {
                out.push(to_record(row?)?);
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
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

    fn probe_write(&self) -> Ticket {
        self.submit(|ack| Write::Probe { ack })
    }

    fn ping(&self) -> Result<()> {
        self.reader().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}
