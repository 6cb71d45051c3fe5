//! The store on its own, SQLite beside PostgreSQL in one run: how many keystroke-sized appends
//! per second the group-committing writer takes, and how long an append waits for its ticket
//! (the durability latency every edit pays before anyone else sees it).
//!
//! ```sh
//! cargo run --release -p duet-store --example store_bench          # ~1 minute
//! DUET_BENCH_ROOMS=500 DUET_BENCH_APPENDS=200 cargo run --release -p duet-store --example store_bench
//! ```
//!
//! For each store: (1) one room, one append at a time (append, wait for the ticket, the next):
//! the latency of a lone keystroke; (2) ROOMS rooms, each keeping up to 8 appends in flight (a
//! room task's pipeline), APPENDS records each: appends per second and each append's latency
//! under that load. SQLite runs as Duet's default (`interval`: the WAL fsynced every second) and
//! with every commit fsynced; Postgres is a throwaway cluster on loopback, on the same disk, with
//! its defaults (`synchronous_commit = on`: every COMMIT flushed), and once more with
//! `synchronous_commit = off` to show what the flush costs.
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use duet_protocol::{Actor, EventKind, Interview, InterviewId, InterviewMode, LogRecord};
use duet_store::testing::PgCluster;
use duet_store::{Durability, PgConfig, PgStore, SqliteConfig, SqliteStore, Store};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(seq: u64) -> LogRecord {
    // A keystroke: a Yjs update of one character is about 28 bytes.
    LogRecord {
        seq,
        at_ms: seq as i64,
        kind: EventKind::Edit,
        by: Actor::Candidate,
        data: vec![7; 28],
    }
}

async fn rooms(store: &dyn Store, n: usize, tag: &str) -> Vec<InterviewId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let interview = Interview {
            id: InterviewId::parse(&format!("bench{tag}{i}")).unwrap(),
            title: "bench".into(),
            candidate_name: "Ada".into(),
            created_at: 0,
            question_id: None,
            candidate_ref: None,
            mode: InterviewMode::Live,
            time_limit_minutes: None,
            environment: "python".into(),
        };
        store
            .create_interview(&interview, &[])
            .await
            .unwrap()
            .unwrap();
        ids.push(interview.id);
    }
    ids
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Figures {
    lone_p50: f64,
    lone_p99: f64,
    per_sec: f64,
    load_p50: f64,
    load_p99: f64,
}

async fn measure(store: Arc<dyn Store>, room_count: usize, appends: u64) -> Figures {
    // (1) A lone keystroke.
    let lone = rooms(&*store, 1, "lone").await.remove(0);
    let mut lone_ms = Vec::new();
    for seq in 1..=300 {
        let start = Instant::now();
        store.append(&lone, record(seq)).await.unwrap().unwrap();
        lone_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    lone_ms.sort_by(f64::total_cmp);
    // (2) Many rooms, each with a pipeline of 8.
    let ids = rooms(&*store, room_count, "load").await;
    let start = Instant::now();
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut in_flight = VecDeque::new();
                let mut ms = Vec::with_capacity(appends as usize);
                for seq in 1..=appends {
                    if in_flight.len() == 8 {
                        let (at, ticket): (Instant, duet_store::Ticket) =
                            in_flight.pop_front().unwrap();
                        ticket.await.unwrap().unwrap();
                        ms.push(at.elapsed().as_secs_f64() * 1e3);
                    }
                    in_flight.push_back((Instant::now(), store.append(&id, record(seq))));
                }
                for (at, ticket) in in_flight {
                    ticket.await.unwrap().unwrap();
                    ms.push(at.elapsed().as_secs_f64() * 1e3);
                }
                ms
            })
        })
        .collect();
    let mut load_ms = Vec::new();
    for task in tasks {
        load_ms.extend(task.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    load_ms.sort_by(f64::total_cmp);
    Figures {
        lone_p50: percentile(&lone_ms, 0.5),
        lone_p99: percentile(&lone_ms, 0.99),
        per_sec: load_ms.len() as f64 / secs,
        load_p50: percentile(&load_ms, 0.5),
        load_p99: percentile(&load_ms, 0.99),
    }
}

#[tokio::main]
async fn main() {
    let room_count = env("DUET_BENCH_ROOMS", 500);
    let appends = env("DUET_BENCH_APPENDS", 200) as u64;
    println!(
        "{room_count} rooms x {appends} appends of 28 bytes, 8 in flight per room; a lone room: 300 appends one at a time"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load.trim());
    println!("| store | lone append p50, ms | p99, ms | appends/s, {room_count} rooms | append p50 under load, ms | p99, ms |");
    println!("|---|---|---|---|---|---|");
    let show = |name: &str, f: &Figures| {
        println!(
            "| {name} | {:.3} | {:.3} | {:.0} | {:.2} | {:.2} |",
            f.lone_p50, f.lone_p99, f.per_sec, f.load_p50, f.load_p99
        );
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, sync) in [
        ("SQLite, interval (default)", Durability::Interval),
        ("SQLite, every-commit", Durability::EveryCommit),
    ] {
        let config = SqliteConfig {
            sync,
            ..SqliteConfig::at(dir.path().join(format!("{sync:?}.db")))
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(config).unwrap());
        let figures = measure(store, room_count, appends).await;
        show(name, &figures);
    }
    let cluster = PgCluster::start();
    for (name, options) in [
        (
            "PostgreSQL 15, loopback TCP (default: synchronous_commit on)",
            "",
        ),
        // What the WAL flush costs: the same without waiting for it (not a setting Duet uses).
        (
            "PostgreSQL 15, synchronous_commit off (for comparison only)",
            "?options=-c%20synchronous_commit%3Doff",
        ),
    ] {
        let url = format!("{}{options}", cluster.database());
        let store: Arc<dyn Store> = Arc::new(PgStore::open(PgConfig::at(url)).unwrap());
        let figures = measure(store, room_count, appends).await;
        show(name, &figures);
    }
}
