//! A room's lease, when several nodes share one PostgreSQL database: the room task takes it
//! before it reads the room's history, and every record and checkpoint of the room is written
//! under it (fenced by its epoch, in the store). One task per node renews every lease the node
//! holds, in one statement, every third of the lease's time. A renewal that finds a lease gone,
//! or no renewal for its whole time, tells its room, which closes everyone at once so they
//! reconnect to the room's new owner; an append the store refuses as fenced out does the same
//! (see `gates.rs`). On SQLite there is none: one process owns every room.

use duet_protocol::{InterviewId, LogRecord};
use duet_store::{Checkpoint, Lease, RoomLeases, Ticket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a node needs to hold rooms: the leases, its own name in them (its URL), and the
/// leases it holds now, which one task renews.
pub struct NodeLeases {
    leases: Arc<dyn RoomLeases>,
    /// This node's URL, which the other nodes forward a room's requests to.
    node: String,
    /// How long a lease lasts without a renewal.
    ttl: Duration,
    /// The leases held now, each with the token that tells its room it was lost (and which
    /// [`HeldLease`] holds it).
    held: Mutex<HashMap<InterviewId, (Lease, CancellationToken, u64)>>,
    taken: AtomicU64,
}

/// Why a room's lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// Another node holds the room: its requests go there.
    #[error("the room is held by another node")]
    HeldElsewhere,
    /// The database could not be asked.
    #[error("taking the room's lease failed: {0}")]
    Store(String),
}

/// A lease this node holds, renewed while it lives; dropping it stops the renewals (the
/// lease then lapses by itself unless [`HeldLease::release`] gave it back first).
pub(super) struct HeldLease {
    node: Arc<NodeLeases>,
    lease: Lease,
    lost: CancellationToken,
    key: u64,
}

impl NodeLeases {
    /// This node's leases, renewed by a task of their own for as long as they exist (through
    /// a graceful stop too, while the rooms store what they hold and give their leases back).
    pub fn new(leases: Arc<dyn RoomLeases>, node: String, ttl: Duration) -> Arc<NodeLeases> {
        let this = Arc::new(NodeLeases {
            leases,
            node,
            ttl,
            held: Mutex::new(HashMap::new()),
            taken: AtomicU64::new(0),
        });
        tokio::spawn(renew(Arc::downgrade(&this)));
        this
    }

    fn held(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<InterviewId, (Lease, CancellationToken, u64)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the room's lease for this node; it is renewed while the returned lease lives.
    pub(super) async fn take(self: &Arc<Self>, room: &InterviewId) -> Result<HeldLease, TakeError> {
        let (leases, id, node, ttl) = (
            self.leases.clone(),
            room.clone(),
            self.node.clone(),
            self.ttl,
        );
        let taken = tokio::task::spawn_blocking(move || leases.acquire(&id, &node, ttl))
            .await
            .map_err(|e| TakeError::Store(e.to_string()))?
            .map_err(|e| TakeError::Store(e.to_string()))?;
        let lease = taken.ok_or(TakeError::HeldElsewhere)?;
        tracing::info!(
            epoch = lease.epoch,
            "room: this node holds the room's lease"
        );
        let (lost, key) = (CancellationToken::new(), self.taken.fetch_add(1, Relaxed));
        // A later life of the room on this node takes the same lease (the same epoch): its
        // entry replaces the earlier one's.
        self.held()
            .insert(room.clone(), (lease.clone(), lost.clone(), key));
        Ok(HeldLease {
            node: self.clone(),
            lease,
            lost,
            key,
        })
    }
}

impl HeldLease {
    /// Appends under the lease: refused as `LeaseLost` once another node took the room.
    pub(super) fn append(&self, record: LogRecord) -> Ticket {
        self.node.leases.append_fenced(&self.lease, record)
    }

    /// Stores a checkpoint under the lease.
    pub(super) fn checkpoint(&self, checkpoint: Checkpoint) -> Ticket {
        self.node.leases.checkpoint_fenced(&self.lease, checkpoint)
    }

    /// Fires when the lease is known lost.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Gives the lease back (a graceful stop, an idle room unloading), so the next node a
    /// client reaches takes the room at once rather than after the lease lapses.
    pub(super) async fn release(self) {
        if self.lost.is_cancelled() {
            return;
        }
        let (leases, lease) = (self.node.leases.clone(), self.lease.clone());
        match tokio::task::spawn_blocking(move || leases.release(&lease)).await {
            Ok(Ok(())) => tracing::info!(epoch = self.lease.epoch, "room: lease given back"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "room: giving the lease back failed; it lapses by itself")
            }
            Err(e) => tracing::warn!(error = %e, "room: giving the lease back failed"),
        }
    }
}

impl Drop for HeldLease {
    /// No more renewals for this room (unless a later life of it took the entry over).
    fn drop(&mut self) {
        let mut held = self.node.held();
        if held
            .get(&self.lease.room)
            .is_some_and(|(_, _, key)| *key == self.key)
        {
            held.remove(&self.lease.room);
        }
    }
}

/// Renews every lease the node holds every third of their time, until the node's leases are
/// gone; tells each room whose lease a renewal found gone, and every room when the
/// database could not be reached for so long that their leases may have lapsed.
async fn renew(node: Weak<NodeLeases>) {
    let Some(ttl) = node.upgrade().map(|n| n.ttl) else {
        return;
    };
    let every = ttl / 3;
    let mut renewed_at = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let Some(this) = node.upgrade() else { return };
        let batch: Vec<(Lease, CancellationToken, u64)> = this.held().values().cloned().collect();
        if batch.is_empty() {
            renewed_at = Instant::now();
            continue;
        }
        let leases: Vec<Lease> = batch.iter().map(|(lease, _, _)| lease.clone()).collect();
        let store = this.leases.clone();
        let renewed = tokio::task::spawn_blocking(move || store.renew_many(&leases, ttl)).await;
        match renewed {
            Ok(Ok(renewed)) => {
                renewed_at = Instant::now();
                for (lease, lost, key) in batch {
                    if !renewed.contains(&lease.room) {
                        tracing::warn!(interview = %lease.room, epoch = lease.epoch, "room: the lease was lost (another node took the room, or it lapsed)");
                        lost.cancel();
                        // Renewed no more: its room is closing.
                        let mut held = this.held();
                        if held.get(&lease.room).is_some_and(|(_, _, k)| *k == key) {
                            held.remove(&lease.room);
                        }
                    }
                }
            }
            Ok(Err(e)) if renewed_at.elapsed() + every < ttl => {
                tracing::warn!(error = %e, "rooms: renewing the leases failed; trying again")
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                tracing::warn!(error = %why, rooms = batch.len(), "rooms: the leases could not be renewed in time; letting the rooms go");
                for (_, lost, _) in batch {
                    lost.cancel();
                }
            }
        }
    }
}
