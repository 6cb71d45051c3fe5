//! The read queries on a pooled connection, and the conversions from rows to records,
//! checkpoints and interviews. Each takes the connection and its arguments by value, so the
//! store can run it on its runtime and wait for the answer from any thread. Writes never come
//! here: they go to the writer thread.

use super::schema::{seq_from_sql, seq_to_sql};
use crate::{Checkpoint, History, Interview, Result, StoreError, TokenHash};
use deadpool_postgres::Object;
use duet_protocol::{Actor, EventKind, InterviewId, InterviewMode, LogEntry, LogRecord, Role};
use tokio_postgres::Row;

const RECORD_COLUMNS: &str = "seq, at_ms, kind, role, data";

fn to_record(row: &Row) -> Result<LogRecord> {
    let kind: &str = row.try_get(2)?;
    let by: &str = row.try_get(3)?;
    let kind = EventKind::parse(kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?;
    let by =
        Actor::parse(by).ok_or_else(|| StoreError::Corrupt(format!("unknown author {by:?}")))?;
    Ok(LogRecord {
        seq: seq_from_sql(row.try_get(0)?)?,
        at_ms: row.try_get(1)?,
        kind,
        by,
        data: row.try_get(4)?,
    })
}

fn to_records(rows: &[Row]) -> Result<Vec<LogRecord>> {
    rows.iter().map(to_record).collect()
}

pub(super) const INTERVIEW_COLUMNS: &str = "i.id, i.title, i.candidate_name, i.created_at, \
     i.question_id, i.candidate_ref, i.mode, i.time_limit_minutes, i.environment";

pub(super) fn interview_id(id: &str) -> Result<InterviewId> {
    InterviewId::parse(id).ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))
}

/// An interview from the first nine columns of `row` ([`INTERVIEW_COLUMNS`]).
pub(super) fn to_interview(row: &Row) -> Result<Interview> {
    let mode: &str = row.try_get(6)?;
    let mode = InterviewMode::parse(mode)
        .ok_or_else(|| StoreError::Corrupt(format!("bad interview mode {mode:?}")))?;
    let time_limit_minutes = row
        .try_get::<_, Option<i64>>(7)?
        .map(|m| u32::try_from(m).map_err(|_| StoreError::Corrupt(format!("bad time limit {m}"))))
        .transpose()?;
    Ok(Interview {
        id: interview_id(row.try_get(0)?)?,
        title: row.try_get(1)?,
        candidate_name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        question_id: row.try_get(4)?,
        candidate_ref: row.try_get(5)?,
        mode,
        time_limit_minutes,
        environment: row.try_get(8)?,
    })
}

fn to_checkpoint(row: &Row) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: seq_from_sql(row.try_get(0)?)?,
        state: row.try_get(1)?,
        owners: row.try_get(2)?,
    })
}

pub(super) async fn list_interviews(c: Object) -> Result<Vec<Interview>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {INTERVIEW_COLUMNS} FROM interviews i ORDER BY i.created_at DESC, i.id"
        ))
        .await?;
    c.query(&stmt, &[])
        .await?
        .iter()
        .map(to_interview)
        .collect()
}

pub(super) async fn get_interview(c: Object, id: InterviewId) -> Result<Option<Interview>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {INTERVIEW_COLUMNS} FROM interviews i WHERE i.id = $1"
        ))
        .await?;
    c.query_opt(&stmt, &[&id.as_str()])
        .await?
        .as_ref()
        .map(to_interview)
        .transpose()
}

pub(super) async fn status(c: Object, id: InterviewId) -> Result<duet_protocol::InterviewStatus> {
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM room_log WHERE interview_id = $1 AND kind = $2), \
                    EXISTS (SELECT 1 FROM room_log WHERE interview_id = $1 AND kind = $3)",
        )
        .await?;
    let row = c
        .query_one(
            &stmt,
            &[
                &id.as_str(),
                &EventKind::End.as_str(),
                &EventKind::Join.as_str(),
            ],
        )
        .await?;
    let (ended, joined): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    Ok(if ended {
        duet_protocol::InterviewStatus::Ended
    } else if joined {
        duet_protocol::InterviewStatus::Live
    } else {
        duet_protocol::InterviewStatus::Scheduled
    })
}

pub(super) async fn interviews_of(c: Object, candidate_ref: String) -> Result<Vec<Interview>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {INTERVIEW_COLUMNS} FROM interviews i WHERE i.candidate_ref = $1 ORDER BY i.created_at, i.id"
        ))
        .await?;
    c.query(&stmt, &[&candidate_ref])
        .await?
        .iter()
        .map(to_interview)
        .collect()
}

pub(super) async fn ended_before(c: Object, cutoff_ms: i64) -> Result<Vec<InterviewId>> {
    let stmt = c
        .prepare_cached("SELECT interview_id FROM room_log WHERE kind = $1 AND at_ms < $2")
        .await?;
    c.query(&stmt, &[&EventKind::End.as_str(), &cutoff_ms])
        .await?
        .iter()
        .map(|row| interview_id(row.try_get(0)?))
        .collect()
}

