//! The embedded store: one SQLite database in WAL mode.
//!
//! Reads use a small pool of connections, from blocking threads. Every write (log appends,
//! checkpoints, interview metadata, probes) goes to a dedicated writer thread that commits
//! whatever has queued up in one transaction (group commit), so a burst of keystrokes costs one
//! commit per batch rather than one per keystroke, and answers each write's ticket. A syncer
//! thread, once a second while there are writes, fsyncs the WAL file and copies it into the
//! database; the writer finishes that copy now and then so the WAL starts over (see
//! [`finish_checkpoint`]).

use crate::{
    Checkpoint, History, Interview, InterviewStore, LogStore, Result, StoreError, StoreHealth,
    Ticket, TokenHash,
};
use duet_protocol::{Actor, EventKind, InterviewId, LogEntry, LogRecord, Role};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

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
const SCHEMA_VERSION: i64 = 5;
const MIGRATIONS: &[(i64, &str)] = &[
    // 1 -> 2: a checkpoint keeps which role owns each Yjs client id.
    (2, "ALTER TABLE checkpoints ADD COLUMN owners BLOB NOT NULL DEFAULT x''; CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);"),
    // 2 -> 3: the question an interview is on.
    (3, "ALTER TABLE interviews ADD COLUMN question_id TEXT;"),
    // 3 -> 4: the candidate's reference, for debriefs across a loop.
    (4, "ALTER TABLE interviews ADD COLUMN candidate_ref TEXT; CREATE INDEX IF NOT EXISTS interviews_by_ref ON interviews (candidate_ref);"),
    // 4 -> 5: the by-kind index leaves edits out. Edits are nearly every record and are read by
    // seq range, never by kind alone; indexing them cost every keystroke a second B-tree page in
    // the commit (and the WAL). Queries for other kinds add `kind <> 'edit'` (and name it).
    (5, "DROP INDEX IF EXISTS room_log_by_kind; CREATE INDEX IF NOT EXISTS room_log_by_rare_kind ON room_log (interview_id, kind, seq) WHERE kind <> 'edit';"),
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
}

impl Write {
    /// The room whose log this write extends, if any.
    fn room(&self) -> Option<&InterviewId> {
        match self {
            Write::Append { id, .. } | Write::Checkpoint { id, .. } => Some(id),
            _ => None,
        }
    }

    fn into_ack(self) -> oneshot::Sender<Result<()>> {
        match self {
            Write::Append { ack, .. }
            | Write::Checkpoint { ack, .. }
            | Write::Probe { ack }
            | Write::Erase { ack, .. }
            | Write::CreateInterview { ack, .. }
            | Write::ReplaceTokens { ack, .. }
            | Write::Reopen { ack, .. } => ack,
        }
    }
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

/// The writer thread's connection.
fn open_writer(config: &SqliteConfig) -> Result<Connection> {
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

impl SqliteStore {
    /// Opens (or creates) the database and starts its writer thread.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut first = open(&config.path)?;
        migrate(&mut first)?;
        let mut readers = vec![Mutex::new(first)];
        for _ in 1..config.readers.max(1) {
            readers.push(Mutex::new(open(&config.path)?));
        }
        let writer_conn = open_writer(&config)?;
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
                move || writer_loop(writer_conn, db, rx, config.max_batch, &writer_shared)
            })?;
        let sync_interval = config.sync_interval;
        let mut wal = config.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        std::thread::Builder::new()
            .name("duet-store-syncer".into())
            .spawn(move || syncer_loop(syncer_conn, wal, shared, sync_interval))?;
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

/// What the writer and the syncer tell each other.
struct Shared {
    /// The writer has committed since the syncer's last sync.
    dirty: AtomicBool,
    /// The syncer has copied most of the WAL into the database: the writer copies the rest
    /// after its next batch, so that the commit after it starts the WAL over from its beginning.
    finish_checkpoint: AtomicBool,
    /// The WAL's size, in bytes, past which the writer is asked to finish a checkpoint.
    wal_limit: u64,
}

fn writer_loop(
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
            let _ = write.into_ack().send(outcome.clone());
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

/// The writer's share of a checkpoint: copies the frames committed since the syncer's last
/// pass (a few milliseconds' worth) and syncs them. With every frame copied and no commit in
/// between, SQLite starts the WAL over at the next commit, so the WAL stays about one interval
/// long. A checkpoint from another connection cannot get there while commits continue: each
/// commit lands after the frames it copied. Without this the WAL grew by every commit (a
/// gigabyte in 13 s of 500 busy rooms), and with it the bytes each fsync had to flush.
fn finish_checkpoint(conn: &Connection) -> bool {
    match checkpoint_passive(conn) {
        Ok(Checkpointed { busy, .. }) => !busy,
        Err(e) => {
            tracing::warn!(error = %e, "store: the writer's WAL checkpoint failed");
            true
        }
    }
}

/// What `PRAGMA wal_checkpoint(PASSIVE)` did: it copies what it can without waiting for anyone.
struct Checkpointed {
    /// Another connection was checkpointing: nothing was done.
    busy: bool,
    /// Frames in the WAL since it last started over (its file is reused, never shrunk).
    frames: i64,
    /// Of those, frames not yet copied (a reader's old snapshot, or commits since, hold them).
    left: i64,
}

fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<Checkpointed> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let (frames, copied): (i64, i64) = (r.get(1)?, r.get(2)?);
        Ok(Checkpointed {
            busy: r.get::<_, i64>(0)? != 0,
            frames,
            left: frames - copied,
        })
    })
}

