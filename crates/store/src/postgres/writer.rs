//! The Postgres store's writer thread, through which every write goes, as SQLite's: [`Write`]
//! is what it is asked to do, [`writer_loop`] gathers what has queued up into one batch,
//! [`commit`]s it in one transaction and answers each write's ticket after COMMIT returns; its
//! failure gate holds back a room whose record failed, so the room's log never has a gap.
//!
//! The thread runs a current-thread tokio runtime of its own and one connection, made again
//! when it was lost (before a batch's BEGIN, never in the middle of one: a batch whose
//! connection broke fails as a whole and its rooms reload). A batch that takes longer than the
//! write timeout fails too, and its connection is dropped (the server rolls back what it had
//! not committed).

use super::schema::seq_to_sql;
use crate::people::PeopleWrite;
use crate::sqlite::outbox::{Completes, OutboxWrite, ERASED_WITH_INTERVIEW};
use crate::{Checkpoint, Failure, Interview, Result, StoreError, TokenHash};
use duet_protocol::{InterviewId, LogRecord, Role};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, NoTls, Statement};

pub(super) enum Write {
    Append {
        id: InterviewId,
        record: LogRecord,
        /// The lease epoch it is written under (several nodes), if any.
        epoch: Option<i64>,
        ack: oneshot::Sender<Result<()>>,
    },
    Checkpoint {
        id: InterviewId,
        checkpoint: Checkpoint,
        epoch: Option<i64>,
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
    /// A write to the people tables, committed on its own, outside the batch.
    People {
        write: Box<PeopleWrite>,
        ack: oneshot::Sender<Result<()>>,
    },
    /// A write to the outbox or the integration keys, committed on its own, outside the batch.
    Outbox {
        write: Box<OutboxWrite>,
        ack: oneshot::Sender<Result<()>>,
    },
}

impl Write {
    /// The lease epoch a room write is fenced by, if any.
    fn epoch(&self) -> Option<i64> {
        match self {
            Write::Append { epoch, .. } | Write::Checkpoint { epoch, .. } => *epoch,
            _ => None,
        }
    }

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

/// The statements the writer prepares once on each connection.
pub(super) struct Statements {
    exists: Statement,
    leases: Statement,
    append: Statement,
    checkpoint: Statement,
    probe: Statement,
}

/// The writer's connection.
struct Conn {
    client: Client,
    statements: Statements,
}

/// What the writer needs to know.
pub(super) struct WriterConfig {
    pub(super) pg: tokio_postgres::Config,
    pub(super) max_batch: usize,
    pub(super) timeout: Duration,
}

async fn connect(pg: &tokio_postgres::Config) -> Result<Conn> {
    let (client, connection) = pg.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "store: the writer's Postgres connection ended");
        }
    });
    // Existence is checked with a key-share lock: a delete of the interview (from another
    // node) waits for this batch, or this batch sees the interview gone.
    let exists = client
        .prepare("SELECT id FROM interviews WHERE id = ANY($1) FOR KEY SHARE")
        .await?;
    // The fence: the rooms' lease epochs, share-locked, so a takeover (an UPDATE of the row)
    // waits for this batch or this batch sees the new epoch.
    let leases = client
        .prepare(
            "SELECT interview_id, epoch FROM room_leases WHERE interview_id = ANY($1) FOR SHARE",
        )
        .await?;
    let append = client
        .prepare(
            "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::bytea[])",
        )
        .await?;
    let checkpoint = client
        .prepare(
            "INSERT INTO checkpoints (interview_id, seq, state, owners) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (interview_id, seq) DO UPDATE SET state = excluded.state, owners = excluded.owners",
        )
        .await?;
    let probe = client
        .prepare(
            "INSERT INTO probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .await?;
    Ok(Conn {
        client,
        statements: Statements {
            exists,
            leases,
            append,
            checkpoint,
            probe,
        },
    })
}

/// The writer's connection, made (again) if there is none or it was lost.
async fn connected<'a>(conn: &'a mut Option<Conn>, config: &WriterConfig) -> Result<&'a mut Conn> {
    if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        let made = tokio::time::timeout(config.timeout, connect(&config.pg))
            .await
            .map_err(|_| StoreError::Unreachable("connecting took too long".into()))??;
        *conn = Some(made);
    }
    conn.as_mut()
        .ok_or_else(|| StoreError::Unreachable("no connection".into()))
}

