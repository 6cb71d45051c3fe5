//! The interview room: one shared document, the people connected to it, and the rules of the
//! Yjs sync and awareness protocols as the stock `y-websocket` client speaks them.
//!
//! Nothing a participant sends reaches the document before [`crate::validate`] accepted it, and
//! what the room stores and forwards is the update it applied, encoded from its own document:
//! never the client's bytes. So the log, late joiners, replay and runs see exactly what every
//! connected client sees.

use crate::awareness::{BadState, Presence, PresenceLimits};
use crate::history::{ClientOwners, Rebuilt};
use crate::scorecard::{ScorecardError, ScorecardState};
use crate::validate::{self, Invalid, Reader};
use duet_protocol::{
    close, Actor, EventKind, Identity, KeptCode, LogRecord, OutputChunk, QuestionSwitched, Record,
    Role, RunFinished, RunInput, RunStarted, MAIN_FILE,
};
use duet_protocol::{
    Note, RoomEvent, Scorecard, ScorecardChange, ScorecardUpdate, Signal, SignalKind,
};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

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
    /// Send a binary Yjs message to one connection. `reply` marks an answer that occupies the
    /// connection's reply slot until it is written (see [`ReplySlots`]).
    Send {
        to: ConnId,
        message: Vec<u8>,
        reply: Option<Reply>,
    },
    /// Send a binary Yjs message to every connection but `except`.
    Broadcast {
        except: Option<ConnId>,
        message: Vec<u8>,
    },
    /// Close one connection with a websocket close code and a reason a person can read.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// Publish an event on the interview's events socket to `audience`.
    Event {
        audience: Audience,
        event: RoomEvent,
    },
    /// The document can no longer be trusted (yrs failed while applying an update that passed
    /// validation). Close everyone and reload the room from the store, which never saw it.
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

/// The answers a connection may have at most one of in its outbound queue at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The answer to a sync step 1 (the document's diff: possibly large).
    Sync,
    /// The answer to an awareness query (everyone's presence).
    Awareness,
}

/// Per connection: whether a sync answer and an awareness answer are queued and not yet
/// written. A request that arrives while its answer is still queued is coalesced into it (the
/// answer already on its way, plus the updates that follow it, bring the client up to date), so
/// a socket that asks again and again without reading cannot make the server encode and queue
/// the document again and again. The server's writer calls [`ReplySlots::sent`].
#[derive(Debug, Clone, Default)]
pub struct ReplySlots {
    sync: Arc<AtomicBool>,
    awareness: Arc<AtomicBool>,
    coalesced: Arc<AtomicU64>,
}

impl ReplySlots {
    /// Slots that count coalesced requests into `coalesced` (a server-wide metric).
    pub fn counting_into(coalesced: Arc<AtomicU64>) -> ReplySlots {
        ReplySlots {
            coalesced,
            ..ReplySlots::default()
        }
    }

    fn flag(&self, reply: Reply) -> &AtomicBool {
        match reply {
            Reply::Sync => &self.sync,
            Reply::Awareness => &self.awareness,
        }
    }

    /// Takes the slot; `false` (and counted) if an answer of this kind is already queued.
    fn claim(&self, reply: Reply) -> bool {
        let free = !self.flag(reply).swap(true, Ordering::AcqRel);
        if !free {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        free
    }

    /// The answer of this kind was written to the socket: the slot is free again.
    pub fn sent(&self, reply: Reply) {
        self.flag(reply).store(false, Ordering::Release);
    }
}

/// Tunables of the room's protocol handling.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Largest awareness state (JSON) one client may announce, in bytes.
    pub max_awareness_state: usize,
    /// Largest `main.py`, in UTF-8 bytes. An edit that would make it larger is refused.
    pub max_doc_bytes: usize,
    /// Bytes of log one interview may hold; past it, edits are refused.
    pub max_log_bytes: u64,
    pub presence: PresenceLimits,
    /// How long after a role's last connection left its leave is logged; a return within it
    /// logs nothing (so reconnect churn cannot flood the log).
    pub leave_grace_ms: i64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_awareness_state: 16 * 1024,
            max_doc_bytes: 1 << 20,
            max_log_bytes: 256 << 20,
            presence: PresenceLimits::default(),
            leave_grace_ms: 5_000,
        }
    }
}

