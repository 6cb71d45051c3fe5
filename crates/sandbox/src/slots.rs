//! The global limit on concurrent runs and the bounded queue in front of it.

use crate::engine::lock;
use crate::SandboxError;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Slots {
    semaphore: Arc<Semaphore>,
    counts: Arc<Mutex<Counts>>,
    limit: usize,
    queue: usize,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub running: usize,
    pub queued: usize,
}

/// A place in the queue; dropping it gives the place back.
pub struct Ticket {
    semaphore: Arc<Semaphore>,
    counts: Arc<Mutex<Counts>>,
    waiting: bool,
}

/// A run slot; dropping it frees the slot.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    counts: Arc<Mutex<Counts>>,
}

impl Slots {
    pub fn new(limit: usize, queue: usize) -> Self {
        Slots {
            semaphore: Arc::new(Semaphore::new(limit)),
            counts: Arc::new(Mutex::new(Counts::default())),
            limit,
            queue,
        }
    }

    pub fn counts(&self) -> Counts {
        *lock(&self.counts)
    }

    /// Takes a place in the queue, or says the sandbox is busy.
    pub fn admit(&self) -> Result<Ticket, SandboxError> {
        let mut c = lock(&self.counts);
        if c.running + c.queued >= self.limit + self.queue {
            return Err(SandboxError::Busy {
                running: c.running,
                queued: c.queued,
            });
        }
        c.queued += 1;
        Ok(Ticket {
            semaphore: self.semaphore.clone(),
            counts: self.counts.clone(),
            waiting: true,
        })
    }
}

impl Ticket {
    /// Waits for a run slot.
    pub async fn slot(mut self) -> Option<Slot> {
        let permit = self.semaphore.clone().acquire_owned().await.ok()?;
        let mut c = lock(&self.counts);
        c.queued -= 1;
        c.running += 1;
        self.waiting = false;
        Some(Slot {
            _permit: permit,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.waiting {
            lock(&self.counts).queued -= 1;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.counts).running -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_says_busy_and_frees_up_again() {
        let slots = Slots::new(1, 1);
        let first = slots.admit().expect("first").slot().await.expect("slot");
        let second = slots.admit().expect("queued");
        match slots.admit() {
            Err(SandboxError::Busy {
                running: 1,
                queued: 1,
            }) => {}
            other => panic!("expected busy, got {:?}", other.err()),
        }
        drop(first);
        let _second = second.slot().await.expect("slot");
        assert_eq!(slots.counts().running, 1);
        assert!(slots.admit().is_ok());
    }
}
