//! Which database holds the history, and moving it there: `--database-url postgres://...`
//! (`DUET_DATABASE_URL`) keeps it in PostgreSQL, no flag keeps it in SQLite in the data dir;
//! `duet migrate --from sqlite:PATH --to postgres://...` copies a SQLite deployment's whole
//! history into an empty Postgres database and checks it row by row.

use anyhow::Context;
use clap::Args;
use duet_store::{Durability, PgConfig, PgStore, RoomLeases, SqliteConfig, SqliteStore, Store};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A PostgreSQL URL. Its `Debug` never shows it: it may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err(
                "a database URL starts with postgres:// (SQLite, the default, needs no flag)"
                    .into(),
            )
        }
    }
}

/// The opened database: the store, and on Postgres the rooms' leases (several nodes may share
/// it); SQLite is one node's and has none.
pub struct Database {
    pub store: Arc<dyn Store>,
    pub leases: Option<Arc<dyn RoomLeases>>,
}

/// Opens the store: Postgres at `url` when one is given, else SQLite in `data_dir`.
pub fn open_store(
    data_dir: &Path,
    url: Option<&DatabaseUrl>,
    sync: Durability,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_database(data_dir, url, sync)?.store)
}

/// Opens the database as [`open_store`] does, with the leases where there are any.
pub fn open_database(
    data_dir: &Path,
    url: Option<&DatabaseUrl>,
    sync: Durability,
) -> anyhow::Result<Database> {
    Ok(match url {
        Some(url) => {
            let pg = Arc::new(
                PgStore::open(PgConfig::at(&url.0)).context("opening the Postgres database")?,
            );
            Database {
                store: pg.clone(),
                leases: Some(pg),
            }
        }
        None => {
            let config = SqliteConfig {
                sync,
                ..SqliteConfig::at(data_dir.join("duet.db"))
            };
            Database {
                store: Arc::new(
                    SqliteStore::open(config).with_context(|| {
                        format!("opening the database in {}", data_dir.display())
                    })?,
                ),
                leases: None,
            }
        }
    })
}

/// `duet migrate`: copy a deployment from SQLite into PostgreSQL. Stop the server first (the
/// copy is of one moment; writes after it stay behind).
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The deployment to copy: `sqlite:PATH`, PATH being its `duet.db` (in the data dir).
    #[arg(long, value_parser = sqlite_path)]
    pub from: PathBuf,
    /// The empty PostgreSQL database to copy into (its schema is created): `postgres://...`.
    #[arg(long)]
    pub to: DatabaseUrl,
}

fn sqlite_path(s: &str) -> Result<PathBuf, String> {
    s.strip_prefix("sqlite:")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| "--from takes sqlite:PATH (the deployment's duet.db)".into())
}

/// Copies, checks, and prints what was copied.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let MigrateArgs { from, to } = args;
    let shown = from.display().to_string();
    let copied =
        tokio::task::spawn_blocking(move || duet_store::copy::sqlite_to_postgres(&from, &to.0))
            .await?
            .with_context(|| format!("copying {shown} into Postgres"))?;
    for (table, rows) in &copied.tables {
        println!("{table}: {rows} rows");
    }
    println!("copied and checked row by row: start the server with --database-url");
    Ok(())
}
