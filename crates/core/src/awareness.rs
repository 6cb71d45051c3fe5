//! Presence (the Yjs awareness protocol), with identities stamped by the server.
//!
//! Each connection may speak for the awareness client ids it announced first; an entry for an id
//! another connection owns is ignored. Every state a client sends gets its `user` field replaced
//! by the identity of its token, so nobody can appear under another name or role.

use crate::room::ConnId;
use duet_protocol::Identity;
use std::collections::HashMap;
use std::sync::Arc;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::block::ClientID;

#[derive(Debug, Clone)]
struct Entry {
    owner: ConnId,
    clock: u32,
    /// `None` once removed: the clock is kept so a stale state cannot come back.
    json: Option<Arc<str>>,
}

/// The awareness states of everyone in a room.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    entries: HashMap<ClientID, Entry>,
}

/// Why an awareness message was refused.
#[derive(Debug)]
pub(crate) struct BadState;

impl Presence {
    /// Applies a client's awareness update. Returns the stamped update to forward, if any entry
    /// changed, or `BadState` if a state is not JSON.
    pub(crate) fn apply(
        &mut self,
        from: ConnId,
        identity: &Identity,
        update: AwarenessUpdate,
    ) -> Result<Option<AwarenessUpdate>, BadState> {
        let mut out = HashMap::new();
        for (client, incoming) in update.clients {
            let known = self.entries.get(&client);
            if known.is_some_and(|e| e.owner != from) {
                continue; // another connection's id: not this client's to change
            }
            let removing = &*incoming.json == "null";
            let json = if removing { None } else { Some(stamp(&incoming.json, identity)?) };
            if let Some(e) = known {
                // Same rule as y-protocols: newer clocks win; an equal clock may only remove.
                let newer = incoming.clock > e.clock || (incoming.clock == e.clock && removing && e.json.is_some());
                if !newer {
                    continue;
                }
            }
            let entry = Entry { owner: from, clock: incoming.clock, json: json.clone() };
            self.entries.insert(client, entry);
            let json = json.unwrap_or_else(|| Arc::from("null"));
            out.insert(client, AwarenessUpdateEntry { clock: incoming.clock, json });
        }
        Ok((!out.is_empty()).then_some(AwarenessUpdate { clients: out }))
    }

    /// Removes every state a connection owned; returns the removal to broadcast.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) -> Option<AwarenessUpdate> {
        let mut out = HashMap::new();
        self.entries.retain(|client, e| {
            if e.owner != conn {
                return true;
            }
            if e.json.is_some() {
                out.insert(*client, AwarenessUpdateEntry { clock: e.clock + 1, json: Arc::from("null") });
            }
            false
        });
        (!out.is_empty()).then_some(AwarenessUpdate { clients: out })
    }

    /// Every live state, for a participant who just joined or asked.
    pub(crate) fn snapshot(&self) -> Option<AwarenessUpdate> {
        let clients: HashMap<_, _> = self
            .entries
            .iter()
            .filter_map(|(c, e)| {
                let json = e.json.clone()?;
                Some((*c, AwarenessUpdateEntry { clock: e.clock, json }))
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }
}

/// Replaces the `user` field of a client's state with the identity the server knows.
fn stamp(json: &str, identity: &Identity) -> Result<Arc<str>, BadState> {
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(|_| BadState)?;
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
