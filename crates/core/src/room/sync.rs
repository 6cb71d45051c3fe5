//! The Yjs sync and awareness protocols: every message a connection sends, validated before it
//! reaches the document; edits applied, stored and forwarded as the room encodes them; the
//! server's own edits; and why a connection is closed.

use super::*;

impl Room {
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
                        if !role.can_edit() || self.take_home_read_only(role) {
                            // a read-only role's edits are dropped; the connection stays open
                            // (staff watch a take-home read-only)
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
        let checked = validate::check(&parsed, &known, &self.places)?;
        if let Some((client, owner)) = checked.creates.iter().find_map(|c| {
            self.owners
                .get(c)
                .filter(|o| **o != author)
                .map(|o| (*c, *o))
        }) {
            return Err(Refusal::Malformed(format!(
                "Yjs client id {client} belongs to the {owner}; use your own"
            )));
        }
        if !checked.creates.is_empty() && self.log_bytes >= self.config.max_log_bytes {
            return Err(Refusal::Quota(format!(
                "this interview's log is full ({} MiB); no more edits are stored",
                self.config.max_log_bytes >> 20
            )));
        }
        if parsed.text_bytes > 0 {
            let now = self.text_bytes();
            if now + parsed.text_bytes > self.config.max_doc_bytes {
                return Err(Refusal::Quota(format!(
                    "the files may hold at most {} bytes together",
                    self.config.max_doc_bytes
                )));
            }
        }
        let trial = self.check_files(payload, &checked)?;
        if !checked.board_keys.is_empty() {
            let board = self.doc.get_or_insert_map(board::BOARD);
            let txn = self.doc.transact();
            let added = checked
                .board_keys
                .iter()
                .filter(|key| !board.contains_key(&txn, key))
                .count();
            let now = board.len(&txn) as usize;
            if now + added > board::MAX_ELEMENTS {
                return Err(Refusal::Malformed(format!(
                    "the board may hold at most {} elements (it has {now}; this adds {added})",
                    board::MAX_ELEMENTS
                )));
            }
        }
        let applied = self.apply_trusted(payload);
        if applied.is_ok() {
            // The trial replica took this update, and now the document has too: they agree.
            self.files_trial = trial;
        }
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
        for client in checked.creates {
            self.owners.entry(client).or_insert(author);
        }
        self.places.learn(checked.placed);
        effects.push(self.record(author, Record::Edit(update.clone()), now_ms));
        let message = Message::Sync(SyncMessage::Update(update)).encode_v1();
        effects.push(Effect::Broadcast {
            except: Some(conn),
            message,
        });
        Ok(())
    }

    /// The length of every file's text together (deleted files' included).
    fn text_bytes(&self) -> usize {
        let txn = self.doc.transact();
        let names: Vec<String> = txn
            .root_refs()
            .filter(|(name, _)| files::check_path(name).is_ok())
            .map(|(name, _)| name.to_owned())
            .collect();
        names
            .iter()
            .filter_map(|name| txn.get_text(name.as_str()))
            .map(|text| text.len(&txn) as usize)
            .sum()
    }

    /// Checks, for an update that writes or deletes an entry of `files` or starts a new file,
    /// that the files listed once it is applied keep [`crate::files`]'s rules. It is tried on
    /// the room's trial replica of the document first (see [`Room::files_trial`]), which is
    /// brought up to date with only what the document took since its last trial: the whole
    /// document is copied only for a room's first such update, and again after one that was
    /// refused. Answers the replica with the update applied (`None` when no check was needed),
    /// to keep once the document has taken the update too.
    fn check_files(
        &mut self,
        payload: &[u8],
        checked: &validate::Checked,
    ) -> Result<Option<Doc>, Refusal> {
        let before = files::listing(&self.doc);
        let new_text = checked
            .texts
            .iter()
            .any(|t| !before.texts.iter().any(|have| **have == **t));
        if checked.file_keys.is_empty() && !checked.deletes_entries && !new_text {
            return Ok(None);
        }
        // Taken out: it is put back only once the document has taken this update as well.
        let trial = self
            .files_trial
            .take()
            .unwrap_or_else(|| Doc::with_client_id(self.doc.client_id().get()));
        let behind = trial.transact().state_vector();
        let missing = self.doc.transact().encode_state_as_update_v1(&behind);
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = trial.transact_mut();
            txn.apply_update(Update::decode_v1(&missing)?)?;
            txn.apply_update(Update::decode_v1(payload)?)?;
            Ok::<_, Box<dyn std::error::Error>>(())
        }));
        if !matches!(applied, Ok(Ok(()))) {
            return Err(Refusal::Malformed(
                "Yjs update could not be applied".to_owned(),
            ));
        }
        trial.get_or_insert_text(MAIN_FILE);
        let after = files::listing(&trial);
        let written: Vec<&str> = checked.file_keys.iter().map(|k| &**k).collect();
        files::check_change(&before, &after, &written)?;
        Ok(Some(trial))
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
        self.server_edit(update, now_ms)
    }

    /// The server replaces the whole board with `elements` (Excalidraw elements as JSON, each
    /// stored under its id: a question's starter drawing, or the board kept for a question), as
    /// one edit under the server's own client id that every client receives. Keys not among
    /// them are deleted; an element that is not acceptable is left out. Returns nothing if the
    /// board is already so.
    pub fn replace_board(&mut self, elements: &[String], now_ms: i64) -> Vec<Effect> {
        let wanted: HashMap<Box<str>, &str> = elements
            .iter()
            .filter_map(|json| Some((board::check_element(json).ok()?, json.as_str())))
            .collect();
        let map = self.doc.get_or_insert_map(board::BOARD);
        let update = {
            let mut txn = self.doc.transact_mut();
            let stale: Vec<String> = map
                .keys(&txn)
                .filter(|key| !wanted.contains_key(*key))
                .map(str::to_owned)
                .collect();
            let mut changed = !stale.is_empty();
            for key in stale {
                map.remove(&mut txn, &key);
            }
            for (key, json) in &wanted {
                let same = matches!(
                    map.get(&txn, key),
                    Some(yrs::Out::Any(yrs::Any::String(now))) if &*now == *json
                );
                if !same {
                    map.insert(&mut txn, key.as_ref(), *json);
                    changed = true;
                }
            }
            if !changed {
                return Vec::new();
            }
            txn.encode_update_v1()
        };
        self.server_edit(update, now_ms)
    }

    /// Records `update`, an edit the server made under its own client id, and sends it to every
    /// client.
    pub(super) fn server_edit(&mut self, update: Vec<u8>, now_ms: i64) -> Vec<Effect> {
        self.owners
            .entry(self.doc.client_id().get())
            .or_insert(Actor::Server);
        self.places.learn_update(&update);
        let mut effects = vec![self.record(Actor::Server, Record::Edit(update.clone()), now_ms)];
        effects.push(Effect::Broadcast {
            except: None,
            message: Message::Sync(SyncMessage::Update(update)).encode_v1(),
        });
        effects
    }
}

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
