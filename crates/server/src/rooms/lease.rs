//! A room's lease, when several nodes share one PostgreSQL database: the room task takes it
//! before it reads the room's history, a task beside it renews it every third of its time, and
//! every record and checkpoint of the room is written under it (fenced by its epoch, in the
//! store). A renewal that finds it gone, or no renewal for its whole time, tells the room,
//! which closes everyone at once so they reconnect to the room's new owner; an append the
//! store refuses as fenced out does the same (see `gates.rs`). On SQLite there is none: one
//! process owns every room.

use duet_protocol::InterviewId;
use duet_protocol::LogRecord;
use duet_store::{Checkpoint, Lease, RoomLeases, Ticket};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// What a node needs to hold rooms: the leases, and its own name in them (its URL).
pub struct NodeLeases {
    pub leases: Arc<dyn RoomLeases>,
    /// This node's URL, which the other nodes forward a room's requests to.
    pub node: String,
    /// How long a lease lasts without a renewal.
    pub ttl: Duration,
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
    leases: Arc<dyn RoomLeases>,
    lease: Lease,
    lost: CancellationToken,
    _renewals: DropGuard,
}

impl NodeLeases {
    /// Takes the room's lease for this node and starts renewing it.
    pub(super) async fn take(&self, room: &InterviewId) -> Result<HeldLease, TakeError> {
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
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn(renew(
            self.leases.clone(),
            lease.clone(),
            self.ttl,
            lost.clone(),
            stop.clone(),
        ));
        Ok(HeldLease {
            leases: self.leases.clone(),
            lease,
            lost,
            _renewals: stop.drop_guard(),
        })
    }
}

impl HeldLease {
    /// Appends under the lease: refused as `LeaseLost` once another node took the room.
    pub(super) fn append(&self, record: LogRecord) -> Ticket {
        self.leases.append_fenced(&self.lease, record)
    }

    /// Stores a checkpoint under the lease.
    pub(super) fn checkpoint(&self, checkpoint: Checkpoint) -> Ticket {
        self.leases.checkpoint_fenced(&self.lease, checkpoint)
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
        let (leases, lease) = (self.leases.clone(), self.lease.clone());
        match tokio::task::spawn_blocking(move || leases.release(&lease)).await {
            Ok(Ok(())) => tracing::info!(epoch = self.lease.epoch, "room: lease given back"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "room: giving the lease back failed; it lapses by itself")
            }
            Err(e) => tracing::warn!(error = %e, "room: giving the lease back failed"),
        }
    }
}

/// Renews `lease` every third of `ttl` until `stop`; fires `lost` when a renewal finds it gone,
/// or when the database could not be reached for so long that it may have lapsed.
async fn renew(
    leases: Arc<dyn RoomLeases>,
    lease: Lease,
    ttl: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let every = ttl / 3;
    let mut renewed_at = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (store, held) = (leases.clone(), lease.clone());
        let renewed = tokio::task::spawn_blocking(move || store.renew(&held, ttl)).await;
        match renewed {
            Ok(Ok(true)) => renewed_at = Instant::now(),
            Ok(Ok(false)) => {
                tracing::warn!(
                    epoch = lease.epoch,
                    "room: the lease was lost (another node took the room, or it lapsed)"
                );
                lost.cancel();
                return;
            }
            Ok(Err(e)) if renewed_at.elapsed() + every < ttl => {
                tracing::warn!(error = %e, "room: renewing the lease failed; trying again")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "room: the lease could not be renewed in time; letting the room go");
                lost.cancel();
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "room: the lease renewal crashed; letting the room go");
                lost.cancel();
                return;
            }
        }
    }
}
