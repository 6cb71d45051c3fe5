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
use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One message on its way to a socket.
struct Outbound {
    message: Message,
    bytes: usize,
    reply: Option<Reply>,
}

/// Why a message could not be queued: the peer is not keeping up.
#[derive(Debug)]
pub struct TooSlow;

/// A connection's queue, shared by the room's handles and the writer.
///
/// A queue of its own rather than two tokio channels: those allocate their slots 32 at a time
/// from the start (a 64-byte message slot and a close slot: 3 KiB, plus 1 KiB of channel state,
/// for every socket, idle or not), where this one holds nothing while nothing waits.
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: something was queued, a close was asked for, or the last handle went.
    wake: Notify,
    max_messages: usize,
    max_bytes: usize,
}

struct State {
    messages: VecDeque<Outbound>,
    /// Bytes queued, counting the message being written until it is written.
    bytes: usize,
    /// The close to send; the first one asked for wins.
    close: Option<(u16, String)>,
    closing: bool,
    /// The close waits until what is queued was written ([`PeerSink::close_after_queued`]).
    close_after_queued: bool,
    /// Handles ([`PeerSink`]) alive; the writer ends when the last one goes.
    handles: usize,
    /// The writer ended: what is offered now is dropped (the connection's leave reaches the
    /// room on its own).
    writer_gone: bool,
}

/// Queues that once held a burst give the memory back when they empty, down to this many slots.
const KEEP_SLOTS: usize = 16;

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The room's handle on a connection's queue.
pub struct PeerSink {
    shared: Arc<Shared>,
    pub replies: ReplySlots,
}

/// The writer's end of a connection's queue.
pub struct OutboundQueue {
    shared: Arc<Shared>,
    replies: ReplySlots,
    ping_every: Duration,
}

impl Clone for PeerSink {
    fn clone(&self) -> PeerSink {
        self.shared.state().handles += 1;
        PeerSink {
            shared: self.shared.clone(),
            replies: self.replies.clone(),
        }
    }
}

impl Drop for PeerSink {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.state();
            state.handles -= 1;
            state.handles == 0
        };
        if last {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for OutboundQueue {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.writer_gone = true;
        state.messages.clear();
        state.bytes = 0;
    }
}

impl PeerSink {
    /// A queue bounded as `limits` say; coalesced replies are counted into `coalesced`.
    pub fn new(limits: &WsLimits, coalesced: Arc<AtomicU64>) -> (PeerSink, OutboundQueue) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                messages: VecDeque::new(),
                bytes: 0,
                close: None,
                closing: false,
                close_after_queued: false,
                handles: 1,
                writer_gone: false,
            }),
            wake: Notify::new(),
            max_messages: limits.outbound_queue.max(1),
            max_bytes: limits.outbound_queue_bytes.max(1),
        });
        let replies = ReplySlots::counting_into(coalesced);
        let sink = PeerSink {
            shared: shared.clone(),
            replies: replies.clone(),
        };
        (
            sink,
            OutboundQueue {
                shared,
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
        {
            let mut state = self.shared.state();
            if state.writer_gone {
                return Ok(());
            }
            // A single message larger than the whole budget still goes to an idle peer.
            let over_bytes = state.bytes > 0 && state.bytes + bytes > self.shared.max_bytes;
            if over_bytes || state.messages.len() >= self.shared.max_messages {
                return Err(TooSlow);
            }
            state.bytes += bytes;
            state.messages.push_back(Outbound {
                message,
                bytes,
                reply,
            });
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Asks the writer to close the connection with this code and reason once what is queued
    /// now was written (a last event the peer must read, then the close that says why).
    pub fn close_after_queued(&self, code: u16, reason: impl Into<String>) {
        self.shared.state().close_after_queued = true;
        self.close(code, reason);
    }

    /// Asks the writer to close the connection with this code and reason.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        {
            let mut state = self.shared.state();
            if state.closing {
                return;
            }
            state.closing = true;
            state.close = Some((code, reason.into()));
        }
        self.shared.wake.notify_one();
    }
}

/// What the writer does next.
enum Next {
    Close(u16, String),
    Write(Outbound),
    End,
    Wait,
}

