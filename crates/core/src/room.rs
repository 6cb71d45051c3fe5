//! The interview room: one shared document, the people connected to it, and the rules of the
//! Yjs sync and awareness protocols as the stock `y-websocket` client speaks them.

use crate::awareness::Presence;
use crate::history::Rebuilt;
use duet_protocol::{close, EventKind, Identity, LogRecord, Role, RunFinished, RunOutput, RunStarted, MAIN_FILE};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::encoding::read::{Cursor, Read};
use yrs::sync::awareness::AwarenessUpdate;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Transact, Update};

/// A connection's number, unique within the server's lifetime.
pub type ConnId = u64;

/// What the server must do after the room handled an event, in order.
///
/// The ordering rule that makes the log trustworthy: a `Send` or `Broadcast` must not leave the
/// server before every `Persist` that came before it (from this or any earlier call) is stored.
/// So no participant ever holds an edit that a crash could lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append this record to the room's durable log.
    Persist(LogRecord),
    /// Send a binary Yjs message to one connection.
    Send { to: ConnId, message: Vec<u8> },
    /// Send a binary Yjs message to every connection but `except`.
    Broadcast { except: Option<ConnId>, message: Vec<u8> },
    /// Close one connection with a websocket close code and a reason a person can read.
    Close { conn: ConnId, code: u16, reason: String },
    /// Publish a JSON event on the interview's events socket to `audience`.
    Event { audience: Audience, json: String },
    /// The document can no longer be trusted (yrs panicked while applying an update). Close
    /// everyone and reload the room from the store, which never saw the offending update.
    Reload { reason: String },
}

/// Who receives an event on the events socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every role.
    Everyone,
    /// Only roles that may read private material (a hidden-test run): never the candidate.
    Private,
}

impl Audience {
    pub fn includes(self, role: Role) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Private => role.can_read_scorecard(),
        }
    }
}

/// Tunables of the room's protocol handling.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Largest awareness state (JSON) one client may announce, in bytes.
    pub max_awareness_state: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig { max_awareness_state: 16 * 1024 }
    }
}

#[derive(Debug)]
struct Peer {
    role: Role,
    identity: Identity,
}

/// One interview's live state.
pub struct Room {
    config: RoomConfig,
    doc: Doc,
    last_seq: u64,
    peers: HashMap<ConnId, Peer>,
    presence: Presence,
}

impl Room {
    /// A room whose log is empty.
    pub fn new(config: RoomConfig) -> Room {
        Room::from_history(config, Rebuilt::empty())
    }

    /// A room continuing a stored history (see [`crate::rebuild`]).
    pub fn from_history(config: RoomConfig, history: Rebuilt) -> Room {
        Room {
            config,
            doc: history.doc,
            last_seq: history.last_seq,
            peers: HashMap::new(),
            presence: Presence::default(),
        }
    }

    /// The sequence number of the newest event in the log.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many connections are in the room.
    pub fn connections(&self) -> usize {
        self.peers.len()
    }

