//! [`DockerSandbox`]: the [`Sandbox`] on a Docker engine. Runs wait for a slot in a bounded
//! queue, take a warm container (or start a cold one), run, and remove it. Background tasks keep
//! the health current, the pool full and stray containers reaped.

use crate::config::check_limits;
use crate::container::{launch, new_name, remove, spec, Attached};
use crate::engine::{lock, Engine};
use crate::pool::{fill, Pool};
use crate::protocol::{check_request, nonce};
use crate::reaper::{reap_loop, reap_once};
use crate::run::{drive, RunIo};
use crate::slots::{Slots, Ticket};
use crate::{
    DockerConfig, Health, RunEvent, RunHandle, RunOutcome, RunRequest, RunStatus, Sandbox,
    SandboxError, Target,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Events buffered per run before the sandbox waits for the consumer.
const EVENT_BUFFER: usize = 256;
/// Stdin messages buffered per run.
const STDIN_BUFFER: usize = 64;

/// Runs untrusted code in single-use Docker containers (see the crate docs and
/// sandbox/README.md). Create it inside a tokio runtime; drop or [`shutdown`] it to stop its
/// background tasks.
///
/// [`shutdown`]: DockerSandbox::shutdown
pub struct DockerSandbox {
    inner: Arc<Inner>,
    filler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// State shared by runs and background tasks.
pub struct Inner {
    pub config: DockerConfig,
    pub engine: Engine,
    pub pool: Pool,
    slots: Slots,
    /// Names of the containers a run or the pool owns; the reaper spares these.
    live: Mutex<HashSet<String>>,
    pub reap_now: Notify,
    pub shutdown: CancellationToken,
}

impl Inner {
    pub fn own(&self, name: &str) {
        lock(&self.live).insert(name.to_string());
    }

    pub fn disown(&self, name: &str) {
        lock(&self.live).remove(name);
    }

    pub fn owns(&self, name: &str) -> bool {
        lock(&self.live).contains(name)
    }

    /// Removes a container this instance owns, then lets go of it (the reaper retries later
    /// if the engine is away).
    pub async fn discard(&self, name: &str) {
        if let Ok(docker) = self.engine.client().await {
            let _ = tokio::time::timeout(crate::run::TEARDOWN, remove(&docker, name)).await;
        }
        self.disown(name);
    }
}

impl DockerSandbox {
    /// Starts the background tasks (health, pool, reaper); never waits for the engine, so a
    /// server starts while Docker is down and reports it through [`Sandbox::health`].
    pub fn new(config: DockerConfig) -> Result<Self, SandboxError> {
        config.validate()?;
        let inner = Arc::new(Inner {
            engine: Engine::new(config.socket.clone(), config.image.clone()),
            pool: Pool::new(config.pool_size),
            slots: Slots::new(config.concurrency, config.queue),
            live: Mutex::new(HashSet::new()),
            reap_now: Notify::new(),
            shutdown: CancellationToken::new(),
            config,
        });
        tokio::spawn(health_loop(inner.clone()));
        tokio::spawn(reap_loop(inner.clone()));
        let filler = tokio::spawn(fill(inner.clone()));
        Ok(DockerSandbox {
            inner,
            filler: Mutex::new(Some(filler)),
        })
    }

    /// Checks the engine and the image now (for the server's start-up message).
    pub async fn check_now(&self) -> Health {
        self.inner.engine.check().await;
        self.health()
    }

    /// Removes leftover containers of this instance now; returns how many.
    pub async fn reap_now(&self) -> Result<usize, String> {
        reap_once(&self.inner).await
    }

    /// Stops the background tasks and removes the warm containers. Runs in progress finish.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        // A container being warmed right now is discarded by the filler before it ends.
        let filler = lock(&self.filler).take();
        if let Some(filler) = filler {
            let _ = filler.await;
        }
        self.inner.pool.drain(&self.inner).await;
    }
}

impl Drop for DockerSandbox {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
    }
}

impl Sandbox for DockerSandbox {
    fn start(&self, request: RunRequest) -> Result<RunHandle, SandboxError> {
        check_limits(&request.limits)?;
        check_request(
            &request.files,
            &request.target,
            request.limits.work_dir_bytes,
        )?;
        let ticket = self.inner.slots.admit()?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (stdin, stdin_rx) = mpsc::channel(STDIN_BUFFER);
        let cancel = CancellationToken::new();
        let task = RunTask {
            inner: self.inner.clone(),
            request,
            events: events_tx,
            stdin: stdin_rx,
            cancel: cancel.clone(),
        };
        tokio::spawn(task.run(ticket));
        Ok(RunHandle {
            events,
            stdin,
            cancel,
        })
    }

