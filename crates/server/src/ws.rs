//! The Yjs websocket endpoint: `GET /yjs/{id}?token=T`.
//!
//! Each connection has a reader (this task) that checks limits and forwards binary messages to
//! the room, and a writer task that drains the connection's bounded queue to the socket and
//! sends the close frame with its reason. The room never waits for a socket.

use crate::auth;
use crate::config::WsLimits;
use crate::error::AppError;
use crate::rooms::{PeerSink, RoomCmd, RoomHandle};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use duet_core::ConnId;
use duet_protocol::{close, Identity, InterviewId, Role};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often the server pings an idle connection, and how long it waits for any frame back.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Bytes read from a socket at a time (larger messages still arrive whole, up to the cap).
pub(crate) const READ_BUFFER: usize = 8 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id)?;
    let record = state.store.get_interview(&interview)?.ok_or(AppError::NotFound("no such interview"))?;
    let identity = Identity::for_role(role, &record.candidate_name);
    let limits = state.config.ws.clone();
    Ok(ws
        // tungstenite's default 128 KiB read buffer, zero-filled on every read, was most of an
        // idle room's memory and a tenth of the server's CPU under load; Yjs messages are small.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |socket| connection(state, interview, role, identity, limits, socket)))
}

async fn connection(state: AppState, interview: InterviewId, role: Role, identity: Identity, limits: WsLimits, socket: WebSocket) {
    let conn: ConnId = state.next_conn.fetch_add(1, Relaxed);
    let (messages, outbound) = mpsc::channel::<Message>(limits.outbound_queue.max(1));
    let (closer, close_rx) = mpsc::channel::<(u16, String)>(1);
    let sink = PeerSink { messages, close: closer.clone() };
    let (ws_tx, mut ws_rx) = socket.split();

    let Some(room) = join(&state, &interview, conn, role, identity, sink).await else {
        let mut ws_tx = ws_tx;
        let _ = ws_tx.send(close_message(close::GOING_AWAY, "room unavailable; reconnect")).await;
        return;
    };
    state.metrics.connections.fetch_add(1, Relaxed);
    let stopped = CancellationToken::new();
    let writer = tokio::spawn(write_loop(ws_tx, outbound, close_rx, stopped.clone()));

    let mut budget = RateLimit::new(&limits);
    loop {
        let frame = tokio::select! {
            frame = ws_rx.next() => frame,
            _ = stopped.cancelled() => break, // the writer closed the connection
        };
        let refusal = match frame {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Binary(bytes))) => match budget.take(bytes.len()) {
                Err(reason) => Some((close::POLICY, reason)),
                Ok(()) => match room.tx.send(RoomCmd::Message { conn, bytes }).await {
                    Ok(()) => None,
                    Err(_) => Some((close::GOING_AWAY, "room closed; reconnect".to_owned())),
                },
            },
            Some(Ok(Message::Text(_))) => {
                Some((close::UNSUPPORTED, "text frames are not part of the Yjs protocol; send binary".to_owned()))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("too big") {
                    Some((close::TOO_BIG, format!("message over the {} byte cap", limits.max_message_bytes)))
                } else {
                    break;
                }
            }
        };
        if let Some((code, reason)) = refusal {
            state.metrics.connections_closed_by_server.fetch_add(1, Relaxed);
            let _ = closer.try_send((code, reason));
            break;
        }
    }
    let _ = room.tx.send(RoomCmd::Leave { conn }).await;
    drop(closer);
    let _ = writer.await;
    state.metrics.connections.fetch_sub(1, Relaxed);
}

/// Joins the room, retrying if the room unloaded between lookup and join.
async fn join(state: &AppState, interview: &InterviewId, conn: ConnId, role: Role, identity: Identity, sink: PeerSink) -> Option<RoomHandle> {
    for _ in 0..3 {
        let room = state.rooms.get(interview);
        let cmd = RoomCmd::Join { conn, role, identity: identity.clone(), sink: sink.clone() };
        if room.tx.send(cmd).await.is_ok() {
            return Some(room);
        }
    }
    None
}

/// Drains a connection's queue to its socket; sends the close frame when told; pings when idle.
pub(crate) async fn write_loop(
    mut ws: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outbound: mpsc::Receiver<Message>,
    mut close_rx: mpsc::Receiver<(u16, String)>,
    stopped: CancellationToken,
) {
    let _stopped = stopped.drop_guard();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            biased;
            reason = close_rx.recv() => {
                if let Some((code, reason)) = reason {
                    let _ = ws.send(close_message(code, &reason)).await;
                }
                break;
            }
            message = outbound.recv() => match message {
                Some(message) => {
                    if ws.send(message).await.is_err() { break; }
                }
                None => break,
            },
            _ = ping.tick() => {
                if ws.send(Message::Ping(Bytes::new())).await.is_err() { break; }
            }
        }
    }
    let _ = ws.close().await;
}

pub(crate) fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// A token bucket over messages and bytes: sustained rate per second, bursts of twice that.
struct RateLimit {
    messages: f64,
    bytes: f64,
    max_messages: f64,
    max_bytes: f64,
    per_sec_messages: f64,
    per_sec_bytes: f64,
    last: Instant,
}

impl RateLimit {
    fn new(limits: &WsLimits) -> RateLimit {
        let per_sec_messages = f64::from(limits.max_messages_per_sec.max(1));
        let per_sec_bytes = limits.max_bytes_per_sec.max(1) as f64;
        RateLimit {
            messages: per_sec_messages * 2.0,
            bytes: per_sec_bytes * 2.0,
            max_messages: per_sec_messages * 2.0,
            max_bytes: per_sec_bytes * 2.0,
            per_sec_messages,
            per_sec_bytes,
            last: Instant::now(),
        }
    }

    fn take(&mut self, size: usize) -> Result<(), String> {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.messages = (self.messages + secs * self.per_sec_messages).min(self.max_messages) - 1.0;
        self.bytes = (self.bytes + secs * self.per_sec_bytes).min(self.max_bytes) - size as f64;
        if self.messages < 0.0 {
            return Err(format!("rate limit: over {} messages per second", self.per_sec_messages));
        }
        if self.bytes < 0.0 {
            return Err(format!("rate limit: over {} bytes per second", self.per_sec_bytes));
        }
        Ok(())
    }
}
