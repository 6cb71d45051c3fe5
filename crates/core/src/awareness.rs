//! Presence (the Yjs awareness protocol), with identities stamped by the server.
//!
//! An awareness client id belongs to the role that first announced it: only a connection of that
//! role may change it, and while one connection holds it live no other may. When its connection
//! goes, the state is removed but the id stays bound to the role (a tombstone), so the same
//! participant gets it back after a network blip and nobody else can take it over. Every state a
//! client sends gets its `user` field replaced by the identity of its token, so nobody can appear
//! under another name or role. A connection may hold a handful of ids, a room a bounded number.

use crate::room::ConnId;
use duet_protocol::{Identity, Role};
use std::collections::HashMap;
use std::sync::Arc;
use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};

/// Bounds on presence.
#[derive(Debug, Clone)]
pub struct PresenceLimits {
    /// Awareness ids one connection may hold (stock clients use one).
    pub ids_per_conn: usize,
    /// Ids a room remembers, live states and tombstones together.
    pub ids_per_room: usize,
}

impl Default for PresenceLimits {
    fn default() -> Self {
        PresenceLimits {
            ids_per_conn: 4,
            ids_per_room: 256,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    role: Role,
    /// The connection holding it live; `None` once that connection left.
    conn: Option<ConnId>,
    clock: u32,
    /// `None` once removed: the clock is kept so a stale state cannot come back.
    json: Option<Arc<str>>,
    /// When it was last touched, to evict the oldest tombstone first.
    touched: u64,
}

/// The awareness states of everyone in a room.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    limits: PresenceLimits,
    entries: HashMap<ClientID, Entry>,
    ticks: u64,
}

/// Why an awareness message was refused (the connection is closed with this reason).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadState {
    NotJson,
    ClockWouldWrap,
    TooManyIds(usize),
    RoomFull(usize),
}

impl std::fmt::Display for BadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadState::NotJson => f.write_str("awareness state is not JSON"),
            BadState::ClockWouldWrap => {
                f.write_str("awareness clock at its maximum (it would wrap)")
            }
            BadState::TooManyIds(n) => write!(f, "at most {n} awareness ids per connection"),
            BadState::RoomFull(n) => write!(f, "the room already tracks {n} awareness ids"),
        }
    }
}

impl Presence {
    pub(crate) fn new(limits: PresenceLimits) -> Presence {
        Presence {
            limits,
            entries: HashMap::new(),
            ticks: 0,
        }
    }

    /// Applies a client's awareness update. Returns the stamped update to forward, if any entry
    /// changed; entries for ids this connection may not speak for are ignored.
    pub(crate) fn apply(
        &mut self,
        from: ConnId,
        role: Role,
        identity: &Identity,
        update: AwarenessUpdate,
    ) -> Result<Option<AwarenessUpdate>, BadState> {
        let mut out = HashMap::new();
        for (client, incoming) in update.clients {
            if incoming.clock == u32::MAX {
                return Err(BadState::ClockWouldWrap);
            }
            match self.entries.get(&client) {
                Some(e) if e.role != role => continue, // another role's id
                Some(e) if e.conn.is_some_and(|c| c != from) && e.json.is_some() => continue, // held live elsewhere
                Some(_) => {}
                None => self.make_room_for(from)?,
            }
            let removing = &*incoming.json == "null";
            let json = if removing {
                None
            } else {
                Some(stamp(&incoming.json, identity)?)
            };
            if let Some(e) = self.entries.get(&client) {
                // Same rule as y-protocols: newer clocks win; an equal clock may only remove.
                let newer = incoming.clock > e.clock
                    || (incoming.clock == e.clock && removing && e.json.is_some());
                if !newer {
                    continue;
                }
            }
            self.ticks += 1;
            let conn = if removing { None } else { Some(from) };
            let entry = Entry {
                role,
                conn,
                clock: incoming.clock,
                json: json.clone(),
                touched: self.ticks,
            };
            self.entries.insert(client, entry);
            let json = json.unwrap_or_else(|| Arc::from("null"));
            out.insert(
                client,
                AwarenessUpdateEntry {
                    clock: incoming.clock,
                    json,
                },
            );
        }
        Ok((!out.is_empty()).then_some(AwarenessUpdate { clients: out }))
    }

    /// Before a connection claims a new id: it must hold fewer than its share, and the room must
    /// have a free place (the oldest tombstone gives its place up).
    fn make_room_for(&mut self, from: ConnId) -> Result<(), BadState> {
        let held = self
            .entries
            .values()
            .filter(|e| e.conn == Some(from))
            .count();
        if held >= self.limits.ids_per_conn {
            return Err(BadState::TooManyIds(self.limits.ids_per_conn));
        }
        if self.entries.len() < self.limits.ids_per_room {
            return Ok(());
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.json.is_none())
            .min_by_key(|(_, e)| e.touched)
            .map(|(c, _)| *c);
        match oldest {
            Some(client) => {
                self.entries.remove(&client);
                Ok(())
            }
            None => Err(BadState::RoomFull(self.limits.ids_per_room)),
        }
    }

