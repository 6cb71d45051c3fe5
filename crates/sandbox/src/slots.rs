//! The run slots of every engine and the fair, bounded queue in front of them.
//!
//! Each engine has a fixed number of slots (runs at once). A run takes a free slot at once when
//! nobody waits, on an eligible engine (healthy, or every engine when none is, so a single
//! engine that was not checked yet, or is down, still gets its runs and reports their failure):
//! one with a warm container ready if any has (a cold start costs ten times a warm one), then
//! the one with the most free slots, then the next in turn after the last one chosen (so a
//! light load spreads over every engine and their pools rather than draining the first one's). Otherwise it waits in the queue, which is bounded in length
//! and fair between parties (interviews): parties take turns, one run each per turn, so one
//! interview's burst of runs delays another interview's run by at most one run per party
//! ahead of it. A waiting run sees its place (`ahead`: runs that will get a slot before it)
//! change as the queue moves.
//!
//! Everything here is a short critical section under one std mutex; nothing is awaited while it
//! is held, and nothing that locks it is dropped while it is held (a slot's drop locks it).

use crate::engine::lock;
use crate::SandboxError;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

pub struct Slots {
    state: Mutex<State>,
    queue: usize,
}

struct State {
    engines: Vec<EngineSlots>,
    /// Parties with runs waiting, in turn order: the front one is served next, then goes to
    /// the back if it still has runs waiting.
    turns: VecDeque<Party>,
    queued: usize,
    next_waiter: u64,
    /// The engine chosen last, for turns among equals.
    last: usize,
}

#[derive(Debug, Clone)]
struct EngineSlots {
    total: usize,
    running: usize,
    healthy: bool,
    /// Warm containers ready on it (its pool keeps this current).
    warm: Arc<AtomicUsize>,
}

struct Party {
    name: String,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    id: u64,
    slot: oneshot::Sender<Slot>,
    ahead: watch::Sender<usize>,
}

/// The slots of one engine as they stand.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineCounts {
    pub running: usize,
    pub total: usize,
}

/// A run that got a slot at once, or its place in the queue.
pub enum Admitted {
    Now(Slot),
    Queued(Ticket),
}

/// A place in the queue; dropping it gives the place back.
pub struct Ticket {
    slots: Arc<Slots>,
    id: u64,
    slot: oneshot::Receiver<Slot>,
    /// Runs that will get a slot before this one.
    pub ahead: watch::Receiver<usize>,
}

/// A run slot on one engine; dropping it frees the slot and serves the queue.
pub struct Slot {
    slots: Arc<Slots>,
    engine: usize,
}

impl Slots {
    /// `per_engine[i]` slots on engine `i` (and the gauge of its warm containers), and at most
    /// `queue` runs waiting.
    pub fn new(per_engine: &[(usize, Arc<AtomicUsize>)], queue: usize) -> Arc<Self> {
        let engines = per_engine
            .iter()
            .map(|(total, warm)| EngineSlots {
                total: *total,
                running: 0,
                healthy: false,
                warm: warm.clone(),
            })
            .collect();
        Arc::new(Slots {
            state: Mutex::new(State {
                engines,
                turns: VecDeque::new(),
                queued: 0,
                next_waiter: 0,
                last: usize::MAX,
            }),
            queue,
        })
    }

    /// Runs waiting, and each engine's slots.
    pub fn counts(&self) -> (usize, Vec<EngineCounts>) {
        let s = lock(&self.state);
        let engines = s
            .engines
            .iter()
            .map(|e| EngineCounts {
                running: e.running,
                total: e.total,
            })
            .collect();
        (s.queued, engines)
    }