/// Every `interval` while there were writes, fsyncs the WAL file itself (so everything
/// committed before the sync survives a power cut, whether or not a checkpoint could run), then
/// copies what it can into the main database without waiting for readers, and leaves the last
/// few frames to the writer ([`finish_checkpoint`]). It runs on its own connection and thread,
/// so a slow fsync or a long copy never holds up commits, and so never holds up any room's
/// deliveries.
fn syncer_loop(conn: Connection, wal: PathBuf, shared: Arc<Shared>, interval: Duration) {
    // The size of a WAL frame: a page and its header (the page size is fixed once created).
    let frame_bytes = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap_or(4096)
        + WAL_FRAME_HEADER;
    loop {
        std::thread::sleep(interval);
        if shared.dirty.swap(false, Ordering::AcqRel) {
            sync(&conn, &wal, &shared, frame_bytes);
        }
        if Arc::strong_count(&shared) == 1 {
            // The writer has stopped: a final sync, then done.
            sync(&conn, &wal, &shared, frame_bytes);
            return;
        }
    }
}

/// At most this many frames are left for the writer to copy; the syncer makes another pass
/// while more remain (each pass leaves only what was committed during it).
const WRITER_TAIL_FRAMES: i64 = 256;
const SYNC_PASSES: usize = 3;

fn sync(conn: &Connection, wal: &std::path::Path, shared: &Shared, frame_bytes: i64) {
    match fsync(wal) {
        Ok(()) => {}
        // No WAL file: a checkpoint truncated it, and the main database was synced then.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(error = %e, wal = %wal.display(), "store: fsync of the WAL failed")
        }
    }
    let mut frames = 0;
    for _ in 0..SYNC_PASSES {
        match checkpoint_passive(conn) {
            Ok(pass) => {
                frames = pass.frames;
                if pass.busy || pass.left <= WRITER_TAIL_FRAMES {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: WAL checkpoint failed");
                return;
            }
        }
    }
    // A WAL past its limit is started over: the writer copies the last frames itself (and pays
    // two fsyncs, so only now and then). Below the limit the WAL starts over by itself whenever a
    // pass copies everything before the next commit, which a quiet moment allows.
    if (frames * frame_bytes).max(0) as u64 > shared.wal_limit {
        // fsync what was committed during the passes too, so the writer's share syncs little.
        let _ = fsync(wal);
        shared.finish_checkpoint.store(true, Ordering::Release);
    }
}

const WAL_FRAME_HEADER: i64 = 24;

fn fsync(path: &std::path::Path) -> std::io::Result<()> {
    // fsync flushes the file (the inode), whichever descriptor asks.
    std::fs::File::open(path).and_then(|f| f.sync_data())
}

/// Checkpoints the whole WAL into the database and truncates it to nothing, waiting (bounded)
/// for readers that still hold old snapshots.
fn truncate_wal(conn: &Connection) -> Result<()> {
    for _ in 0..50 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(StoreError::WriteFailed {
        failure: crate::Failure::Other,
        message: "could not truncate the WAL: readers kept old snapshots for a second".into(),
    })
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
                    for table in ["room_log", "checkpoints", "tokens", "interviews"] {
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
                        "INSERT INTO interviews (id, title, candidate_name, created_at, question_id, candidate_ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            interview.id.as_str(),
                            interview.title,
                            interview.candidate_name,
                            interview.created_at,
                            interview.question_id,
                            interview.candidate_ref
                        ],
                    )?;
                    for (role, hash) in tokens {
                        txn.execute(
                            "INSERT INTO tokens (hash, interview_id, role) VALUES (?1, ?2, ?3)",
                            params![&hash[..], interview.id.as_str(), role.as_str()],
                        )?;
                    }
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
                Write::Reopen { .. } => {}
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

