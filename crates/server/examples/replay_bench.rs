//! The replay benchmark behind BENCHMARKS.md: a generated two-hour session (50,000
//! single-character edits by two authors, 200 runs with output) written straight into a data
//! dir through the store, with the records the server itself writes (the core `Room` takes
//! each Yjs update as it would from a websocket; runs go through the same `Room` calls and
//! output encoding as the room task; a checkpoint every 1,000 edits as the room task takes
//! them). Then a `duet serve` process on that dir answers snapshots at random moments, the
//! whole timeline and the export, and three reviewers scrub at once while its memory is read.
//!
//!   cargo build --release --bin duet
//!   cargo run --release -p duet-server --example replay_bench -- --edits 50000 --runs 200

#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed measurement

use clap::Parser;
use duet_core::{Effect, Room, RoomConfig};
use duet_protocol::{
    Identity, OutputChunk, Role, RunFinished, RunKind, RunStarted, Stream, MAIN_FILE,
};
use duet_store::{Checkpoint, Interview, InterviewStore, LogStore, SqliteConfig, SqliteStore};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, Text, Transact, Update};

const ADMIN: &str = "replay-bench-admin-token-0123456789abcdef";
const REVIEWER: &str = "replay-bench-reviewer-token-0123456789abcdef";

#[derive(Parser)]
struct Args {
    /// The duet binary.
    #[arg(long, default_value = "target/release/duet")]
    duet: String,
    #[arg(long, default_value_t = 50_000)]
    edits: usize,
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Session length in minutes.
    #[arg(long, default_value_t = 120)]
    minutes: i64,
    /// Snapshots at random moments, measured one after another.
    #[arg(long, default_value_t = 2_000)]
    snapshots: usize,
    /// Snapshots per reviewer in the concurrent scrub.
    #[arg(long, default_value_t = 1_000)]
    scrub: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let began = Instant::now();
    let (id, start, end, text_len) = generate(&args, dir.path())?;
    println!(
        "generated {} edits and {} runs over {} min in {:.1} s (final text {} chars)",
        args.edits,
        args.runs,
        args.minutes,
        began.elapsed().as_secs_f64(),
        text_len
    );
    let db = std::fs::metadata(dir.path().join("duet.db"))?.len()
        + std::fs::metadata(dir.path().join("duet.db-wal")).map_or(0, |m| m.len());
    println!("database: {:.1} MiB", db as f64 / (1 << 20) as f64);
    tokio::runtime::Runtime::new()?.block_on(measure(&args, dir.path(), &id, start, end))
}

