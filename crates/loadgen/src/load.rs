//! The load run: rooms of typing clients, a warm-up, a measured window, and a drain.

use crate::cli::Args;
use crate::client::{self, Closed, Editor, SharedSink};
use crate::proc;
use crate::runs::{self, Participant};
use crate::stats::{LoadReport, Report};
use crate::target::Room;
use crate::track::{RoomTrack, Timeline};
use anyhow::Context;
use futures_util::SinkExt;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long readers keep reading after the window closes.
const DRAIN: Duration = Duration::from_millis(1500);
/// Most edits one client makes in burst mode.
const MAX_BURST_EDITS: u64 = 5_000_000;
/// Burst mode: edits written before each flush.
const BURST_BATCH: u64 = 16;

/// What one client did.
#[derive(Default)]
pub struct ClientResult {
    pub connected: bool,
    pub sent: u64,
    /// Edits sent over the whole run, warm-up included.
    pub sent_total: u64,
    pub read: client::ReadOutcome,
    pub connect_error: Option<String>,
    /// Mixed load only: this participant's runs.
    pub runs: Option<runs::RunOutcome>,
}

pub async fn run(args: &Args, rooms: Vec<Room>) -> anyhow::Result<Report> {
    let before = proc::sample(args.server_pid);
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let (start_tx, start_rx) = watch::channel(None::<Timeline>);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<(usize, bool)>();
    let tracks: Vec<Arc<RoomTrack>> = rooms
        .iter()
        .map(|_| Arc::new(RoomTrack::new(args.clients)))
        .collect();
    let runs_http = match args.run_every > 0.0 {
        true => {
            let base = args
                .duet_http
                .as_deref()
                .context("--run-every needs --duet-http")?;
            Some(crate::target::loopback(base, &["http"]).await?)
        }
        false => None,
    };
    let mut tasks = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for c in 0..args.clients {
            let (url, track, args) = (room.client_url(c), tracks[r].clone(), args.clone());
            let (limit, ready, start) = (limit.clone(), ready_tx.clone(), start_rx.clone());
            let participant = match (runs_http, &room.interview, room.token(c)) {
                (Some(http), Some(interview), Some(token)) => Some(Participant {
                    http,
                    interview: interview.clone(),
                    token: token.to_owned(),
                }),
                (Some(_), _, _) => {
                    anyhow::bail!("--run-every needs Duet interviews (--duet-admin-token)")
                }
                _ => None,
            };
            tasks.push(tokio::spawn(async move {
                let seat = Seat {
                    url,
                    room: r,
                    slot: c,
                    participant,
                };
                client_task(seat, track, args, limit, ready, start).await
            }));
        }
    }
    drop(ready_tx);

    // Wait until every client synced (or failed), bounded by the connect timeout.
    let total = tasks.len();
    let mut per_room = vec![0u32; rooms.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.connect_timeout);
    for _ in 0..total {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some((room, true))) => per_room[room] += 1,
            Ok(Some((_, false))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    for (track, n) in tracks.iter().zip(&per_room) {
        track.set_receivers(n.saturating_sub(1));
    }
    let now = Instant::now();
    let measure_from = now + Duration::from_secs_f64(args.warmup);
    let timeline = Timeline {
        measure_from,
        measure_to: measure_from + Duration::from_secs_f64(args.duration),
        drain_to: measure_from + Duration::from_secs_f64(args.duration) + DRAIN,
    };
    start_tx.send_replace(Some(timeline));

    tokio::time::sleep_until(timeline.measure_from.into()).await;
    let (server_from, self_from, machine_from) = (
        proc::sample(args.server_pid),
        proc::sample(None),
        proc::machine(),
    );
    tokio::time::sleep_until(timeline.measure_to.into()).await;
    let (server_to, self_to, machine_to) = (
        proc::sample(args.server_pid),
        proc::sample(None),
        proc::machine(),
    );

    let mut results = Vec::with_capacity(total);
    let give_up = tokio::time::Instant::from_std(timeline.drain_to)
        + Duration::from_secs(10)
        + runs::FIRST_BYTE_TIMEOUT;
    for task in tasks {
        match tokio::time::timeout_at(give_up, task).await {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(e)) => results.push(ClientResult {
                connect_error: Some(format!("client task failed: {e}")),
                ..Default::default()
            }),
            Err(_) => results.push(ClientResult {
                connect_error: Some("client did not finish in time".into()),
                ..Default::default()
            }),
        }
    }
    let undelivered = tracks.iter().map(|t| t.undelivered(&timeline)).sum();
    let after = proc::sample(args.server_pid);
    Ok(Report::Load(Box::new(LoadReport::build(
        args,
        results,
        undelivered,
        [before, server_from, server_to, after],
        [self_from, self_to],
        [machine_from, machine_to],
    ))))
}

/// Where one client sits: its URL, its room and slot, and (mixed load) its runs' participant.
struct Seat {
    url: String,
    room: usize,
    slot: usize,
    participant: Option<Participant>,
}

/// Handshakes closed with 1001 one client tries again before it counts as failed.
const RECONNECTS: u32 = 20;

