//! What only the Postgres store has, against a real PostgreSQL server on loopback: group commit
//! seen in the database's own transaction ids, a database that goes away and comes back, one
//! that turns read-only or fills its disk, schema versions and several servers migrating one
//! database at once. The behaviour both stores share is in store_suite.rs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use duet_protocol::{Actor, EventKind, Interview, InterviewId, LogRecord};
use duet_store::testing::PgCluster;
use duet_store::{Failure, InterviewStore, LogStore, PgConfig, PgStore, StoreError, StoreHealth};
use std::time::Duration;

fn record(seq: u64, data: Vec<u8>) -> LogRecord {
    LogRecord {
        seq,
        at_ms: seq as i64,
        kind: EventKind::Edit,
        by: Actor::Candidate,
        data,
    }
}

async fn created(store: &PgStore, name: &str) -> InterviewId {
    let interview = Interview {
        id: InterviewId::parse(name).unwrap(),
        title: "T".into(),
        candidate_name: "Ada".into(),
        created_at: 0,
        question_id: None,
        candidate_ref: None,
        mode: duet_protocol::InterviewMode::Live,
        time_limit_minutes: None,
        environment: "python".into(),
    };
    store
        .create_interview(&interview, &[])
        .await
        .unwrap()
        .unwrap();
    interview.id
}

fn failure_of(outcome: Result<(), StoreError>) -> Failure {
    match outcome {
        Ok(()) => panic!("the write went through"),
        Err(e) => e.failure(),
    }
}

#[tokio::test]
async fn a_burst_of_keystrokes_commits_in_a_few_transactions_not_one_per_keystroke() {
    let cluster = PgCluster::shared();
    let url = cluster.database();
    let store = PgStore::open(PgConfig::at(&url)).unwrap();
    let rooms: Vec<_> = rooms_named(&store, 10).await;
    let tickets: Vec<_> = (1..=200u64)
        .flat_map(|seq| rooms.iter().map(move |room| (room, seq)))
        .map(|(room, seq)| store.append(room, record(seq, vec![1; 8])))
        .collect();
    for ticket in tickets {
        ticket.await.unwrap().unwrap();
    }
    // Each row carries the id of the transaction that inserted it.
    let transactions: usize = cluster
        .psql_on(&url, "SELECT count(DISTINCT xmin::text) FROM room_log")
        .parse()
        .unwrap();
    let rows: usize = cluster
        .psql_on(&url, "SELECT count(*) FROM room_log")
        .parse()
        .unwrap();
    assert_eq!(rows, 2_000);
    assert!(
        transactions <= 20,
        "2,000 appends took {transactions} transactions"
    );
}

async fn rooms_named(store: &PgStore, n: usize) -> Vec<InterviewId> {
    let mut rooms = Vec::new();
    for i in 0..n {
        rooms.push(created(store, &format!("room{i}")).await);
    }
    rooms
}

#[tokio::test]
async fn a_database_that_goes_away_fails_writes_as_io_and_the_store_carries_on_when_it_returns() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let config = PgConfig {
        timeout: Duration::from_secs(3),
        ..PgConfig::at(&url)
    };
    let store = PgStore::open(config).unwrap();
    let room = created(&store, "survivor").await;
    store
        .append(&room, record(1, vec![1]))
        .await
        .unwrap()
        .unwrap();

    cluster.stop();
    let lost = store.append(&room, record(2, vec![2])).await.unwrap();
    assert_eq!(failure_of(lost), Failure::Io);
    assert_eq!(store.ping().map_err(|e| e.failure()), Err(Failure::Io));
    assert_eq!(failure_of(store.probe_write().await.unwrap()), Failure::Io);

    cluster.run();
    // The room failed a write: it reloads, then goes on; the store reconnected by itself.
    store.ping().unwrap();
    store.probe_write().await.unwrap().unwrap();
    store.reopen(&room).await.unwrap().unwrap();
    let history = store.load_history(&room).unwrap();
    assert_eq!(
        history.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1]
    );
    store
        .append(&room, record(2, vec![2]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.read_log(&room, 0).unwrap().len(), 2);
}

