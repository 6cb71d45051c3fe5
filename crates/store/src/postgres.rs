//! The Postgres store: the same traits, the same semantics and the same errors as SQLite's, for
//! a deployment whose history lives in a database server its operators already run.
//!
//! Every write goes to a dedicated writer thread that commits whatever has queued up in one
//! transaction (group commit: a burst of keystrokes from every room costs one COMMIT, one WAL
//! flush on the server) and answers each write's ticket once COMMIT has returned. Reads run on
//! a small pool of connections. The client is `tokio-postgres`, driven on the store's own small
//! runtime: the store traits are synchronous (callers are blocking threads), and a read hands
//! its query to that runtime and waits for the answer, so a read from any thread blocks only
//! that thread and never starts a runtime inside another (the synchronous `postgres` crate
//! would, and panic on a tokio worker).
//!
//! Durability: COMMIT returns once the server has flushed its WAL under the server's
//! `synchronous_commit` (on by default): an acknowledged record survives a crash of Duet and a
//! power cut of the database server's machine. Connections are plain TCP or a Unix socket
//! (no TLS yet: keep the database on a trusted network).
//!
//! The files: `schema` (tables, versioned migrations), `writer` (the writer thread, batching,
//! commit, the failure gate, the lease fence), `reads` (the read queries), `people` (staff
//! accounts, sessions, panels, the audit log), `lease` (rooms' leases for several nodes).

mod lease;
mod outbox;
mod people;
mod reads;
pub(crate) mod schema;
mod writer;

use crate::people::PeopleWrite;
use crate::{
    Checkpoint, History, Interview, InterviewStore, LogStore, Result, StoreError, StoreHealth,
    Ticket, TokenHash,
};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use duet_protocol::{EventKind, InterviewId, LogEntry, LogRecord, Role};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;
use writer::Write;

/// Which database server and how to use it.
#[derive(Clone)]
pub struct PgConfig {
    /// A libpq connection string or URL: `postgres://user:password@host:port/database`, or
    /// `host=/run/postgresql dbname=duet` for a Unix socket.
    pub url: String,
    /// Read connections in the pool.
    pub readers: usize,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// How long a batch (or a connection, or a pooled read connection) may take before it
    /// fails as an I/O failure: a database server that stopped answering fails writes rather
    /// than holding every room's tickets forever.
    pub timeout: Duration,
}

impl PgConfig {
    pub fn at(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            readers: 4,
            max_batch: 2_048,
            timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PgConfig")
            .field("url", &"<redacted>")
            .field("readers", &self.readers)
            .field("max_batch", &self.max_batch)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The store's own runtime, shut down without waiting when the store goes (dropping a runtime
/// the ordinary way inside an async context panics).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// PostgreSQL behind the [`crate::Store`] trait.
pub struct PgStore {
    runtime: tokio::runtime::Handle,
    pool: Pool,
    /// Unbounded, as SQLite's: `append` never blocks a room task. Backpressure is the room's.
    writer: mpsc::UnboundedSender<Write>,
    timeout: Duration,
    // Last: dropped after the pool and the writer's sender.
    _runtime: OwnRuntime,
}

pub(crate) fn pg_config(url: &str, application: &str) -> Result<tokio_postgres::Config> {
    let mut pg =
        tokio_postgres::Config::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
    pg.application_name(application);
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    // A node that stops (paused, cut off) must not hold rows locked for the others for long:
    // the database ends its open transaction after 15 s idle, another node's wait for a lock
    // gives up after 5 s (answered as a storage failure, tried again by the caller), and TCP
    // keepalives notice a vanished peer in about a minute rather than two hours. The migration
    // waits for another node's migration as long as it takes. Options in the URL win.
    if application != "duet-migrate" && pg.get_options().is_none() {
        pg.options("-c idle_in_transaction_session_timeout=15000 -c lock_timeout=5000");
    }
    pg.keepalives_idle(Duration::from_secs(30));
    Ok(pg)
}

impl PgStore {
    /// Connects, creates or migrates the schema, and starts the writer thread.
    pub fn open(config: PgConfig) -> Result<PgStore> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("duet-pg")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let runtime = OwnRuntime(Some(runtime));
        let reader_pg = pg_config(&config.url, "duet-reader")?;
        let writer_pg = pg_config(&config.url, "duet-writer")?;
        let migrate_pg = pg_config(&config.url, "duet-migrate")?;
        let timeout = config.timeout;
        run_on(&handle, async move {
            let (mut client, connection) = tokio::time::timeout(timeout, migrate_pg.connect(NoTls))
                .await
                .map_err(|_| StoreError::Unreachable("connecting took too long".into()))??;
            let connection = tokio::spawn(connection);
            let migrated = schema::migrate(&mut client).await;
            drop(client);
            let _ = connection.await;
            migrated
        })?;
        let manager = Manager::from_config(
            reader_pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.readers.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_config = writer::WriterConfig {
            pg: writer_pg,
            max_batch: config.max_batch.max(1),
            timeout,
        };
        std::thread::Builder::new()
            .name("duet-pg-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(writer::writer_loop(rx, writer_config)),
                    // The writes queued meanwhile are answered `WriterGone` as `rx` drops.
                    Err(e) => {
                        tracing::error!(error = %e, "store: the Postgres writer could not start")
                    }
                }
            })?;
        Ok(PgStore {
            runtime: handle,
            pool,
            writer: tx,
            timeout,
            _runtime: runtime,
        })
    }

