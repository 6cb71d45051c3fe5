//! The warm pool: containers created, attached and started ahead of time, their runner waiting
//! on stdin with the interpreter loaded. Each serves one run and is then removed; the pool
//! refills in the background.
//!
//! Its size follows demand ([`Demand`]): between a minimum and a maximum per engine, enough for
//! the runs that arrive while one slow refill takes place, at their peaks. Runs arrive at random
//! (people press Run independently), so the number arriving during a refill is taken as Poisson
//! with mean (runs a second) × (a slow refill's time: the 90th percentile of the last twenty
//! measured), and the pool holds its 99.5th percentile: a run finds the pool empty far less
//! than once in a hundred. The rate is the
//! busier of the last `pool_window` and its last sixth, so a burst counts at once and a lull
//! only slowly. The pool grows as soon as the rate does, ahead of the runs that would otherwise
//! start cold, with up to two refills at once; past the target, idle containers are removed one
//! a second. A run that finds the pool empty waits for the refill its arrival set off (or one
//! already under way) rather than starting a container from nothing: the refill is further
//! along, and a cold start beside it on a busy engine slows both.
//!
//! Measured (BENCHMARKS.md, capacity, build 3): at 50 interviews (about 100 runs a minute) on
//! one 2-core engine, no run started cold and run to first byte p99 was 115 to 129 ms; sized
//! for the mean refill and without the wait, 3 to 6% of runs started cold there and the p99
//! was 331 ms.
//!
//! Warm runners do not preload pytest: a worker holding pytest costs ~25 MiB of the run's
//! memory limit while idle, and killing it when the run is a program (the common case) takes
//! CPU from the program's start-up: measured, a warm program's first byte went from ~16 ms
//! to ~35 ms. A pytest run pays pytest's import (~0.2 s) instead.

use crate::container::{new_name, same_container_limits, spec, Attached};
use crate::docker::{abandon_launch, spawn_launch, Inner};
use crate::engine::lock;
use crate::Limits;
use futures_util::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often idle warm containers are checked for life and the target is looked at again.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Refills under way at once, per engine.
const FILL_PARALLEL: usize = 2;
/// The share of refill windows whose arrivals the pool covers.
const COVER: f64 = 0.995;
/// What a refill is taken to cost before one was measured.
const FILL_GUESS: Duration = Duration::from_millis(500);
/// Refills remembered for their cost.
const FILLS_KEPT: usize = 20;
/// How long a run waiting for a refill gives the filler to start one.
const FILLER_START: Duration = Duration::from_millis(200);

/// Runs arriving and refills' cost, for the pool's target size.
pub struct Demand {
    window: Duration,
    /// When runs asked this engine's pool for a container, within the window, oldest first.
    arrivals: VecDeque<Instant>,
    /// How long the last refills took, oldest first (at most [`FILLS_KEPT`]).
    fills: VecDeque<Duration>,
}

impl Demand {
    pub fn new(window: Duration) -> Self {
        Demand {
            window,
            arrivals: VecDeque::new(),
            fills: VecDeque::new(),
        }
    }

    pub fn arrived(&mut self, now: Instant) {
        self.arrivals.push_back(now);
        self.forget(now);
    }

    pub fn filled(&mut self, took: Duration) {
        if self.fills.len() == FILLS_KEPT {
            self.fills.pop_front();
        }
        self.fills.push_back(took);
    }

    /// What a refill is taken to cost: the 90th percentile of the last refills. Not their
    /// mean: refills are slow exactly when runs bunch (the runs' own start-up and the refills
    /// share the CPU), and those are the moments a pool sized for the mean runs dry.
    fn fill_cost(&self) -> Duration {
        let mut sorted: Vec<Duration> = self.fills.iter().copied().collect();
        sorted.sort_unstable();
        match sorted.len() {
            0 => FILL_GUESS,
            n => sorted[(n * 9).div_ceil(10) - 1],
        }
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&first) = self.arrivals.front() {
            if now.saturating_duration_since(first) <= self.window {
                break;
            }
            self.arrivals.pop_front();
        }
    }

    /// Runs per second: the busier of the whole window and its last sixth.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.forget(now);
        let long = self.arrivals.len() as f64 / self.window.as_secs_f64();
        let short_window = self.window / 6;
        let recent = self
            .arrivals
            .iter()
            .rev()
            .take_while(|&&t| now.saturating_duration_since(t) <= short_window)
            .count();
        long.max(recent as f64 / short_window.as_secs_f64())
    }

    /// Warm containers to keep: what arrives during a slow refill (the 90th percentile of the
    /// last ones) at its 99.5th percentile, within bounds.
    pub fn target(&mut self, now: Instant, min: usize, max: usize) -> usize {
        let fill = self.fill_cost().as_secs_f64();
        let need = poisson_quantile(self.rate(now) * fill, COVER);
        need.clamp(min, max.max(min))
    }
}

