//! Replay's reads, off the async runtime: per interview, the log's moment index and its text
//! index (every file's text at every edit as rope keyframes plus plain-text steps, the board's
//! writes per element and the file list's changes, see [`duet_core::TextIndex`]), extended as
//! the log grows, so scrubbing back and forth costs a
//! keyframe clone and a few hundred steps. The index is built inside the first request that
//! needs it (a few microseconds an edit: the first replay after a restart of a two-hour
//! session waits a fraction of a second, once), or on a thread of its own for a log longer
//! than that. A log the text index cannot hold (one it cannot follow, or past its byte limit)
//! falls back to rebuilding the document from the nearest checkpoint or recent replay state,
//! cached too. Everything is held within one byte budget, least recently used out first.
//!
//! Every function here is synchronous and reads SQLite: call it from `spawn_blocking`. No lock
//! is held while a document is rebuilt; the cache holds encoded states and texts, never a yrs
//! `Doc`.

use duet_core::replay::{self, Base, EditFacts, Moments, ReplayState};
use duet_core::{DocAt, TextIndex};
use duet_protocol::{EventKind, InterviewId};
use duet_store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Records a text index may lag and still be built or extended while a request waits: a build
/// costs a few microseconds an edit (the 50,000 edits of a two-hour session, about 0.2 s of a
/// core in `text_index_cost`, see BENCHMARKS.md), so the first replay after a restart builds
/// inline rather than answering from checkpoints meanwhile; further behind, it builds on a
/// thread of its own.
pub const INLINE_BUILD_RECORDS: u64 = 65_536;

/// An interview's text index, and whether a thread is building it.
#[derive(Default)]
struct TextSlot {
    index: Mutex<TextIndex>,
    building: AtomicBool,
}

/// Brings `index` from its seq to `upto` with the edits the store holds; an index that grows
/// past `limit` bytes gives up (see [`TextIndex::set_limit`]).
fn extend_index(
    store: &dyn Store,
    id: &InterviewId,
    index: &mut TextIndex,
    upto: u64,
    limit: usize,
) -> Result<(), ReplayError> {
    index.set_limit(limit);
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
    /// The sizes of `moments` and `text` as last reported to the cache. Kept here, under the
    /// cache's lock, so eviction never locks an index (see [`ReplayCache`] on lock order).
    moments_bytes: usize,
    text_bytes: usize,
}