#[derive(Debug)]
struct Peer {
    role: Role,
    identity: Identity,
    replies: ReplySlots,
}

/// One interview's live state.
pub struct Room {
    config: RoomConfig,
    doc: Doc,
    last_seq: u64,
    peers: HashMap<ConnId, Peer>,
    presence: Presence,
    owners: ClientOwners,
    log_bytes: u64,
    /// Connections per role, and since when a role with none has been gone (leave not logged yet).
    role_conns: HashMap<Role, usize>,
    pending_leaves: HashMap<Role, i64>,
    /// Set once the interviewer ended the interview: nobody edits or runs any more.
    ended: bool,
    /// Every run of the interview (evidence may name only these).
    runs: HashSet<String>,
    /// The runs among them only roles that read private material may see.
    private_runs: HashSet<String>,
    scorecard: ScorecardState,
    /// When the last signals arrived (to cap them).
    recent_signals: Vec<i64>,
    /// The question the room is on, and the code each question was left with.
    questions: Questions,
}

/// The room's question and the code kept per question it moved away from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Questions {
    pub current: Option<String>,
    pub kept: HashMap<String, String>,
}

impl Questions {
    fn switched(&mut self, switched: QuestionSwitched) {
        if let Some(left) = switched.left {
            self.kept.insert(left.question_id, left.code);
        }
        self.current = Some(switched.question_id);
    }
}

/// A question to switch to, as the room needs it.
#[derive(Debug, Clone, Copy)]
pub struct QuestionPick<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// A coding question's starter code; `None` for a discussion (the code stays as it is).
    pub starter: Option<&'a str>,
}

/// Integrity signals logged per minute at most.
pub const MAX_SIGNALS_PER_MINUTE: usize = 30;

/// What a room's log says beyond the document, read back when the room loads.
#[derive(Debug, Default)]
pub struct Restored {
    pub ended: bool,
    pub runs: HashSet<String>,
    pub private_runs: HashSet<String>,
    pub scorecard: ScorecardState,
    /// The question of the last switch and the code kept per question.
    pub questions: Questions,
    /// Runs that started and never finished (the server stopped under them).
    pub unfinished: Vec<crate::UnfinishedRun>,
}

impl Restored {
    /// The kinds [`Restored::from_log`] reads: every kind but edits, joins, leaves and output.
    pub const KINDS: [EventKind; 5] = [
        EventKind::RunStarted,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::End,
    ];

    /// What `records` (the log's records of [`Restored::KINDS`], in order) say. A record that
    /// cannot be read is skipped, as replay skips it.
    pub fn from_log(records: &[LogRecord]) -> Restored {
        let mut restored = Restored {
            unfinished: crate::unfinished_runs(records),
            ..Restored::default()
        };
        let mut scorecards = Vec::new();
        for record in records {
            match record.decode() {
                Ok(Record::End) => restored.ended = true,
                Ok(Record::RunStarted(started)) => {
                    if started.private {
                        restored.private_runs.insert(started.run_id.clone());
                    }
                    restored.runs.insert(started.run_id);
                }
                Ok(Record::Question(switched)) => restored.questions.switched(switched),
                Ok(Record::Scorecard(_)) => scorecards.push(record),
                _ => {}
            }
        }
        restored.scorecard = ScorecardState::from_log(scorecards);
        restored
    }
}

impl Room {
    /// A room whose log is empty.
    pub fn new(config: RoomConfig) -> Room {
        Room::from_history(config, Rebuilt::empty(), 0)
    }