/// Runs `work` in one transaction on the writer's connection, within the write timeout, and
/// commits it if it succeeds (rolls it back if not). A connection found lost at BEGIN (closed,
/// or ended by the server: a database restarted while the writer was idle), before anything of
/// the work was sent, is made again and BEGIN tried once more. A failure that may have left the connection unusable (lost,
/// timed out, an I/O error) drops it: the next batch connects afresh.
async fn in_transaction<T>(
    conn: &mut Option<Conn>,
    config: &WriterConfig,
    work: impl AsyncFnOnce(&Client, &Statements) -> Result<T>,
) -> Result<T> {
    let attempt = async {
        let mut retried = false;
        let c = loop {
            let c = connected(conn, config).await?;
            match c
                .client
                .batch_execute("BEGIN")
                .await
                .map_err(StoreError::from)
            {
                Ok(()) => break c,
                Err(e) if e.failure() == Failure::Io && !retried => {
                    tracing::info!(error = %e, "store: the writer's connection was lost; connecting again");
                    retried = true;
                    *conn = None;
                }
                Err(e) => return Err(e),
            }
        };
        match work(&c.client, &c.statements).await {
            Ok(done) => {
                c.client.batch_execute("COMMIT").await?;
                Ok(done)
            }
            Err(e) => {
                if !c.client.is_closed() {
                    c.client.batch_execute("ROLLBACK").await?;
                }
                Err(e)
            }
        }
    };
    let outcome = match tokio::time::timeout(config.timeout, attempt).await {
        Ok(done) => done,
        Err(_) => Err(StoreError::Unreachable(format!(
            "a write took longer than {:?}",
            config.timeout
        ))),
    };
    if let Err(e) = &outcome {
        if e.failure() == Failure::Io {
            *conn = None;
        }
    }
    outcome
}

pub(super) async fn writer_loop(mut rx: mpsc::UnboundedReceiver<Write>, config: WriterConfig) {
    let mut conn: Option<Conn> = None;
    // Rooms whose records failed to commit: nothing more of theirs commits until the room loads
    // afresh (`Reopen`), so a log never gets a gap and no checkpoint covers a record that failed.
    let mut failed: HashSet<InterviewId> = HashSet::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < config.max_batch {
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
                    let done = in_transaction(&mut conn, &config, async |client, _| {
                        super::people::apply(client, &write).await
                    })
                    .await
                    .map_err(|e| match e {
                        e @ (StoreError::Postgres(_) | StoreError::Unreachable(_)) => {
                            e.for_each_write()
                        }
                        refused => refused,
                    });
                    let _ = ack.send(done);
                }
                Write::Outbox { write, ack } => {
                    let done = in_transaction(&mut conn, &config, async |client, _| {
                        super::outbox::apply(client, &write).await
                    })
                    .await
                    .map_err(|e| match e {
                        e @ (StoreError::Postgres(_) | StoreError::Unreachable(_)) => {
                            e.for_each_write()
                        }
                        refused => refused,
                    });
                    let _ = ack.send(done);
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
        let committed = in_transaction(&mut conn, &config, async |client, statements| {
            commit(client, statements, &to_commit).await
        })
        .await;
        let (refused, outcome) = match committed {
            Ok(refused) => (refused, Ok(())),
            Err(e) => {
                tracing::error!(error = %e, writes = to_commit.len(), "store: batch commit failed");
                failed.extend(to_commit.iter().filter_map(|w| w.room().cloned()));
                (vec![None; to_commit.len()], Err(e.for_each_write()))
            }
        };
        for (write, refused) in to_commit.into_iter().zip(refused) {
            match refused {
                None => {}
                Some(Refused::NoInterview) => {
                    if let Some(room) = write.room() {
                        tracing::warn!(interview = %room, "store: a write for an interview that does not exist was refused");
                        failed.insert(room.clone());
                    }
                    let _ = write.into_ack().send(Err(StoreError::NoSuchInterview));
                    continue;
                }
                Some(Refused::LeaseLost) => {
                    let _ = write.into_ack().send(Err(StoreError::LeaseLost));
                    continue;
                }
            }
            let _ = write.into_ack().send(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(StoreError::for_each_write),
            );
        }
    }
}

/// Appends waiting to go into the log, in order, sent as one statement.
#[derive(Default)]
struct Appends<'a> {
    ids: Vec<&'a str>,
    seqs: Vec<i64>,
    ats: Vec<i64>,
    kinds: Vec<&'a str>,
    roles: Vec<&'a str>,
    data: Vec<&'a [u8]>,
}

impl<'a> Appends<'a> {
    fn push(&mut self, id: &'a InterviewId, record: &'a LogRecord) {
        self.ids.push(id.as_str());
        self.seqs.push(seq_to_sql(record.seq));
        self.ats.push(record.at_ms);
        self.kinds.push(record.kind.as_str());
        self.roles.push(record.by.as_str());
        self.data.push(&record.data);
    }

    async fn flush(&mut self, txn: &Client, append: &Statement) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        txn.execute(
            append,
            &[
                &self.ids,
                &self.seqs,
                &self.ats,
                &self.kinds,
                &self.roles,
                &self.data,
            ],
        )
        .await?;
        *self = Appends::default();
        Ok(())
    }
}

/// Why a write of a batch was left out (the rest of the batch is unaffected).
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// Its interview does not exist (it was erased, or never was).
    NoInterview,
    /// It was fenced by a lease epoch that no longer holds the room.
    LeaseLost,
}

