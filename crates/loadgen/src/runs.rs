//! Mixed load (Duet only): beside typing, each participant keeps its events socket open and
//! starts a program run every so often, timing each run from the request to its first output.
//!
//! A run is `POST /api/interviews/{id}/runs {"kind": "run"}` with the participant's own token;
//! its first byte is the first `run.output` frame carrying its `run_id` on that participant's
//! events socket (`GET /api/interviews/{id}/events?token=`). The frame may arrive before the 202
//! answer does, so the socket's reader notes every run's first output by id and the runner looks
//! it up.

use crate::client::Closed;
use crate::http;
use crate::track::Timeline;
use anyhow::Context;
use futures_util::StreamExt;
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a run may take to show its first byte before it counts as without output.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where one participant's runs go.
#[derive(Debug, Clone)]
pub struct Participant {
    pub http: SocketAddr,
    pub interview: String,
    pub token: String,
}

/// What one participant's runs did.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Request to first output, in nanoseconds, for runs requested inside the window.
    pub first_byte: Vec<u64>,
    /// Runs requested inside the window (answered 202).
    pub started: u64,
    /// Runs requested inside the window that showed no output within [`FIRST_BYTE_TIMEOUT`].
    pub no_output: u64,
    /// Refused requests (inside the window), by error.
    pub refused: BTreeMap<String, u64>,
    /// How the events socket ended, if it ended before the drain.
    pub events_closed: Option<Closed>,
    pub events_error: Option<String>,
}

/// Opens the participant's events socket (`ws://HOST/api/interviews/{id}/events?token=`).
pub async fn connect_events(p: &Participant) -> anyhow::Result<Socket> {
    let url = format!(
        "ws://{}/api/interviews/{}/events?token={}",
        p.http, p.interview, p.token
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("connecting the events socket")?;
    Ok(socket)
}

/// First output seen per run id, and a wake-up for whoever waits on one.
#[derive(Default)]
struct FirstOutputs {
    seen: Mutex<HashMap<String, Instant>>,
    notify: Notify,
}

impl FirstOutputs {
    fn get(&self, run: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run)
            .copied()
    }
}

/// Runs every `every` (first at a random phase) until the window closes, reading the events
/// socket throughout; returns once every run it started has shown output or timed out.
pub async fn participate(
    p: Participant,
    events: Socket,
    every: Duration,
    timeline: Timeline,
) -> RunOutcome {
    let firsts = Arc::new(FirstOutputs::default());
    let (stop_reading, stop) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(read_events(events, firsts.clone(), stop));

    let mut outcome = RunOutcome::default();
    let mut waits = tokio::task::JoinSet::new();
    let phase = every.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
    let mut next = tokio::time::Instant::now() + phase;
    let end = tokio::time::Instant::from_std(timeline.measure_to);
    while next < end {
        tokio::time::sleep_until(next).await;
        next += every;
        let asked = Instant::now();
        let measured = timeline.measuring(asked);
        let body = serde_json::json!({"kind": "run"});
        let path = format!("/api/interviews/{}/runs", p.interview);
        match http::post_json(p.http, &path, Some(&p.token), &body).await {
            Ok(answer) => {
                let Some(run) = answer
                    .get("run_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                else {
                    *outcome
                        .refused
                        .entry("202 without a run_id".into())
                        .or_insert(0) += 1;
                    continue;
                };
                let firsts = firsts.clone();
                waits.spawn(async move {
                    let deadline = tokio::time::Instant::from_std(asked) + FIRST_BYTE_TIMEOUT;
                    loop {
                        let woken = firsts.notify.notified();
                        if let Some(at) = firsts.get(&run) {
                            return (measured, Some(at.duration_since(asked)));
                        }
                        tokio::select! {
                            _ = woken => {}
                            _ = tokio::time::sleep_until(deadline) => return (measured, None),
                        }
                    }
                });
            }
            Err(e) if measured => {
                // Counted by status and message, without the interview's id in the path.
                let text = format!("{e:#}");
                let text = text
                    .split_once(": HTTP ")
                    .map_or(text.clone(), |(_, rest)| format!("HTTP {rest}"));
                let text: String = text.chars().take(100).collect();
                *outcome.refused.entry(text).or_insert(0) += 1;
            }
            Err(_) => {}
        }
    }
    while let Some(done) = waits.join_next().await {
        match done {
            Ok((true, Some(took))) => {
                outcome.started += 1;
                outcome.first_byte.push(took.as_nanos() as u64);
            }
            Ok((true, None)) => {
                outcome.started += 1;
                outcome.no_output += 1;
            }
            _ => {}
        }
    }
    let _ = stop_reading.send(());
    if let Ok((closed, error)) = reader.await {
        outcome.events_closed = closed;
        outcome.events_error = error;
    }
    outcome
}

/// Reads the events socket, noting the first `run.output` of every run, until told to stop.
async fn read_events(
    mut events: Socket,
    firsts: Arc<FirstOutputs>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (Option<Closed>, Option<String>) {
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = &mut stop => {
                let _ = tokio::time::timeout(Duration::from_secs(1), events.close(None)).await;
                return (None, None);
            }
        };
        let text = match next {
            Some(Ok(Ws::Text(text))) => text,
            Some(Ok(Ws::Close(frame))) => {
                return (
                    Some(frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    })),
                    None,
                )
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return (None, Some(e.to_string())),
            None => {
                return (
                    None,
                    Some("events socket ended without a close frame".into()),
                )
            }
        };
        let now = Instant::now();
        // Cheap filter before parsing: most frames are output of runs already seen.
        if !text.contains("\"run.output\"") {
            continue;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if event.get("type").and_then(|t| t.as_str()) != Some("run.output") {
            continue;
        }
        if let Some(run) = event.get("run_id").and_then(|v| v.as_str()) {
            let mut seen = firsts.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.contains_key(run) {
                seen.insert(run.to_owned(), now);
                drop(seen);
                firsts.notify.notify_waiters();
            }
        }
    }
}
