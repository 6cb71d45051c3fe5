//! [`DockerSandbox`]: the [`Sandbox`] on a Docker engine. Runs wait for a slot in a bounded
//! queue, take a warm container (or start a cold one), run, and remove it. Background tasks keep
//! the health current, the pool full and stray containers reaped.

use crate::config::check_limits;
use crate::container::{launch, new_name, spec, Attached};
use crate::engine::{lock, Engine};
use crate::escape::escape;
use crate::owned::{Owned, Registry};
use crate::pool::{fill, Pool};
use crate::protocol::{check_request, nonce};
use crate::reaper::{reap_loop, reap_once};
use crate::run::{drive, RunIo};
use crate::slots::{Slot, Slots, Ticket};
use crate::{
    DockerConfig, Health, RunEvent, RunHandle, RunOutcome, RunRequest, RunStatus, Sandbox,
    SandboxError, Stdin, Target,
};
use bollard::models::ContainerCreateBody;
use bollard::Docker;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
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
    /// The containers a run or the pool owns (the reaper spares these) and their uids.
    pub registry: Arc<Registry>,
    pub reap_now: Notify,
    pub shutdown: CancellationToken,
}

/// Launches `owned` in a task of its own, so that no cancel or timeout can drop a create
/// between the engine making the container and our removing it. On failure the task removes
/// what it made before it ends.
pub fn spawn_launch(
    inner: &Inner,
    docker: &Docker,
    owned: Owned,
    body: ContainerCreateBody,
) -> JoinHandle<Result<Attached, String>> {
    let docker = docker.clone();
    inner.registry.tracker.spawn(async move {
        match launch(&docker, owned, body).await {
            Ok(attached) => Ok(attached),
            Err((owned, e)) => {
                let _ = owned.remove().await;
                Err(format!("starting a container: {e}"))
            }
        }
    })
}

/// For a launch whose waiter gave up (a cancel, a timeout): lets it finish, then removes what
/// it made, holding `slot` (if any) until then so cancelled starts cannot pile up on the engine.
pub fn abandon_launch(
    inner: &Inner,
    launching: JoinHandle<Result<Attached, String>>,
    slot: Option<Slot>,
) {
    inner.registry.tracker.spawn(async move {
        if let Ok(Ok(attached)) = launching.await {
            let Attached {
                owned,
                output,
                input,
            } = attached;
            drop((output, input));
            let _ = owned.remove().await;
        }
        drop(slot);
    });
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
            registry: Arc::new(Registry::new(config.uid_base, config.uid_count())),
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

    /// Stops the background tasks, removes the warm containers, waits for the removals under
    /// way (cancelled starts among them), then reaps whatever of this instance no run owns.
    /// Runs in progress finish and remove their own containers.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        // A container being warmed right now is removed by the filler before it ends.
        let filler = lock(&self.filler).take();
        if let Some(filler) = filler {
            let _ = filler.await;
        }
        self.inner.pool.drain().await;
        let tracker = &self.inner.registry.tracker;
        tracker.close();
        tracker.wait().await;
        tracker.reopen();
        if let Err(e) = reap_once(&self.inner).await {
            tracing::warn!("sandbox shutdown: could not reap: {}", escape(&e));
        }
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
        check_request(&request.files, &request.target, &request.limits)?;
        let ticket = self.inner.slots.admit()?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (stdin, stdin_rx) = mpsc::channel::<Stdin>(STDIN_BUFFER);
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
    stdin: mpsc::Receiver<Stdin>,
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
            Some(slot) => self.in_container(slot).await,
        };
        if outcome.status == RunStatus::SandboxError {
            // `detail` is escaped where it is made.
            tracing::warn!(
                detail = outcome.detail.as_deref().unwrap_or(""),
                "sandbox run failed"
            );
        }
        let _ = events.send(RunEvent::Finished(outcome)).await;
    }

    /// Runs in a container; `slot` is freed when the container is gone.
    async fn in_container(self, slot: Slot) -> RunOutcome {
        let mut slot = Some(slot);
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
                    Some(escape(&detail)),
                );
            }
        };
        let container = match inner.pool.take(&request.limits, &inner.config.limits) {
            Some(warm) => warm,
            None => match cold(&inner, &docker, &request, &cancel, &mut slot).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            },
        };
        let io = RunIo {
            events: &events,
            stdin,
            cancel: &cancel,
        };
        let (outcome, engine_failed) = drive(&docker, container, request, &nonce(), io).await;
        // Only the engine's failures count against its health, never what the runner or the
        // candidate's program did.
        if engine_failed {
            inner.engine.failed();
        }
        drop(slot);
        outcome
    }
}

/// Starts a container for one run, bounded by the setup timeout and the run's cancel. A
/// cancelled or timed-out start lets the create finish and removes what it made; a cancelled one
/// takes its run `slot` along until then.
async fn cold(
    inner: &Arc<Inner>,
    docker: &Docker,
    request: &RunRequest,
    cancel: &CancellationToken,
    slot: &mut Option<Slot>,
) -> Result<Attached, RunOutcome> {
    let started = Instant::now();
    let setup = inner.config.setup_timeout;
    let deadline = started + setup;
    let name = new_name(&inner.config.instance);
    let claim = inner.registry.claim(docker.clone(), name);
    let owned = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(end(RunStatus::Cancelled, started.elapsed(), None)),
        o = tokio::time::timeout_at(deadline, claim) => match o {
            Ok(owned) => owned,
            Err(_) => return Err(end(
                RunStatus::SandboxError,
                started.elapsed(),
                Some(format!("no free sandbox uid within {setup:?}")),
            )),
        },
    };
    let preload = matches!(request.target, Target::Pytest { .. });
    let body = spec(&inner.config, &request.limits, preload, owned.uid());
    let mut launching = spawn_launch(inner, docker, owned, body);
    let result = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            abandon_launch(inner, launching, slot.take());
            return Err(end(RunStatus::Cancelled, started.elapsed(), None));
        }
        r = tokio::time::timeout_at(deadline, &mut launching) => r,
    };
    match result {
        Ok(Ok(Ok(attached))) => Ok(attached),
        Ok(Ok(Err(detail))) => {
            inner.engine.failed();
            Err(end(
                RunStatus::SandboxError,
                started.elapsed(),
                Some(escape(&detail)),
            ))
        }
        Ok(Err(join)) => Err(end(
            RunStatus::SandboxError,
            started.elapsed(),
            Some(escape(&format!("starting a container: {join}"))),
        )),
        Err(_) => {
            abandon_launch(inner, launching, None);
            inner.engine.failed();
            Err(end(
                RunStatus::SandboxError,
                started.elapsed(),
                Some(format!("no container within {setup:?}")),
            ))
        }
    }
}

fn end(status: RunStatus, duration: Duration, detail: Option<String>) -> RunOutcome {
    RunOutcome {
        status,
        exit_code: None,
        duration,
        tests: None,
        lint: None,
        detail,
        limit: None,
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
