//! Who is in the room: joins, leaves (logged once per role, after a grace period) and the
//! timers that flush them.

use super::*;

impl Room {
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
        if let Some((code, reason)) = self.take_home_refusal(role) {
            return vec![Effect::Close {
                conn,
                code,
                reason: reason.to_owned(),
            }];
        }
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
}