/// Writes `batch` in the writer's transaction. Answers, per write, whether it was refused
/// because its interview does not exist, as SQLite's writer does, or because its lease epoch
/// is not the room's any more. Consecutive appends go as one statement.
async fn commit(
    txn: &Client,
    statements: &Statements,
    batch: &[Write],
) -> Result<Vec<Option<Refused>>> {
    let mut refused = vec![None; batch.len()];
    let rooms: Vec<&str> = batch
        .iter()
        .filter_map(|w| w.room().map(InterviewId::as_str))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // What this batch knows of each room's interview: creates and erases in it count, in order.
    let mut known: HashMap<&str, bool> = rooms.iter().map(|r| (*r, false)).collect();
    if !rooms.is_empty() {
        for row in txn.query(&statements.exists, &[&rooms]).await? {
            let id: &str = row.get(0);
            if let Some(present) = known.get_mut(id) {
                *present = true;
            }
        }
    }
    let fenced: Vec<&str> = batch
        .iter()
        .filter(|w| w.epoch().is_some())
        .filter_map(|w| w.room().map(InterviewId::as_str))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut epochs: HashMap<String, i64> = HashMap::new();
    if !fenced.is_empty() {
        for row in txn.query(&statements.leases, &[&fenced]).await? {
            epochs.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    let mut appends = Appends::default();
    for (i, write) in batch.iter().enumerate() {
        if let Some(id) = write.room() {
            if !known.get(id.as_str()).copied().unwrap_or(false) {
                refused[i] = Some(Refused::NoInterview);
                continue;
            }
            if let Some(epoch) = write.epoch() {
                if epochs.get(id.as_str()) != Some(&epoch) {
                    refused[i] = Some(Refused::LeaseLost);
                    continue;
                }
            }
        }
        if let Write::Append { id, record, .. } = write {
            appends.push(id, record);
            if Completes::record(record) != Completes::No {
                // Whether it completes a sent test depends on the records before it (an end,
                // a submitted card), which may be in this batch: stored first.
                appends.flush(txn, &statements.append).await?;
            }
            // The webhook event the record is, if any: in this transaction.
            super::outbox::on_append(txn, id, record).await?;
            continue;
        }
        appends.flush(txn, &statements.append).await?;
        match write {
            Write::Append { .. }
            | Write::Reopen { .. }
            | Write::People { .. }
            | Write::Outbox { .. } => {}
            Write::Checkpoint {
                id, checkpoint: cp, ..
            } => {
                txn.execute(
                    &statements.checkpoint,
                    &[&id.as_str(), &seq_to_sql(cp.seq), &cp.state, &cp.owners],
                )
                .await?;
            }
            Write::Erase { id, .. } => {
                known.insert(id.as_str(), false);
                for table in ERASED_WITH_INTERVIEW {
                    txn.execute(
                        &format!("DELETE FROM {table} WHERE interview_id = $1"),
                        &[&id.as_str()],
                    )
                    .await?;
                }
                for sql in [
                    "DELETE FROM room_log WHERE interview_id = $1",
                    "DELETE FROM checkpoints WHERE interview_id = $1",
                    "DELETE FROM tokens WHERE interview_id = $1",
                    "DELETE FROM interviews WHERE id = $1",
                ] {
                    txn.execute(sql, &[&id.as_str()]).await?;
                }
            }
            Write::CreateInterview {
                interview, tokens, ..
            } => {
                known.insert(interview.id.as_str(), true);
                let time_limit = interview.time_limit_minutes.map(i64::from);
                txn.execute(
                    "INSERT INTO interviews (id, title, candidate_name, created_at, question_id, candidate_ref, \
                     mode, time_limit_minutes, environment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &interview.id.as_str(),
                        &interview.title,
                        &interview.candidate_name,
                        &interview.created_at,
                        &interview.question_id,
                        &interview.candidate_ref,
                        &interview.mode.as_str(),
                        &time_limit,
                        &interview.environment,
                    ],
                )
                .await?;
                for (role, hash) in tokens {
                    txn.execute(
                        "INSERT INTO tokens (hash, interview_id, role) VALUES ($1, $2, $3)",
                        &[&&hash[..], &interview.id.as_str(), &role.as_str()],
                    )
                    .await?;
                }
                super::outbox::on_created(txn, interview).await?;
            }
            Write::ReplaceTokens { id, tokens, .. } => {
                txn.execute(
                    "DELETE FROM tokens WHERE interview_id = $1",
                    &[&id.as_str()],
                )
                .await?;
                // Only for an interview that still exists (a delete may have won the race).
                for (role, hash) in tokens {
                    txn.execute(
                        "INSERT INTO tokens (hash, interview_id, role) SELECT $1, id, $3 FROM interviews WHERE id = $2",
                        &[&&hash[..], &id.as_str(), &role.as_str()],
                    )
                    .await?;
                }
            }
            Write::Probe { .. } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                txn.execute(&statements.probe, &[&now]).await?;
            }
        }
    }
    appends.flush(txn, &statements.append).await?;
    Ok(refused)
}