    /// Runs a read on a pooled connection and waits for it (callers are blocking threads).
    fn read<T, F>(&self, query: impl FnOnce(Object) -> F + Send + 'static) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let timeout = self.timeout;
        run_on(&self.runtime, async move {
            let connection = pool.get().await.map_err(pool_error)?;
            tokio::time::timeout(timeout, query(connection))
                .await
                .map_err(|_| {
                    StoreError::Unreachable(format!("a read took longer than {timeout:?}"))
                })?
        })
    }

    fn submit(&self, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Write) -> Ticket {
        let (ack, ticket) = oneshot::channel();
        if let Err(mpsc::error::SendError(write)) = self.writer.send(make(ack)) {
            let _ = write.into_ack().send(Err(StoreError::WriterGone));
        }
        ticket
    }

    fn people_write(&self, write: PeopleWrite) -> Ticket {
        self.submit(|ack| Write::People {
            write: Box::new(write),
            ack,
        })
    }
}

/// Runs `work` on the store's runtime and waits for its answer on this thread, whatever thread
/// this is (blocking it, as a SQLite read would).
fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| StoreError::Unreachable("the store is closing".into()))?
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
        other => StoreError::Unreachable(other.to_string()),
    }
}

impl InterviewStore for PgStore {
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
        self.read(reads::list_interviews)
    }

    fn get_interview(&self, id: &InterviewId) -> Result<Option<Interview>> {
        let id = id.clone();
        self.read(move |c| reads::get_interview(c, id))
    }

    fn status(&self, id: &InterviewId) -> Result<duet_protocol::InterviewStatus> {
        let id = id.clone();
        self.read(move |c| reads::status(c, id))
    }

    fn interviews_of(&self, candidate_ref: &str) -> Result<Vec<Interview>> {
        let candidate_ref = candidate_ref.to_owned();
        self.read(move |c| reads::interviews_of(c, candidate_ref))
    }

    fn ended_before(&self, cutoff_ms: i64) -> Result<Vec<InterviewId>> {
        self.read(move |c| reads::ended_before(c, cutoff_ms))
    }

    fn take_homes_in_progress(&self) -> Result<Vec<InterviewId>> {
        self.read(reads::take_homes_in_progress)
    }

    fn erase(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Erase {
            id: id.clone(),
            ack,
        })
    }

    fn find_token(&self, hash: &TokenHash) -> Result<Option<(InterviewId, Role)>> {
        let hash = *hash;
        self.read(move |c| reads::find_token(c, hash))
    }
}

impl LogStore for PgStore {
    fn reopen(&self, id: &InterviewId) -> Ticket {
        self.submit(|ack| Write::Reopen {
            id: id.clone(),
            ack,
        })
    }

    fn load_history(&self, id: &InterviewId) -> Result<History> {
        let id = id.clone();
        self.read(move |c| reads::load_history(c, id))
    }

    fn read_log(&self, id: &InterviewId, after: u64) -> Result<Vec<LogRecord>> {
        self.read_range(id, after, u64::MAX)
    }

    fn read_kinds(&self, id: &InterviewId, kinds: &[EventKind]) -> Result<Vec<LogRecord>> {
        self.read_kinds_in(id, kinds, 0, u64::MAX)
    }

    fn checkpoint_at_or_before(&self, id: &InterviewId, seq: u64) -> Result<Option<Checkpoint>> {
        let id = id.clone();
        self.read(move |c| reads::checkpoint_at_or_before(c, id, seq))
    }

    fn read_range(&self, id: &InterviewId, after: u64, upto: u64) -> Result<Vec<LogRecord>> {
        let id = id.clone();
        self.read(move |c| reads::read_range(c, id, after, upto))
    }

    fn read_kinds_in(
        &self,
        id: &InterviewId,
        kinds: &[EventKind],
        after: u64,
        upto: u64,
    ) -> Result<Vec<LogRecord>> {
        let (id, kinds) = (id.clone(), kinds.to_vec());
        self.read(move |c| reads::read_kinds_in(c, id, kinds, after, upto))
    }

    fn read_index(&self, id: &InterviewId, after: u64) -> Result<Vec<LogEntry>> {
        let id = id.clone();
        self.read(move |c| reads::read_index(c, id, after))
    }

    fn append(&self, id: &InterviewId, record: LogRecord) -> Ticket {
        self.submit(|ack| Write::Append {
            id: id.clone(),
            record,
            epoch: None,
            ack,
        })
    }

    fn checkpoint(&self, id: &InterviewId, checkpoint: Checkpoint) -> Ticket {
        self.submit(|ack| Write::Checkpoint {
            id: id.clone(),
            checkpoint,
            epoch: None,
            ack,
        })
    }
}

impl StoreHealth for PgStore {
    fn ping(&self) -> Result<()> {
        self.read(reads::ping)
    }

    fn probe_write(&self) -> Ticket {
        self.submit(|ack| Write::Probe { ack })
    }
}