    /// Removes every state a connection held live; returns the removal to broadcast. The ids
    /// stay bound to their role.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) -> Option<AwarenessUpdate> {
        let mut out = HashMap::new();
        for (client, e) in self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.conn == Some(conn))
        {
            e.conn = None;
            if e.json.take().is_some() {
                // Incoming clocks stop below u32::MAX, so this never wraps.
                e.clock = e.clock.saturating_add(1);
                out.insert(
                    *client,
                    AwarenessUpdateEntry {
                        clock: e.clock,
                        json: Arc::from("null"),
                    },
                );
            }
        }
        (!out.is_empty()).then_some(AwarenessUpdate { clients: out })
    }

    /// Every live state, for a participant who just joined or asked.
    pub(crate) fn snapshot(&self) -> Option<AwarenessUpdate> {
        let clients: HashMap<_, _> = self
            .entries
            .iter()
            .filter_map(|(c, e)| {
                let json = e.json.clone()?;
                Some((
                    *c,
                    AwarenessUpdateEntry {
                        clock: e.clock,
                        json,
                    },
                ))
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }
}

/// Replaces the `user` field of a client's state with the identity the server knows.
fn stamp(json: &str, identity: &Identity) -> Result<Arc<str>, BadState> {
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(|_| BadState::NotJson)?;
    let user = serde_json::json!({
        "name": identity.name,
        "role": identity.role,
        "color": identity.color,
    });
    match &mut value {
        serde_json::Value::Object(map) => {
            map.insert("user".into(), user);
        }
        _ => value = serde_json::json!({ "user": user }),
    }
    Ok(Arc::from(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
        let clients = entries
            .iter()
            .map(|(c, clock, json)| {
                (
                    ClientID::new(*c),
                    AwarenessUpdateEntry {
                        clock: *clock,
                        json: Arc::from(*json),
                    },
                )
            })
            .collect();
        AwarenessUpdate { clients }
    }

    fn who(role: Role) -> Identity {
        Identity::for_role(role, "Ada")
    }

    #[test]
    fn after_a_blip_the_interviewer_gets_its_id_back_and_the_candidate_cannot_take_it() {
        let mut p = Presence::new(PresenceLimits::default());
        let interviewer = who(Role::Interviewer);
        assert!(p
            .apply(1, Role::Interviewer, &interviewer, update(&[(42, 1, "{}")]))
            .is_ok_and(|u| u.is_some()));
        assert!(p.remove_conn(1).is_some());
        let candidate = who(Role::Candidate);
        let stolen = p.apply(2, Role::Candidate, &candidate, update(&[(42, 10, "{}")]));
        assert!(
            stolen.is_ok_and(|u| u.is_none()),
            "the candidate must not claim the interviewer's id"
        );
        let back = p.apply(
            3,
            Role::Interviewer,
            &interviewer,
            update(&[(42, 10, "{}")]),
        );
        assert!(back.is_ok_and(|u| u.is_some()));
    }

    #[test]
    fn one_connection_cannot_announce_thousands_of_ids() {
        let mut p = Presence::new(PresenceLimits::default());
        let many: Vec<(u64, u32, &str)> = (0..40_000).map(|c| (c, 1, "{}")).collect();
        let refused = p.apply(1, Role::Candidate, &who(Role::Candidate), update(&many));
        assert!(matches!(refused, Err(BadState::TooManyIds(4))));
    }

    #[test]
    fn a_clock_at_its_maximum_is_refused_so_removal_never_wraps() {
        let mut p = Presence::new(PresenceLimits::default());
        let refused = p.apply(
            1,
            Role::Candidate,
            &who(Role::Candidate),
            update(&[(5, u32::MAX, "{}")]),
        );
        assert_eq!(refused.err(), Some(BadState::ClockWouldWrap));
        assert!(p
            .apply(
                1,
                Role::Candidate,
                &who(Role::Candidate),
                update(&[(5, u32::MAX - 1, "{}")])
            )
            .is_ok());
        let removed = p
            .remove_conn(1)
            .map(|u| u.clients.values().map(|e| e.clock).collect::<Vec<_>>());
        assert_eq!(removed, Some(vec![u32::MAX]));
    }

    #[test]
    fn a_full_room_evicts_the_oldest_tombstone_and_never_a_live_state() {
        let limits = PresenceLimits {
            ids_per_conn: 1,
            ids_per_room: 2,
        };
        let mut p = Presence::new(limits);
        let c = who(Role::Candidate);
        assert!(p
            .apply(1, Role::Candidate, &c, update(&[(1, 1, "{}")]))
            .is_ok());
        assert!(p
            .apply(2, Role::Candidate, &c, update(&[(2, 1, "{}")]))
            .is_ok());
        assert_eq!(
            p.apply(3, Role::Candidate, &c, update(&[(3, 1, "{}")]))
                .err(),
            Some(BadState::RoomFull(2))
        );
        p.remove_conn(1);
        assert!(p
            .apply(3, Role::Candidate, &c, update(&[(3, 1, "{}")]))
            .is_ok());
        assert_eq!(p.snapshot().map(|s| s.clients.len()), Some(2));
    }

    #[test]
    fn states_are_stamped_with_the_tokens_identity() {
        let mut p = Presence::new(PresenceLimits::default());
        let forged = r#"{"user":{"name":"Interviewer","role":"interviewer"}}"#;
        let out = p.apply(
            1,
            Role::Candidate,
            &who(Role::Candidate),
            update(&[(8, 1, forged)]),
        );
        let json = out
            .ok()
            .flatten()
            .and_then(|u| u.clients.values().next().map(|e| e.json.to_string()))
            .unwrap_or_default();
        assert!(
            json.contains("\"candidate\"") && json.contains("Ada"),
            "{json}"
        );
    }
}