/// See [`crate::InterviewStore::take_homes_in_progress`] (and SQLite's twin in
/// `sqlite/reads.rs`).
pub(super) async fn take_homes_in_progress(c: Object) -> Result<Vec<InterviewId>> {
    let stmt = c
        .prepare_cached(
            "SELECT i.id FROM interviews i WHERE i.mode = 'take_home' \
             AND EXISTS (SELECT 1 FROM room_log s WHERE s.interview_id = i.id AND s.kind = 'take_home.started' AND s.kind <> 'edit') \
             AND (NOT EXISTS (SELECT 1 FROM room_log e WHERE e.interview_id = i.id AND e.kind = 'end' AND e.kind <> 'edit') \
                  OR EXISTS (SELECT 1 FROM room_log t WHERE t.interview_id = i.id AND t.kind = 'take_home.submitted' AND t.kind <> 'edit' \
                      AND NOT EXISTS (SELECT 1 FROM room_log f WHERE f.interview_id = i.id AND f.kind = 'run.finished' AND f.kind <> 'edit' \
                          AND f.seq > t.seq \
                          AND (convert_from(f.data, 'UTF8')::jsonb ->> 'status') IS DISTINCT FROM 'sandbox_error'))) \
             ORDER BY i.created_at, i.id",
        )
        .await?;
    c.query(&stmt, &[])
        .await?
        .iter()
        .map(|row| interview_id(row.try_get(0)?))
        .collect()
}

pub(super) async fn find_token(c: Object, hash: TokenHash) -> Result<Option<(InterviewId, Role)>> {
    let stmt = c
        .prepare_cached("SELECT interview_id, role FROM tokens WHERE hash = $1")
        .await?;
    let Some(row) = c.query_opt(&stmt, &[&&hash[..]]).await? else {
        return Ok(None);
    };
    let role: &str = row.try_get(1)?;
    let role =
        Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?;
    Ok(Some((interview_id(row.try_get(0)?)?, role)))
}

/// The newest checkpoint, the records after it and the bytes the whole log holds, read in one
/// repeatable-read transaction (so the records continue exactly from the checkpoint read).
pub(super) async fn load_history(mut c: Object, id: InterviewId) -> Result<History> {
    let txn = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let checkpoint = txn
        .query_opt(
            "SELECT seq, state, owners FROM checkpoints WHERE interview_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&id.as_str()],
        )
        .await?
        .as_ref()
        .map(to_checkpoint)
        .transpose()?;
    let log_bytes: i64 = txn
        .query_one(
            "SELECT coalesce(sum(octet_length(data)), 0)::int8 FROM room_log WHERE interview_id = $1",
            &[&id.as_str()],
        )
        .await?
        .try_get(0)?;
    let after = seq_to_sql(checkpoint.as_ref().map_or(0, |cp| cp.seq));
    let records = txn
        .query(
            &format!("SELECT {RECORD_COLUMNS} FROM room_log WHERE interview_id = $1 AND seq > $2 ORDER BY seq"),
            &[&id.as_str(), &after],
        )
        .await?;
    txn.commit().await?;
    Ok(History {
        checkpoint,
        records: to_records(&records)?,
        log_bytes: log_bytes.max(0) as u64,
    })
}

pub(super) async fn read_range(
    c: Object,
    id: InterviewId,
    after: u64,
    upto: u64,
) -> Result<Vec<LogRecord>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM room_log WHERE interview_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq"
        ))
        .await?;
    let rows = c
        .query(
            &stmt,
            &[&id.as_str(), &seq_to_sql(after), &seq_to_sql(upto)],
        )
        .await?;
    to_records(&rows)
}

pub(super) async fn checkpoint_at_or_before(
    c: Object,
    id: InterviewId,
    seq: u64,
) -> Result<Option<Checkpoint>> {
    let stmt = c
        .prepare_cached(
            "SELECT seq, state, owners FROM checkpoints WHERE interview_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
        )
        .await?;
    c.query_opt(&stmt, &[&id.as_str(), &seq_to_sql(seq)])
        .await?
        .as_ref()
        .map(to_checkpoint)
        .transpose()
}

pub(super) async fn read_kinds_in(
    c: Object,
    id: InterviewId,
    kinds: Vec<EventKind>,
    after: u64,
    upto: u64,
) -> Result<Vec<LogRecord>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM room_log WHERE interview_id = $1 AND kind = ANY($2) AND seq > $3 AND seq <= $4 ORDER BY seq"
        ))
        .await?;
    let rows = c
        .query(
            &stmt,
            &[&id.as_str(), &kinds, &seq_to_sql(after), &seq_to_sql(upto)],
        )
        .await?;
    to_records(&rows)
}

pub(super) async fn read_index(c: Object, id: InterviewId, after: u64) -> Result<Vec<LogEntry>> {
    let stmt = c
        .prepare_cached(
            "SELECT seq, at_ms, kind, role FROM room_log WHERE interview_id = $1 AND seq > $2 ORDER BY seq",
        )
        .await?;
    c.query(&stmt, &[&id.as_str(), &seq_to_sql(after)])
        .await?
        .iter()
        .map(|row| {
            Ok(LogEntry {
                seq: seq_from_sql(row.try_get(0)?)?,
                at_ms: row.try_get(1)?,
                kind: EventKind::parse(row.try_get(2)?),
                by: Actor::parse(row.try_get(3)?),
            })
        })
        .collect()
}

pub(super) async fn ping(c: Object) -> Result<()> {
    c.query_one("SELECT 1", &[]).await?;
    Ok(())
}
