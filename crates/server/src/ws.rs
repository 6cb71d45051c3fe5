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
use crate::metrics::Metrics;
use crate::outbound::{close_message, write_loop, OutboundQueue, PeerSink};
use crate::rooms::{RoomCmd, RoomHandle, Rooms};
use crate::sockets::SocketGuard;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use duet_core::ConnId;
use duet_protocol::{close, Identity, InterviewId, Role};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes read from a socket at a time (larger messages still arrive whole, up to the cap).
/// tungstenite allocates this for every socket and zero-fills it on each read, so all of it is
/// resident for as long as the socket is open: at 8 KiB it was a quarter of an idle room's
/// memory. A keystroke is tens of bytes and a presence update a few hundred, so 512 bytes still
/// takes several in one read; a larger message grows the buffer to its size (and is read 512
/// bytes at a time).
pub(crate) const READ_BUFFER: usize = 512;

pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    crate::web::check_origin(&state, &parts)?;
    let (interview, role, staff) = auth::access_as(&state, &parts, &id).await?;
    let store = state.store.clone();
    let lookup = interview.clone();
    let record = crate::api::blocking(move || store.get_interview(&lookup))
        .await?
        .ok_or(AppError::NotFound("no such interview"))?;
    let place = state.sockets.acquire_as(&interview, role, staff.as_ref())?;
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

/// Sets the connection up and returns its reader, which runs for as long as the socket is open.
///
/// Everything an async fn is given stays in its future for its whole life, so the long-lived
/// part ([`read_loop`]) is given only what it uses: the socket already split, no `AppState`.
fn connection(
    state: AppState,
    interview: InterviewId,
    role: Role,
    identity: Identity,
    limits: WsLimits,
    socket: WebSocket,
    place: SocketGuard,
) -> impl std::future::Future<Output = ()> {
    let conn: ConnId = state.next_conn.fetch_add(1, Relaxed);
    let (sink, queue) = PeerSink::new(&limits, state.metrics.replies_coalesced.clone());
    let (ws_tx, ws_rx) = socket.split();
    read_loop(Box::new(Peer {
        rooms: state.rooms.clone(),
        metrics: state.metrics.clone(),
        interview,
        conn,
        role,
        identity,
        limits,
        place,
        sink,
        queue,
        ws_tx,
        ws_rx,
    }))
}

/// What a connection's reader starts with (boxed: the future keeps its arguments for life).
struct Peer {
    rooms: Arc<Rooms>,
    metrics: Arc<Metrics>,
    interview: InterviewId,
    conn: ConnId,
    role: Role,
    identity: Identity,
    limits: WsLimits,
    place: SocketGuard,
    sink: PeerSink,
    queue: OutboundQueue,
    ws_tx: SplitSink<WebSocket, Message>,
    ws_rx: SplitStream<WebSocket>,
}

async fn read_loop(peer: Box<Peer>) {
    // Moved out in a block of its own, so the box is freed now rather than when the loop ends.
    let Peer {
        rooms,
        metrics,
        interview,
        conn,
        role,
        identity,
        limits,
        place,
        sink,
        queue,
        mut ws_tx,
        mut ws_rx,
    } = {
        let peer = peer;
        *peer
    };
    let closer = sink.clone();
    // Boxed, and freed once joined: the loop's future need not keep room for it.
    let joined = Box::pin(join(&rooms, &interview, conn, role, identity, sink)).await;
    let Some(room) = joined else {
        let _ = ws_tx
            .send(close_message(
                close::GOING_AWAY,
                "room unavailable; reconnect",
            ))
            .await;
        return;
    };
    metrics.connections.fetch_add(1, Relaxed);
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
            why = place.revoked() => {
                closer.close(close::POLICY, why.reason().to_owned());
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
            metrics.connections_closed_by_server.fetch_add(1, Relaxed);
            closer.close(code, reason);
            break;
        }
    }
    let _ = room.tx.send(RoomCmd::Leave { conn }).await;
    drop(closer);
    let _ = writer.await;
    metrics.connections.fetch_sub(1, Relaxed);
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
    rooms: &Arc<Rooms>,
    interview: &InterviewId,
    conn: ConnId,
    role: Role,
    identity: Identity,
    sink: PeerSink,
) -> Option<RoomHandle> {
    for _ in 0..3 {
        let room = rooms.get(interview);
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
