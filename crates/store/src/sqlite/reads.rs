//! The read queries, each on one of the store's read connections, and the conversions from
//! rows to records, checkpoints and interviews they share. Writes never come here: they go to
//! the writer thread.

use super::schema::{seq_from_sql, seq_to_sql};
use crate::{Checkpoint, Interview, Result, StoreError, TokenHash};
use duet_protocol::{Actor, EventKind, InterviewId, InterviewMode, LogEntry, LogRecord, Role};
use rusqlite::{params, Connection, OptionalExtension};

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

/// The columns [`to_interview`] reads, in its order; `prefix` names the table's alias in a join.
pub(super) fn interview_columns(prefix: &str) -> String {
    [
        "id",
        "title",
        "candidate_name",
        "created_at",
        "question_id",
        "candidate_ref",
        "mode",
        "time_limit_minutes",
        "environment",
    ]
    .iter()
    .map(|c| format!("{prefix}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// An interview read from a row that starts with [`interview_columns`].
pub(super) fn to_interview(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Interview>> {
    let id: String = row.get(0)?;
    let mode: String = row.get(6)?;
    let Some(id) = InterviewId::parse(&id) else {
        return Ok(Err(StoreError::Corrupt(format!("bad interview id {id:?}"))));
    };
    let Some(mode) = InterviewMode::parse(&mode) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "bad interview mode {mode:?}"
        ))));
    };
    Ok(Ok(Interview {
        id,
        title: row.get(1)?,
        candidate_name: row.get(2)?,
        created_at: row.get(3)?,
        question_id: row.get(4)?,
        candidate_ref: row.get(5)?,
        mode,
        time_limit_minutes: row.get(7)?,
        environment: row.get(8)?,
    }))
}

pub(super) fn list_interviews(conn: &Connection) -> Result<Vec<Interview>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM interviews ORDER BY created_at DESC, id",
        interview_columns("")
    ))?;
    let rows = stmt.query_map([], to_interview)?;
    rows.map(|r| r?).collect()
}

pub(super) fn get_interview(conn: &Connection, id: &InterviewId) -> Result<Option<Interview>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {} FROM interviews WHERE id = ?1",
            interview_columns("")
        ))?
        .query_row([id.as_str()], to_interview)
        .optional()?;
    row.transpose()
}

pub(super) fn status(
    conn: &Connection,
    id: &InterviewId,
) -> Result<duet_protocol::InterviewStatus> {
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

pub(super) fn interviews_of(conn: &Connection, candidate_ref: &str) -> Result<Vec<Interview>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM interviews WHERE candidate_ref = ?1 ORDER BY created_at, id",
        interview_columns("")
    ))?;
    let rows = stmt.query_map([candidate_ref], to_interview)?;
    rows.map(|r| r?).collect()
}

pub(super) fn ended_before(conn: &Connection, cutoff_ms: i64) -> Result<Vec<InterviewId>> {
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

/// See [`crate::InterviewStore::take_homes_in_progress`]: per take-home, a few lookups in the
/// rare-kind index.
pub(super) fn take_homes_in_progress(conn: &Connection) -> Result<Vec<InterviewId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id FROM interviews i WHERE i.mode = 'take_home' \
         AND EXISTS (SELECT 1 FROM room_log s WHERE s.interview_id = i.id AND s.kind = 'take_home.started' AND s.kind <> 'edit') \
         AND (NOT EXISTS (SELECT 1 FROM room_log e WHERE e.interview_id = i.id AND e.kind = 'end' AND e.kind <> 'edit') \
              OR EXISTS (SELECT 1 FROM room_log t WHERE t.interview_id = i.id AND t.kind = 'take_home.submitted' AND t.kind <> 'edit' \
                  AND NOT EXISTS (SELECT 1 FROM room_log f WHERE f.interview_id = i.id AND f.kind = 'run.finished' AND f.kind <> 'edit' \
                      AND f.seq > t.seq AND json_extract(CAST(f.data AS TEXT), '$.status') IS NOT 'sandbox_error'))) \
         ORDER BY i.created_at, i.id",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| {
        let id = r?;
        InterviewId::parse(&id)
            .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))
    })
    .collect()
}

pub(super) fn find_token(
    conn: &Connection,
    hash: &TokenHash,
) -> Result<Option<(InterviewId, Role)>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT interview_id, role FROM tokens WHERE hash = ?1")?
        .query_row([&hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, role)) = row else {
        return Ok(None);
    };
    let id = InterviewId::parse(&id)
        .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))?;
    let role =
        Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?;
    Ok(Some((id, role)))
}

/// A room's newest checkpoint, and the bytes of record data its whole log holds (what
/// [`crate::LogStore::load_history`] reads before the records after that checkpoint).
pub(super) fn newest_checkpoint(
    conn: &Connection,
    id: &InterviewId,
) -> Result<(Option<Checkpoint>, u64)> {
    type CheckpointRow = (i64, Vec<u8>, Vec<u8>);
    let (checkpoint, log_bytes): (Option<CheckpointRow>, i64) = {
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
    Ok((checkpoint, log_bytes.max(0) as u64))
}

pub(super) fn read_log(conn: &Connection, id: &InterviewId, after: u64) -> Result<Vec<LogRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![id.as_str(), seq_to_sql(after)], row_to_record)?;
    rows.map(|r| to_record(r?)).collect()
}

pub(super) fn checkpoint_at_or_before(
    conn: &Connection,
    id: &InterviewId,
    seq: u64,
) -> Result<Option<Checkpoint>> {
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

pub(super) fn read_range(
    conn: &Connection,
    id: &InterviewId,
    after: u64,
    upto: u64,
) -> Result<Vec<LogRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, kind, role, data FROM room_log WHERE interview_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
    )?;
    let rows = stmt.query_map(
        params![id.as_str(), seq_to_sql(after), seq_to_sql(upto)],
        row_to_record,
    )?;
    rows.map(|r| to_record(r?)).collect()
}

pub(super) fn read_kinds_in(
    conn: &Connection,
    id: &InterviewId,
    kinds: &[EventKind],
    after: u64,
    upto: u64,
) -> Result<Vec<LogRecord>> {
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

pub(super) fn read_index(conn: &Connection, id: &InterviewId, after: u64) -> Result<Vec<LogEntry>> {
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

#[cfg(test)]
mod tests {
    use crate::sqlite::testing::{created, record};
    use crate::sqlite::{SqliteConfig, SqliteStore};
    use crate::{Checkpoint, LogStore};
    use duet_protocol::{Actor, EventKind, InterviewId, LogEntry};

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
}
