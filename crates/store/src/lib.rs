//! Duet's durable state: interviews, hashed role tokens, each room's append-only event log
//! with checkpoints, the staff's accounts, sessions, panels and audit log ([`people`]), the
//! outbox of webhook events and mail ([`outbox`]) and integrations' keys ([`integrations`]). A
//! [`Store`] trait with two implementations behind it: embedded SQLite ([`SqliteStore`], the
//! default) and PostgreSQL ([`PgStore`], for a database server the operators run). Both batch
//! concurrent writes into one transaction (group commit) on a writer thread, hold back a room
//! whose write failed until it reloads, and classify failures the same way ([`Failure`]).
//!
//! Durability contract: [`Store::append`] resolves its ticket once the record is committed.
//! On SQLite that is a commit to the write-ahead log: the record survives `kill -9` of the
//! server (it is in the operating system's file cache), and the WAL is fsynced at least once a
//! second while there are writes (an fsync of the WAL file itself), so a power cut loses at most
//! about the last second ([`Durability::EveryCommit`] fsyncs each commit instead). On Postgres
//! it is a COMMIT the server has flushed to its own WAL (with the server's default
//! `synchronous_commit = on`): it survives a crash of either process and a power cut.
//!
//! What does not belong here: the meaning of the records (the core crate), websockets (the server).

pub mod copy;
pub mod integrations;
pub mod lease;
pub mod outbox;
pub mod people;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use duet_protocol::{EventKind, InterviewId, LogEntry, LogRecord, Role};
pub use integrations::IntegrationStore;
pub use lease::{Holder, Lease, RoomLeases, MAX_LEASE_TTL};
pub use outbox::OutboxStore;
pub use people::{NewAudit, NewSession, PeopleStore, SessionRecord};
pub use postgres::{PgConfig, PgStore};
pub use sqlite::{Durability, SqliteConfig, SqliteStore};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (disk full, I/O error, a locked database...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error, or the connection to it failed or was lost.
    #[error("postgres: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The database server did not answer in time (no free connection, a write that hung).
    #[error("the database server did not answer: {0}")]
    Unreachable(String),
    /// The database URL cannot be used.
    #[error("bad database url: {0}")]
    BadUrl(String),
    /// A write batch failed (every write of the batch gets this).
    #[error("write failed ({failure}): {message}")]
    WriteFailed { failure: Failure, message: String },
    /// An earlier record of this room failed to commit: nothing more of it is stored until the
    /// room loads afresh (so its log never has a gap).
    #[error("an earlier record of this room failed to store; the room must reload")]
    RoomFailed,
    /// The database was written by a newer version of Duet.
    #[error("the database schema is version {found}, newer than this server's {supported}: upgrade Duet")]
    NewerSchema { found: i64, supported: i64 },
    /// A stored row holds something this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A log record or checkpoint for an interview that does not exist (it was deleted): never
    /// stored, so a deleted interview cannot come back.
    #[error("the interview does not exist (it was deleted)")]
    NoSuchInterview,
    /// The writer thread is gone (the store is shutting down or crashed).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A person with this email address exists already.
    #[error("someone has this email address already")]
    EmailTaken,
    /// No person has this id.
    #[error("no such person")]
    NoSuchPerson,
    /// A set-password link that is unknown, used, expired, or whose person is disabled.
    #[error("this link is unknown, used or expired")]
    LinkUnusable,
    /// The person has no API token with this id.
    #[error("no such token")]
    NoSuchToken,
    /// No webhook endpoint has this id.
    #[error("no such webhook")]
    NoSuchWebhook,
    /// The webhook endpoint has no delivery with this id.
    #[error("no such delivery")]
    NoSuchDelivery,
    /// `duet migrate` found rows in the target database's table: it copies only into an empty one.
    #[error("the target database is not empty (table {0} has rows): migrate into a new database")]
    TargetNotEmpty(&'static str),
    /// `duet migrate` read a row back from the target that differs from the source's.
    #[error("the copy of {table} differs from the source at row {row}: {detail}")]
    CopyDiffers {
        table: &'static str,
        row: u64,
        detail: String,
    },
    /// The write was fenced out: another node holds the room's lease now (or it was given back).
    #[error("this node no longer holds the room's lease: another node took it over")]
    LeaseLost,
    /// Creating the data directory or database file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What kind of failure a write met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The disk (or the database's size limit) is full.
    DiskFull,
    /// The database cannot be written (a read-only file or file system).
    ReadOnly,
    /// The operating system failed a read or write (the file was removed, a device error).
    Io,
    /// Anything else the database reported.
    Other,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::DiskFull => "disk full",
            Failure::ReadOnly => "read-only",
            Failure::Io => "I/O error",
            Failure::Other => "database error",
        })
    }
}

impl StoreError {
    /// What went wrong, classified.
    pub fn failure(&self) -> Failure {
        use rusqlite::ErrorCode;
        match self {
            StoreError::WriteFailed { failure, .. } => *failure,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                ErrorCode::DiskFull => Failure::DiskFull,
                ErrorCode::ReadOnly => Failure::ReadOnly,
                ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => Failure::Io,
                _ => Failure::Other,
            },
            StoreError::Postgres(e) => postgres_failure(e),
            StoreError::Io(_) | StoreError::Unreachable(_) => Failure::Io,
            _ => Failure::Other,
        }
    }

    /// The same failure as a value every write of a failed batch can carry.
    pub fn for_each_write(&self) -> StoreError {
        match self {
            StoreError::RoomFailed => StoreError::RoomFailed,
            other => StoreError::WriteFailed {
                failure: other.failure(),
                message: other.to_string(),
            },
        }
    }
}

