//! A room and its people for scenario tests: each person a stock yrs document counting UTF-16
//! offsets as the JavaScript clients do, joined through the room, with the room's effects
//! carried out by hand (stored records kept in order, messages delivered and answered as a Yjs
//! client would, reply slots freed once an answer is out as the server's writer frees them,
//! presence and events-socket events remembered, closes remembered). A test file adds the
//! helpers of its feature in an `impl Scene` of its own.
#![allow(dead_code)] // each test file uses its own part of the harness

use duet_core::{Audience, ConnId, Effect, ReplySlots, Room, RoomConfig};
use duet_protocol::{Identity, LogRecord, Role, MAIN_FILE};
use std::collections::{BTreeMap, HashMap};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, OffsetKind, Options, ReadTxn, Transact, Update};

pub struct Scene {
    pub room: Room,
    pub people: BTreeMap<ConnId, Doc>,
    /// What each person's document knows of presence: awareness id to its JSON.
    pub awareness: BTreeMap<ConnId, HashMap<u64, String>>,
    /// Each person's reply slots, freed as the server's writer frees them.
    pub replies: BTreeMap<ConnId, ReplySlots>,
    /// Every event for the events socket, with who may receive it, as JSON.
    pub events: Vec<(Audience, serde_json::Value)>,
    /// Every record the room asked to store, in order.
    pub log: Vec<LogRecord>,
    /// Every connection the room closed: who, the code and the reason.
    pub closed: Vec<(ConnId, u16, String)>,
    pub clock: i64,
}

impl Scene {
    pub fn new(room: Room) -> Scene {
        Scene {
            room,
            people: BTreeMap::new(),
            awareness: BTreeMap::new(),
            replies: BTreeMap::new(),
            events: Vec::new(),
            log: Vec::new(),
            closed: Vec::new(),
            clock: 0,
        }
    }

    /// A scene around a new room with the default settings.
    pub fn empty() -> Scene {
        Scene::new(Room::new(RoomConfig::default()))
    }

    /// The clock, one step on: every call into the room happens at its own time.
    pub fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    /// `conn` joins with a new document (UTF-16 offsets, as the JavaScript clients count).
    pub fn join(&mut self, conn: ConnId, role: Role) {
        let doc = Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        self.join_with(conn, role, doc);
    }

    /// `conn` joins with a document it already has (a page that reconnects), and opens with
    /// its own sync step 1, as y-websocket does.
    pub fn join_with(&mut self, conn: ConnId, role: Role, doc: Doc) {
        self.people.insert(conn, doc);
        self.awareness.insert(conn, HashMap::new());
        let replies = ReplySlots::default();
        self.replies.insert(conn, replies.clone());
        let now = self.tick();
        let effects = self
            .room
            .join(conn, role, Identity::for_role(role, "Ada"), replies, now);
        self.carry_out(effects);
        let sv = self.people[&conn].transact().state_vector();
        self.send_raw(conn, Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1());
    }

    /// `conn`'s connection ends.
    pub fn leave(&mut self, conn: ConnId) {
        self.people.remove(&conn);
        self.awareness.remove(&conn);
        self.replies.remove(&conn);
        let now = self.tick();
        let effects = self.room.leave(conn, now);
        self.carry_out(effects);
    }

    /// The main file as `conn`'s document has it.
    pub fn text_of(&self, conn: ConnId) -> String {
        let doc = &self.people[&conn];
        let text = doc.get_or_insert_text(MAIN_FILE);
        let txn = doc.transact();
        text.get_string(&txn)
    }

    /// `conn` sends a Yjs update.
    pub fn send_update(&mut self, conn: ConnId, update: Vec<u8>) {
        self.send_raw(conn, Message::Sync(SyncMessage::Update(update)).encode_v1());
    }

    /// `conn` sends a message as it is on the wire.
    pub fn send_raw(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let now = self.tick();
        let effects = self.room.receive(conn, &bytes, now);
        self.carry_out(effects);
    }

    pub fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => self.log.push(record),
                Effect::Send { to, message, reply } => {
                    // The server's writer frees the reply slot once the answer is written.
                    if let (Some(reply), Some(replies)) = (reply, self.replies.get(&to)) {
                        replies.sent(reply);
                    }
                    self.deliver(to, &message)
                }
                Effect::Broadcast { except, message } => {
                    let to: Vec<_> = self
                        .people
                        .keys()
                        .copied()
                        .filter(|c| Some(*c) != except)
                        .collect();
                    for conn in to {
                        self.deliver(conn, &message);
                    }
                }
                Effect::Close { conn, code, reason } => {
                    self.closed.push((conn, code, reason));
                    self.leave(conn);
                }
                Effect::Event { audience, event } => self
                    .events
                    .push((audience, serde_json::to_value(&event).expect("event JSON"))),
                Effect::CancelRun { run_id } => panic!("unexpected cancel of {run_id}"),
                Effect::Reload { reason } => panic!("unexpected reload: {reason}"),
            }
        }
    }

    /// A message reaches `to`'s document, which answers a sync step 1 as a Yjs client does and
    /// keeps the presence it is told.
    fn deliver(&mut self, to: ConnId, message: &[u8]) {
        let Some(doc) = self.people.get(&to) else {
            return;
        };
        let reply = match Message::decode_v1(message).unwrap_or_else(|e| panic!("{e}")) {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                Some(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1())
            }
            Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) => {
                let update = Update::decode_v1(&u).unwrap_or_else(|e| panic!("{e}"));
                let mut txn = doc.transact_mut();
                txn.apply_update(update).unwrap_or_else(|e| panic!("{e}"));
                None
            }
            Message::Awareness(update) => {
                let known = self.awareness.entry(to).or_default();
                for (id, entry) in update.clients {
                    known.insert(id.get(), entry.json.to_string());
                }
                None
            }
            other => panic!("the room sent an unexpected message {other:?}"),
        };
        if let Some(reply) = reply {
            self.send_raw(to, reply);
        }
    }
}
