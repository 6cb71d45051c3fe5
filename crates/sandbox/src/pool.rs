//! The warm pool: containers created, attached and started ahead of time, their runner waiting
//! on stdin with the interpreter loaded. Each serves one run and is then removed; the pool
//! refills in the background, one container at a time so refills never crowd runs.
//!
//! Warm runners do not preload pytest: a worker holding pytest costs ~25 MiB of the run's
//! memory limit while idle, and killing it when the run is a program (the common case) takes
//! CPU from the program's start-up: measured, a warm program's first byte went from ~16 ms
//! to ~35 ms. A pytest run pays pytest's import (~0.2 s) instead.

use crate::container::{launch, new_name, same_container_limits, spec, Attached};
use crate::docker::Inner;
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

    /// A live warm container made with these limits, if there is one.
    pub fn take(&self, inner: &Arc<Inner>, limits: &Limits) -> Option<Attached> {
        if self.size == 0 || !same_container_limits(limits, &inner.config.limits) {
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
                dead.push(c.name);
            }
        }
        bury(inner, dead);
        self.wake.notify_one();
        taken
    }

    /// Drops warm containers that died while idle (an engine restart, a kill from outside).
    fn prune(&self, inner: &Arc<Inner>) {
        let mut dead = Vec::new();
        lock(&self.ready).retain_mut(|c| {
            let alive = is_alive(c);
            if !alive {
                dead.push(c.name.clone());
            }
            alive
        });
        bury(inner, dead);
    }

    /// Asks the filler to look at the pool now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Removes every warm container (at shutdown).
    pub async fn drain(&self, inner: &Arc<Inner>) {
        let all: Vec<Attached> = lock(&self.ready).drain(..).collect();
        for c in all {
            inner.discard(&c.name).await;
        }
    }
}

/// An idle runner prints nothing: any output, or the end of it, means it died.
fn is_alive(c: &mut Attached) -> bool {
    c.output.next().now_or_never().is_none()
}

fn bury(inner: &Arc<Inner>, dead: Vec<String>) {
    for name in dead {
        tracing::warn!(container = %name, "sandbox: a warm container died while idle");
        let inner = inner.clone();
        tokio::spawn(async move { inner.discard(&name).await });
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
        pool.prune(&inner);
        if pool.warm() >= pool.size {
            tokio::select! {
                _ = pool.wake.notified() => {}
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = inner.shutdown.cancelled() => return,
            }
            continue;
        }
        match warm_one(&inner).await {
            Ok(c) => {
                backoff = BACKOFF_MIN;
                if inner.shutdown.is_cancelled() {
                    inner.discard(&c.name).await;
                    return;
                }
                lock(&pool.ready).push_back(c);
            }
            Err(e) => {
                tracing::warn!("sandbox: could not warm a container: {e}");
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

async fn warm_one(inner: &Arc<Inner>) -> Result<Attached, String> {
    let docker = inner.engine.client().await?;
    let name = new_name(&inner.config.instance);
    inner.own(&name);
    let body = spec(&inner.config, &inner.config.limits, false);
    let launched =
        tokio::time::timeout(inner.config.setup_timeout, launch(&docker, &name, body)).await;
    match launched {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => {
            inner.disown(&name);
            Err(e.to_string())
        }
        Err(_) => {
            let timeout = inner.config.setup_timeout;
            let inner = inner.clone();
            tokio::spawn(async move { inner.discard(&name).await });
            Err(format!("no container within {timeout:?}"))
        }
    }
}