    fn health(&self) -> Health {
        let engine = self.inner.engine.health();
        let counts = self.inner.slots.counts();
        Health {
            status: if engine.ok { "ok" } else { "degraded" },
            detail: engine.detail,
            running: counts.running,
            queued: counts.queued,
            warm: self.inner.pool.warm(),
        }
    }
}

struct RunTask {
    inner: Arc<Inner>,
    request: RunRequest,
    events: mpsc::Sender<RunEvent>,
    stdin: mpsc::Receiver<Vec<u8>>,
    cancel: CancellationToken,
}

impl RunTask {
    async fn run(self, ticket: Ticket) {
        let queued = Instant::now();
        let slot = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => None,
            s = ticket.slot() => s,
        };
        let events = self.events.clone();
        let outcome = match slot {
            None => end(RunStatus::Cancelled, queued.elapsed(), None),
            Some(slot) => {
                let outcome = self.in_container().await;
                drop(slot);
                outcome
            }
        };
        if outcome.status == RunStatus::SandboxError {
            tracing::warn!(detail = ?outcome.detail, "sandbox run failed");
        }
        let _ = events.send(RunEvent::Finished(outcome)).await;
    }

    async fn in_container(self) -> RunOutcome {
        let RunTask {
            inner,
            request,
            events,
            stdin,
            cancel,
        } = self;
        let setup_started = Instant::now();
        let docker = match inner.engine.client().await {
            Ok(d) => d,
            Err(detail) => {
                inner.engine.failed();
                return end(
                    RunStatus::SandboxError,
                    setup_started.elapsed(),
                    Some(detail),
                );
            }
        };
        let container = match inner.pool.take(&inner, &request.limits) {
            Some(warm) => warm,
            None => match cold(&inner, &docker, &request, &cancel).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            },
        };
        let name = container.name.clone();
        let io = RunIo {
            events: &events,
            stdin,
            cancel: &cancel,
        };
        let outcome = drive(&docker, container, request, &nonce(), io).await;
        inner.disown(&name);
        if outcome.status == RunStatus::SandboxError {
            inner.engine.failed();
        }
        outcome
    }
}

/// Starts a container for one run, bounded by the setup timeout and the run's cancel.
async fn cold(
    inner: &Arc<Inner>,
    docker: &bollard::Docker,
    request: &RunRequest,
    cancel: &CancellationToken,
) -> Result<Attached, RunOutcome> {
    let started = Instant::now();
    let name = new_name(&inner.config.instance);
    inner.own(&name);
    let preload = matches!(request.target, Target::Pytest { .. });
    let body = spec(&inner.config, &request.limits, preload);
    let failed = |status, detail| {
        let inner = inner.clone();
        let name = name.clone();
        tokio::spawn(async move { inner.discard(&name).await });
        Err(end(status, started.elapsed(), detail))
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => failed(RunStatus::Cancelled, None),
        r = tokio::time::timeout(inner.config.setup_timeout, launch(docker, &name, body)) => match r {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                inner.engine.failed();
                failed(RunStatus::SandboxError, Some(format!("starting a container: {e}")))
            }
            Err(_) => failed(
                RunStatus::SandboxError,
                Some(format!("no container within {:?}", inner.config.setup_timeout)),
            ),
        },
    }
}

fn end(status: RunStatus, duration: Duration, detail: Option<String>) -> RunOutcome {
    RunOutcome {
        status,
        exit_code: None,
        duration,
        tests: None,
        detail,
    }
}

/// Checks the engine every `health_interval`, or at once after a failure; when it comes back,
/// sweeps for containers left during the outage and wakes the pool.
async fn health_loop(inner: Arc<Inner>) {
    let mut was_ok = false;
    loop {
        let ok = inner.engine.check().await.ok;
        if ok && !was_ok {
            inner.reap_now.notify_one();
            inner.pool.wake();
        }
        was_ok = ok;
        let pause = if ok {
            inner.config.health_interval
        } else {
            inner.config.health_interval.min(Duration::from_secs(1))
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = inner.engine.recheck.notified() => {
                // Several failures at once: one check is enough.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = inner.shutdown.cancelled() => return,
        }
    }
}