    /// A room continuing a stored history (see [`crate::rebuild`]) whose log holds `log_bytes`.
    pub fn from_history(config: RoomConfig, history: Rebuilt, log_bytes: u64) -> Room {
        let presence = Presence::new(config.presence.clone());
        Room {
            config,
            doc: history.doc,
            last_seq: history.last_seq,
            peers: HashMap::new(),
            presence,
            owners: history.owners,
            log_bytes,
            role_conns: HashMap::new(),
            pending_leaves: HashMap::new(),
            ended: false,
            runs: HashSet::new(),
            private_runs: HashSet::new(),
            scorecard: ScorecardState::default(),
            recent_signals: Vec::new(),
            questions: Questions::default(),
        }
    }

    /// Takes back what the log says beyond the document (see [`Restored`]).
    pub fn restore(&mut self, restored: Restored) {
        self.ended = restored.ended;
        self.runs = restored.runs;
        self.private_runs = restored.private_runs;
        self.scorecard = restored.scorecard;
        self.questions = restored.questions;
    }

    /// The question the room is on (its last switch).
    pub fn question(&self) -> Option<&str> {
        self.questions.current.as_deref()
    }

    /// Whether the interview has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The scorecard as it stands.
    pub fn scorecard(&self) -> &Scorecard {
        self.scorecard.card()
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

    /// The whole document as one update for a checkpoint at `last_seq`, with the client owners
    /// ([`crate::encode_owners`]).
    pub fn checkpoint(&self) -> (u64, Vec<u8>, Vec<u8>) {
        let state = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        (
            self.last_seq,
            state,
            crate::history::encode_owners(&self.owners),
        )
    }

    /// A participant connected: greet it with the document's state vector and everyone's
    /// presence, and log the join (unless its role was here a moment ago).
    pub fn join(
        &mut self,
        conn: ConnId,
        role: Role,
        identity: Identity,
        replies: ReplySlots,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let count = self.role_conns.entry(role).or_default();
        *count += 1;
        if *count == 1 && self.pending_leaves.remove(&role).is_none() {
            effects.push(self.record(role.into(), Record::Join, now_ms));
        }
        let sv = self.doc.transact().state_vector();
        effects.push(Effect::Send {
            to: conn,
            message: Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1(),
            reply: None,
        });
        if let Some(all) = self.presence.snapshot() {
            if replies.claim(Reply::Awareness) {
                effects.push(Effect::Send {
                    to: conn,
                    message: Message::Awareness(all).encode_v1(),
                    reply: Some(Reply::Awareness),
                });
            }
        }
        self.peers.insert(
            conn,
            Peer {
                role,
                identity,
                replies,
            },
        );
        effects
    }

    /// A participant left (closed, dropped, or was closed by the server). Its presence goes at
    /// once; its role's leave is logged once the grace has passed with no return ([`Room::tick`]).
    pub fn leave(&mut self, conn: ConnId, now_ms: i64) -> Vec<Effect> {
        let Some(peer) = self.peers.remove(&conn) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        if let Some(count) = self.role_conns.get_mut(&peer.role) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pending_leaves.insert(peer.role, now_ms);
            }
        }
        if let Some(removed) = self.presence.remove_conn(conn) {
            effects.push(Effect::Broadcast {
                except: None,
                message: Message::Awareness(removed).encode_v1(),
            });
        }
        effects
    }

    /// When [`Room::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.pending_leaves
            .values()
            .min()
            .map(|since| since + self.config.leave_grace_ms)
    }

    /// Logs the leaves whose grace has passed.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let due: Vec<Role> = self
            .pending_leaves
            .iter()
            .filter(|(_, since)| now_ms - **since >= self.config.leave_grace_ms)
            .map(|(r, _)| *r)
            .collect();
        self.log_leaves(due, now_ms)
    }

    /// Logs every pending leave now (the room is unloading or the server stopping).
    pub fn flush_leaves(&mut self, now_ms: i64) -> Vec<Effect> {
        let all: Vec<Role> = self.pending_leaves.keys().copied().collect();
        self.log_leaves(all, now_ms)
    }

    fn log_leaves(&mut self, mut roles: Vec<Role>, now_ms: i64) -> Vec<Effect> {
        roles.sort_by_key(|r| r.as_str());
        roles.retain(|r| self.pending_leaves.remove(r).is_some());
        roles
            .into_iter()
            .map(|r| self.record(r.into(), Record::Leave, now_ms))
            .collect()
    }

    /// A binary websocket message arrived from `conn`.
    pub fn receive(&mut self, conn: ConnId, bytes: &[u8], now_ms: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(role) = self.peers.get(&conn).map(|p| p.role) else {
            return effects;
        };
        let mut reader = Reader::new(bytes);
        while reader.has_content() {
            if let Err(refusal) = self.handle_one(conn, role, &mut reader, now_ms, &mut effects) {
                effects.push(Effect::Close {
                    conn,
                    code: refusal.code(),
                    reason: refusal.to_string(),
                });
                break;
            }
        }
        effects
    }

    fn handle_one(
        &mut self,
        conn: ConnId,
        role: Role,
        r: &mut Reader<'_>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let tag = r.var(u64::from(u8::MAX), "message type")?;
        match tag {
            t if t == u64::from(yrs::sync::protocol::MSG_SYNC) => {
                let sub = r.var(u64::from(u8::MAX), "sync message type")?;
                let payload = r.bytes("sync payload")?;
                match sub {
                    s if s == u64::from(yrs::sync::protocol::MSG_SYNC_STEP_1) => {
                        let theirs = validate::parse_state_vector(payload)?;
                        let Some(peer) = self.peers.get(&conn) else {
                            return Ok(());
                        };
                        if !peer.replies.claim(Reply::Sync) {
                            return Ok(()); // an answer is still queued for it: coalesced
                        }
                        let sv = StateVector::new(
                            theirs
                                .into_iter()
                                .map(|(c, k)| (ClientID::new(c), k))
                                .collect(),
                        );
                        let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                        let message = Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1();
                        effects.push(Effect::Send {
                            to: conn,
                            message,
                            reply: Some(Reply::Sync),
                        });
                    }
                    s if s == u64::from(yrs::sync::protocol::MSG_SYNC_STEP_2)
                        || s == u64::from(yrs::sync::protocol::MSG_SYNC_UPDATE) =>
                    {
                        if !role.can_edit() {
                            // a read-only role's edits are dropped; the connection stays open
                        } else if self.ended {
                            // Nothing is stored after the end: an edit that would change the
                            // document closes its sender, so no page shows it as saved. A
                            // reconnecting client's step 2 with nothing new is not an edit.
                            if self.would_change(&validate::parse(payload)?) {
                                return Err(Refusal::Ended);
                            }
                        } else {
                            self.apply_edit(conn, role, payload, now_ms, effects)?;
                        }
                    }
                    other => {
                        return Err(Refusal::UnknownType(format!("sync message type {other}")))
                    }
                }
            }
            t if t == u64::from(yrs::sync::protocol::MSG_AWARENESS) => {
                let payload = r.bytes("awareness payload")?;
                let entries = validate::parse_awareness(payload)?;
                if entries
                    .iter()
                    .any(|(_, _, json)| json.len() > self.config.max_awareness_state)
                {
                    return Err(Refusal::Malformed(
                        "awareness state over the size cap".into(),
                    ));
                }
                let clients = entries
                    .into_iter()
                    .map(|(c, clock, json)| {
                        (
                            ClientID::new(c),
                            AwarenessUpdateEntry {
                                clock,
                                json: Arc::from(json),
                            },
                        )
                    })
                    .collect();
                let Some(peer) = self.peers.get(&conn) else {
                    return Ok(());
                };
                let stamped =
                    self.presence
                        .apply(conn, role, &peer.identity, AwarenessUpdate { clients })?;
                if let Some(stamped) = stamped {
                    effects.push(Effect::Broadcast {
                        except: Some(conn),
                        message: Message::Awareness(stamped).encode_v1(),
                    });
                }
            }
            t if t == u64::from(yrs::sync::protocol::MSG_QUERY_AWARENESS) => {
                let Some(peer) = self.peers.get(&conn) else {
                    return Ok(());
                };
                if let Some(all) = self.presence.snapshot() {
                    if peer.replies.claim(Reply::Awareness) {
                        effects.push(Effect::Send {
                            to: conn,
                            message: Message::Awareness(all).encode_v1(),
                            reply: Some(Reply::Awareness),
                        });
                    }
                }
            }
            t if t == u64::from(yrs::sync::protocol::MSG_AUTH) => {
                // Permission messages travel server to client; a client's copy is read and ignored.
                r.var(u64::from(u8::MAX), "auth message")?;
                r.string("auth message")?;
            }
            other => return Err(Refusal::UnknownType(format!("message type {other}"))),
        }
        Ok(())
    }

    fn apply_edit(
        &mut self,
        conn: ConnId,
        role: Role,
        payload: &[u8],
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let parsed = validate::parse(payload)?;
        if parsed.is_empty() {
            return Ok(()); // a sync step 2 with nothing new: nothing to store or forward
        }
        let author = Actor::from(role);
        let known: HashMap<u64, u32> = self
            .doc
            .transact()
            .state_vector()
            .iter()
            .map(|(c, k)| (c.get(), *k))
            .collect();
        let creates = validate::check_dependencies(&parsed, &known)?;
        if let Some((client, owner)) = creates.iter().find_map(|c| {
            self.owners
                .get(c)
                .filter(|o| **o != author)
                .map(|o| (*c, *o))
        }) {
            return Err(Refusal::Malformed(format!(
                "Yjs client id {client} belongs to the {owner}; use your own"
            )));
        }
        if !creates.is_empty() && self.log_bytes >= self.config.max_log_bytes {
            return Err(Refusal::Quota(format!(
                "this interview's log is full ({} MiB); no more edits are stored",
                self.config.max_log_bytes >> 20
            )));
        }
        if parsed.text_bytes > 0 {
            let text = self.doc.get_or_insert_text(MAIN_FILE);
            let now = text.len(&self.doc.transact()) as usize;
            if now + parsed.text_bytes > self.config.max_doc_bytes {
                return Err(Refusal::Quota(format!(
                    "main.py may hold at most {} bytes",
                    self.config.max_doc_bytes
                )));
            }
        }
        let applied = self.apply_trusted(payload);
        let update = match applied {
            Ok(Some(update)) => update,
            Ok(None) => return Ok(()), // everything in it was known already
            Err(reason) => {
                effects.push(Effect::Reload {
                    reason: "an update could not be applied; reloading the room from its log"
                        .into(),
                });
                return Err(Refusal::Malformed(reason));
            }
        };
        for client in creates {
            self.owners.entry(client).or_insert(author);
        }
        effects.push(self.record(author, Record::Edit(update.clone()), now_ms));
        let message = Message::Sync(SyncMessage::Update(update)).encode_v1();
        effects.push(Effect::Broadcast {
            except: Some(conn),
            message,
        });
        Ok(())
    }

    /// Whether applying `parsed` would change the document: it holds an item the document does
    /// not, or deletes one the document has not deleted.
    fn would_change(&self, parsed: &validate::ParsedUpdate) -> bool {
        let txn = self.doc.transact();
        let known = txn.state_vector();
        let new_item = parsed.clients.iter().any(|(client, blocks)| {
            let have = known.get(&ClientID::new(*client));
            blocks.iter().any(|b| b.clock.saturating_add(b.len) > have)
        });
        if new_item {
            return true;
        }
        let mut deletes = yrs::IdSet::default();
        for (client, ranges) in &parsed.deletes {
            for (clock, len) in ranges {
                deletes.insert(yrs::ID::new(ClientID::new(*client), *clock), *len);
            }
        }
        !deletes.diff(&txn.snapshot().delete_set).is_empty()
    }

    /// Applies an update that passed validation; returns what changed, encoded by the room
    /// (`None` if nothing did). Any failure here means the document may be half-changed.
    fn apply_trusted(&mut self, payload: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let update = Update::decode_v1(payload).map_err(|e| format!("Yjs update: {e}"))?;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update)?;
            if txn.has_missing_updates() {
                return Ok(Err("Yjs update left structs pending".to_owned()));
            }
            let changed = txn.before_state() != &txn.state_vector() || !txn.delete_set().is_empty();
            Ok::<_, yrs::error::UpdateError>(Ok(changed.then(|| txn.encode_update_v1())))
        }));
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(format!("Yjs update could not be applied: {e}")),
            Err(_) => Err("Yjs update could not be applied".to_owned()),
        }
    }

    /// The server replaces the whole program with `code` (a question's starter), as one edit
    /// under the server's own client id that every client receives. Returns nothing if the
    /// text is already `code`.
    pub fn replace_text(&mut self, code: &str, now_ms: i64) -> Vec<Effect> {
        let text = self.doc.get_or_insert_text(MAIN_FILE);
        let update = {
            let mut txn = self.doc.transact_mut();
            if text.get_string(&txn) == code {
                return Vec::new();
            }
            let len = text.len(&txn);
            text.remove_range(&mut txn, 0, len);
            text.insert(&mut txn, 0, code);
            txn.encode_update_v1()
        };
        self.owners
            .entry(self.doc.client_id().get())
            .or_insert(Actor::Server);
        let mut effects = vec![self.record(Actor::Server, Record::Edit(update.clone()), now_ms)];
        effects.push(Effect::Broadcast {
            except: None,
            message: Message::Sync(SyncMessage::Update(update)).encode_v1(),
        });
        effects
    }

    /// The room moves to another question: the switch is logged with the code left on the
    /// question it leaves, then `main.py` becomes the code last written for the new question
    /// (a switch back) or, the first time, a coding question's starter, in one server edit; the
    /// events socket names the question. Refused once the interview has ended: the record of
    /// an ended interview does not change.
    pub fn switch_question(
        &mut self,
        to: QuestionPick<'_>,
        by: Actor,
        now_ms: i64,
    ) -> Result<Vec<Effect>, Ended> {
        if self.ended {
            return Err(Ended);
        }
        let left = self
            .questions
            .current
            .clone()
            .filter(|current| current != to.id)
            .map(|question_id| KeptCode {
                question_id,
                code: self.text(),
            });
        let switched = QuestionSwitched {
            question_id: to.id.to_owned(),
            by,
            left,
        };
        self.questions.switched(switched.clone());
        let mut effects = vec![self.record(by, Record::Question(switched), now_ms)];
        let seq = self.last_seq;
        let kept = self.questions.kept.get(to.id).cloned();
        let restored = kept.is_some();
        if let Some(code) = kept.as_deref().or(to.starter) {
            effects.extend(self.replace_text(code, now_ms));
        }
        effects.push(Effect::Event {
            audience: Audience::Everyone,
            event: RoomEvent::Question {
                seq,
                question_id: to.id.to_owned(),
                title: to.title.to_owned(),
                by,
                restored,
            },
        });
        Ok(effects)
    }

    /// The interviewer saves the scorecard; answered with the stored card.
    pub fn save_scorecard(
        &mut self,
        update: ScorecardUpdate,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        let card = self
            .scorecard
            .save(update, &self.runs, self.last_seq, now_ms)?;
        Ok((card.clone(), self.store_scorecard("saved", card, now_ms)))
    }

    /// The interviewer submits the scorecard: it is locked from then on.
    pub fn submit_scorecard(
        &mut self,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        let card = self.scorecard.submit(now_ms)?;
        Ok((
            card.clone(),
            self.store_scorecard("submitted", card, now_ms),
        ))
    }

    fn store_scorecard(&mut self, action: &str, card: Scorecard, now_ms: i64) -> Vec<Effect> {
        let change = ScorecardChange {
            action: action.to_owned(),
            scorecard: card.clone(),
        };
        let record = self.record(Actor::Interviewer, Record::Scorecard(change), now_ms);
        let event = RoomEvent::Scorecard {
            seq: self.last_seq,
            action: action.to_owned(),
            version: card.version,
        };
        self.scorecard.stored(card);
        vec![
            record,
            Effect::Event {
                audience: Audience::Private,
                event,
            },
        ]
    }

    /// The interviewer writes a private note, stamped with the server's time and the room's seq.
    pub fn add_note(&mut self, text: String, now_ms: i64) -> Result<(Note, Vec<Effect>), String> {
        if text.trim().is_empty() {
            return Err("a note needs some text".into());
        }
        if text.len() > crate::scorecard::MAX_NOTE {
            return Err(format!(
                "a note may hold at most {} bytes",
                crate::scorecard::MAX_NOTE
            ));
        }
        let note = Note {
            text,
            at: now_ms,
            seq: self.last_seq + 1,
        };
        let record = self.record(Actor::Interviewer, Record::Note(note.clone()), now_ms);
        let event = RoomEvent::Note {
            seq: note.seq,
            at: note.at,
            text: note.text.clone(),
        };
        Ok((
            note,
            vec![
                record,
                Effect::Event {
                    audience: Audience::Private,
                    event,
                },
            ],
        ))
    }

    /// The candidate's browser reports an integrity signal; at most [`MAX_SIGNALS_PER_MINUTE`]
    /// are logged a minute, the rest are dropped (they are context, and must not flood the log).
    pub fn signal(
        &mut self,
        kind: SignalKind,
        size: Option<u64>,
        now_ms: i64,
    ) -> Option<Vec<Effect>> {
        self.recent_signals.retain(|t| now_ms - t < 60_000);
        if self.ended || self.recent_signals.len() >= MAX_SIGNALS_PER_MINUTE {
            return None;
        }
        self.recent_signals.push(now_ms);
        let signal = Signal {
            kind,
            size,
            at: now_ms,
        };
        let record = self.record(Actor::Candidate, Record::Signal(signal), now_ms);
        let event = RoomEvent::Signal {
            seq: self.last_seq,
            kind,
            size,
            at: now_ms,
        };
        Some(vec![
            record,
            Effect::Event {
                audience: Audience::Private,
                event,
            },
        ])
    }

    /// The interviewer ends the interview: nobody edits or runs code from now on. Ending twice
    /// changes nothing.
    pub fn end(&mut self, now_ms: i64) -> Vec<Effect> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let record = self.record(Actor::Interviewer, Record::End, now_ms);
        let event = RoomEvent::End {
            seq: self.last_seq,
            at: now_ms,
        };
        vec![
            record,
            Effect::Event {
                audience: Audience::Everyone,
                event,
            },
        ]
    }

    /// Whether `run_id` is a run of this interview that `role` may see (a private run exists
    /// for nobody else: every action on it answers as for a run that never was).
    pub fn run_visible_to(&self, run_id: &str, role: Role) -> bool {
        self.runs.contains(run_id)
            && (!self.private_runs.contains(run_id) || role.can_read_scorecard())
    }

    /// Someone typed into a running program: logged as sent, and shown to everyone who may see
    /// the run.
    pub fn run_input(&mut self, input: RunInput, by: Role, now_ms: i64) -> Vec<Effect> {
        let private = self.private_runs.contains(&input.run_id);
        let event = RoomEvent::RunInput {
            seq: self.last_seq + 1,
            run_id: input.run_id.clone(),
            by,
            data: input.data.clone(),
            eof: input.eof,
        };
        vec![
            self.record(by.into(), Record::RunInput(input), now_ms),
            Effect::Event {
                audience: audience(private),
                event,
            },
        ]
    }

    /// A run began: log it (with the code that ran) and tell the events socket.
    pub fn run_started(&mut self, started: &RunStarted, now_ms: i64) -> Vec<Effect> {
        self.runs.insert(started.run_id.clone());
        if started.private {
            self.private_runs.insert(started.run_id.clone());
        }
        let record = self.record(
            started.by.into(),
            Record::RunStarted(started.clone()),
            now_ms,
        );
        let seq = self.last_seq;
        let event = RoomEvent::RunStarted {
            seq,
            run_id: started.run_id.clone(),
            kind: started.kind,
            by: started.by,
            at: started.at,
        };
        vec![
            record,
            Effect::Event {
                audience: audience(started.private),
                event,
            },
        ]
    }

    /// A run printed something: `chunk` (raw bytes as the program wrote them on one stream,
    /// possibly several writes coalesced) is logged, and the events socket gets `text`, the
    /// same output decoded for display.
    pub fn run_output(
        &mut self,
        chunk: OutputChunk,
        text: &str,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        let (run_id, stream) = (chunk.run_id.clone(), chunk.stream);
        let mut effects = vec![self.record(by.into(), Record::RunOutput(chunk), now_ms)];
        if !text.is_empty() {
            let event = RoomEvent::RunOutput {
                seq: self.last_seq,
                run_id,
                stream,
                data: text.to_owned(),
            };
            effects.push(Effect::Event {
                audience: audience(private),
                event,
            });
        }
        effects
    }

    /// A run ended.
    pub fn run_finished(
        &mut self,
        finished: &RunFinished,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        let record = self.record(by.into(), Record::RunFinished(finished.clone()), now_ms);
        let event = RoomEvent::RunFinished {
            seq: self.last_seq,
            run_id: finished.run_id.clone(),
            status: finished.status,
            limit: finished.limit,
            exit_code: finished.exit_code,
            duration_ms: finished.duration_ms,
            tests: finished.tests.clone(),
            lint: finished.lint.clone(),
        };
        vec![
            record,
            Effect::Event {
                audience: audience(private),
                event,
            },
        ]
    }

    /// The next record of the log: the one place a seq is given out.
    fn record(&mut self, by: Actor, payload: Record, now_ms: i64) -> Effect {
        self.last_seq += 1;
        let record = LogRecord::new(self.last_seq, now_ms, by, payload);
        self.log_bytes += record.data.len() as u64;
        Effect::Persist(record)
    }
}