/// The smallest `k` with P(X <= k) >= `q` for X ~ Poisson(`mean`) (at most 1,000).
fn poisson_quantile(mean: f64, q: f64) -> usize {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    let mut p = (-mean).exp();
    let mut cumulative = p;
    let mut k = 0;
    while cumulative < q && k < 1000 {
        k += 1;
        p *= mean / k as f64;
        cumulative += p;
    }
    k
}

pub struct Pool {
    min: usize,
    max: usize,
    ready: Mutex<VecDeque<Attached>>,
    /// How many are ready, for the slots' choice of engine (kept equal to `ready`'s length).
    gauge: Arc<AtomicUsize>,
    demand: Mutex<Demand>,
    /// The size last aimed at.
    target: AtomicUsize,
    wake: Notify,
    /// Refills under way (kept by the filler) and runs waiting for one of them.
    launching: AtomicUsize,
    waiting: AtomicUsize,
    /// A container was put in `ready`.
    filled: Notify,
}

impl Pool {
    pub fn new(min: usize, max: usize, window: Duration, gauge: Arc<AtomicUsize>) -> Self {
        Pool {
            min,
            max,
            ready: Mutex::new(VecDeque::new()),
            gauge,
            demand: Mutex::new(Demand::new(window)),
            target: AtomicUsize::new(min),
            wake: Notify::new(),
            launching: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            filled: Notify::new(),
        }
    }

    pub fn warm(&self) -> usize {
        lock(&self.ready).len()
    }

    /// Changes the ready containers and publishes their number.
    fn with_ready<R>(&self, change: impl FnOnce(&mut VecDeque<Attached>) -> R) -> R {
        let mut ready = lock(&self.ready);
        let result = change(&mut ready);
        self.gauge.store(ready.len(), Relaxed);
        result
    }

    /// The size the pool aims at now.
    pub fn target(&self) -> usize {
        self.target.load(Relaxed)
    }

    fn retarget(&self) -> usize {
        let target = lock(&self.demand).target(Instant::now(), self.min, self.max);
        self.target.store(target, Relaxed);
        target
    }

    /// A live warm container made with `defaults` (the config's limits) that also fit `limits`.
    pub fn take(&self, limits: &Limits, defaults: &Limits) -> Option<Attached> {
        if self.max == 0 || !same_container_limits(limits, defaults) {
            return None;
        }
        lock(&self.demand).arrived(Instant::now());
        let taken = self.take_ready();
        self.wake.notify_one();
        taken
    }

    /// When [`Pool::take`] found nothing, waits for a refill rather than having the run start a
    /// container from nothing: a refill under way (or the one `take` just asked the filler for)
    /// is ready sooner than a cold start begun now, and a cold start beside it on a busy engine
    /// slows both. As many runs wait as refills are coming (those under way, else those the
    /// filler starts at once); each waits until a refill is ready or none is coming any more,
    /// at most `bound`. `None` sends the run to a cold start.
    pub async fn wait_for_refill(
        &self,
        limits: &Limits,
        defaults: &Limits,
        bound: Duration,
    ) -> Option<Attached> {
        if self.max == 0 || !same_container_limits(limits, defaults) {
            return None;
        }
        let coming = self
            .launching
            .load(Relaxed)
            .max(self.target().min(FILL_PARALLEL));
        if self.waiting.fetch_add(1, Relaxed) >= coming {
            self.waiting.fetch_sub(1, Relaxed);
            return None;
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Relaxed);
            }
        }
        let _waiting = Waiting(&self.waiting);
        let deadline = Instant::now() + bound;
        let mut none_under_way_since: Option<Instant> = None;
        loop {
            let notified = self.filled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(c) = self.take_ready() {
                return Some(c);
            }
            let until = if self.launching.load(Relaxed) > 0 {
                none_under_way_since = None;
                deadline
            } else {
                // None under way: the filler, woken by `take`, starts one at once; one that has
                // not within a moment is not going to (it is backing off after failures).
                let since = *none_under_way_since.get_or_insert_with(Instant::now);
                (since + FILLER_START).min(deadline)
            };
            if Instant::now() >= until {
                return None;
            }
            // Woken when a refill is ready or ends, or a launch starts.
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// The oldest live ready container, if any (dead ones found on the way are dropped).
    fn take_ready(&self) -> Option<Attached> {
        let mut dead = Vec::new();
        let taken = self.with_ready(|ready| {
            while let Some(mut c) = ready.pop_front() {
                if is_alive(&mut c) {
                    return Some(c);
                }
                dead.push(c);
            }
            None
        });
        bury(dead);
        taken
    }

    /// Drops warm containers that died while idle (an engine restart, a kill from outside).
    fn prune(&self) {
        let mut dead = Vec::new();
        self.with_ready(|ready| {
            let mut alive = VecDeque::new();
            for mut c in ready.drain(..) {
                if is_alive(&mut c) {
                    alive.push_back(c);
                } else {
                    dead.push(c);
                }
            }
            *ready = alive;
        });
        bury(dead);
    }

    /// Takes out one idle container beyond `target`, the oldest (to be removed).
    fn excess(&self, target: usize) -> Option<Attached> {
        self.with_ready(|ready| (ready.len() > target).then(|| ready.pop_front()).flatten())
    }

    /// Asks the filler to look at the pool now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Removes every warm container (at shutdown).
    pub async fn drain(&self) {
        let all: Vec<Attached> = self.with_ready(|ready| ready.drain(..).collect());
        for c in all {
            let Attached {
                owned,
                output,
                input,
            } = c;
            drop((output, input));
            let _ = owned.remove().await;
        }
    }
}