    /// A slot now, a place in the queue behind `party`'s earlier runs and in turn with other
    /// parties, or busy when the queue is full.
    pub fn admit(self: &Arc<Self>, party: &str) -> Result<Admitted, SandboxError> {
        let mut s = lock(&self.state);
        if s.queued == 0 {
            if let Some(engine) = s.pick() {
                s.engines[engine].running += 1;
                return Ok(Admitted::Now(Slot {
                    slots: self.clone(),
                    engine,
                }));
            }
        }
        if s.queued >= self.queue {
            let running = s.engines.iter().map(|e| e.running).sum();
            return Err(SandboxError::Busy {
                running,
                queued: s.queued,
            });
        }
        let id = s.next_waiter;
        s.next_waiter += 1;
        let (slot_tx, slot_rx) = oneshot::channel();
        let (ahead_tx, ahead_rx) = watch::channel(0);
        let waiter = Waiter {
            id,
            slot: slot_tx,
            ahead: ahead_tx,
        };
        match s.turns.iter_mut().find(|p| p.name == party) {
            Some(p) => p.waiting.push_back(waiter),
            None => s.turns.push_back(Party {
                name: party.to_owned(),
                waiting: VecDeque::from([waiter]),
            }),
        }
        s.queued += 1;
        s.tell_places();
        Ok(Admitted::Queued(Ticket {
            slots: self.clone(),
            id,
            slot: slot_rx,
            ahead: ahead_rx,
        }))
    }

    /// Marks engine `engine` healthy or not; a healthy one takes waiting runs at once.
    pub fn set_healthy(self: &Arc<Self>, engine: usize, healthy: bool) {
        let unsent = {
            let mut s = lock(&self.state);
            match s.engines.get_mut(engine) {
                Some(e) if e.healthy != healthy => e.healthy = healthy,
                _ => return,
            }
            s.serve(self)
        };
        drop(unsent);
    }

    /// Gives back a slot of `engine` and serves the queue.
    fn free(self: &Arc<Self>, engine: usize) {
        let unsent = {
            let mut s = lock(&self.state);
            if let Some(e) = s.engines.get_mut(engine) {
                e.running = e.running.saturating_sub(1);
            }
            s.serve(self)
        };
        // Slots whose waiter left between the check and the send: dropped here, outside the
        // lock, each frees itself and serves the queue again.
        drop(unsent);
    }

    fn leave(self: &Arc<Self>, id: u64) {
        let mut s = lock(&self.state);
        let mut found = false;
        for p in s.turns.iter_mut() {
            if let Some(i) = p.waiting.iter().position(|w| w.id == id) {
                p.waiting.remove(i);
                found = true;
                break;
            }
        }
        if found {
            s.queued -= 1;
            s.turns.retain(|p| !p.waiting.is_empty());
            s.tell_places();
        }
    }
}

impl State {
    /// The engine a run should go to now (see the module's doc), marked as the last chosen.
    fn pick(&mut self) -> Option<usize> {
        let any_healthy = self.engines.iter().any(|e| e.healthy);
        let n = self.engines.len();
        // Turns: 0 for the engine after the last chosen, n - 1 for the last chosen itself.
        let turn = |i: usize| (i + n - (self.last.wrapping_add(1) % n)) % n;
        let chosen = self
            .engines
            .iter()
            .enumerate()
            .filter(|(_, e)| (e.healthy || !any_healthy) && e.running < e.total)
            .max_by_key(|(i, e)| {
                let warm = e.warm.load(Relaxed) > 0;
                (warm, e.total - e.running, std::cmp::Reverse(turn(*i)))
            })
            .map(|(i, _)| i);
        if let Some(i) = chosen {
            self.last = i;
        }
        chosen
    }

    /// Hands free slots to waiting runs, parties in turn. Returns the slots whose waiter had
    /// gone (to be dropped by the caller once the lock is released).
    fn serve(&mut self, slots: &Arc<Slots>) -> Vec<Slot> {
        let mut unsent = Vec::new();
        let mut moved = false;
        while self.queued > 0 {
            let Some(engine) = self.pick() else { break };
            let Some(mut party) = self.turns.pop_front() else {
                break;
            };
            let waiter = party.waiting.pop_front();
            if !party.waiting.is_empty() {
                self.turns.push_back(party);
            }
            let Some(waiter) = waiter else { continue };
            self.queued -= 1;
            moved = true;
            if waiter.slot.is_closed() {
                continue;
            }
            self.engines[engine].running += 1;
            let slot = Slot {
                slots: slots.clone(),
                engine,
            };
            if let Err(slot) = waiter.slot.send(slot) {
                unsent.push(slot);
            }
        }
        if moved {
            self.tell_places();
        }
        unsent
    }

