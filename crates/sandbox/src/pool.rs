//! The warm pool: containers created, attached and started ahead of time, their runner waiting
//! on stdin with the interpreter loaded. Each serves one run and is then removed; the pool
//! refills in the background, one container at a time so refills never crowd runs.
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
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often idle warm containers are checked for life.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

pub struct Pool {
    size: usize,
    ready: Mutex<VecDeque<Attached>>,
    wake: Notify,
}

impl Pool {
    pub fn new(size: usize) -> Self {
        Pool {
            size,
            ready: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
        }
    }

    pub fn warm(&self) -> usize {
        lock(&self.ready).len()
    }

    /// A live warm container made with `defaults` (the config's limits) that also fit `limits`.
    pub fn take(&self, limits: &Limits, defaults: &Limits) -> Option<Attached> {
        if self.size == 0 || !same_container_limits(limits, defaults) {
            return None;
        }
        let mut taken = None;
        let mut dead = Vec::new();
        {
            let mut ready = lock(&self.ready);
            while let Some(mut c) = ready.pop_front() {
                if is_alive(&mut c) {
                    taken = Some(c);
                    break;
                }
                dead.push(c);
            }
        }
        bury(dead);
        self.wake.notify_one();
        taken
    }

    /// Drops warm containers that died while idle (an engine restart, a kill from outside).
    fn prune(&self) {
        let mut dead = Vec::new();
        {
            let mut ready = lock(&self.ready);
            let mut alive = VecDeque::new();
            for mut c in ready.drain(..) {
                if is_alive(&mut c) {
                    alive.push_back(c);
                } else {
                    dead.push(c);
                }
            }
            *ready = alive;
        }
        bury(dead);
    }

    /// Asks the filler to look at the pool now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Removes every warm container (at shutdown).
    pub async fn drain(&self) {
        let all: Vec<Attached> = lock(&self.ready).drain(..).collect();
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

/// Keeps the pool full until shutdown.
pub async fn fill(inner: Arc<Inner>) {
    let pool = &inner.pool;
    if pool.size == 0 {
        return;
    }
    let mut backoff = BACKOFF_MIN;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        pool.prune();
        if pool.warm() >= pool.size {
            tokio::select! {
                _ = pool.wake.notified() => {}
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = inner.shutdown.cancelled() => return,
            }
            continue;
        }
        match warm_one(&inner).await {
            Ok(None) => return,
            Ok(Some(c)) => {
                backoff = BACKOFF_MIN;
                if inner.shutdown.is_cancelled() {
                    let _ = c.owned.remove().await;
                    return;
                }
                lock(&pool.ready).push_back(c);
            }
            Err(e) => {
                tracing::warn!(
                    "sandbox: could not warm a container: {}",
                    crate::escape::escape(&e)
                );
                inner.engine.failed();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = inner.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One warm container, or None at shutdown (while waiting for a free uid).
async fn warm_one(inner: &Arc<Inner>) -> Result<Option<Attached>, String> {
    let docker = inner.engine.client().await?;
    let name = new_name(&inner.config.instance);
    let owned = tokio::select! {
        o = inner.registry.claim(docker.clone(), name) => o,
        _ = inner.shutdown.cancelled() => return Ok(None),
    };
    let body = spec(&inner.config, &inner.config.limits, false, owned.uid());
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