type InterviewRow = (String, String, String, i64, Option<String>, Option<String>);

const INTERVIEW_COLUMNS: &str = "id, title, candidate_name, created_at, question_id, candidate_ref";

fn to_interview(row: &rusqlite::Row<'_>) -> rusqlite::Result<InterviewRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn interview_from(
    (id, title, candidate_name, created_at, question_id, candidate_ref): InterviewRow,
) -> Result<Interview> {
    let id = InterviewId::parse(&id)
        .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))?;
    Ok(Interview {
        id,
        title,
        candidate_name,
        created_at,
        question_id,
        candidate_ref,
    })
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
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INTERVIEW_COLUMNS} FROM interviews ORDER BY created_at DESC, id"
        ))?;
        let rows = stmt.query_map([], to_interview)?;
        rows.map(|r| interview_from(r?)).collect()
    }

    fn get_interview(&self, id: &InterviewId) -> Result<Option<Interview>> {
        let conn = self.reader();
        let row = conn
            .prepare_cached(&format!(
                "SELECT {INTERVIEW_COLUMNS} FROM interviews WHERE id = ?1"
            ))?
            .query_row([id.as_str()], to_interview)
            .optional()?;
        row.map(interview_from).transpose()
    }

    fn status(&self, id: &InterviewId) -> Result<duet_protocol::InterviewStatus> {
        let conn = self.reader();
        let mut has = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM room_log WHERE interview_id = ?1 AND kind = ?2 AND kind <> 'edit')",
        )?;
        let mut has_kind = |kind: EventKind| {
            has.query_row(params![id.as_str(), kind.as_str()], |r| r.get::<_, bool>(0))
        };
        Ok(if has_kind(EventKind::End)? {
            duet_protocol::InterviewStatus::Ended
        } else if has_kind(EventKind::Join)? {
            duet_protocol::InterviewStatus::Live
        } else {
            duet_protocol::InterviewStatus::Scheduled
        })
    }

    fn interviews_of(&self, candidate_ref: &str) -> Result<Vec<Interview>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!("SELECT {INTERVIEW_COLUMNS} FROM interviews WHERE candidate_ref = ?1 ORDER BY created_at, id"))?;
        let rows = stmt.query_map([candidate_ref], to_interview)?;
        rows.map(|r| interview_from(r?)).collect()
    }

    fn ended_before(&self, cutoff_ms: i64) -> Result<Vec<InterviewId>> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached("SELECT interview_id FROM room_log INDEXED BY room_log_by_rare_kind WHERE kind = ?1 AND kind <> 'edit' AND at_ms < ?2")?;
        let rows = stmt.query_map(params![EventKind::End.as_str(), cutoff_ms], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|r| {
            let id = r?;
            InterviewId::parse(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))
        })
        .collect()
    }

    fn erase(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Erase {
            id: id.clone(),
            ack,
        })
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
}

