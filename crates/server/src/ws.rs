//! The Yjs websocket endpoint: `GET /yjs/{id}?token=T`.
//!
//! Each connection has a reader (this task) that checks limits and forwards binary messages to
//! the room, and a writer task ([`crate::outbound::write_loop`]) that drains the connection's
//! bounded queue to the socket, pings it (every 30 s by default) and sends the close frame with
//! its reason. The reader gives a peer up when no frame at all (not even a pong) arrived within
//! its deadline (45 s by default; `--ws-peer-deadline-secs`). The room never waits for a socket.

use crate::auth;
use crate::config::WsLimits;
use crate::error::AppError;
use crate::outbound::{close_message, write_loop, PeerSink};
use crate::rooms::{RoomCmd, RoomHandle};
use crate::sockets::SocketGuard;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use duet_core::ConnId;
use duet_protocol::{close, Identity, InterviewId, Role};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes read from a socket at a time (larger messages still arrive whole, up to the cap).
pub(crate) const READ_BUFFER: usize = 8 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    crate::web::check_origin(&state, &parts)?;
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    let store = state.store.clone();
    let lookup = interview.clone();
    let record = crate::api::blocking(move || store.get_interview(&lookup))
        .await?
        .ok_or(AppError::NotFound("no such interview"))?;
    let place = state.sockets.acquire(&interview, role)?;
    let identity = Identity::for_role(role, &record.candidate_name);
    let limits = state.config.ws.clone();
    Ok(ws
        // tungstenite's default 128 KiB read buffer, zero-filled on every read, was most of an
        // idle room's memory and a tenth of the server's CPU under load; Yjs messages are small.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("yjs", interview = %interview, %role);
            tracing::Instrument::instrument(
                connection(state, interview, role, identity, limits, socket, place),
                span,
            )
        }))
}

async fn connection(
    state: AppState,
    interview: InterviewId,
    role: Role,
    identity: Identity,
    limits: WsLimits,
    socket: WebSocket,
    place: SocketGuard,
) {
    let conn: ConnId = state.next_conn.fetch_add(1, Relaxed);
    let (sink, queue) = PeerSink::new(&limits, state.metrics.replies_coalesced.clone());
    let closer = sink.clone();
    let (ws_tx, mut ws_rx) = socket.split();

    let Some(room) = join(&state, &interview, conn, role, identity, sink).await else {
        let mut ws_tx = ws_tx;
        let _ = ws_tx
            .send(close_message(
                close::GOING_AWAY,
                "room unavailable; reconnect",
            ))
            .await;
        return;
    };
    state.metrics.connections.fetch_add(1, Relaxed);
    let stopped = CancellationToken::new();
    let writer = tokio::spawn(write_loop(ws_tx, queue, stopped.clone()));

    let mut budget = RateLimit::new(&limits);
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(limits.peer_deadline(), ws_rx.next()) => match frame {
                Ok(frame) => frame,
                Err(_) => {
                    closer.close(close::GOING_AWAY, limits.silent_peer_reason());
                    break;
                }
            },
            _ = stopped.cancelled() => break, // the writer closed the connection
            _ = place.revoked() => {
                closer.close(close::POLICY, crate::sockets::REVOKED_REASON.to_owned());
                break;
            }
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
            Some(Ok(Message::Text(_))) => Some((
                close::UNSUPPORTED,
                "text frames are not part of the Yjs protocol; send binary".to_owned(),
            )),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            Some(Err(e)) => {
                if is_oversized(&e) {
                    Some((
                        close::TOO_BIG,
                        format!("message over the {} byte cap", limits.max_message_bytes),
                    ))
                } else {
                    break;
                }
            }
        };
        if let Some((code, reason)) = refusal {
            state
                .metrics
                .connections_closed_by_server
                .fetch_add(1, Relaxed);
            closer.close(code, reason);
            break;
        }
    }
    let _ = room.tx.send(RoomCmd::Leave { conn }).await;
    drop(closer);
    let _ = writer.await;
    state.metrics.connections.fetch_sub(1, Relaxed);
}

/// Whether a read failed because a message or frame was over the cap, told by tungstenite's
/// typed error (axum wraps it).
fn is_oversized(e: &axum::Error) -> bool {
    use tungstenite::error::{CapacityError, Error};
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>());
    matches!(
        inner,
        Some(Error::Capacity(CapacityError::MessageTooLong { .. }))
    )
}

/// Joins the room, retrying if the room unloaded between lookup and join.
async fn join(
    state: &AppState,
    interview: &InterviewId,
    conn: ConnId,
    role: Role,
    identity: Identity,
    sink: PeerSink,
) -> Option<RoomHandle> {
    for _ in 0..3 {
        let room = state.rooms.get(interview);
        let cmd = RoomCmd::Join {
            conn,
            role,
            identity: identity.clone(),
            sink: sink.clone(),
        };
        if room.tx.send(cmd).await.is_ok() {
            return Some(room);
        }
    }
    None
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
            return Err(format!(
                "rate limit: over {} messages per second",
                self.per_sec_messages
            ));
        }
        if self.bytes < 0.0 {
            return Err(format!(
                "rate limit: over {} bytes per second",
                self.per_sec_bytes
            ));
        }
        Ok(())
    }
}