impl OutboundQueue {
    fn next(&self) -> Next {
        let mut state = self.shared.state();
        if !state.close_after_queued || state.messages.is_empty() {
            if let Some((code, reason)) = state.close.take() {
                return Next::Close(code, reason);
            }
        }
        // Nobody holds the connection any more (the room let it go and the reader ended).
        if state.handles == 0 {
            return Next::End;
        }
        if let Some(out) = state.messages.pop_front() {
            if state.messages.is_empty() && state.messages.capacity() > KEEP_SLOTS {
                state.messages.shrink_to(KEEP_SLOTS);
            }
            return Next::Write(out);
        }
        Next::Wait
    }

    fn written(&self, bytes: usize) {
        let mut state = self.shared.state();
        state.bytes = state.bytes.saturating_sub(bytes);
    }
}

/// Drains a connection's queue to its socket; sends the close frame when told; pings on the
/// queue's interval. Cancels `stopped` when it ends, so the reader stops too.
pub async fn write_loop(
    mut ws: SplitSink<WebSocket, Message>,
    queue: OutboundQueue,
    stopped: CancellationToken,
) {
    let _stopped = stopped.drop_guard();
    let every = queue.ping_every;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        // A close goes before anything still queued, then messages in order, then pings.
        match queue.next() {
            Next::Close(code, reason) => {
                let _ = ws.send(close_message(code, &reason)).await;
                break;
            }
            Next::Write(Outbound {
                message,
                bytes,
                reply,
            }) => {
                let sent = ws.send(message).await;
                queue.written(bytes);
                if let Some(reply) = reply {
                    queue.replies.sent(reply);
                }
                if sent.is_err() {
                    break;
                }
            }
            Next::End => break,
            Next::Wait => tokio::select! {
                // A wake that came before this wait is kept by `Notify` as a permit: none is lost.
                _ = queue.shared.wake.notified() => {}
                _ = ping.tick() => {
                    if ws.send(Message::Ping(Bytes::new())).await.is_err() { break; }
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(messages: usize, bytes: usize) -> (PeerSink, OutboundQueue) {
        let limits = WsLimits {
            outbound_queue: messages,
            outbound_queue_bytes: bytes,
            ..WsLimits::default()
        };
        PeerSink::new(&limits, Arc::default())
    }

    fn binary(len: usize) -> Message {
        Message::Binary(Bytes::from(vec![0u8; len]))
    }

    #[test]
    fn a_full_queue_says_too_slow_in_messages_and_in_bytes() {
        let (sink, queue) = queue(2, 100);
        assert!(sink.offer(binary(10), None).is_ok());
        assert!(sink.offer(binary(10), None).is_ok());
        assert!(
            sink.offer(binary(1), None).is_err(),
            "over the message bound"
        );
        // The writer takes one; its bytes count until it is written.
        assert!(matches!(queue.next(), Next::Write(_)));
        assert!(sink.offer(binary(85), None).is_err(), "over the byte bound");
        queue.written(10);
        assert!(sink.offer(binary(85), None).is_ok());
    }

    #[test]
    fn one_message_larger_than_the_budget_still_reaches_an_idle_peer() {
        let (sink, queue) = queue(8, 100);
        assert!(sink.offer(binary(1000), None).is_ok());
        assert!(sink.offer(binary(1), None).is_err());
        assert!(matches!(queue.next(), Next::Write(_)));
    }

    #[test]
    fn a_close_goes_before_what_is_queued_and_the_first_close_wins() {
        let (sink, queue) = queue(8, 1000);
        sink.offer(binary(1), None)
            .unwrap_or_else(|_| panic!("queued"));
        sink.close(1013, "slow");
        sink.close(1000, "later");
        assert!(matches!(queue.next(), Next::Close(1013, ref r) if r == "slow"));
    }

    #[test]
    fn the_writer_ends_when_every_handle_is_gone_and_later_offers_are_dropped() {
        let (sink, queue) = queue(8, 1000);
        let other = sink.clone();
        drop(sink);
        assert!(matches!(queue.next(), Next::Wait));
        drop(other);
        assert!(matches!(queue.next(), Next::End));
        let (sink, queue) = self::queue(8, 1000);
        drop(queue);
        assert!(sink.offer(binary(1), None).is_ok());
    }

    #[test]
    fn a_queue_that_held_a_burst_gives_the_memory_back_once_empty() {
        let (sink, queue) = queue(4096, 1 << 20);
        for _ in 0..1000 {
            assert!(sink.offer(binary(1), None).is_ok());
        }
        while let Next::Write(out) = queue.next() {
            queue.written(out.bytes);
        }
        assert!(queue.shared.state().messages.capacity() <= KEEP_SLOTS);
        assert_eq!(queue.shared.state().bytes, 0);
    }
}
