//! Fan-out bookkeeping: when each edit was sent, so receivers can tell how long it took.
//!
//! An edit is known by the first item it touches: an insert by the id (client, clock) of the new
//! character, a delete by the id of the character it removed. Author and receivers both read the
//! key from the encoded update with [`key_of`], so they always agree.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::Notify;
use yrs::{ClientID, Update};

/// Whether the edit deletes, and the id of the first item it inserts or deletes.
pub type Key = (bool, ClientID, u32);

/// The key of a single-edit update: its first inserted item, else its first deleted one.
pub fn key_of(update: &Update) -> Option<Key> {
    if let Some((client, clock)) = update.state_vector_lower().iter().next() {
        return Some((false, *client, *clock));
    }
    let (client, ranges) = update.delete_set().iter().next()?;
    let first = ranges.iter().next()?;
    Some((true, *client, first.start))
}

/// The phases of a run, fixed once every client has connected.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub measure_from: Instant,
    pub measure_to: Instant,
    /// Readers keep reading until here so edits sent near the end still arrive.
    pub drain_to: Instant,
}

impl Timeline {
    pub fn measuring(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.measure_to
    }
}

/// An edit in flight: when it was sent, deliveries still due, and its author's slot.
type Pending = HashMap<Key, (Instant, u32, usize)>;

/// One room's edits in flight.
pub struct RoomTrack {
    pending: Mutex<Pending>,
    /// How many clients must receive each edit: the room's connected clients minus the author.
    receivers: AtomicU32,
    /// Per author slot: edits every receiver has got.
    done: Vec<AtomicU64>,
    /// Woken whenever an edit is complete, for authors that limit their edits in flight.
    pub progress: Notify,
}

impl RoomTrack {
    pub fn new(authors: usize) -> RoomTrack {
        RoomTrack {
            pending: Mutex::default(),
            receivers: AtomicU32::new(0),
            done: (0..authors).map(|_| AtomicU64::new(0)).collect(),
            progress: Notify::new(),
        }
    }

    /// Whether edits are tracked at all (a room of one has nobody to deliver to).
    pub fn tracking(&self) -> bool {
        self.receivers.load(Relaxed) > 0
    }

    /// Edits by `author` that every receiver has got.
    pub fn done(&self, author: usize) -> u64 {
        self.done.get(author).map_or(0, |d| d.load(Relaxed))
    }

    pub fn set_receivers(&self, n: u32) {
        self.receivers.store(n, Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The author in slot `author` sent edit `key` at `at`.
    pub fn sent(&self, key: Key, at: Instant, author: usize) {
        let receivers = self.receivers.load(Relaxed);
        if receivers > 0 {
            self.lock().insert(key, (at, receivers, author));
        }
    }

    /// A receiver got edit `key`: when it was sent, if it was tracked.
    pub fn received(&self, key: Key) -> Option<Instant> {
        let mut pending = self.lock();
        let entry = pending.get_mut(&key)?;
        let at = entry.0;
        entry.1 -= 1;
        if entry.1 == 0 {
            let author = entry.2;
            pending.remove(&key);
            drop(pending);
            if let Some(done) = self.done.get(author) {
                done.fetch_add(1, Relaxed);
            }
            self.progress.notify_waiters();
        }
        Some(at)
    }

    /// Deliveries of edits sent inside the window that never arrived.
    pub fn undelivered(&self, timeline: &Timeline) -> u64 {
        self.lock()
            .values()
            .filter(|(at, _, _)| timeline.measuring(*at))
            .map(|(_, left, _)| u64::from(*left))
            .sum()
    }
}