impl LogStore for SqliteStore {
    fn reopen(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Reopen {
            id: id.clone(),
            ack,
        })
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
        self.read_kinds_in(id, kinds, 0, u64::MAX)
    }

    fn checkpoint_at_or_before(&self, id: &InterviewId, seq: u64) -> Result<Option<Checkpoint>> {
        let conn = self.reader();
        type CheckpointRow = (i64, Vec<u8>, Vec<u8>);
        let row: Option<CheckpointRow> = conn
            .prepare_cached(
                "SELECT seq, state, owners FROM checkpoints WHERE interview_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![id.as_str(), seq_to_sql(seq)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(seq, state, owners)| {
            Ok(Checkpoint {
                seq: seq_from_sql(seq)?,
                state,
                owners,
            })
        })
        .transpose()
    }

    fn read_range(&self, id: &InterviewId, after: u64, upto: u64) -> Result<Vec<LogRecord>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![id.as_str(), seq_to_sql(after), seq_to_sql(upto)],
            row_to_record,
        )?;
        rows.map(|r| to_record(r?)).collect()
    }

    fn read_kinds_in(
        &self,
        id: &InterviewId,
        kinds: &[EventKind],
        after: u64,
        upto: u64,
    ) -> Result<Vec<LogRecord>> {
        let conn = self.reader();
        // One range per kind, merged by seq: edits from the log's own (interview_id, seq)
        // order, every other kind from the index that leaves edits out (`kind <> 'edit'` names
        // it for the planner).
        let mut out = Vec::new();
        for kind in kinds {
            let mut stmt = conn.prepare_cached(if *kind == EventKind::Edit {
                "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND seq > ?3 AND seq <= ?4 AND kind = ?2 ORDER BY seq"
            } else {
                "SELECT seq, at_ms, kind, role, data FROM room_log INDEXED BY room_log_by_rare_kind WHERE interview_id = ?1 AND kind = ?2 AND kind <> 'edit' AND seq > ?3 AND seq <= ?4 ORDER BY seq"
            })?;
            let rows = stmt.query_map(
                params![
                    id.as_str(),
                    kind.as_str(),
                    seq_to_sql(after),
                    seq_to_sql(upto)
                ],
                row_to_record,
            )?;
            for row in rows {
                out.push(to_record(row?)?);
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    fn read_index(&self, id: &InterviewId, after: u64) -> Result<Vec<LogEntry>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at_ms, kind, role FROM room_log WHERE interview_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![id.as_str(), seq_to_sql(after)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get_ref(2)?.as_str().map(EventKind::parse).unwrap_or(None),
                r.get_ref(3)?.as_str().map(Actor::parse).unwrap_or(None),
            ))
        })?;
        rows.map(|r| {
            let (seq, at_ms, kind, by) = r?;
            Ok(LogEntry {
                seq: seq_from_sql(seq)?,
                at_ms,
                kind,
                by,
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, kind: EventKind) -> LogRecord {
        LogRecord {
            seq,
            at_ms: 1000 + seq as i64,
            kind,
            by: Actor::Candidate,
            data: vec![seq as u8; 3],
        }
    }

    /// Creates an interview named `name` (a log is kept only for one that exists).
    async fn created(store: &SqliteStore, name: &str) -> InterviewId {
        let id = InterviewId::parse(name).unwrap();
        let interview = Interview {
            id: id.clone(),
            title: "T".into(),
            candidate_name: "Ada".into(),
            created_at: 0,
            question_id: None,
            candidate_ref: None,
        };
        store
            .create_interview(&interview, &[])
            .await
            .unwrap()
            .unwrap();
        id
    }

    async fn store_with_log(dir: &tempfile::TempDir) -> (SqliteStore, InterviewId) {
        let store = SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap();
        let id = created(&store, "replayQueries").await;
        for seq in 1..=10 {
            let kind = if seq % 4 == 0 {
                EventKind::RunStarted
            } else {
                EventKind::Edit
            };
            drop(store.append(&id, record(seq, kind)));
        }
        for seq in [3, 7] {
            let cp = Checkpoint {
                seq,
                state: vec![seq as u8],
                owners: Vec::new(),
            };
            store.checkpoint(&id, cp).await.unwrap().unwrap();
        }
        (store, id)
    }

    #[tokio::test]
    async fn replay_queries_read_exactly_the_ranges_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id) = store_with_log(&dir).await;
        let seqs = |records: Vec<LogRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(store.read_range(&id, 2, 5).unwrap()), [3, 4, 5]);
        assert_eq!(
            seqs(store.read_kinds_in(&id, &[EventKind::Edit], 2, 6).unwrap()),
            [3, 5, 6]
        );
        assert_eq!(seqs(store.read_runs(&id).unwrap()), [4, 8]);
        let at = |seq| {
            store
                .checkpoint_at_or_before(&id, seq)
                .unwrap()
                .map(|c| c.seq)
        };
        assert_eq!(
            (at(2), at(3), at(6), at(100)),
            (None, Some(3), Some(3), Some(7))
        );
        let index = store.read_index(&id, 8).unwrap();
        assert_eq!(
            index,
            [
                LogEntry {
                    seq: 9,
                    at_ms: 1009,
                    kind: Some(EventKind::Edit),
                    by: Some(Actor::Candidate)
                },
                LogEntry {
                    seq: 10,
                    at_ms: 1010,
                    kind: Some(EventKind::Edit),
                    by: Some(Actor::Candidate)
                },
            ]
        );
    }

    #[tokio::test]
    async fn the_light_index_reads_a_kind_it_does_not_know_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id) = store_with_log(&dir).await;
        store
            .reader()
            .execute(
                "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) VALUES (?1, 11, 2000, 'scorecard.future', 'interviewer', x'00')",
                [id.as_str()],
            )
            .unwrap();
        let index = store.read_index(&id, 10).unwrap();
        assert_eq!(
            index,
            [LogEntry {
                seq: 11,
                at_ms: 2000,
                kind: None,
                by: Some(Actor::Interviewer)
            }]
        );
    }

    #[tokio::test]
    async fn a_version_1_database_migrates_forward_and_keeps_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        {
            // What the first release wrote: the base schema, version 1, one interview's log.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO interviews (id, title, candidate_name, created_at) VALUES ('oldRoom', 'Old', 'Ada', 5)",
                [],
            )
            .unwrap();
            for (seq, kind) in [(1, "edit"), (2, "run.started"), (3, "edit"), (4, "end")] {
                conn.execute(
                    "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) VALUES ('oldRoom', ?1, ?1, ?2, 'candidate', x'01')",
                    params![seq, kind],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(SqliteConfig::at(&path)).unwrap();
        let id = InterviewId::parse("oldRoom").unwrap();
        let interview = store.get_interview(&id).unwrap().unwrap();
        assert_eq!(
            (interview.title.as_str(), interview.question_id),
            ("Old", None)
        );
        let seqs = |records: Vec<LogRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(store.read_log(&id, 0).unwrap()), [1, 2, 3, 4]);
        assert_eq!(seqs(store.read_runs(&id).unwrap()), [2]);
        assert_eq!(
            seqs(store.read_kinds(&id, &[EventKind::Edit]).unwrap()),
            [1, 3]
        );
        assert_eq!(
            store.status(&id).unwrap(),
            duet_protocol::InterviewStatus::Ended
        );
        let conn = store.reader();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let index_sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'room_log'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(index_sql.contains("WHERE kind <> 'edit'"), "{index_sql}");
    }

    #[test]
    fn a_database_from_a_newer_duet_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let Err(e) = SqliteStore::open(SqliteConfig::at(&path)) else {
            panic!("a newer schema opened");
        };
        assert!(matches!(e, StoreError::NewerSchema { .. }), "{e:?}");
        assert!(e.to_string().contains("upgrade Duet"), "{e}");
    }

    #[tokio::test]
    async fn a_steady_stream_of_commits_keeps_the_wal_bounded() {
        // A checkpoint from the syncer's own connection can never catch up with a writer that
        // keeps committing, so without the writer's share the WAL grows by every byte written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let mut config = SqliteConfig::at(&path);
        config.sync_interval = Duration::from_millis(20);
        config.wal_limit = 256 << 10;
        let store = SqliteStore::open(config).unwrap();
        let wal = dir.path().join("duet.db-wal");
        for room in 0..20 {
            created(&store, &format!("walRoom{room}")).await;
        }
        let (mut written, mut largest) = (0u64, 0u64);
        for chunk in 0..200u64 {
            let tickets: Vec<_> = (0..40u64)
                .map(|i| {
                    let room = InterviewId::parse(&format!("walRoom{}", i % 20)).unwrap();
                    let seq = chunk * 2 + 1 + i / 20;
                    let mut record = record(seq, EventKind::Edit);
                    record.data = vec![7; 4096];
                    store.append(&room, record)
                })
                .collect();
            for ticket in tickets {
                ticket.await.unwrap().unwrap();
            }
            written += 40 * 4096;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        assert!(
            largest < written / 2,
            "the WAL reached {largest} bytes after {written} bytes of records"
        );
    }

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

    #[tokio::test]
    async fn nothing_is_stored_for_an_interview_that_does_not_exist_and_the_rest_of_a_batch_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap();
        let kept = created(&store, "keptRoom").await;
        let gone = created(&store, "erasedRoom").await;
        store.erase(&gone).await.unwrap().unwrap();
        // A request that passed its token check just before the delete writes after it.
        let late = store.append(&gone, record(1, EventKind::Note));
        let other = store.append(&kept, record(1, EventKind::Edit));
        let never = store.append(
            &InterviewId::parse("neverWas").unwrap(),
            record(1, EventKind::Edit),
        );
        assert!(matches!(
            late.await.unwrap(),
            Err(StoreError::NoSuchInterview)
        ));
        assert!(matches!(
            never.await.unwrap(),
            Err(StoreError::NoSuchInterview)
        ));
        other.await.unwrap().unwrap();
        assert!(
            store.read_log(&gone, 0).unwrap().is_empty(),
            "the erased interview stays erased"
        );
        assert_eq!(store.read_log(&kept, 0).unwrap().len(), 1);
        // A checkpoint is refused too, and the refused room stores nothing more until it
        // reloads.
        let cp = Checkpoint {
            seq: 1,
            state: vec![1],
            owners: Vec::new(),
        };
        assert!(store.checkpoint(&gone, cp).await.unwrap().is_err());
        assert!(store.checkpoint_at_or_before(&gone, 5).unwrap().is_none());
    }
}
