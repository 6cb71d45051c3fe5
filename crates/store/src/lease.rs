//! One owner per room across several Duet nodes on one PostgreSQL database: a lease row per
//! room with an epoch, taken, renewed and given back through the database (whose clock is the
//! only one that counts), and appends fenced by that epoch in the same transaction that writes
//! them, so a node that lost its lease (paused, partitioned, slow) can never write into the
//! room's sequence once another node has taken it over.
//!
//! Only the store's side: which node asks for which room, and what it does when it loses one,
//! is the server's (`crates/server/src/nodes.rs`, `rooms/lease.rs`). SQLite has no leases: one
//! process owns every room.

use crate::{Checkpoint, Result, Ticket};
use duet_protocol::{InterviewId, LogRecord};
use std::time::Duration;

/// The longest a lease lasts without a renewal: a room whose owner died is free again after
/// at most this long. A longer time asked for is cut to it.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(10);

/// A node's hold on a room: valid while its epoch is the room's newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub room: InterviewId,
    pub node: String,
    /// Grows by one at every change of holder (and when a holder takes its own lapsed lease
    /// again), never goes back: a write carrying an older epoch is refused.
    pub epoch: i64,
}

/// Who holds a room's lease, as the database sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub epoch: i64,
    /// How long the lease lasts from now without a renewal, by the database's clock; zero
    /// when it has lapsed (or was given back).
    pub live_for: Duration,
}

impl Holder {
    /// Whether the lease still holds the room (nobody else can take it yet).
    pub fn is_live(&self) -> bool {
        !self.live_for.is_zero()
    }
}

/// Room leases and the writes they fence.
pub trait RoomLeases: Send + Sync + 'static {
    /// Takes the room's lease for `node` for `ttl` (at most [`MAX_LEASE_TTL`]): when nobody
    /// holds it, when its holder let it lapse, or when `node` holds it already (then it is
    /// renewed, same epoch). `None` while another node holds it. The interview must exist.
    fn acquire(&self, room: &InterviewId, node: &str, ttl: Duration) -> Result<Option<Lease>>;
    /// Extends the lease by `ttl` from now if it is still this one and has not lapsed; `false`
    /// when it was lost (taken over, given back, or lapsed: acquire it again, with a new epoch).
    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool>;
    /// Who holds the room's lease (live or lapsed), `None` if nobody ever took it.
    fn holder(&self, room: &InterviewId) -> Result<Option<Holder>>;
    /// [`RoomLeases::renew`] for many leases in one statement (a node renews all its rooms at
    /// once): answers the rooms whose leases were renewed; the others were lost.
    fn renew_many(&self, leases: &[Lease], ttl: Duration) -> Result<Vec<InterviewId>>;
    /// Gives the lease back at once (a graceful stop), keeping its epoch for the next holder to
    /// grow from. Nothing happens if it was lost already.
    fn release(&self, lease: &Lease) -> Result<()>;
    /// [`crate::LogStore::append`] under the lease: refused with
    /// [`crate::StoreError::LeaseLost`] when another epoch holds the room as it commits.
    fn append_fenced(&self, lease: &Lease, record: LogRecord) -> Ticket;
    /// [`crate::LogStore::checkpoint`] under the lease, fenced the same way.
    fn checkpoint_fenced(&self, lease: &Lease, checkpoint: Checkpoint) -> Ticket;
    /// Competes, for as long as the receiver is kept, to be the one node leading `key` (the
    /// background jobs that must run once across the nodes): the receiver says whether this
    /// node leads now. One node leads at a time; when its process or its connection to the
    /// database goes, another takes over within a few seconds.
    fn leader(&self, key: i64) -> tokio::sync::watch::Receiver<bool>;
}