#[tokio::test]
async fn a_read_only_database_fails_writes_as_read_only() {
    let cluster = PgCluster::shared();
    let url = cluster.database();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let store = PgStore::open(PgConfig::at(&url)).unwrap();
    let room = created(&store, "frozen").await;
    cluster.psql(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ));
    // The store's sessions end; the ones it makes again are read-only.
    cluster.psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ));
    let refused = store.append(&room, record(1, vec![1])).await.unwrap();
    assert_eq!(failure_of(refused), Failure::ReadOnly);
    assert_eq!(
        failure_of(store.probe_write().await.unwrap()),
        Failure::ReadOnly
    );
    // Reads go on.
    assert!(store.get_interview(&room).unwrap().is_some());
    // A server starting on it says so too.
    let Err(e) = PgStore::open(PgConfig::at(&url)) else {
        panic!("a read-only database opened for writing");
    };
    assert_eq!(e.failure(), Failure::ReadOnly, "{e}");
}

#[tokio::test]
async fn a_full_disk_fails_writes_as_disk_full() {
    let cluster = PgCluster::shared();
    // A tablespace on a 16 MiB tmpfs of its own: the database's tables fill it.
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    std::process::Command::new("chown")
        .arg("postgres:postgres")
        .arg(mount.path())
        .status()
        .unwrap();
    let space = format!("tiny{}", std::process::id());
    cluster.psql(&format!(
        "CREATE TABLESPACE {space} LOCATION '{}'",
        mount.path().display()
    ));
    let url = cluster.database_in(&space);
    let store = PgStore::open(PgConfig::at(&url)).unwrap();
    let room = created(&store, "fullRoom").await;
    // Records that do not compress, 256 KiB each, until the disk is full.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let mut failure = None;
    for seq in 1..=200 {
        if let Err(e) = store
            .append(&room, record(seq, noise(256 << 10)))
            .await
            .unwrap()
        {
            failure = Some(e);
            break;
        }
    }
    let e = failure.expect("16 MiB took 50 MiB of records");
    assert_eq!(e.failure(), Failure::DiskFull, "{e}");
    drop(store);
    cluster.psql(&format!(
        "DROP DATABASE {} WITH (FORCE)",
        url.rsplit('/').next().unwrap()
    ));
    cluster.psql(&format!("DROP TABLESPACE {space}"));
}

#[tokio::test]
async fn a_database_from_a_newer_duet_is_refused_with_a_clear_message() {
    let cluster = PgCluster::shared();
    let url = cluster.database();
    drop(PgStore::open(PgConfig::at(&url)).unwrap());
    cluster.psql_on(&url, "UPDATE duet_schema SET version = version + 1");
    let Err(e) = PgStore::open(PgConfig::at(&url)) else {
        panic!("a newer schema opened");
    };
    assert!(matches!(e, StoreError::NewerSchema { .. }), "{e:?}");
    assert!(e.to_string().contains("upgrade Duet"), "{e}");
}

#[tokio::test]
async fn servers_starting_together_on_one_database_create_its_schema_once() {
    let cluster = PgCluster::shared();
    let url = cluster.database();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(PgConfig::at(url)).map(|_| ()))
        })
        .collect();
    for opening in opened {
        opening.join().unwrap().unwrap();
    }
    assert_eq!(
        cluster.psql_on(&url, "SELECT count(*) FROM duet_schema"),
        "1"
    );
    assert_eq!(
        cluster.psql_on(&url, "SELECT count(*) FROM interviews"),
        "0"
    );
}

#[test]
fn a_url_that_is_not_one_is_refused_before_anything_starts() {
    let Err(e) = PgStore::open(PgConfig::at("postgres://[::1")) else {
        panic!("opened");
    };
    assert!(matches!(e, StoreError::BadUrl(_)), "{e:?}");
    assert!(
        !format!("{:?}", PgConfig::at("postgres://duet:secret@db/duet")).contains("secret"),
        "the URL's password stays out of logs"
    );
}

#[tokio::test]
async fn every_column_is_text_bigint_or_bytea_as_sqlite_keeps_them_and_migrate_copies_them() {
    // SQLite's INTEGER is 64 bits: a narrower Postgres column would refuse what SQLite holds,
    // and `duet migrate` copies integers as BIGINT.
    let cluster = PgCluster::shared();
    let url = cluster.database();
    drop(PgStore::open(PgConfig::at(&url)).unwrap());
    let others = cluster.psql_on(
        &url,
        "SELECT string_agg(table_name || '.' || column_name || ' ' || data_type, ', ') \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name NOT IN ('probe') AND data_type NOT IN ('text', 'bigint', 'bytea')",
    );
    assert_eq!(others, "", "columns of other types");
}