/// An idle runner prints nothing: any output, or the end of it, means it died.
fn is_alive(c: &mut Attached) -> bool {
    c.output.next().now_or_never().is_none()
}

/// Dropping a warm container's guard removes it in the background.
fn bury(dead: Vec<Attached>) {
    for c in dead {
        tracing::warn!(container = %c.owned.name(), "sandbox: a warm container died while idle");
    }
}

/// Keeps environment `env`'s pool at its target until shutdown; removes what it was warming
/// when it stops.
pub async fn fill(inner: Arc<Inner>, env: usize) {
    let Some(pool) = inner.pools.get(env) else {
        return;
    };
    if pool.max == 0 {
        return;
    }
    let mut launches: JoinSet<(Result<Option<Attached>, String>, Duration)> = JoinSet::new();
    let mut backoff = BACKOFF_MIN;
    let mut retry_at: Option<Instant> = None;
    while !inner.shutdown.is_cancelled() {
        pool.prune();
        // No image of this environment on the engine (health says what to build): nothing to
        // warm, and failing creates would only count against the engine.
        let target = if inner.engine.health().has(env) {
            pool.retarget()
        } else {
            0
        };
        // One idle container past the target goes per round (a round waits a second at most).
        if let Some(extra) = pool.excess(target) {
            let _ = extra.owned.remove().await;
        }
        let now = Instant::now();
        if retry_at.is_some_and(|t| now >= t) {
            retry_at = None;
        }
        while retry_at.is_none()
            && pool.warm() + launches.len() < target
            && launches.len() < FILL_PARALLEL
        {
            let inner = inner.clone();
            launches.spawn(async move {
                let started = Instant::now();
                (warm_one(&inner, env).await, started.elapsed())
            });
        }
        pool.launching.store(launches.len(), Relaxed);
        // Runs waiting for a refill look again: one started, ended, or is ready.
        pool.filled.notify_waiters();
        let pause = retry_at.map_or(PRUNE_EVERY, |t| t.saturating_duration_since(now));
        tokio::select! {
            Some(done) = launches.join_next(), if !launches.is_empty() => match done {
                Ok((Ok(Some(c)), took)) => {
                    backoff = BACKOFF_MIN;
                    lock(&pool.demand).filled(took);
                    pool.with_ready(|ready| ready.push_back(c));
                }
                Ok((Ok(None), _)) => {}
                Ok((Err(e), _)) => {
                    tracing::warn!(
                        engine = %inner.engine.addr(),
                        "sandbox: could not warm a container: {}",
                        crate::escape::escape(&e)
                    );
                    inner.engine.failed();
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(join) => tracing::warn!("sandbox: a refill task failed: {join}"),
            },
            _ = pool.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = inner.shutdown.cancelled() => {}
        }
        pool.launching.store(launches.len(), Relaxed);
        pool.filled.notify_waiters();
    }
    // Containers being warmed now are removed before the filler ends.
    pool.launching.store(0, Relaxed);
    pool.filled.notify_waiters();
    while let Some(done) = launches.join_next().await {
        if let Ok((Ok(Some(c)), _)) = done {
            let _ = c.owned.remove().await;
        }
    }
}

/// One warm container, or None at shutdown (while waiting for a free uid).
async fn warm_one(inner: &Arc<Inner>, env: usize) -> Result<Option<Attached>, String> {
    let image = match inner.config.environments.get(env) {
        Some(e) => e.image.clone(),
        None => return Ok(None),
    };
    let docker = inner.engine.client().await?;
    let name = new_name(&inner.config.instance);
    let owned = tokio::select! {
        o = inner.registry.claim(docker.clone(), name) => o,
        _ = inner.shutdown.cancelled() => return Ok(None),
    };
    let body = spec(
        &inner.config,
        &image,
        &inner.config.limits,
        false,
        owned.uid(),
    );
    let mut launching = spawn_launch(inner, &docker, owned, body);
    match tokio::time::timeout(inner.config.setup_timeout, &mut launching).await {
        Ok(Ok(r)) => r.map(Some),
        Ok(Err(join)) => Err(format!("starting a container: {join}")),
        Err(_) => {
            abandon_launch(inner, launching, None);
            Err(format!(
                "no container within {:?}",
                inner.config.setup_timeout
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: usize = 1;
    const MAX: usize = 8;

    #[test]
    fn an_idle_pool_keeps_its_minimum() {
        let mut demand = Demand::new(Duration::from_secs(60));
        assert_eq!(demand.target(Instant::now(), MIN, MAX), MIN);
        assert_eq!(demand.target(Instant::now(), 2, MAX), 2);
    }

    #[test]
    fn the_target_follows_runs_arriving_times_the_refill_cost_within_bounds() {
        let start = Instant::now();
        let mut demand = Demand::new(Duration::from_secs(60));
        demand.filled(Duration::from_millis(500));
        // 100 runs a minute, evenly: 1.7 a second over the last ten seconds; during a refill of
        // 0.5 s, 0.85 arrive on average, and 4 or fewer in 99.7% of refills.
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_millis(600);
            demand.arrived(now);
        }
        assert_eq!(demand.target(now, MIN, MAX), 4);
        // Slower refills (a loaded machine) want more: 2.5 arrive on average.
        for _ in 0..10 {
            demand.filled(Duration::from_millis(1500));
        }
        assert_eq!(demand.target(now, MIN, MAX), 7);
        assert_eq!(demand.target(now, MIN, 5), 5, "never past the maximum");
    }

    #[test]
    fn a_few_slow_refills_among_quick_ones_size_the_pool_for_the_slow_ones() {
        let start = Instant::now();
        let mut demand = Demand::new(Duration::from_secs(60));
        // 100 runs a minute, evenly.
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_millis(600);
            demand.arrived(now);
        }
        // Refills of 0.15 s on a quiet engine: 0.26 runs arrive during one, 2 cover 99.5%.
        for _ in 0..17 {
            demand.filled(Duration::from_millis(150));
        }
        assert_eq!(demand.target(now, MIN, MAX), 2);
        // Three of the last twenty took a second (runs bunched on a busy CPU): the pool is
        // sized for those, where 1.7 runs arrive on average and 6 cover 99.5%.
        for _ in 0..3 {
            demand.filled(Duration::from_secs(1));
        }
        assert_eq!(demand.target(now, MIN, MAX), 6);
        // Twenty quick refills later, the slow ones are forgotten.
        for _ in 0..20 {
            demand.filled(Duration::from_millis(150));
        }
        assert_eq!(demand.target(now, MIN, MAX), 2);
    }

    #[test]
    fn a_burst_raises_the_target_at_once_and_a_lull_lowers_it_only_slowly() {
        let start = Instant::now();
        let mut demand = Demand::new(Duration::from_secs(60));
        demand.filled(Duration::from_millis(500));
        // Ten runs within two seconds: 1 a second over the last ten seconds.
        for i in 0..10 {
            demand.arrived(start + Duration::from_millis(200 * i));
        }
        let after_burst = start + Duration::from_secs(2);
        assert_eq!(demand.target(after_burst, MIN, MAX), 3);
        // Thirty seconds on, the burst still counts over the whole minute (10 / 60 s).
        assert_eq!(demand.target(start + Duration::from_secs(30), MIN, MAX), 1);
        assert!(demand.rate(start + Duration::from_secs(30)) > 0.16);
        // A minute on, it is forgotten.
        assert!(demand.rate(start + Duration::from_secs(63)) == 0.0);
    }

    #[test]
    fn the_poisson_quantile_is_the_first_count_that_covers_the_share() {
        assert_eq!(poisson_quantile(0.0, COVER), 0);
        assert_eq!(poisson_quantile(f64::NAN, COVER), 0);
        // Poisson(1): P(X <= 3) = 0.981, P(X <= 4) = 0.9963.
        assert_eq!(poisson_quantile(1.0, 0.98), 3);
        assert_eq!(poisson_quantile(1.0, COVER), 4);
        assert_eq!(poisson_quantile(1e9, COVER), 1000, "bounded");
    }
}
