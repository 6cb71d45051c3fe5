//! Replay's reads, off the async runtime: per interview, the log's moment index and its text
//! index (the text at every edit as rope keyframes plus plain-text steps, see
//! [`duet_core::TextIndex`]), extended as the log grows, so scrubbing back and forth costs a
//! keyframe clone and a few hundred steps. A log the text index cannot hold (an embed in the
//! text) falls back to rebuilding the document from the nearest checkpoint or recent replay
//! state, cached too. Everything is held within one byte budget, least recently used out first.
//!
//! Every function here is synchronous and reads SQLite: call it from `spawn_blocking`. No lock
//! is held while a document is rebuilt; the cache holds encoded states and texts, never a yrs
//! `Doc`.

use duet_core::replay::{self, Base, Moments, ReplayState};
use duet_core::TextIndex;
use duet_protocol::{EventKind, InterviewId};
use duet_store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why a replay read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store could not be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored history cannot be replayed (a gap, an unreadable update).
    #[error("the log cannot be replayed: {0}")]
    Broken(#[from] duet_core::RebuildError),
}

struct Cached {
    state: Arc<ReplayState>,
    used: u64,
}

/// Records a text index may lag and still be extended while a request waits.
const SYNC_EXTEND: u64 = 256;

/// An interview's text index, and whether a thread is building it.
#[derive(Default)]
struct TextSlot {
    index: Mutex<TextIndex>,
    building: AtomicBool,
}

/// Brings `index` from its seq to `upto` with the edits the store holds.
fn extend_index(
    store: &dyn Store,
    id: &InterviewId,
    index: &mut TextIndex,
    upto: u64,
) -> Result<(), ReplayError> {
    let old = index.seq();
    let checkpoint = match old {
        0 => None,
        _ => store.checkpoint_at_or_before(id, old)?,
    };
    let from = checkpoint.as_ref().map_or(0, |cp| cp.seq);
    let catch_up = match old {
        0 => Vec::new(),
        _ => store.read_kinds_in(id, &[EventKind::Edit], from, old)?,
    };
    let new_edits = store.read_kinds_in(id, &[EventKind::Edit], old, upto)?;
    let base = checkpoint.as_ref().map(|cp| Base {
        seq: cp.seq,
        state: &cp.state,
    });
    index.extend(base, catch_up, new_edits, upto)?;
    Ok(())
}

struct Entry {
    moments: Arc<Mutex<Moments>>,
    text: Arc<TextSlot>,
    states: BTreeMap<u64, Cached>,
    used: u64,
}

impl Entry {
    fn bytes(&self) -> usize {
        let moments = self.moments.lock().map_or(0, |m| m.heap_bytes());
        let text = self.text.index.lock().map_or(0, |t| t.approx_bytes());
        moments
            + text
            + self
                .states
                .values()
                .map(|c| state_bytes(&c.state))
                .sum::<usize>()
    }
}

fn state_bytes(s: &ReplayState) -> usize {
    s.state.len() + s.text.len() + 64
}

#[derive(Default)]
struct Inner {
    interviews: HashMap<InterviewId, Entry>,
    clock: u64,
    bytes: usize,
}

/// Recent replay states per interview, least recently used evicted first, within a byte budget.
pub struct ReplayCache {
    inner: Mutex<Inner>,
    budget: usize,
}

