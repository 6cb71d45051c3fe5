//! A room and its people for scenario tests: each person a stock yrs document, joined through
//! the room, with the room's effects carried out by hand (stored records kept in order, messages
//! delivered and answered as a Yjs client would, closes remembered). A test file adds the
//! helpers of its feature in an `impl Scene` of its own.
#![allow(dead_code)] // each test file uses its own part of the harness

use duet_core::{ConnId, Effect, ReplySlots, Room, RoomConfig};
use duet_protocol::{Identity, LogRecord, Role};
use std::collections::BTreeMap;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Transact, Update};

pub struct Scene {
    pub room: Room,
    pub people: BTreeMap<ConnId, Doc>,
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
            log: Vec::new(),
            closed: Vec::new(),
            clock: 0,
        }
    }

    /// A scene around a new room with the default settings.
    pub fn empty() -> Scene {
        Scene::new(Room::new(RoomConfig::default()))
    }

    pub fn join(&mut self, conn: ConnId, role: Role) {
        self.join_with(conn, role, Doc::new());
    }

    /// `conn` joins with a document it already has (a page that reconnects), and syncs.
    pub fn join_with(&mut self, conn: ConnId, role: Role, doc: Doc) {
        self.people.insert(conn, doc);
        self.clock += 1;
        let effects = self.room.join(
            conn,
            role,
            Identity::for_role(role, "Ada"),
            ReplySlots::default(),
            self.clock,
        );
        self.carry_out(effects);
        let sv = self.people[&conn].transact().state_vector();
        self.send_raw(conn, Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1());
    }

    /// `conn` sends a Yjs update.
    pub fn send_update(&mut self, conn: ConnId, update: Vec<u8>) {
        self.send_raw(conn, Message::Sync(SyncMessage::Update(update)).encode_v1());
    }

    /// `conn` sends a message as it is on the wire.
    pub fn send_raw(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.clock += 1;
        let effects = self.room.receive(conn, &bytes, self.clock);
        self.carry_out(effects);
    }

    pub fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => self.log.push(record),
                Effect::Send { to, message, .. } => self.deliver(to, &message),
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
                    self.people.remove(&conn);
                    self.clock += 1;
                    let effects = self.room.leave(conn, self.clock);
                    self.carry_out(effects);
                }
                Effect::Event { .. } => {} // the events socket: not what these scenes are about
                Effect::CancelRun { run_id } => panic!("unexpected cancel of {run_id}"),
                Effect::Reload { reason } => panic!("unexpected reload: {reason}"),
            }
        }
    }

    /// A message reaches `to`'s document, which answers a sync step 1 as a Yjs client does.
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
            _ => None,
        };
        if let Some(reply) = reply {
            self.send_raw(to, reply);
        }
    }
}
