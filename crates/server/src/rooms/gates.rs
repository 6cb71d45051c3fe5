//! Gates: every message that follows a record waits, in order, behind that record's ticket, so
//! nobody receives what is not yet durable. Carrying out the core's effects, the acks that open
//! the gates, and sending what they held.

use super::{truncate, Delivery, Gate, PeerSink, RoomTask};
use axum::body::Bytes;
use axum::extract::ws::Message;
use duet_core::{ConnId, Effect, Reply};
use duet_protocol::{close, sees_log_seq, EventKind, Role, RoomEvent};
use duet_store::{Checkpoint, StoreError, Ticket};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

impl RoomTask {
    pub(super) fn execute(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => {
                    let is_edit = record.kind == EventKind::Edit;
                    self.edits_since_checkpoint += u64::from(is_edit);
                    let ticket = match &self.lease {
                        Some(lease) => lease.append(record),
                        None => self.rooms.store.append(&self.id, record),
                    };
                    self.gates.push_back(Gate {
                        ticket,
                        handed_at: Instant::now(),
                        is_edit,
                        then: Vec::new(),
                    });
                }
                Effect::Send { to, message, reply } => self.deliver(Delivery::To(
                    to,
                    Message::Binary(Bytes::from(message)),
                    reply,
                )),
                Effect::Broadcast { except, message } => self.deliver(Delivery::All {
                    except,
                    message: Message::Binary(Bytes::from(message)),
                }),
                Effect::Event { audience, event } => {
                    self.deliver(Delivery::Event { audience, event })
                }
                Effect::Close { conn, code, reason } => self.drop_peer(conn, code, &reason),
                Effect::CancelRun { run_id } => self.stop_capped_run(&run_id),
                Effect::Reload { reason } => self.poisoned = Some(reason),
            }
        }
    }

    pub(super) fn deliver(&mut self, delivery: Delivery) {
        match self.gates.back_mut() {
            Some(gate) => {
                gate.then.push(delivery);
                self.waiting += 1;
            }
            None => self.send(delivery),
        }
    }

    /// Closes one connection and takes it out of the room.
    pub(super) fn drop_peer(&mut self, conn: ConnId, code: u16, reason: &str) {
        if let Some(sink) = self.peers.remove(&conn) {
            self.rooms
                .metrics
                .connections_closed_by_server
                .fetch_add(1, Relaxed);
            sink.close(code, truncate(reason));
        }
        let effects = self.room.leave(conn, self.clock.now_ms());
        self.execute(effects);
    }

    pub(super) fn on_ack(&mut self, result: Result<(), StoreError>) {
        let Some(gate) = self.gates.pop_front() else {
            return;
        };
        match result {
            Ok(()) => {
                self.rooms.metrics.observe_persist(gate.handed_at.elapsed());
                self.rooms.metrics.events_persisted.fetch_add(1, Relaxed);
                if gate.is_edit {
                    self.rooms.metrics.updates_persisted.fetch_add(1, Relaxed);
                }
                self.waiting -= gate.then.len();
                for delivery in gate.then {
                    self.send(delivery);
                }
            }
            Err(StoreError::LeaseLost) => {
                // Another node holds the room now: nothing acknowledged is lost (this record
                // was not), and everyone reconnects to it.
                tracing::warn!(interview = %self.id, "room: fenced out, another node took the room over");
                self.moved = true;
                self.poisoned = Some(MOVED.to_owned());
            }
            Err(e) => {
                tracing::error!(interview = %self.id, error = %e, "room: storing an event failed");
                // The browser app shows this as "not saved"; the room reloads from what is stored.
                self.poisoned = Some(format!(
                    "not saved: storage failed ({}); reconnect",
                    e.failure()
                ));
            }
        }
    }

    /// Sends a message now. A peer whose queue is full is closed; its leave reaches the room
    /// through the connection's own `Leave` command, so nobody is dropped silently.
    pub(super) fn send(&mut self, delivery: Delivery) {
        let mut too_slow = Vec::new();
        let mut offer = |conn: ConnId, sink: &PeerSink, message: &Message, reply: Option<Reply>| {
            if sink.offer(message.clone(), reply).is_err() {
                too_slow.push(conn);
            }
        };
        match delivery {
            Delivery::Reply(answer) => answer(),
            Delivery::To(conn, message, reply) => {
                if let Some(sink) = self.peers.get(&conn) {
                    offer(conn, sink, &message, reply);
                }
            }
            Delivery::All { except, message } => {
                for (conn, sink) in self.peers.iter().filter(|(c, _)| Some(**c) != except) {
                    offer(*conn, sink, &message, None);
                }
            }
            Delivery::Event { audience, event } => {
                // One spelling: the protocol's type, serialized here at most once per
                // projection and only when a subscriber is to receive it: with the log's seq
                // for the roles that see it, without for the others (the candidate).
                let mut with_seq = None;
                let mut without_seq: Vec<(Role, Message)> = Vec::new();
                for (conn, (who, sink)) in self.subscribers.iter() {
                    if !audience.reaches(who.role, who.person.as_deref()) {
                        continue;
                    }
                    let message = if sees_log_seq(who.role) {
                        &*with_seq.get_or_insert_with(|| frame(&event))
                    } else {
                        match without_seq.iter().position(|(r, _)| *r == who.role) {
                            Some(i) => &without_seq[i].1,
                            None => {
                                without_seq
                                    .push((who.role, frame(&event.clone().seen_by(who.role))));
                                &without_seq[without_seq.len() - 1].1
                            }
                        }
                    };
                    offer(*conn, sink, message, None);
                }
            }
        }
        for conn in too_slow {
            let sink = self
                .peers
                .remove(&conn)
                .or_else(|| self.subscribers.remove(&conn).map(|(_, s)| s));
            if let Some(sink) = sink {
                self.rooms
                    .metrics
                    .connections_closed_by_server
                    .fetch_add(1, Relaxed);
                sink.close(
                    close::TRY_AGAIN,
                    "client too slow to keep up; reconnect to resync",
                );
            }
        }
    }

    pub(super) async fn pop_ack(&mut self) -> Option<Result<(), StoreError>> {
        let gate = self.gates.front_mut()?;
        Some(
            (&mut gate.ticket)
                .await
                .unwrap_or(Err(StoreError::WriterGone)),
        )
    }

    /// Stores the whole document and waits until it is stored.
    pub(super) async fn checkpoint(&mut self) {
        if self.edits_since_checkpoint == 0 {
            return;
        }
        if let Ok(Err(e)) = self.store_checkpoint().await {
            tracing::warn!(interview = %self.id, error = %e, "room: checkpoint failed (the log is intact)");
        }
    }

    /// Writes the whole document as a checkpoint, fenced by the room's lease when it has one
    /// (several nodes): a node that lost the room can never store its document over the new
    /// holder's history.
    pub(super) fn store_checkpoint(&mut self) -> Ticket {
        let (seq, state, owners) = self.room.checkpoint();
        let checkpoint = Checkpoint { seq, state, owners };
        self.edits_since_checkpoint = 0;
        match &self.lease {
            Some(lease) => lease.checkpoint(checkpoint),
            None => self.rooms.store.checkpoint(&self.id, checkpoint),
        }
    }

    pub(super) fn close_everyone(&mut self, code: u16, reason: &str) {
        self.cancel_all_runs();
        for (_, sink) in self.peers.drain() {
            sink.close(code, truncate(reason));
        }
        for (_, (_, sink)) in self.subscribers.drain() {
            sink.close(code, truncate(reason));
        }
        self.gates.clear();
        self.waiting = 0;
    }
}

/// Why a room whose lease was lost closes its connections (with 1001: they reconnect).
pub(super) const MOVED: &str = "room moved to another node; reconnect";

/// An events-socket text frame.
fn frame(event: &RoomEvent) -> Message {
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

/// The next gate's ack (pending forever when no record is in flight).
pub(super) async fn next_ack(gates: &mut VecDeque<Gate>) -> Result<(), StoreError> {
    match gates.front_mut() {
        Some(gate) => (&mut gate.ticket)
            .await
            .unwrap_or(Err(StoreError::WriterGone)),
        None => std::future::pending().await,
    }
}