/// Writes the session into `dir/duet.db`; returns the interview id, its first and last times.
fn generate(args: &Args, dir: &std::path::Path) -> anyhow::Result<(String, i64, i64, usize)> {
    let store = SqliteStore::open(SqliteConfig::at(dir.join("duet.db")))?;
    let start: i64 = 1_763_794_800_000;
    let id = duet_protocol::InterviewId::parse("replayBenchInterview01").unwrap();
    let tokens = [
        (
            Role::Interviewer,
            duet_server::auth::hash("bench-interviewer-token"),
        ),
        (
            Role::Candidate,
            duet_server::auth::hash("bench-candidate-token"),
        ),
        (Role::Reviewer, duet_server::auth::hash(REVIEWER)),
    ];
    store
        .create_interview(
            &Interview {
                id: id.clone(),
                title: "Replay benchmark".into(),
                candidate_name: "Ada".into(),
                created_at: start,
                question_id: None,
                candidate_ref: None,
                mode: duet_protocol::InterviewMode::Live,
                time_limit_minutes: None,
                environment: "python".into(),
            },
            &tokens,
        )
        .blocking_recv()??;
    let mut room = Room::new(RoomConfig::default());
    let mut rng = StdRng::seed_from_u64(11);
    let docs = [Doc::new(), Doc::new()];
    let roles = [Role::Candidate, Role::Interviewer];
    let mut last_ticket = None;
    // Only the records matter here: messages to the (absent) clients are dropped.
    let mut persist = |effects: Vec<Effect>, _: &Room| {
        for effect in effects {
            if let Effect::Persist(record) = effect {
                last_ticket = Some(store.append(&id, record));
            }
        }
    };
    let mut now = start;
    for (conn, role) in roles.iter().enumerate() {
        let slots = duet_core::ReplySlots::default();
        let effects = room.join(
            conn as u64,
            *role,
            Identity::for_role(*role, "Ada"),
            slots,
            now,
        );
        persist(effects, &room);
    }
    let span = args.minutes * 60_000;
    let mean_gap = span as f64 / args.edits as f64;
    let run_every = (args.edits / args.runs.max(1)).max(1);
    let mut author = 0usize;
    let mut cursor = [0u32, 0u32];
    let mut runs = 0;
    for i in 0..args.edits {
        if rng.gen_bool(0.01) {
            author = 1 - author;
        }
        // Typing is bursty: mostly short gaps, sometimes a pause.
        let gap = if rng.gen_bool(0.05) {
            mean_gap * 10.0 * rng.gen::<f64>()
        } else {
            mean_gap * 0.5 * rng.gen::<f64>()
        };
        now = (now + gap.max(1.0) as i64).min(start + span);
        let doc = &docs[author];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let len = text.len(&doc.transact());
        let at = cursor[author].min(len);
        let update = {
            let mut txn = doc.transact_mut();
            if len > 0 && at > 0 && rng.gen_bool(0.2) {
                text.remove_range(&mut txn, at - 1, 1);
                cursor[author] = at - 1;
            } else {
                let c = b"abcdefghijklmnopqrstuvwxyz  ()=:.\n"[rng.gen_range(0..34)] as char;
                text.insert(&mut txn, at, &c.to_string());
                cursor[author] = at + 1;
                if rng.gen_bool(0.02) {
                    cursor[author] = rng.gen_range(0..=len + 1);
                }
            }
            txn.encode_update_v1()
        };
        docs[1 - author]
            .transact_mut()
            .apply_update(Update::decode_v1(&update)?)?;
        let message = Message::Sync(SyncMessage::Update(update)).encode_v1();
        let effects = room.receive(author as u64, &message, now);
        persist(effects, &room);
        if (i + 1) % 1000 == 0 {
            let (seq, state, owners) = room.checkpoint();
            drop(store.checkpoint(&id, Checkpoint { seq, state, owners }));
        }
        if (i + 1) % run_every == 0 && runs < args.runs {
            runs += 1;
            let run_id = format!("benchrun{runs:08}");
            let by = roles[author];
            let started = RunStarted {
                run_id: run_id.clone(),
                kind: RunKind::Run,
                by,
                at: now,
                code: None,
                code_seq: room.last_seq(),
                private: false,
                environment: "python".into(),
            };
            persist(room.run_started(&started, usize::MAX, now), &room);
            for (k, stream) in [Stream::Stdout, Stream::Stdout, Stream::Stderr]
                .into_iter()
                .enumerate()
            {
                let t = now + 40 + k as i64 * 30;
                let bytes = format!("line {k} of run {runs}: {}\n", "x".repeat(40)).into_bytes();
                let chunk = OutputChunk {
                    run_id: run_id.clone(),
                    stream,
                    pieces: vec![(0, t), (10, t + 2)],
                    bytes,
                };
                persist(room.run_output(chunk, by, false, t), &room);
            }
            let fin = RunFinished {
                run_id,
                status: duet_protocol::RunStatus::Ok,
                limit: None,
                exit_code: Some(0),
                duration_ms: 150,
                tests: None,
                lint: None,
                at: now + 150,
            };
            persist(room.run_finished(&fin, by, false, now + 150), &room);
        }
    }
    let text_len = room.text().chars().count();
    assert_eq!(
        room.text(),
        docs[0]
            .get_or_insert_text(MAIN_FILE)
            .get_string(&docs[0].transact())
    );
    // The writer commits in order: once the last append is durable, everything is.
    if let Some(ticket) = last_ticket {
        ticket.blocking_recv()??;
    }
    let (seq, state, owners) = room.checkpoint();
    store
        .checkpoint(&id, Checkpoint { seq, state, owners })
        .blocking_recv()??;
    Ok((id.to_string(), start, now, text_len))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn measure(
    args: &Args,
    dir: &std::path::Path,
    id: &str,
    start: i64,
    end: i64,
) -> anyhow::Result<()> {
    let mut child = Command::new(&args.duet)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("DUET_ADMIN_TOKEN", ADMIN)
        .env(
            "DUET_LOG",
            std::env::var("DUET_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut addr = String::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(a) = line?.strip_prefix("Duet listening on http://") {
            addr = a.trim().to_owned();
            break;
        }
    }
    let base = format!("http://{addr}/api/interviews/{id}");
    let http = reqwest::Client::new();
    let (rss, _) = memory_kib(pid);
    println!("server RSS at start: {:.1} MiB", rss as f64 / 1024.0);

    let get = move |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let began = Instant::now();
            let response = http.get(url).bearer_auth(REVIEWER).send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let body = response.bytes().await.unwrap();
            (began.elapsed(), body)
        }
    };

    // The timeline: first (cold: the moment index is read) and warm.
    let (cold, body) = get("/timeline".into()).await;
    let timeline: serde_json::Value = serde_json::from_slice(&body)?;
    let mut warm = Vec::new();
    for _ in 0..10 {
        warm.push(get("/timeline".into()).await.0);
    }
    warm.sort();
    println!(
        "timeline: {} events, {:.0} KiB; first {:.1} ms, then p50 {:.1} ms, max {:.1} ms",
        timeline["events"].as_array().map_or(0, |e| e.len()),
        body.len() as f64 / 1024.0,
        cold.as_secs_f64() * 1000.0,
        percentile(&warm, 0.5),
        percentile(&warm, 1.0)
    );

    // The first snapshots after the server started: the first one builds the text index (a
    // log longer than the cache builds inside a request is answered from checkpoints until a
    // thread of its own has built it).
    let mut rng = StdRng::seed_from_u64(5);
    let first_at = Instant::now();
    let mut cold = Vec::new();
    for _ in 0..200 {
        let at = rng.gen_range(start..=end);
        cold.push(get(format!("/snapshot?at={at}")).await.0);
    }
    let very_first = cold[0].as_secs_f64() * 1000.0;
    cold.sort();
    println!(
        "the first 200 snapshots after the server started: the first {very_first:.1} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server RSS {:.1} MiB",
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
        percentile(&cold, 1.0),
        memory_kib(pid).0 as f64 / 1024.0
    );
    // Wait until the index answers: 50 snapshots in a row under 2 ms.
    let mut fast = 0;
    while fast < 50 && first_at.elapsed() < Duration::from_secs(300) {
        let at = rng.gen_range(start..=end);
        let took = get(format!("/snapshot?at={at}")).await.0;
        fast = if took < Duration::from_millis(2) {
            fast + 1
        } else {
            0
        };
    }
    println!(
        "text index ready about {:.1} s after the first snapshot; server RSS {:.1} MiB",
        first_at.elapsed().as_secs_f64(),
        memory_kib(pid).0 as f64 / 1024.0
    );
    // Snapshots at random moments, one after another.
    let mut times = Vec::new();
    for _ in 0..args.snapshots {
        let at = rng.gen_range(start..=end);
        times.push(get(format!("/snapshot?at={at}")).await.0);
    }
    times.sort();
    println!(
        "snapshot at a random moment ({}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.snapshots,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0)
    );
    // Scrubbing: a slider dragged forward and back in small steps.
    let mut scrub = Vec::new();
    let step = (end - start) / 400;
    for k in (0..400).chain((0..400).rev()) {
        scrub.push(get(format!("/snapshot?at={}", start + k * step)).await.0);
    }
    scrub.sort();
    println!(
        "scrubbing in 400 steps forward and back: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&scrub, 0.5),
        percentile(&scrub, 0.99)
    );

    println!(
        "server RSS after the sequential snapshots: {:.1} MiB",
        memory_kib(pid).0 as f64 / 1024.0
    );
    // The export.
    let (took, archive) = get("/export".into()).await;
    println!(
        "export: {:.1} MiB tar in {:.0} ms; server RSS after it {:.1} MiB",
        archive.len() as f64 / (1 << 20) as f64,
        took.as_secs_f64() * 1000.0,
        memory_kib(pid).0 as f64 / 1024.0
    );

    // Three reviewers scrubbing at random at once, with the server's memory read meanwhile.
    let (before, _) = memory_kib(pid);
    let mut tasks = Vec::new();
    for r in 0..3u64 {
        let get = get.clone();
        let n = args.scrub;
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(100 + r);
            let mut times = Vec::new();
            for _ in 0..n {
                let at = rng.gen_range(start..=end);
                times.push(get(format!("/snapshot?at={at}")).await.0);
            }
            times
        }));
    }
    let mut peak_rss = before;
    let mut all = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        peak_rss = peak_rss.max(memory_kib(pid).0);
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    for t in tasks {
        all.extend(t.await?);
    }
    all.sort();
    let (after, hwm) = memory_kib(pid);
    println!(
        "three reviewers scrubbing at once ({} snapshots each): p50 {:.2} ms, p99 {:.2} ms; server RSS {:.1} MiB before, peak {:.1} MiB during, {:.1} MiB after (high-water mark {:.1} MiB, export included)",
        args.scrub,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        before as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
