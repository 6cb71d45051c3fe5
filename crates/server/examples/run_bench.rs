//! The runs benchmark behind BENCHMARKS.md: from `POST /runs` to the first byte of output on the
//! events socket, with the warm pool and without, beside a plain `docker run` in the same run;
//! short runs per second sustained; the server's memory over many runs.
//!
//!   cargo build --release --bin duet
//!   cargo run --release -p duet-server --example run_bench -- --runs 200 --memory-runs 1000
//!
//! It starts its own `duet serve` processes (loopback, fresh data dirs) and needs Docker and
//! the sandbox image (scripts/ensure-docker.sh).
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed measurement

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use yrs::sync::{Message as YMessage, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Text, Transact};

const ADMIN: &str = "run-bench-admin-token-0123456789abcdef";

#[derive(Parser)]
struct Args {
    /// The duet binary.
    #[arg(long, default_value = "target/release/duet")]
    duet: String,
    /// Sequential runs measured for latency, per configuration.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Runs for the throughput figure.
    #[arg(long, default_value_t = 200)]
    throughput_runs: usize,
    /// Runs over which the server's memory is watched.
    #[arg(long, default_value_t = 1000)]
    memory_runs: usize,
    /// Sandbox image.
    #[arg(long, default_value = "duet-sandbox:latest")]
    image: String,
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(duet: &str, pool: usize) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(duet)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--runs-per-minute",
                "100000",
                "--sandbox-queue",
                "64",
            ])
            .args(["--sandbox-pool", &pool.to_string(), "--data-dir"])
            .arg(dir.path())
            .env("DUET_ADMIN_TOKEN", ADMIN)
            .env("DUET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        for line in BufReader::new(stdout).lines() {
            if let Some(addr) = line?.strip_prefix("Duet listening on http://") {
                return Ok(Server {
                    child,
                    addr: addr.trim().to_owned(),
                    _dir: dir,
                });
            }
        }
        anyhow::bail!("duet exited before listening")
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    /// SIGTERM and a wait: a graceful stop removes the warm pool's containers (a SIGKILL would
    /// leave them behind, with nothing to reap them once the temporary data dir is gone).
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if stopped.is_ok() {
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An interview whose main.py is `print(1)`, with its events socket open.
struct Interview {
    id: String,
    candidate: String,
    events: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
}

async fn interview(http: &reqwest::Client, addr: &str, code: &str) -> anyhow::Result<Interview> {
    let created: Value = http
        .post(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .json(&json!({"title": "bench", "candidate_name": "Bench"}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let candidate = created["tokens"]["candidate"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (mut editor, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/yjs/{id}?token={candidate}")).await?;
    let doc = Doc::new();
    let text = doc.get_or_insert_text("main.py");
    let update = {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, code);
        txn.encode_update_v1()
    };
    editor
        .send(Message::Binary(
            YMessage::Sync(SyncMessage::Update(update))
                .encode_v1()
                .into(),
        ))
        .await?;
    let (_, events) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/interviews/{id}/events?token={candidate}"
    ))
    .await?
    .0
    .split();
    // Wait until the edit is in the room: a run of an empty document is refused.
    for _ in 0..200 {
        let runs = http
            .post(format!("http://{addr}/api/interviews/{id}/runs"))
            .bearer_auth(&candidate)
            .json(&json!({"kind": "run"}))
            .send()
            .await?;
        if runs.status() == 202 {
            let mut i = Interview {
                id,
                candidate,
                events,
            };
            let run_id: Value = runs.json().await?;
            i.wait_finish(run_id["run_id"].as_str().unwrap_or_default())
                .await?;
            return Ok(i);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the edit never reached the room")
}

impl Interview {
    /// Starts a run; returns its id and the time to its first output event.
    async fn run(&mut self, http: &reqwest::Client, addr: &str) -> anyhow::Result<Duration> {
        let asked = Instant::now();
        let answer: Value = http
            .post(format!("http://{addr}/api/interviews/{}/runs", self.id))
            .bearer_auth(&self.candidate)
            .json(&json!({"kind": "run"}))
            .send()
            .await?
            .json()
            .await?;
        let run_id = answer["run_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no run id: {answer}"))?
            .to_owned();
        let mut first = None;
        while let Some(frame) = self.events.next().await {
            let Message::Text(text) = frame? else {
                continue;
            };
            let event: Value = serde_json::from_str(&text)?;
            if event["run_id"] != run_id.as_str() {
                continue;
            }
            if event["type"] == "run.output" && first.is_none() {
                first = Some(asked.elapsed());
            }
            if event["type"] == "run.finished" {
                anyhow::ensure!(event["status"] == "ok", "run failed: {event}");
                return first.ok_or_else(|| anyhow::anyhow!("no output before the finish"));
            }
        }
        anyhow::bail!("events socket closed")
    }

    async fn wait_finish(&mut self, run_id: &str) -> anyhow::Result<()> {
        while let Some(frame) = self.events.next().await {
            if let Message::Text(text) = frame? {
                let event: Value = serde_json::from_str(&text)?;
                if event["run_id"] == run_id && event["type"] == "run.finished" {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("events socket closed")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(label: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{label:<48} n={:<5} p50 {p50:>7.1} ms   p99 {p99:>7.1} ms",
        samples.len()
    );
    (p50, p99)
}

/// `docker run --rm` through the CLI, to its first byte of output.
fn docker_cli(image: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "python3",
            "-c",
            "print(1)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .read_line(&mut line)?;
    let first = started.elapsed();
    child.wait()?;
    anyhow::ensure!(line.trim() == "1", "docker run printed {line:?}");
    Ok(first)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();

    let cli: Vec<Duration> = (0..args.runs.min(50))
        .map(|_| docker_cli(&args.image))
        .collect::<anyhow::Result<_>>()?;
    let (cli_p50, _) = summary("docker run --rm (CLI) to first byte", cli);

    let mut results = Vec::new();
    for (label, pool) in [
        ("duet, warm pool of 2: request to first byte", 2),
        ("duet, no pool (cold container): request to first byte", 0),
    ] {
        let server = Server::start(&args.duet, pool)?;
        let mut room = interview(&http, &server.addr, "print(1)\n").await?;
        let mut samples = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            samples.push(room.run(&http, &server.addr).await?);
            if pool > 0 {
                // Sequential runs: give the pool its moment to refill, as between real clicks.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
        results.push((label, summary(label, samples)));
    }

    // Throughput: many interviews asking at once, all runs counted to their finish.
    let server = Server::start(&args.duet, 2)?;
    let rooms = 16;
    let mut interviews = Vec::new();
    for _ in 0..rooms {
        interviews.push(interview(&http, &server.addr, "print(1)\n").await?);
    }
    let per_room = args.throughput_runs.div_ceil(rooms);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut room in interviews {
        let (http, addr) = (http.clone(), server.addr.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_room {
                room.run(&http, &addr).await?;
            }
            Ok::<_, anyhow::Error>(room)
        }));
    }
    let mut interviews = Vec::new();
    for task in tasks {
        interviews.push(task.await??);
    }
    let rate = (per_room * rooms) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{:<48} {rate:.1} runs/s ({} runs, {rooms} interviews at once)",
        "sustained short runs (2 cores)",
        per_room * rooms
    );

    // Memory: the same server over many more runs.
    let rss_start = server.rss_kib();
    let mut done = 0;
    let mut marks = vec![(0, rss_start)];
    while done < args.memory_runs {
        let batch = (args.memory_runs - done).min(100);
        let per = batch.div_ceil(interviews.len());
        let mut tasks = Vec::new();
        for mut room in interviews.drain(..) {
            let (http, addr) = (http.clone(), server.addr.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..per {
                    room.run(&http, &addr).await?;
                }
                Ok::<_, anyhow::Error>(room)
            }));
        }
        for task in tasks {
            interviews.push(task.await??);
        }
        done += per * rooms;
        marks.push((done, server.rss_kib()));
    }
    let shown: Vec<String> = marks
        .iter()
        .map(|(n, kib)| format!("{n}: {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!("{:<48} {}", "server RSS after N runs", shown.join(", "));
    for (label, (p50, _)) in results {
        println!("ratio docker CLI p50 / {label}: {:.1}x", cli_p50 / p50);
    }
    Ok(())
}