    /// Tells every waiting run how many will get a slot before it: with parties taking turns,
    /// the `k`-th waiting run of a party has its own party's `k` before it, and from every other
    /// party up to `k` runs (`k + 1` from parties whose turn comes first).
    fn tell_places(&self) {
        for (p, party) in self.turns.iter().enumerate() {
            for (k, waiter) in party.waiting.iter().enumerate() {
                let others: usize = self
                    .turns
                    .iter()
                    .enumerate()
                    .filter(|(q, _)| *q != p)
                    .map(|(q, other)| other.waiting.len().min(if q < p { k + 1 } else { k }))
                    .sum();
                waiter.ahead.send_if_modified(|a| {
                    let now = k + others;
                    std::mem::replace(a, now) != now
                });
            }
        }
    }
}

impl Ticket {
    /// Waits for a slot. `None` only if the sandbox is gone.
    pub async fn slot(&mut self) -> Option<Slot> {
        (&mut self.slot).await.ok()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.slots.leave(self.id);
        // A slot sent but not taken is in `self.slot`: dropped after this, outside the lock.
    }
}

impl Slot {
    /// The engine this slot is on.
    pub fn engine(&self) -> usize {
        self.engine
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.free(self.engine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn now(a: Result<Admitted, SandboxError>) -> Slot {
        match a {
            Ok(Admitted::Now(slot)) => slot,
            _ => panic!("expected a slot at once"),
        }
    }

    fn queued(a: Result<Admitted, SandboxError>) -> Ticket {
        match a {
            Ok(Admitted::Queued(t)) => t,
            Ok(Admitted::Now(_)) => panic!("expected a place in the queue, got a slot"),
            Err(e) => panic!("expected a place in the queue, got {e}"),
        }
    }

    fn cold(per_engine: &[usize]) -> Vec<(usize, Arc<AtomicUsize>)> {
        per_engine.iter().map(|&n| (n, Arc::default())).collect()
    }

    fn healthy(per_engine: &[usize], queue: usize) -> Arc<Slots> {
        let slots = Slots::new(&cold(per_engine), queue);
        for i in 0..per_engine.len() {
            slots.set_healthy(i, true);
        }
        slots
    }

    fn got(t: &mut Ticket) -> Option<Slot> {
        t.slot().now_or_never().flatten()
    }

    #[tokio::test]
    async fn a_full_queue_says_busy_and_frees_up_again() {
        let slots = healthy(&[1], 1);
        let first = now(slots.admit("a"));
        let mut second = queued(slots.admit("a"));
        match slots.admit("b") {
            Err(SandboxError::Busy {
                running: 1,
                queued: 1,
            }) => {}
            _ => panic!("expected busy"),
        }
        drop(first);
        let _second = got(&mut second).expect("the freed slot");
        assert_eq!(slots.counts().1[0].running, 1);
        assert!(slots.admit("b").is_ok());
    }

    #[tokio::test]
    async fn runs_go_to_the_healthy_engine_with_the_most_free_slots() {
        let slots = healthy(&[2, 3], 8);
        let engines: Vec<usize> = (0..5)
            .map(|_| now(slots.admit("a")))
            .map(|s| {
                let e = s.engine();
                std::mem::forget(s);
                e
            })
            .collect();
        assert_eq!(engines, vec![1, 0, 1, 0, 1]);
        // One engine down: runs go to the other only.
        let slots = healthy(&[2, 2], 8);
        slots.set_healthy(0, false);
        let a = now(slots.admit("a"));
        let b = now(slots.admit("a"));
        assert_eq!((a.engine(), b.engine()), (1, 1));
        let mut c = queued(slots.admit("a"));
        // It comes back: the waiting run takes one of its slots.
        slots.set_healthy(0, true);
        assert_eq!(got(&mut c).map(|s| s.engine()), Some(0));
    }

    #[tokio::test]
    async fn among_equals_runs_take_turns_and_a_warm_container_wins() {
        let slots = healthy(&[2, 2, 2], 8);
        let mut engines = Vec::new();
        for _ in 0..4 {
            let s = now(slots.admit("a"));
            engines.push(s.engine());
            // Each ends before the next: every engine is idle again.
        }
        assert_eq!(engines, vec![0, 1, 2, 0]);
        // Engine 2 alone has a warm container: it gets the run, fewer free slots and all.
        let warm = Arc::new(AtomicUsize::new(1));
        let slots = Slots::new(&[(2, Arc::default()), (1, warm.clone())], 8);
        slots.set_healthy(0, true);
        slots.set_healthy(1, true);
        assert_eq!(now(slots.admit("a")).engine(), 1);
        warm.store(0, Relaxed);
        assert_eq!(
            now(slots.admit("a")).engine(),
            0,
            "most free slots, none warm"
        );
    }

    #[tokio::test]
    async fn with_no_engine_healthy_runs_still_go_somewhere_and_fail_there() {
        let slots = Slots::new(&cold(&[1]), 4);
        let slot = now(slots.admit("a"));
        assert_eq!(slot.engine(), 0);
    }

    #[tokio::test]
    async fn one_party_burst_delays_another_by_one_run_per_party_ahead() {
        let slots = healthy(&[1], 64);
        let running = now(slots.admit("burst"));
        let mut burst: Vec<Ticket> = (0..20).map(|_| queued(slots.admit("burst"))).collect();
        let mut other = queued(slots.admit("other"));
        assert_eq!(
            *other.ahead.borrow(),
            1,
            "only the burst's first run is ahead"
        );
        assert_eq!(*burst[19].ahead.borrow(), 20);
        drop(running);
        let first = got(&mut burst[0]).expect("the burst's first");
        assert_eq!(*other.ahead.borrow(), 0);
        drop(first);
        let _other = got(&mut other).expect("the other party's run is next");
        assert!(got(&mut burst[1]).is_none());
    }

    #[tokio::test]
    async fn places_count_down_and_a_cancelled_run_leaves_the_queue() {
        let slots = healthy(&[1], 8);
        let running = now(slots.admit("a"));
        let mut a1 = queued(slots.admit("a"));
        let a2 = queued(slots.admit("a"));
        let mut b1 = queued(slots.admit("b"));
        // Turns: a, b, a.
        assert_eq!(
            (*a1.ahead.borrow(), *b1.ahead.borrow(), *a2.ahead.borrow()),
            (0, 1, 2)
        );
        drop(a2);
        assert_eq!(slots.counts().0, 2);
        drop(running);
        let s = got(&mut a1).expect("a1");
        assert_eq!(*b1.ahead.borrow(), 0);
        drop(s);
        assert!(got(&mut b1).is_some());
        assert_eq!(slots.counts().0, 0);
    }

    #[tokio::test]
    async fn a_slot_sent_to_a_run_that_left_before_taking_it_goes_to_the_next() {
        let slots = healthy(&[1], 8);
        let running = now(slots.admit("a"));
        let gone = queued(slots.admit("a"));
        let mut next = queued(slots.admit("b"));
        // The slot goes to `gone`, which is cancelled before it looks.
        drop(running);
        drop(gone);
        let _next = got(&mut next).expect("the slot `gone` left");
        assert_eq!(
            slots.counts(),
            (
                0,
                vec![EngineCounts {
                    running: 1,
                    total: 1
                }]
            )
        );
    }
}
