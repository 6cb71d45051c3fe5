//! The database's shape: the tables, the migrations that bring an older file forward to
//! [`SCHEMA_VERSION`] (a newer one is refused), and how a seq is kept in an INTEGER column.

use crate::{Result, StoreError};
use rusqlite::Connection;

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
pub(crate) const SCHEMA_VERSION: i64 = 9;
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
    // 5 -> 6: staff accounts, their sessions, API tokens, interview panels and the audit log.
    (6, super::people::MIGRATION),
    // 6 -> 7: how an interview is held (live or take-home, with its time limit) and the
    // sandbox environment its runs use.
    (7, "ALTER TABLE interviews ADD COLUMN mode TEXT NOT NULL DEFAULT 'live'; ALTER TABLE interviews ADD COLUMN time_limit_minutes INTEGER; ALTER TABLE interviews ADD COLUMN environment TEXT NOT NULL DEFAULT 'python';"),
    // 7 -> 8, in two steps: the outbox (webhook endpoints, their events and deliveries, mail to
    // send), then integration keys and the tests Greenhouse sent.
    (8, super::outbox::MIGRATION),
    (8, super::integrations::MIGRATION),
    // 8 -> 9: Greenhouse's completion callbacks, and the interview a mail is about.
    (9, super::outbox::MIGRATION_9),
];

/// Creates the schema or migrates it forward to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
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

pub(super) fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(super) fn seq_from_sql(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq}")))
}

#[cfg(test)]
mod tests {
    use super::{SCHEMA, SCHEMA_VERSION};
    use crate::sqlite::{SqliteConfig, SqliteStore};
    use crate::{InterviewStore, LogStore, StoreError};
    use duet_protocol::{EventKind, InterviewId, LogRecord};
    use rusqlite::{params, Connection};

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
}