impl ReplayCache {
    pub fn new(budget: usize) -> ReplayCache {
        ReplayCache {
            inner: Mutex::new(Inner::default()),
            budget,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes the cache holds now.
    pub fn bytes(&self) -> usize {
        self.inner().bytes
    }

    /// The interview's moment index, brought up to the newest stored record.
    pub fn moments(
        &self,
        store: &dyn Store,
        id: &InterviewId,
    ) -> Result<Arc<Mutex<Moments>>, ReplayError> {
        let moments = {
            let mut inner = self.inner();
            inner.clock += 1;
            let clock = inner.clock;
            let entry = inner.interviews.entry(id.clone()).or_insert_with(|| Entry {
                moments: Arc::default(),
                text: Arc::default(),
                states: BTreeMap::new(),
                used: clock,
            });
            entry.used = clock;
            entry.moments.clone()
        };
        let before = {
            let mut m = moments.lock().unwrap_or_else(|p| p.into_inner());
            let before = m.heap_bytes();
            let new = store.read_index(id, m.last_seq())?;
            m.extend(&new)?;
            m.heap_bytes() as isize - before as isize
        };
        if before != 0 {
            let mut inner = self.inner();
            inner.bytes = inner.bytes.saturating_add_signed(before);
            self.evict(&mut inner);
        }
        Ok(moments)
    }

    /// The text of `main.py` at `seq` (which the caller checked is in the log). `moments` is
    /// the interview's index from [`ReplayCache::moments`].
    ///
    /// From the text index when it reaches `seq`. A few records behind (a live session) it is
    /// extended here; further behind (the first replay of a long session: building costs
    /// about the length of the text per edit) it is built on a thread of its own while this
    /// answer, and those until it is ready, rebuild the document from the nearest checkpoint.
    pub fn text_at(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        seq: u64,
    ) -> Result<String, ReplayError> {
        let upto = moments.lock().unwrap_or_else(|p| p.into_inner()).last_seq();
        let slot = self
            .inner()
            .interviews
            .get(id)
            .map(|e| e.text.clone())
            .unwrap_or_default();
        let behind = {
            let mut index = slot.index.lock().unwrap_or_else(|p| p.into_inner());
            if index.is_exact() && index.seq() < upto && upto - index.seq() <= SYNC_EXTEND {
                let before = index.approx_bytes();
                extend_index(&**store, id, &mut index, upto)?;
                self.grew(index.approx_bytes() as isize - before as isize);
            }
            if let Some(text) = index.text_at(seq) {
                return Ok(text);
            }
            index.is_exact() && index.seq() < upto
        };
        if behind && !slot.building.swap(true, Ordering::AcqRel) {
            let (cache, store, id, job) = (self.clone(), store.clone(), id.clone(), slot.clone());
            let spawned = std::thread::Builder::new()
                .name("duet-replay-index".into())
                .spawn(move || {
                    let mut fresh = TextIndex::default();
                    let began = std::time::Instant::now();
                    match extend_index(&*store, &id, &mut fresh, upto) {
                        Ok(()) => {
                            tracing::info!(interview = %id, seq = upto, ms = began.elapsed().as_millis() as u64, bytes = fresh.approx_bytes(), "replay: text index built");
                            let mut index = job.index.lock().unwrap_or_else(|p| p.into_inner());
                            if fresh.seq() > index.seq() || !fresh.is_exact() {
                                let before = index.approx_bytes();
                                *index = fresh;
                                cache.grew(index.approx_bytes() as isize - before as isize);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(interview = %id, error = %e, "replay: building the text index failed")
                        }
                    }
                    job.building.store(false, Ordering::Release);
                });
            if spawned.is_err() {
                slot.building.store(false, Ordering::Release);
            }
        }
        // Not indexed (yet), or not indexable as plain text: rebuild the document instead.
        Ok(self.state_at(&**store, id, moments, seq)?.text.clone())
    }

    /// How far the interview's text index reaches (0 if it has none).
    pub fn indexed_seq(&self, id: &InterviewId) -> u64 {
        let slot = self.inner().interviews.get(id).map(|e| e.text.clone());
        slot.map_or(0, |s| {
            s.index.lock().unwrap_or_else(|p| p.into_inner()).seq()
        })
    }

    fn grew(&self, delta: isize) {
        if delta != 0 {
            let mut inner = self.inner();
            inner.bytes = inner.bytes.saturating_add_signed(delta);
            self.evict(&mut inner);
        }
    }

    /// The document at `seq` (which the caller checked is in the log), rebuilt from the
    /// nearest checkpoint or cached replay state. `moments` is the interview's index from
    /// [`ReplayCache::moments`].
    pub fn state_at(
        &self,
        store: &dyn Store,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        seq: u64,
    ) -> Result<Arc<ReplayState>, ReplayError> {
        // The document changes only at edits: every seq after an edit shares its state.
        let key = moments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .edit_at_or_before(seq);
        let base = {
            let mut inner = self.inner();
            inner.clock += 1;
            let clock = inner.clock;
            let entry = inner.interviews.get_mut(id);
            let found = entry.and_then(|e| {
                e.used = clock;
                e.states.range_mut(..=key).next_back().map(|(_, c)| {
                    c.used = clock;
                    c.state.clone()
                })
            });
            found
        };
        if let Some(hit) = base.as_ref().filter(|b| b.seq == key) {
            return Ok(hit.clone());
        }
        let checkpoint = store.checkpoint_at_or_before(id, key)?;
        let cached_seq = base.as_ref().map(|b| b.seq);
        let state = match (&checkpoint, &base) {
            (Some(cp), _) if cached_seq.is_none_or(|s| cp.seq > s) => {
                let edits = store.read_kinds_in(id, &[EventKind::Edit], cp.seq, key)?;
                replay::state_at(
                    Some(Base {
                        seq: cp.seq,
                        state: &cp.state,
                    }),
                    edits,
                    key,
                )?
            }
            (_, Some(b)) => {
                let edits = store.read_kinds_in(id, &[EventKind::Edit], b.seq, key)?;
                replay::state_at(
                    Some(Base {
                        seq: b.seq,
                        state: &b.state,
                    }),
                    edits,
                    key,
                )?
            }
            _ => {
                let edits = store.read_kinds_in(id, &[EventKind::Edit], 0, key)?;
                replay::state_at(None, edits, key)?
            }
        };
        let state = Arc::new(state);
        self.insert(id, state.clone());
        Ok(state)
    }

    fn insert(&self, id: &InterviewId, state: Arc<ReplayState>) {
        let size = state_bytes(&state);
        if size > self.budget {
            return;
        }
        let mut inner = self.inner();
        inner.clock += 1;
        let clock = inner.clock;
        let Some(entry) = inner.interviews.get_mut(id) else {
            return;
        };
        let old = entry
            .states
            .insert(state.seq, Cached { state, used: clock });
        let freed = old.map_or(0, |c| state_bytes(&c.state));
        inner.bytes = inner.bytes + size - freed.min(inner.bytes + size);
        self.evict(&mut inner);
    }

    /// Drops least recently used states (then whole interviews) until within the budget.
    fn evict(&self, inner: &mut Inner) {
        while inner.bytes > self.budget {
            let oldest_state = inner
                .interviews
                .iter()
                .flat_map(|(id, e)| e.states.iter().map(move |(seq, c)| (c.used, id, *seq)))
                .min_by_key(|(used, _, _)| *used)
                .map(|(_, id, seq)| (id.clone(), seq));
            if let Some((id, seq)) = oldest_state {
                if let Some(c) = inner
                    .interviews
                    .get_mut(&id)
                    .and_then(|e| e.states.remove(&seq))
                {
                    inner.bytes = inner.bytes.saturating_sub(state_bytes(&c.state));
                }
                continue;
            }
            let oldest = inner
                .interviews
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| id.clone());
            match oldest.and_then(|id| inner.interviews.remove(&id)) {
                Some(entry) => inner.bytes = inner.bytes.saturating_sub(entry.bytes()),
                None => {
                    inner.bytes = 0;
                    return;
                }
            }
        }
    }
}