fn audience(private: bool) -> Audience {
    if private {
        Audience::Private
    } else {
        Audience::Everyone
    }
}

/// The interview has ended: what was asked would change its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the interview has ended")]
pub struct Ended;

/// Why a connection is closed.
#[derive(Debug)]
enum Refusal {
    Malformed(String),
    UnknownType(String),
    /// Over a size cap or quota.
    Quota(String),
    Presence(BadState),
    /// An edit after the interview ended.
    Ended,
}

impl From<Invalid> for Refusal {
    fn from(e: Invalid) -> Refusal {
        Refusal::Malformed(e.0)
    }
}

impl From<BadState> for Refusal {
    fn from(e: BadState) -> Refusal {
        Refusal::Presence(e)
    }
}

impl Refusal {
    fn code(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::Presence(BadState::NotJson) => close::INVALID_PAYLOAD,
            Refusal::UnknownType(_) => close::UNSUPPORTED,
            Refusal::Quota(_) | Refusal::Presence(_) | Refusal::Ended => close::POLICY,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(what) => write!(f, "refused: {what}"),
            Refusal::UnknownType(what) => write!(f, "unknown {what}"),
            Refusal::Quota(what) => f.write_str(what),
            Refusal::Presence(bad) => write!(f, "refused: {bad}"),
            Refusal::Ended => f.write_str("the interview has ended"),
        }
    }
}