async fn client_task(
    seat: Seat,
    track: Arc<RoomTrack>,
    args: Args,
    limit: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<(usize, bool)>,
    mut start: watch::Receiver<Option<Timeline>>,
) -> ClientResult {
    let Seat {
        url,
        room,
        slot,
        participant,
    } = seat;
    let connect_timeout = Duration::from_secs_f64(args.connect_timeout);
    let connected = {
        let _permit = limit.acquire_owned().await;
        tokio::time::timeout(connect_timeout, async {
            // A close with 1001 during the handshake asks the client to come again (Duet's
            // nodes do so while a room changes hands): reconnect, as y-websocket would.
            let mut attempts = 0;
            let session = loop {
                match client::connect(&url).await {
                    Err(e)
                        if attempts < RECONNECTS
                            && e.downcast_ref::<client::HandshakeClosed>()
                                .is_some_and(client::HandshakeClosed::asks_to_reconnect) =>
                    {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => break other?,
                }
            };
            let events = match &participant {
                Some(p) => Some(runs::connect_events(p).await?),
                None => None,
            };
            anyhow::Ok((session, events))
        })
        .await
    };
    let (session, events) = match connected {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => return failed(&ready, room, format!("{e:#}")),
        Err(_) => return failed(&ready, room, "connect and sync timed out".into()),
    };
    let _ = ready.send((room, true));
    let timeline =
        match tokio::time::timeout(connect_timeout * 2, start.wait_for(Option::is_some)).await {
            Ok(Ok(timeline)) => timeline.unwrap_or_else(|| unreachable!()),
            _ => {
                return ClientResult {
                    connected: true,
                    connect_error: Some("never started".into()),
                    ..Default::default()
                }
            }
        };
    let runner = match (participant, events) {
        (Some(p), Some(events)) => Some(tokio::spawn(runs::participate(
            p,
            events,
            Duration::from_secs_f64(args.run_every),
            timeline,
        ))),
        _ => None,
    };
    let sink: SharedSink = Arc::new(tokio::sync::Mutex::new(session.sink));
    let reader = tokio::spawn(client::read_loop(
        session.stream,
        (
            session.editor.doc.clone(),
            session.editor.own_deletes.clone(),
        ),
        sink.clone(),
        track.clone(),
        timeline,
        !args.no_apply,
    ));
    let (sent, sent_total) = edit_loop(session.editor, slot, &sink, &track, &args, &timeline).await;
    let read = reader.await.unwrap_or_default();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        sink.lock().await.close().await
    })
    .await;
    let runs = match runner {
        Some(runner) => Some(runner.await.unwrap_or_default()),
        None => None,
    };
    ClientResult {
        connected: true,
        sent,
        sent_total,
        read,
        connect_error: None,
        runs,
    }
}

fn failed(
    ready: &mpsc::UnboundedSender<(usize, bool)>,
    room: usize,
    error: String,
) -> ClientResult {
    let _ = ready.send((room, false));
    ClientResult {
        connect_error: Some(error),
        ..Default::default()
    }
}

/// Edits at the configured rate (or flat out, flushing every `BURST_BATCH` edits) until the
/// window closes. Returns the edits sent inside the window, and in all.
async fn edit_loop(
    mut editor: Editor,
    slot: usize,
    sink: &SharedSink,
    track: &RoomTrack,
    args: &Args,
    timeline: &Timeline,
) -> (u64, u64) {
    let end = tokio::time::Instant::from_std(timeline.measure_to);
    let mut ticks = (!args.burst()).then(|| {
        let period = Duration::from_secs_f64(1.0 / args.rate);
        // A random phase, so clients do not all type in the same instant.
        let phase = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    });
    let max_edits = if args.burst() {
        MAX_BURST_EDITS
    } else {
        (args.rate * (args.warmup + args.duration + 1.0)).ceil() as u64 + 1
    };
    let (mut in_window, mut total) = (0, 0);
    for n in 0..max_edits {
        if let Some(ticks) = ticks.as_mut() {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = tokio::time::sleep_until(end) => break,
            }
        }
        if args.window > 0 && track.tracking() && n.saturating_sub(track.done(slot)) >= args.window
        {
            let _ = sink.lock().await.flush().await; // what waits unflushed would never arrive
            if !wait_for_room(track, slot, n, args.window, end).await {
                break;
            }
        }
        if Instant::now() >= timeline.measure_to {
            break;
        }
        let edit = editor.edit(args.delete_ratio, args.jump_ratio);
        let at = Instant::now();
        if let Some(key) = edit.key {
            track.sent(key, at, slot);
        }
        in_window += u64::from(timeline.measuring(at));
        let flush = !args.burst() || n % BURST_BATCH == BURST_BATCH - 1;
        let sent = tokio::time::timeout_at(end, async {
            let mut sink = sink.lock().await;
            match flush {
                true => sink.send(Ws::Binary(edit.message.into())).await,
                false => sink.feed(Ws::Binary(edit.message.into())).await,
            }
        });
        match sent.await {
            Ok(Ok(())) => total += 1,
            _ => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        sink.lock().await.flush().await
    })
    .await;
    (in_window, total)
}

/// Waits until fewer than `window` of the `sent` edits by `slot` are in flight. False at `end`.
async fn wait_for_room(
    track: &RoomTrack,
    slot: usize,
    sent: u64,
    window: u64,
    end: tokio::time::Instant,
) -> bool {
    loop {
        let progress = track.progress.notified();
        if sent.saturating_sub(track.done(slot)) < window {
            return true;
        }
        tokio::select! {
            _ = progress => {}
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = tokio::time::sleep_until(end) => return false,
        }
    }
}

/// Close codes, as `code reason` strings, counted.
pub fn count_closes<'a>(
    closes: impl Iterator<Item = &'a Closed>,
) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for (code, reason) in closes {
        *counts
            .entry(format!("{code} {reason}").trim().to_owned())
            .or_insert(0) += 1;
    }
    counts
}