    /// The candidate's program as it stands.
    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text(MAIN_FILE);
        let txn = self.doc.transact();
        text.get_string(&txn)
    }

    /// The whole document as one update, for a checkpoint at `last_seq`. `None` while some
    /// update waits for a missing dependency: such a state is not a faithful summary of the log.
    pub fn checkpoint(&self) -> Option<(u64, Vec<u8>)> {
        let txn = self.doc.transact();
        if txn.has_missing_updates() {
            return None;
        }
        Some((self.last_seq, txn.encode_state_as_update_v1(&StateVector::default())))
    }

    /// A participant connected: greet it with the document's state vector and everyone's
    /// presence, and log the join.
    pub fn join(&mut self, conn: ConnId, role: Role, identity: Identity, now_ms: i64) -> Vec<Effect> {
        self.peers.insert(conn, Peer { role, identity });
        let mut effects = vec![self.record(EventKind::Join, role, Vec::new(), now_ms)];
        let sv = self.doc.transact().state_vector();
        effects.push(Effect::Send { to: conn, message: Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1() });
        if let Some(all) = self.presence.snapshot() {
            effects.push(Effect::Send { to: conn, message: Message::Awareness(all).encode_v1() });
        }
        effects
    }

    /// A participant left (closed, dropped, or was closed by the server).
    pub fn leave(&mut self, conn: ConnId, now_ms: i64) -> Vec<Effect> {
        let Some(peer) = self.peers.remove(&conn) else { return Vec::new() };
        let mut effects = vec![self.record(EventKind::Leave, peer.role, Vec::new(), now_ms)];
        if let Some(removed) = self.presence.remove_conn(conn) {
            effects.push(Effect::Broadcast { except: None, message: Message::Awareness(removed).encode_v1() });
        }
        effects
    }

    /// A binary websocket message arrived from `conn`.
    pub fn receive(&mut self, conn: ConnId, bytes: &[u8], now_ms: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(role) = self.peers.get(&conn).map(|p| p.role) else { return effects };
        let mut cursor = Cursor::new(bytes);
        while cursor.has_content() {
            if let Err(reason) = self.handle_one(conn, role, &mut cursor, now_ms, &mut effects) {
                let code = reason.code();
                effects.push(Effect::Close { conn, code, reason: reason.to_string() });
                break;
            }
        }
        effects
    }

    fn handle_one(
        &mut self,
        conn: ConnId,
        role: Role,
        cursor: &mut Cursor<'_>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let tag: u8 = cursor.read_var().map_err(|_| Refusal::Malformed("message type"))?;
        match tag {
            yrs::sync::protocol::MSG_SYNC => {
                let sub: u8 = cursor.read_var().map_err(|_| Refusal::Malformed("sync message type"))?;
                let payload = cursor.read_buf().map_err(|_| Refusal::Malformed("sync payload"))?;
                match sub {
                    yrs::sync::protocol::MSG_SYNC_STEP_1 => {
                        let sv = StateVector::decode_v1(payload).map_err(|_| Refusal::Malformed("state vector"))?;
                        let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                        let message = Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1();
                        effects.push(Effect::Send { to: conn, message });
                    }
                    yrs::sync::protocol::MSG_SYNC_STEP_2 | yrs::sync::protocol::MSG_SYNC_UPDATE => {
                        if role.can_edit() {
                            self.apply_edit(conn, role, payload, now_ms, effects)?;
                        } // a read-only role's edits are dropped; the connection stays open
                    }
                    other => return Err(Refusal::UnknownType(format!("sync message type {other}"))),
                }
            }
            yrs::sync::protocol::MSG_AWARENESS => {
                let payload = cursor.read_buf().map_err(|_| Refusal::Malformed("awareness payload"))?;
                let update = AwarenessUpdate::decode_v1(payload).map_err(|_| Refusal::Malformed("awareness update"))?;
                if update.clients.values().any(|e| e.json.len() > self.config.max_awareness_state) {
                    return Err(Refusal::Malformed("awareness state over the size cap"));
                }
                let Some(peer) = self.peers.get(&conn) else { return Ok(()) };
                let stamped = self.presence.apply(conn, &peer.identity, update).map_err(|_| Refusal::Malformed("awareness state is not JSON"))?;
                if let Some(stamped) = stamped {
                    effects.push(Effect::Broadcast { except: Some(conn), message: Message::Awareness(stamped).encode_v1() });
                }
            }
            yrs::sync::protocol::MSG_QUERY_AWARENESS => {
                if let Some(all) = self.presence.snapshot() {
                    effects.push(Effect::Send { to: conn, message: Message::Awareness(all).encode_v1() });
                }
            }
            yrs::sync::protocol::MSG_AUTH => {
                // Permission messages travel server to client; a client's copy is read and ignored.
                let _status: u8 = cursor.read_var().map_err(|_| Refusal::Malformed("auth message"))?;
                let _reason = cursor.read_string().map_err(|_| Refusal::Malformed("auth message"))?;
            }
            other => return Err(Refusal::UnknownType(format!("message type {other}"))),
        }
        Ok(())
    }

    fn apply_edit(&mut self, conn: ConnId, role: Role, payload: &[u8], now_ms: i64, effects: &mut Vec<Effect>) -> Result<(), Refusal> {
        // yrs decodes untrusted bytes; a panic in there must cost one connection, not the server.
        let decoded = catch_unwind(|| Update::decode_v1(payload));
        let update = match decoded {
            Ok(Ok(update)) => update,
            Ok(Err(_)) | Err(_) => return Err(Refusal::Malformed("Yjs update")),
        };
        if update.is_empty() {
            return Ok(()); // a sync step 2 with nothing new: nothing to store or forward
        }
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update)?;
            // Stored only if it changed something, or if part of it waits for a missing
            // dependency (replay must see it then). A reconnecting client's sync step 2 repeats
            // its whole delete set, which would otherwise be logged again on every reconnect.
            Ok::<bool, yrs::error::UpdateError>(
                !txn.insert_set().is_empty() || !txn.delete_set().is_empty() || txn.has_missing_updates(),
            )
        }));
        match applied {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(()),
            Ok(Err(_)) => return Err(Refusal::Malformed("Yjs update (could not be applied)")),
            Err(_) => {
                effects.push(Effect::Reload { reason: "an update could not be applied; reloading the room from its log".into() });
                return Err(Refusal::Malformed("Yjs update (could not be applied)"));
            }
        }
        effects.push(self.record(EventKind::Edit, role, payload.to_vec(), now_ms));
        let message = Message::Sync(SyncMessage::Update(payload.to_vec())).encode_v1();
        effects.push(Effect::Broadcast { except: Some(conn), message });
        Ok(())
    }

    /// A run began: log it (with the code that ran) and tell the events socket.
    pub fn run_started(&mut self, started: &RunStarted, now_ms: i64) -> Vec<Effect> {
        let record = self.record(EventKind::RunStarted, started.by, to_json(started), now_ms);
        let seq = self.last_seq;
        let json = serde_json::json!({
            "type": "run.started", "seq": seq, "run_id": started.run_id, "kind": started.kind,
            "by": started.by, "at": started.at,
        });
        vec![record, Effect::Event { audience: audience(started.private), json: json.to_string() }]
    }

    /// A run printed something.
    pub fn run_output(&mut self, output: &RunOutput, by: Role, private: bool, now_ms: i64) -> Vec<Effect> {
        let record = self.record(EventKind::RunOutput, by, to_json(output), now_ms);
        let json = serde_json::json!({
            "type": "run.output", "seq": self.last_seq, "run_id": output.run_id, "stream": output.stream,
            "data": output.data,
        });
        vec![record, Effect::Event { audience: audience(private), json: json.to_string() }]
    }

    /// A run ended.
    pub fn run_finished(&mut self, finished: &RunFinished, by: Role, private: bool, now_ms: i64) -> Vec<Effect> {
        let record = self.record(EventKind::RunFinished, by, to_json(finished), now_ms);
        let json = serde_json::json!({
            "type": "run.finished", "seq": self.last_seq, "run_id": finished.run_id, "status": finished.status,
            "exit_code": finished.exit_code, "duration_ms": finished.duration_ms, "tests": finished.tests,
        });
        vec![record, Effect::Event { audience: audience(private), json: json.to_string() }]
    }

    fn record(&mut self, kind: EventKind, role: Role, data: Vec<u8>, now_ms: i64) -> Effect {
        self.last_seq += 1;
        Effect::Persist(LogRecord { seq: self.last_seq, at_ms: now_ms, kind, role, data })
    }
}

fn audience(private: bool) -> Audience {
    if private {
        Audience::Private
    } else {
        Audience::Everyone
    }
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Why a connection is closed.
#[derive(Debug)]
enum Refusal {
    Malformed(&'static str),
    UnknownType(String),
}

impl Refusal {
    fn code(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => close::INVALID_PAYLOAD,
            Refusal::UnknownType(_) => close::UNSUPPORTED,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(what) => write!(f, "malformed {what}"),
            Refusal::UnknownType(what) => write!(f, "unknown {what}"),
        }
    }
}
