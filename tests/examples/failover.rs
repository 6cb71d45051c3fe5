//! Failover, measured (issue 23; BENCHMARKS.md, "Several nodes"): three real nodes on one
//! PostgreSQL database behind HAProxy ([`duet_tests::Cluster`]), and per trial:
//!
//! 1. a fresh interview; a writer and an observer open its editor through the balancer; the
//!    writer types a character every 20 ms;
//! 2. once the observer has the writer's first characters, the room's owner (the node its
//!    lease in `room_leases` names) is killed with SIGKILL;
//! 3. both reconnect through the balancer (a new connection every 50 ms until one syncs) and
//!    the writer goes on typing, now a different character;
//! 4. the figure: from the kill to the observer holding the first character typed after it
//!    (the server stores an edit before anyone sees it: that edit is acknowledged);
//! 5. the killed node is started again and counted up by HAProxy before the next trial.
//!
//! Prints each trial, then p50 and max.
//!
//!   cargo build --release --bin duet && cargo run --release -p duet-tests --example failover -- 20
#![allow(clippy::unwrap_used)] // a measuring tool: a failed unwrap is a failed run

use duet_protocol::InterviewId;
use duet_store::testing::PgCluster;
use duet_tests::{Cluster, YClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a client whose connection failed tries again.
const RETRY: Duration = Duration::from_millis(50);
/// Between two keystrokes of the writer.
const TYPING: Duration = Duration::from_millis(20);
/// A trial that has not recovered after this long counts as failed.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Connects through the balancer until a connection syncs (or `deadline` passes).
async fn connect(url: &str, deadline: Instant) -> Option<YClient> {
    while Instant::now() < deadline {
        if let Ok(client) = YClient::connect(url).await {
            let synced_by = Instant::now() + Duration::from_secs(2);
            while Instant::now() < synced_by && client.closed().is_none() {
                if client.synced() {
                    return Some(client);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            client.abort();
        }
        tokio::time::sleep(RETRY).await;
    }
    None
}

/// The node holding the interview's room, by its index, once its lease names one.
async fn owner(cluster: &Cluster, id: &InterviewId) -> usize {
    let sql = format!("SELECT node FROM room_leases WHERE interview_id = '{id}'");
    for _ in 0..500 {
        let node = PgCluster::shared().psql_on(cluster.database_url(), &sql);
        if let Some(i) = (0..cluster.nodes()).find(|&i| cluster.node_url(i) == node) {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no node holds the room of {id} (is this a build with room leases?)");
}

/// One trial: the time from the owner's kill to the first later edit seen by the observer.
async fn trial(cluster: &mut Cluster) -> (usize, Option<Duration>) {
    let created = cluster.create_interview("Failover").await;
    let writer_url = cluster.yjs_url(&created.id, &created.tokens.candidate);
    let observer_url = cluster.yjs_url(&created.id, &created.tokens.interviewer);
    let start = Instant::now() + GIVE_UP;
    let mut observer = connect(&observer_url, start)
        .await
        .expect("the observer connects");

    // The writer types 'a' until the kill, then 'b', reconnecting whenever its socket drops.
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (killed, stop) = (killed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut client: Option<YClient> = None;
            while !stop.load(Ordering::Relaxed) {
                match &client {
                    Some(c) if c.closed().is_none() => {
                        let ch = if killed.load(Ordering::Relaxed) {
                            "b"
                        } else {
                            "a"
                        };
                        c.insert(c.len(), ch);
                        tokio::time::sleep(TYPING).await;
                    }
                    _ => {
                        if let Some(c) = client.take() {
                            c.abort();
                        }
                        client = connect(&writer_url, Instant::now() + GIVE_UP).await;
                    }
                }
            }
            if let Some(c) = client {
                c.abort();
            }
        })
    };
    let deadline = Instant::now() + GIVE_UP;
    while !observer.text().contains('a') {
        assert!(
            Instant::now() < deadline,
            "the observer never saw the writer type"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let node = owner(cluster, &created.id).await;

    let t0 = Instant::now();
    cluster.kill(node);
    // Only once the holder is gone (killed and reaped): a 'b' can then only be stored by
    // another node. (Set before the kill, a 'b' typed in between reached the old holder.)
    killed.store(true, Ordering::Relaxed);
    let deadline = t0 + GIVE_UP;
    let mut recovered = None;
    while Instant::now() < deadline {
        if observer.text().contains('b') {
            recovered = Some(t0.elapsed());
            break;
        }
        if observer.closed().is_some() {
            match connect(&observer_url, deadline).await {
                Some(c) => std::mem::replace(&mut observer, c).abort(),
                None => break,
            }
            continue;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    observer.abort();
    cluster.restart(node).await;
    let up = cluster
        .lb_sees(Duration::from_secs(30), |s| s.iter().all(|s| s == "UP"))
        .await;
    assert!(up, "HAProxy did not count node {node} up again");
    (node, recovered)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the number of trials"))
        .unwrap_or(20);
    let mut cluster = Cluster::start(3).await;
    eprintln!(
        "failover: 3 nodes behind HAProxy at {}, {trials} trials",
        cluster.lb_url()
    );
    let mut times = Vec::new();
    let mut failed = 0;
    for n in 1..=trials {
        let (node, took) = trial(&mut cluster).await;
        match took {
            Some(t) => {
                println!(
                    "trial {n}: owner node {node} killed, first edit after it seen in {:.0} ms",
                    t.as_secs_f64() * 1000.0
                );
                times.push(t);
            }
            None => {
                println!("trial {n}: owner node {node} killed, no edit seen within {GIVE_UP:?}");
                failed += 1;
            }
        }
    }
    times.sort();
    if let (Some(max), false) = (times.last(), times.is_empty()) {
        let p50 = times[(times.len() - 1) / 2];
        println!(
            "failover over {} trials ({failed} failed): p50 {:.0} ms, max {:.0} ms, min {:.0} ms",
            times.len(),
            p50.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0
        );
    }
}
