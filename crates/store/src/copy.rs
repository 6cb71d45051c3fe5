//! A deployment's whole history from SQLite into a new Postgres database (`duet migrate`):
//! interviews, role tokens, every room's log and checkpoints, people, password links, sessions,
//! API tokens, panels and the audit log, copied in one transaction (a copy that fails leaves the
//! target as empty as it found it), then read back from both sides, row by row in key order,
//! and compared; webhook endpoints, events, deliveries, queued mail, integration keys and the
//! tests partners sent come along. A target that holds anything is refused.
//!
//! Below the store traits on purpose: the traits hand out no token hashes, sessions or links,
//! and the rows are copied as they are, so a hash stays the same hash. [`TABLES`] names every
//! column of every table; a test holds it equal to the SQLite schema, so a migration that adds
//! a column must add it here too.

use crate::postgres::PgConfig;
use crate::{PgStore, Result, SqliteConfig, SqliteStore, StoreError};
use futures_util::TryStreamExt;
use rusqlite::OpenFlags;
use std::path::Path;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

/// How a column is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TEXT (NULL allowed where the schema allows it).
    Text,
    /// INTEGER / BIGINT.
    Int,
    /// BLOB / BYTEA.
    Bytes,
}

/// A table to copy: its columns, and the key the check reads both sides in.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    key: &'static [&'static str],
}

use Kind::{Bytes, Int, Text};

/// Every table of the history, parents before children (the foreign keys). The write probe is
/// left out: it is a health check, not history.
const TABLES: &[Table] = &[
    Table {
        name: "interviews",
        columns: &[
            ("id", Text),
            ("title", Text),
            ("candidate_name", Text),
            ("created_at", Int),
            ("question_id", Text),
            ("candidate_ref", Text),
            ("mode", Text),
            ("time_limit_minutes", Int),
            ("environment", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "tokens",
        columns: &[("hash", Bytes), ("interview_id", Text), ("role", Text)],
        key: &["hash"],
    },
    Table {
        name: "room_log",
        columns: &[
            ("interview_id", Text),
            ("seq", Int),
            ("at_ms", Int),
            ("kind", Text),
            ("role", Text),
            ("data", Bytes),
        ],
        key: &["interview_id", "seq"],
    },
    Table {
        name: "checkpoints",
        columns: &[
            ("interview_id", Text),
            ("seq", Int),
            ("state", Bytes),
            ("owners", Bytes),
        ],
        key: &["interview_id", "seq"],
    },
    Table {
        name: "people",
        columns: &[
            ("id", Text),
            ("email", Text),
            ("name", Text),
            ("role", Text),
            ("state", Text),
            ("created_at", Int),
            ("password_hash", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "password_links",
        columns: &[("hash", Bytes), ("person_id", Text), ("expires_at", Int)],
        key: &["hash"],
    },
    Table {
        name: "sessions",
        columns: &[
            ("hash", Bytes),
            ("person_id", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
        ],
        key: &["hash"],
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Text),
            ("hash", Bytes),
            ("person_id", Text),
            ("name", Text),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "panels",
        columns: &[("interview_id", Text), ("person_id", Text), ("role", Text)],
        key: &["interview_id", "person_id"],
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("source", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "webhook_endpoints",
        columns: &[
            ("id", Text),
            ("url", Text),
            ("events", Text),
            ("secret", Text),
            ("created_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "webhook_events",
        columns: &[
            ("seq", Int),
            ("event_id", Text),
            ("type", Text),
            ("interview_id", Text),
            ("created_at", Int),
            ("body", Text),
        ],
        key: &["seq"],
    },
    Table {
        name: "webhook_deliveries",
        columns: &[
            ("id", Int),
            ("event_seq", Int),
            ("endpoint_id", Text),
            ("interview_id", Text),
            ("state", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("next_at", Int),
            ("last_at", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("delivered_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "mail_outbox",
        columns: &[
            ("id", Int),
            ("to_addr", Text),
            ("subject", Text),
            ("body", Text),
            ("state", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("next_at", Int),
            ("last_error", Text),
            ("sent_at", Int),
            ("interview_id", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "integration_keys",
        columns: &[
            ("id", Text),
            ("hash", Bytes),
            ("name", Text),
            ("created_at", Int),
            ("revoked_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "partner_tests",
        columns: &[
            ("partner_interview_id", Text),
            ("application_key", Text),
            ("interview_id", Text),
            ("test_id", Text),
            ("created_at", Int),
            ("callback_url", Text),
            ("callback_key", Text),
        ],
        key: &["partner_interview_id"],
    },
    Table {
        name: "partner_callbacks",
        columns: &[
            ("id", Int),
            ("partner_interview_id", Text),
            ("interview_id", Text),
            ("state", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("next_at", Int),
            ("last_at", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("delivered_at", Int),
        ],
        key: &["id"],
    },
];

/// The columns numbered by the database (identity columns): after a copy with the source's
/// numbers, new rows continue after the largest.
const NUMBERED: &[(&str, &str)] = &[
    ("audit", "id"),
    ("webhook_events", "seq"),
    ("webhook_deliveries", "id"),
    ("mail_outbox", "id"),
    ("partner_callbacks", "id"),
];

/// One value of a row, as both databases give it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Text(v) => v,
            Value::Int(v) => v,
            Value::Bytes(v) => v,
        }
    }
}

fn from_sqlite(row: &rusqlite::Row<'_>, table: &Table) -> Result<Vec<Value>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Text => Value::Text(row.get(i)?),
                Int => Value::Int(row.get(i)?),
                Bytes => Value::Bytes(row.get(i)?),
            })
        })
        .collect()
}

fn from_postgres(row: &tokio_postgres::Row, table: &Table) -> Result<Vec<Value>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Text => Value::Text(row.try_get(i)?),
                Int => Value::Int(row.try_get(i)?),
                Bytes => Value::Bytes(row.try_get(i)?),
            })
        })
        .collect()
}

/// What was copied: each table and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

/// Copies the SQLite database at `sqlite` (brought to the current schema first, as a server
/// starting on it would) into the empty Postgres database at `postgres_url` (its schema created
/// first), then checks every row. Blocks: call it from a thread of its own.
pub fn sqlite_to_postgres(sqlite: &Path, postgres_url: &str) -> Result<Copied> {
    if !sqlite.is_file() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such database file", sqlite.display()),
        )));
    }
    drop(SqliteStore::open(SqliteConfig::at(sqlite))?);
    drop(PgStore::open(PgConfig::at(postgres_url))?);
    let source = rusqlite::Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let pg = crate::postgres::pg_config(postgres_url, "duet-migrate")?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let (mut target, connection) = pg.connect(NoTls).await?;
            let connection = tokio::spawn(connection);
            let copied = copy_and_check(&source, &mut target).await;
            drop(target);
            let _ = connection.await;
            copied
        })
}

