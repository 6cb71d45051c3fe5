//! The events websocket: `GET /api/interviews/{id}/events?token=T`, one JSON text frame per
//! [`duet_protocol::RoomEvent`] (runs, input, questions, review, the end) for the roles allowed
//! to see it, published by the room task after its record is stored; the candidate's frames
//! leave out the log's `seq` (see `rooms/gates.rs`).

use crate::auth;
use crate::error::AppError;
use crate::outbound::{close_message, write_loop, PeerSink};
use crate::rooms::{RoomCmd, Subscriber};
use crate::sockets::SocketGuard;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use duet_protocol::{close, InterviewId};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering::Relaxed;
use tokio_util::sync::CancellationToken;

/// Largest frame a client may send on this socket (it has nothing to say but pongs and close).
const MAX_INCOMING: usize = 4 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    crate::web::check_origin(&state, &parts)?;
    let (interview, role, staff) = auth::access_as(&state, &parts, &id).await?;
    let place = state.sockets.acquire_as(&interview, role, staff.as_ref())?;
    Ok(ws
        .read_buffer_size(crate::ws::READ_BUFFER)
        .max_message_size(MAX_INCOMING)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("events", interview = %interview, %role);
            let person = staff.map(|s| s.person.id);
            let who = Subscriber { role, person };
            tracing::Instrument::instrument(subscriber(state, interview, who, socket, place), span)
        }))
}

async fn subscriber(
    state: AppState,
    interview: InterviewId,
    who: Subscriber,
    socket: WebSocket,
    place: SocketGuard,
) {
    let conn = state.next_conn.fetch_add(1, Relaxed);
    let limits = &state.config.ws;
    let (sink, queue) = PeerSink::new(limits, state.metrics.replies_coalesced.clone());
    let closer = sink.clone();
    let (mut ws_tx, mut ws_rx) = socket.split();
    let room = state.rooms.get(&interview);
    if room
        .tx
        .send(RoomCmd::Subscribe { conn, who, sink })
        .await
        .is_err()
    {
        let _ = ws_tx
            .send(close_message(
                close::GOING_AWAY,
                "room unavailable; reconnect",
            ))
            .await;
        return;
    }
    let stopped = CancellationToken::new();
    let writer = tokio::spawn(write_loop(ws_tx, queue, stopped.clone()));
    loop {
        tokio::select! {
            frame = tokio::time::timeout(limits.peer_deadline(), ws_rx.next()) => match frame {
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => break,
                Ok(Some(Ok(_))) => {} // nothing to do with what a subscriber sends but pongs
                Err(_) => {
                    closer.close(close::GOING_AWAY, limits.silent_peer_reason());
                    break;
                }
            },
            _ = stopped.cancelled() => break,
            why = place.revoked() => {
                closer.close(close::POLICY, why.reason().to_owned());
                break;
            }
        }
    }
    let _ = room.tx.send(RoomCmd::Unsubscribe { conn }).await;
    drop(closer);
    let _ = writer.await;
}
