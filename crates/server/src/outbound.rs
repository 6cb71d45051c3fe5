//! A connection's way out: a queue bounded in messages and in bytes that the room fills and a
//! writer task drains to the socket, a separate slot for the close reason, and a ping every
//! [`WsLimits::ping_every`] so the reader can hold the peer to its deadline
//! ([`WsLimits::peer_deadline`]).
//!
//! The room never waits for a socket: a peer whose queue is full (in messages or bytes) is
//! closed with 1013 and resyncs when it reconnects. Answers that may be large (a sync step 2, a
//! presence snapshot) hold a reply slot until written, so a peer cannot queue more than one of
//! each (see [`duet_core::ReplySlots`]).

use crate::config::WsLimits;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use duet_core::{Reply, ReplySlots};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One message on its way to a socket.
pub struct Outbound {
    message: Message,
    bytes: usize,
    reply: Option<Reply>,
}

/// Why a message could not be queued: the peer is not keeping up.
#[derive(Debug)]
pub struct TooSlow;

/// The room's handle on a connection's queue.
#[derive(Clone)]
pub struct PeerSink {
    messages: mpsc::Sender<Outbound>,
    close: mpsc::Sender<(u16, String)>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    pub replies: ReplySlots,
}

/// The writer's end of a connection's queue.
pub struct OutboundQueue {
    messages: mpsc::Receiver<Outbound>,
    close: mpsc::Receiver<(u16, String)>,
    queued: Arc<AtomicUsize>,
    replies: ReplySlots,
    ping_every: Duration,
}

impl PeerSink {
    /// A queue bounded as `limits` say; coalesced replies are counted into `coalesced`.
    pub fn new(limits: &WsLimits, coalesced: Arc<AtomicU64>) -> (PeerSink, OutboundQueue) {
        let (messages, messages_rx) = mpsc::channel(limits.outbound_queue.max(1));
        let (close, close_rx) = mpsc::channel(1);
        let queued = Arc::new(AtomicUsize::new(0));
        let replies = ReplySlots::counting_into(coalesced);
        let sink = PeerSink {
            messages,
            close,
            queued: queued.clone(),
            max_bytes: limits.outbound_queue_bytes.max(1),
            replies: replies.clone(),
        };
        (
            sink,
            OutboundQueue {
                messages: messages_rx,
                close: close_rx,
                queued,
                replies,
                ping_every: limits.ping_every(),
            },
        )
    }

    /// Queues a message, or says the peer is too slow (its queue is full in messages or bytes).
    pub fn offer(&self, message: Message, reply: Option<Reply>) -> Result<(), TooSlow> {
        let bytes = match &message {
            Message::Binary(b) => b.len(),
            Message::Text(t) => t.len(),
            _ => 0,
        };
        // A single message larger than the whole budget still goes to an idle peer.
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(TooSlow);
        }
        match self.messages.try_send(Outbound {
            message,
            bytes,
            reply,
        }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
                Err(TooSlow)
            }
            // The connection is going away; its leave reaches the room on its own.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Asks the writer to close the connection with this code and reason.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.close.try_send((code, reason.into()));
    }
}

/// Drains a connection's queue to its socket; sends the close frame when told; pings on the
/// queue's interval. Cancels `stopped` when it ends, so the reader stops too.
pub async fn write_loop(
    mut ws: SplitSink<WebSocket, Message>,
    mut queue: OutboundQueue,
    stopped: CancellationToken,
) {
    let _stopped = stopped.drop_guard();
    let every = queue.ping_every;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            biased;
            reason = queue.close.recv() => {
                if let Some((code, reason)) = reason {
                    let _ = ws.send(close_message(code, &reason)).await;
                }
                break;
            }
            next = queue.messages.recv() => match next {
                Some(Outbound { message, bytes, reply }) => {
                    let sent = ws.send(message).await;
                    queue.queued.fetch_sub(bytes, Ordering::AcqRel);
                    if let Some(reply) = reply {
                        queue.replies.sent(reply);
                    }
                    if sent.is_err() { break; }
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

pub fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