async fn copy_and_check(source: &rusqlite::Connection, target: &mut Client) -> Result<Copied> {
    for table in TABLES {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
        if target.query_one(&sql, &[]).await?.try_get::<_, bool>(0)? {
            return Err(StoreError::TargetNotEmpty(table.name));
        }
    }
    // The source's read transaction: every table as of one moment.
    source.execute_batch("BEGIN")?;
    let txn = target.transaction().await?;
    let mut copied = Vec::new();
    for table in TABLES {
        let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let types: Vec<Type> = table
            .columns
            .iter()
            .map(|(_, kind)| match kind {
                Text => Type::TEXT,
                Int => Type::INT8,
                Bytes => Type::BYTEA,
            })
            .collect();
        let sink = txn
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN BINARY",
                table.name,
                names.join(", ")
            ))
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        futures_util::pin_mut!(writer);
        let mut stmt =
            source.prepare(&format!("SELECT {} FROM {}", names.join(", "), table.name))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let values = from_sqlite(row, table)?;
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(Value::as_sql).collect();
            writer.as_mut().write(&refs).await?;
        }
        copied.push((table.name, writer.finish().await?));
    }
    // The numbered rows were copied with their numbers: new ones continue after them.
    for (table, column) in NUMBERED {
        txn.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce(max({column}), 0) + 1, false) FROM {table}"
            ),
            &[],
        )
        .await?;
    }
    txn.commit().await?;
    for table in TABLES {
        check(source, target, table).await?;
    }
    source.execute_batch("COMMIT")?;
    Ok(Copied { tables: copied })
}

/// Reads the table from both sides in key order and compares every row.
async fn check(source: &rusqlite::Connection, target: &Client, table: &Table) -> Result<()> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    // Byte order on both sides: SQLite compares text as bytes, Postgres's "C" collation too.
    let order = |postgres: bool| {
        table
            .key
            .iter()
            .map(|k| {
                let text = table
                    .columns
                    .iter()
                    .any(|(n, kind)| n == k && *kind == Text);
                if postgres && text {
                    format!("{k} COLLATE \"C\"")
                } else {
                    (*k).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut stmt = source.prepare(&format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        table.name,
        order(false)
    ))?;
    let mut theirs = stmt.query([])?;
    let ours = target
        .query_raw(
            &format!(
                "SELECT {} FROM {} ORDER BY {}",
                names.join(", "),
                table.name,
                order(true)
            ),
            std::iter::empty::<i64>(),
        )
        .await?;
    futures_util::pin_mut!(ours);
    let mut row_number = 0u64;
    loop {
        let source_row = theirs.next()?.map(|r| from_sqlite(r, table)).transpose()?;
        let target_row = ours
            .try_next()
            .await?
            .map(|r| from_postgres(&r, table))
            .transpose()?;
        row_number += 1;
        match (source_row, target_row) {
            (None, None) => return Ok(()),
            (a, b) if a == b => {}
            (a, b) => {
                return Err(StoreError::CopyDiffers {
                    table: table.name,
                    row: row_number,
                    detail: format!("sqlite has {a:?}, postgres has {b:?}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TABLES;
    use crate::{SqliteConfig, SqliteStore};

    #[test]
    fn every_table_and_column_of_the_sqlite_schema_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        drop(SqliteStore::open(SqliteConfig::at(&path)).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'probe' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut copied: Vec<String> = TABLES.iter().map(|t| t.name.to_owned()).collect();
        copied.sort();
        tables.sort();
        assert_eq!(copied, tables, "a table is missing from copy.rs's TABLES");
        for table in TABLES {
            let columns: Vec<String> = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{}') ORDER BY cid",
                    table.name
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let named: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
            assert_eq!(
                columns, named,
                "the columns of {} in copy.rs's TABLES",
                table.name
            );
        }
    }
}