/// What the server said (its message and SQLSTATE), or the client's error and its cause:
/// tokio-postgres's own text for a server error is only "db error".
fn postgres_detail(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// A PostgreSQL error classified by its SQLSTATE; a connection that failed or was lost (no
/// SQLSTATE: the socket's own error) is an I/O failure.
fn postgres_failure(e: &tokio_postgres::Error) -> Failure {
    use tokio_postgres::error::SqlState;
    let Some(code) = e.code() else {
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return if e.is_closed() || io {
            Failure::Io
        } else {
            Failure::Other
        };
    };
    if *code == SqlState::DISK_FULL {
        Failure::DiskFull
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        Failure::ReadOnly
    } else if code.code().starts_with("08") // connection exceptions
        || code.code().starts_with("57P") // the server shut down or restarted
        || code.code().starts_with("58") // the server's own I/O failed
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        Failure::Io
    } else {
        Failure::Other
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Resolves when a write is durable (or has failed).
pub type Ticket = tokio::sync::oneshot::Receiver<Result<()>>;

/// An interview's stored description: the protocol's own type, one struct for the row and the
/// API.
pub use duet_protocol::Interview;

/// The whole document as one Yjs update at `seq`, with who owns which Yjs client id (opaque
/// bytes the core encodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub state: Vec<u8>,
    pub owners: Vec<u8>,
}

/// Everything needed to bring a room back: the newest checkpoint and the log after it.
#[derive(Debug, Default)]
pub struct History {
    pub checkpoint: Option<Checkpoint>,
    /// Records after the checkpoint, in sequence order.
    pub records: Vec<LogRecord>,
    /// Bytes of record data the room's whole log holds (for its quota).
    pub log_bytes: u64,
}

/// A token's hash: SHA-256 of the token string. Tokens themselves are never stored.
pub type TokenHash = [u8; 32];

/// Interviews, their role tokens and their lifecycle.
pub trait InterviewStore: Send + Sync + 'static {
    fn create_interview(&self, interview: &Interview, tokens: &[(Role, TokenHash)]) -> Ticket;
    /// Replaces the interview's role tokens in one transaction: the old ones find nothing from
    /// then on. An interview that does not exist (any more) gets none.
    fn replace_tokens(&self, id: &InterviewId, tokens: &[(Role, TokenHash)]) -> Ticket;
    fn list_interviews(&self) -> Result<Vec<Interview>>;
    fn get_interview(&self, id: &InterviewId) -> Result<Option<Interview>>;
    fn status(&self, id: &InterviewId) -> Result<duet_protocol::InterviewStatus>;
    fn interviews_of(&self, candidate_ref: &str) -> Result<Vec<Interview>>;
    fn ended_before(&self, cutoff_ms: i64) -> Result<Vec<InterviewId>>;
    /// The take-homes whose round started and whose room may still have work to do: not ended,
    /// or submitted with no run finished after the submit (one that ended as `sandbox_error`
    /// does not count: its hidden tests are owed again). Read from the rare-kind records only,
    /// never the whole log.
    fn take_homes_in_progress(&self) -> Result<Vec<InterviewId>>;
    fn erase(&self, id: &InterviewId) -> Ticket;
    fn find_token(&self, hash: &TokenHash) -> Result<Option<(InterviewId, Role)>>;
}

/// Each room's append-only log and its checkpoints, and the reads replay needs.
pub trait LogStore: Send + Sync + 'static {
    fn reopen(&self, id: &InterviewId) -> Ticket;
    fn load_history(&self, id: &InterviewId) -> Result<History>;
    fn read_log(&self, id: &InterviewId, after: u64) -> Result<Vec<LogRecord>>;
    fn read_kinds(
        &self,
        id: &InterviewId,
        kinds: &[duet_protocol::EventKind],
    ) -> Result<Vec<LogRecord>>;
    fn checkpoint_at_or_before(&self, id: &InterviewId, seq: u64) -> Result<Option<Checkpoint>>;
    fn read_range(&self, id: &InterviewId, after: u64, upto: u64) -> Result<Vec<LogRecord>>;
    fn read_kinds_in(
        &self,
        id: &InterviewId,
        kinds: &[EventKind],
        after: u64,
        upto: u64,
    ) -> Result<Vec<LogRecord>>;
    fn read_index(&self, id: &InterviewId, after: u64) -> Result<Vec<LogEntry>>;
    fn read_runs(&self, id: &InterviewId) -> Result<Vec<LogRecord>> {
        self.read_kinds_in(
            id,
            &[EventKind::RunStarted, EventKind::RunFinished],
            0,
            u64::MAX,
        )
    }
    fn append(&self, id: &InterviewId, record: LogRecord) -> Ticket;
    fn checkpoint(&self, id: &InterviewId, checkpoint: Checkpoint) -> Ticket;
}

/// Whether the store can be read and written.
pub trait StoreHealth: Send + Sync + 'static {
    fn ping(&self) -> Result<()>;
    fn probe_write(&self) -> Ticket;
}

/// Everything the server keeps, split by domain so a second implementation (Postgres) can follow
/// one domain at a time and no trait grows into one for everything. Questions live in files
/// (`questions/`), and scorecards, notes and signals are records of the room's log.
pub trait Store:
    InterviewStore + LogStore + StoreHealth + PeopleStore + OutboxStore + IntegrationStore
{
}

impl<T> Store for T where
    T: InterviewStore + LogStore + StoreHealth + PeopleStore + OutboxStore + IntegrationStore
{
}