impl Entry {
    fn new(clock: u64) -> Entry {
        Entry {
            moments: Arc::default(),
            text: Arc::default(),
            states: BTreeMap::new(),
            used: clock,
            moments_bytes: 0,
            text_bytes: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.moments_bytes
            + self.text_bytes
            + self
                .states
                .values()
                .map(|c| state_bytes(&c.state))
                .sum::<usize>()
    }
}

fn state_bytes(s: &ReplayState) -> usize {
    let files: usize = s
        .doc
        .files
        .iter()
        .map(|(p, t)| p.len() + t.len() + 48)
        .sum();
    let board: usize = s
        .doc
        .board
        .iter()
        .map(|(k, v)| k.len() + v.len() + 48)
        .sum();
    s.state.len() + s.text.len() + files + board + 64
}

#[derive(Default)]
struct Inner {
    interviews: HashMap<InterviewId, Entry>,
    clock: u64,
    bytes: usize,
}

/// Which of an interview's indexes changed size.
enum Part<'a> {
    Moments(&'a Arc<Mutex<Moments>>),
    Text(&'a Arc<TextSlot>),
}

/// Recent replay states per interview, least recently used evicted first, within a byte budget.
///
/// Lock order: the cache's own lock is a leaf. Nothing else (an interview's moment index, its
/// text index) is ever locked while it is held, and it is taken only after an index's lock is
/// released: sizes are measured under the index's lock, then reported with [`Part`] to the
/// cache, which keeps them in the entry. An index that was evicted meanwhile reports to
/// nothing (its memory goes with the last `Arc`).
pub struct ReplayCache {
    inner: Mutex<Inner>,
    budget: usize,
    /// See [`INLINE_BUILD_RECORDS`].
    inline_records: u64,
    /// Text index builds running now, across interviews (at most [`MAX_BUILDS`]).
    builds: AtomicUsize,
}

/// Text index builds allowed at once: each holds a core while it runs.
const MAX_BUILDS: usize = 2;

/// The right to build one interview's text index: taken only when nobody builds that index and
/// fewer than [`MAX_BUILDS`] builds run; dropping it (the build ended, or its thread could not
/// start) gives both back.
struct BuildPermit {
    cache: Arc<ReplayCache>,
    slot: Arc<TextSlot>,
}

impl BuildPermit {
    fn take(cache: &Arc<ReplayCache>, slot: &Arc<TextSlot>) -> Option<BuildPermit> {
        if slot.building.swap(true, Ordering::AcqRel) {
            return None;
        }
        if cache.builds.fetch_add(1, Ordering::AcqRel) >= MAX_BUILDS {
            cache.builds.fetch_sub(1, Ordering::AcqRel);
            slot.building.store(false, Ordering::Release);
            return None;
        }
        Some(BuildPermit {
            cache: cache.clone(),
            slot: slot.clone(),
        })
    }
}

impl Drop for BuildPermit {
    fn drop(&mut self) {
        self.cache.builds.fetch_sub(1, Ordering::AcqRel);
        self.slot.building.store(false, Ordering::Release);
    }
}

impl ReplayCache {
    pub fn new(budget: usize) -> ReplayCache {
        ReplayCache::with_inline_build(budget, INLINE_BUILD_RECORDS)
    }

    /// A cache whose requests build or extend a text index lagging at most `records` records
    /// themselves (and leave a longer build to a thread of its own).
    pub fn with_inline_build(budget: usize, records: u64) -> ReplayCache {
        ReplayCache {
            inner: Mutex::new(Inner::default()),
            budget,
            inline_records: records,
            builds: AtomicUsize::new(0),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes the cache holds now.
    pub fn bytes(&self) -> usize {
        self.inner().bytes
    }

    /// The largest text index one interview may build: past it the index gives up and replay
    /// rebuilds documents from checkpoints instead, so no log can make a build take the whole
    /// budget (or the memory and time a build over it would cost).
    fn index_limit(&self) -> usize {
        self.budget / 4
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
            let entry = inner
                .interviews
                .entry(id.clone())
                .or_insert_with(|| Entry::new(clock));
            entry.used = clock;
            entry.moments.clone()
        };
        let size = {
            let mut m = moments.lock().unwrap_or_else(|p| p.into_inner());
            let new = store.read_index(id, m.last_seq())?;
            m.extend(&new)?;
            m.heap_bytes()
        };
        self.report(id, Part::Moments(&moments), size);
        Ok(moments)
    }

    /// The text of `main.py` at `seq` (which the caller checked is in the log). `moments` is
    /// the interview's index from [`ReplayCache::moments`]. See [`ReplayCache::doc_at`].
    pub fn text_at(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        seq: u64,
    ) -> Result<String, ReplayError> {
        self.answer(
            store,
            id,
            moments,
            seq,
            |index| index.text_at(seq),
            |state| state.text.clone(),
        )
    }

    /// Every file listed at `seq` with its text, and the board's elements then (`seq` is one
    /// the caller checked is in the log). `moments` is the interview's index from
    /// [`ReplayCache::moments`].
    ///
    /// From the text index when it reaches `seq`. Up to [`INLINE_BUILD_RECORDS`] behind (a
    /// live session, or the first replay of a long one after a restart) it is built or
    /// extended here; further behind it is built on a thread of its own while this answer,
    /// and those until it is ready, rebuild the document from the nearest checkpoint.
    pub fn doc_at(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        seq: u64,
    ) -> Result<DocAt, ReplayError> {
        self.answer(
            store,
            id,
            moments,
            seq,
            |index| index.doc_at(seq),
            |state| state.doc.clone(),
        )
    }

    /// What each edit in `(after, upto]` changed (see [`TextIndex::edit_facts`]), for the
    /// timeline; empty while the index is not built or cannot answer (the timeline then names
    /// no file).
    pub fn edit_facts(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        after: u64,
        upto: u64,
    ) -> Result<EditFacts, ReplayError> {
        let found = self.from_index(store, id, moments, |index| index.edit_facts(after, upto))?;
        Ok(found.unwrap_or_default())
    }

    /// `indexed`'s answer from the text index (extended first if it lags a little), else
    /// `rebuilt`'s from the document rebuilt at `seq`.
    fn answer<T>(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        seq: u64,
        indexed: impl FnOnce(&TextIndex) -> Option<T>,
        rebuilt: impl FnOnce(&ReplayState) -> T,
    ) -> Result<T, ReplayError> {
        if let Some(found) = self.from_index(store, id, moments, indexed)? {
            return Ok(found);
        }
        // Not indexed (yet), or not indexable as plain text: rebuild the document instead.
        Ok(rebuilt(&*self.state_at(&**store, id, moments, seq)?))
    }

    /// `indexed`'s answer from the interview's text index, extended here first if it lags at
    /// most [`INLINE_BUILD_RECORDS`] (further behind, a thread of its own builds it and this
    /// answers `None`).
    fn from_index<T>(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        moments: &Mutex<Moments>,
        indexed: impl FnOnce(&TextIndex) -> Option<T>,
    ) -> Result<Option<T>, ReplayError> {
        let upto = moments.lock().unwrap_or_else(|p| p.into_inner()).last_seq();
        let slot = self
            .inner()
            .interviews
            .get(id)
            .map(|e| e.text.clone())
            .unwrap_or_default();
        let limit = self.index_limit();
        let (found, behind, size) = {
            let mut index = slot.index.lock().unwrap_or_else(|p| p.into_inner());
            if index.is_exact() && index.seq() < upto && upto - index.seq() <= self.inline_records {
                let began = std::time::Instant::now();
                let from = index.seq();
                extend_index(&**store, id, &mut index, upto, limit)?;
                if let Some(why) = index.gave_up_because() {
                    tracing::info!(interview = %id, seq = upto, why, "replay: the text index gave up; snapshots are rebuilt from checkpoints");
                } else if from == 0 {
                    tracing::info!(interview = %id, seq = upto, ms = began.elapsed().as_millis() as u64, bytes = index.approx_bytes(), "replay: text index built");
                }
            }
            let behind = index.is_exact() && index.seq() < upto;
            (indexed(&index), behind, index.approx_bytes())
        };
        self.report(id, Part::Text(&slot), size);
        if found.is_none() && behind {
            self.build_in_background(store, id, &slot, upto);
        }
        Ok(found)
    }

    /// Builds the interview's text index up to `upto` on a thread of its own, unless one is
    /// building it already or [`MAX_BUILDS`] are running (a later request tries again).
    fn build_in_background(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        id: &InterviewId,
        slot: &Arc<TextSlot>,
        upto: u64,
    ) {
        let Some(permit) = BuildPermit::take(self, slot) else {
            return;
        };
        let (store, id) = (store.clone(), id.clone());
        // If the thread cannot be spawned, the closure and the permit in it are dropped here.
        let _ = std::thread::Builder::new()
            .name("duet-replay-index".into())
            .spawn(move || {
                let (cache, job) = (&permit.cache, &permit.slot);
                let mut fresh = TextIndex::default();
                let began = std::time::Instant::now();
                match extend_index(&*store, &id, &mut fresh, upto, cache.index_limit()) {
                    Ok(()) => {
                        tracing::info!(interview = %id, seq = upto, ms = began.elapsed().as_millis() as u64, bytes = fresh.approx_bytes(), exact = fresh.is_exact(), why = fresh.gave_up_because(), "replay: text index built");
                        let size = {
                            let mut index = job.index.lock().unwrap_or_else(|p| p.into_inner());
                            if fresh.seq() > index.seq() || !fresh.is_exact() {
                                *index = fresh;
                            }
                            index.approx_bytes()
                        };
                        cache.report(&id, Part::Text(job), size);
                    }
                    Err(e) => {
                        tracing::warn!(interview = %id, error = %e, "replay: building the text index failed")
                    }
                }
            });
    }

    /// How far the interview's text index reaches (0 if it has none).
    pub fn indexed_seq(&self, id: &InterviewId) -> u64 {
        let slot = self.inner().interviews.get(id).map(|e| e.text.clone());
        slot.map_or(0, |s| {
            s.index.lock().unwrap_or_else(|p| p.into_inner()).seq()
        })
    }

    /// Records the new size of one of an interview's indexes (measured by the caller, whose
    /// lock on that index is already released), then evicts down to the budget.
    fn report(&self, id: &InterviewId, part: Part<'_>, size: usize) {
        let mut inner = self.inner();
        let Some(entry) = inner.interviews.get_mut(id) else {
            return;
        };
        let slot = match part {
            Part::Moments(m) if Arc::ptr_eq(m, &entry.moments) => &mut entry.moments_bytes,
            Part::Text(t) if Arc::ptr_eq(t, &entry.text) => &mut entry.text_bytes,
            _ => return, // the interview was evicted and loaded anew meanwhile
        };
        let old = std::mem::replace(slot, size);
        if old == size {
            return;
        }
        inner.bytes = (inner.bytes + size).saturating_sub(old);
        self.evict(&mut inner);
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
