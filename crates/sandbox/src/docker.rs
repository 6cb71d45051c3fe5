//! [`DockerSandbox`]: the [`Sandbox`] on one or more Docker engines. Runs wait for a slot on
//! any engine in a fair, bounded queue ([`crate::slots`]), take a warm container of that
//! engine (or start a cold one), run, and remove it. Background tasks per engine keep its
//! health current, its pool full and its stray containers reaped; an engine found down ends its
//! runs in flight as `sandbox_error` at once and takes no new ones until it answers again.

use crate::config::check_limits;
use crate::container::{launch, new_name, spec, Attached};
use crate::engine::{lock, Engine};
use crate::escape::escape;
use crate::owned::{Owned, Registry};
use crate::pool::{fill, Pool};
use crate::protocol::{check_request, nonce};
use crate::reaper::{reap_loop, reap_once};
use crate::run::{drive, RunIo};
use crate::slots::{Admitted, Slot, Slots};
use crate::{
    DockerConfig, EngineStatus, Environment, EnvironmentStatus, Health, RunEvent, RunHandle,
    RunOutcome, RunRequest, RunStatus, Sandbox, SandboxError, Stdin, Target,
};
use bollard::models::ContainerCreateBody;
use bollard::Docker;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
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

/// Runs untrusted code in single-use Docker containers on one or more engines (see the crate
/// docs and sandbox/README.md). Create it inside a tokio runtime; drop or [`shutdown`] it to
/// stop its background tasks.
///
/// [`shutdown`]: DockerSandbox::shutdown
pub struct DockerSandbox {
    config: DockerConfig,
    nodes: Vec<Arc<Inner>>,
    slots: Arc<Slots>,
    waits: Arc<Waits>,
    shutdown: CancellationToken,
    fillers: Mutex<Vec<JoinHandle<()>>>,
}

/// Runs that waited in the queue for a slot, and how long in all.
#[derive(Default)]
struct Waits {
    runs: AtomicU64,
    micros: AtomicU64,
}

/// One engine's state, shared by its runs and background tasks.
pub struct Inner {
    /// This engine's place in the config's list (and in the slots).
    index: usize,
    pub config: DockerConfig,
    pub engine: Engine,
    /// One warm pool per environment, in the config's order.
    pub pools: Vec<Pool>,
    slots: Arc<Slots>,
    /// The containers a run or the pool owns (the reaper spares these) and their uids.
    pub registry: Arc<Registry>,
    pub reap_now: Notify,
    pub shutdown: CancellationToken,
    /// Whether the last check found the engine and image usable.
    up: AtomicBool,
    /// Cancelled when the engine is found down: every run in flight on it ends at once as
    /// `sandbox_error` (its containers are removed by the reaper when the engine is back).
    /// Replaced by a fresh token for the runs after.
    lost: Mutex<CancellationToken>,
    /// Runs given a slot on this engine.
    runs: AtomicU64,
    /// Runs that found no warm container and started one on demand.
    cold_starts: AtomicU64,
}

impl Inner {
    /// Checks the engine and the image; marks the engine up or down for the slots.
    async fn check(&self) -> bool {
        let ok = self.engine.check().await.ok;
        let was = self.up.swap(ok, Relaxed);
        if was && !ok {
            let lost = std::mem::replace(&mut *lock(&self.lost), CancellationToken::new());
            lost.cancel();
        }
        self.slots.set_healthy(self.index, ok);
        ok
    }

    fn lost_token(&self) -> CancellationToken {
        lock(&self.lost).clone()
    }

    fn status(&self) -> EngineStatus {
        let health = self.engine.health();
        let (_, counts) = self.slots.counts();
        let mine = counts.get(self.index).copied().unwrap_or_default();
        EngineStatus {
            engine: self.engine.addr().to_string(),
            status: if health.ok { "ok" } else { "degraded" },
            detail: health.detail,
            running: mine.running,
            slots: mine.total,
            warm: self.pools.iter().map(Pool::warm).sum(),
            pool_target: self.pools.iter().map(Pool::target).sum(),
            runs: self.runs.load(Relaxed),
            cold_starts: self.cold_starts.load(Relaxed),
        }
    }
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
    /// Starts the background tasks (health, pool, reaper) of every engine; never waits for an
    /// engine, so a server starts while Docker is down and reports it through
    /// [`Sandbox::health`].
    pub fn new(config: DockerConfig) -> Result<Self, SandboxError> {
        config.validate()?;
        let gauges: Vec<Arc<AtomicUsize>> = config.engines.iter().map(|_| Arc::default()).collect();
        let per_engine: Vec<(usize, Arc<AtomicUsize>)> = gauges
            .iter()
            .map(|g| (config.concurrency, g.clone()))
            .collect();
        let slots = Slots::new(&per_engine, config.queue);
        let shutdown = CancellationToken::new();
        let uids = config.uid_count();
        let nodes: Vec<Arc<Inner>> = config
            .engines
            .iter()
            .enumerate()
            .map(|(index, addr)| {
                // Each engine its own part of the uid range (validated to fit).
                let first = config.uid_base + uids * index as u32;
                Arc::new(Inner {
                    index,
                    engine: Engine::new(addr.clone(), config.environments.clone()),
                    // The slots prefer an engine with a warm container of the first
                    // environment (the common run); the others' pools have gauges of their own.
                    pools: (0..config.environments.len())
                        .map(|env| {
                            Pool::new(
                                config.pool_min_of(env),
                                config.pool_max,
                                config.pool_window,
                                if env == 0 {
                                    gauges[index].clone()
                                } else {
                                    Arc::default()
                                },
                            )
                        })
                        .collect(),
                    slots: slots.clone(),
                    registry: Arc::new(Registry::new(first, uids)),
                    reap_now: Notify::new(),
                    shutdown: shutdown.child_token(),
                    up: AtomicBool::new(false),
                    lost: Mutex::new(CancellationToken::new()),
                    runs: AtomicU64::new(0),
                    cold_starts: AtomicU64::new(0),
                    config: config.clone(),
                })
            })
            .collect();
        let mut fillers = Vec::new();
        for node in &nodes {
            tokio::spawn(health_loop(node.clone()));
            tokio::spawn(reap_loop(node.clone()));
            for env in 0..node.pools.len() {
                fillers.push(tokio::spawn(fill(node.clone(), env)));
            }
        }
        Ok(DockerSandbox {
            config,
            nodes,
            slots,
            waits: Arc::default(),
            shutdown,
            fillers: Mutex::new(fillers),
        })
    }

    /// Checks every engine and its image now (for the server's start-up message).
    pub async fn check_now(&self) -> Health {
        futures_util::future::join_all(self.nodes.iter().map(|n| n.check())).await;
        self.health()
    }

    /// Removes leftover containers of this instance on every engine now; returns how many.
    /// Fails if any engine could not be swept.
    pub async fn reap_now(&self) -> Result<usize, String> {
        let swept = futures_util::future::join_all(self.nodes.iter().map(reap_once)).await;
        swept.into_iter().try_fold(0, |n, r| Ok(n + r?))
    }

    /// Stops the background tasks, removes the warm containers, waits for the removals under
    /// way (cancelled starts among them), then reaps whatever of this instance no run owns, on
    /// every engine. Runs in progress finish and remove their own containers.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        // A container being warmed right now is removed by its filler before it ends.
        let fillers = std::mem::take(&mut *lock(&self.fillers));
        for filler in fillers {
            let _ = filler.await;
        }
        for node in &self.nodes {
            for pool in &node.pools {
                pool.drain().await;
            }
            let tracker = &node.registry.tracker;
            tracker.close();
            tracker.wait().await;
            tracker.reopen();
            if let Err(e) = reap_once(node).await {
                tracing::warn!(
                    engine = %node.engine.addr(),
                    "sandbox shutdown: could not reap: {}",
                    escape(&e)
                );
            }
        }
    }
}

impl Drop for DockerSandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Sandbox for DockerSandbox {
    fn start(&self, request: RunRequest) -> Result<RunHandle, SandboxError> {
        check_limits(&request.limits)?;
        check_request(&request.files, &request.target, &request.limits)?;
        let env = self
            .config
            .environments
            .iter()
            .position(|e| e.name == request.environment)
            .ok_or_else(|| SandboxError::UnknownEnvironment(request.environment.clone()))?;
        let admitted = self.slots.admit(&request.party)?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (stdin, stdin_rx) = mpsc::channel::<Stdin>(STDIN_BUFFER);
        let cancel = CancellationToken::new();
        let task = RunTask {
            nodes: self.nodes.clone(),
            waits: self.waits.clone(),
            request,
            env,
            events: events_tx,
            stdin: stdin_rx,
            cancel: cancel.clone(),
        };
        tokio::spawn(task.run(admitted));
        Ok(RunHandle {
            events,
            stdin,
            cancel,
        })
    }

    fn health(&self) -> Health {
        let engines: Vec<EngineStatus> = self.nodes.iter().map(|n| n.status()).collect();
        let (queued, _) = self.slots.counts();
        let down: Vec<&EngineStatus> = engines.iter().filter(|e| e.status != "ok").collect();
        let detail = match down.as_slice() {
            [] => None,
            // One engine: its own sentence, which names it.
            [one] if engines.len() == 1 => one.detail.clone(),
            _ => Some(format!(
                "{} of {} sandbox engines unusable, runs go to the others: {}",
                down.len(),
                engines.len(),
                down.iter()
                    .map(|e| e.detail.clone().unwrap_or_else(|| e.engine.clone()))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
        let environments: Vec<EnvironmentStatus> = self
            .config
            .environments
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let states: Vec<_> = self.nodes.iter().map(|n| n.engine.health()).collect();
                let usable = states.iter().any(|h| h.has(i));
                let why: Option<String> = states
                    .iter()
                    .find_map(|h| h.environments.get(i).and_then(|r| r.clone().err()));
                EnvironmentStatus {
                    name: e.name.clone(),
                    status: if usable { "ok" } else { "degraded" },
                    detail: (!usable).then(|| {
                        why.unwrap_or_else(|| format!("no engine takes runs in {}", e.name))
                    }),
                }
            })
            .collect();
        // An environment no engine can run is degraded even while every engine takes runs in
        // the others.
        let missing: Vec<&str> = environments
            .iter()
            .filter_map(|e| e.detail.as_deref())
            .collect();
        let detail = detail.or_else(|| (!missing.is_empty()).then(|| missing.join("; ")));
        Health {
            status: if down.is_empty() && missing.is_empty() {
                "ok"
            } else {
                "degraded"
            },
            detail,
            environments,
            running: engines.iter().map(|e| e.running).sum(),
            queued,
            warm: engines.iter().map(|e| e.warm).sum(),
            cold_starts: engines.iter().map(|e| e.cold_starts).sum(),
            waited: self.waits.runs.load(Relaxed),
            waited_ms: self.waits.micros.load(Relaxed) / 1000,
            engines,
        }
    }

    fn environments(&self) -> Vec<Environment> {
        let states: Vec<_> = self.nodes.iter().map(|n| n.engine.health()).collect();
        (0..self.config.environments.len())
            .filter_map(|i| {
                states.iter().find_map(|h| match h.environments.get(i) {
                    Some(Ok(env)) if h.ok => Some(env.clone()),
                    _ => None,
                })
            })
            .collect()
    }
}

struct RunTask {
    nodes: Vec<Arc<Inner>>,
    waits: Arc<Waits>,
    request: RunRequest,
    /// The request's environment, as an index into the config's.
    env: usize,
    events: mpsc::Sender<RunEvent>,
    stdin: mpsc::Receiver<Stdin>,
    cancel: CancellationToken,
}

impl RunTask {
    async fn run(self, admitted: Admitted) {
        let queued = Instant::now();
        let slot = match admitted {
            Admitted::Now(slot) => Some(slot),
            Admitted::Queued(mut ticket) => {
                let mut place = ticket.ahead.clone();
                let slot = loop {
                    let ahead = *place.borrow_and_update();
                    if self.events.send(RunEvent::Queued { ahead }).await.is_err() {
                        break None;
                    }
                    tokio::select! {
                        biased;
                        _ = self.cancel.cancelled() => break None,
                        _ = self.events.closed() => break None,
                        s = ticket.slot() => break s,
                        // A new place: told at the top of the loop.
                        changed = place.changed() => if changed.is_err() {
                            // Served or gone: the slot says which.
                            break ticket.slot().await;
                        },
                    }
                };
                if slot.is_some() {
                    let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.waits.runs.fetch_add(1, Relaxed);
                    self.waits.micros.fetch_add(waited, Relaxed);
                }
                slot
            }
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

    /// Runs in a container; `slot` is freed when the run has ended (its container exited or was
    /// killed; an exited one is removed in the background, holding its uid until it is gone).
    async fn in_container(self, slot: Slot) -> RunOutcome {
        let RunTask {
            nodes,
            waits: _,
            request,
            env,
            events,
            stdin,
            cancel,
        } = self;
        let Some(inner) = nodes.get(slot.engine()).cloned() else {
            return end(
                RunStatus::SandboxError,
                Duration::ZERO,
                Some("no such engine".into()),
            );
        };
        // An engine may lack one environment's image and still take runs in the others (the
        // slots do not know environments): such a run ends at once, saying what to build.
        if let Some(Err(detail)) = inner.engine.health().environments.get(env) {
            return end(
                RunStatus::SandboxError,
                Duration::ZERO,
                Some(escape(detail)),
            );
        }
        let mut slot = Some(slot);
        inner.runs.fetch_add(1, Relaxed);
        let lost = inner.lost_token();
        let engine = inner.engine.addr().to_string();
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
        let pool = inner.pools.get(env);
        let mut warm = pool.and_then(|pool| pool.take(&request.limits, &inner.config.limits));
        if let (None, Some(pool)) = (&warm, pool) {
            warm = tokio::select! {
                refilled = pool.wait_for_refill(
                    &request.limits,
                    &inner.config.limits,
                    inner.config.setup_timeout,
                ) => refilled,
                _ = cancel.cancelled() => {
                    return end(RunStatus::Cancelled, setup_started.elapsed(), None);
                }
            };
        }
        let container = match warm {
            Some(warm) => warm,
            None => {
                inner.cold_starts.fetch_add(1, Relaxed);
                match cold(&inner, &docker, &request, env, &cancel, &lost, &mut slot).await {
                    Ok(c) => c,
                    Err(outcome) => return outcome,
                }
            }
        };
        let io = RunIo {
            events: &events,
            stdin,
            cancel: &cancel,
            lost: &lost,
            engine: &engine,
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
    env: usize,
    cancel: &CancellationToken,
    lost: &CancellationToken,
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
    let Some(image) = inner.config.environments.get(env).map(|e| e.image.as_str()) else {
        return Err(end(
            RunStatus::SandboxError,
            started.elapsed(),
            Some("no such environment".into()),
        ));
    };
    let body = spec(&inner.config, image, &request.limits, preload, owned.uid());
    let mut launching = spawn_launch(inner, docker, owned, body);
    let result = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            abandon_launch(inner, launching, slot.take());
            return Err(end(RunStatus::Cancelled, started.elapsed(), None));
        }
        _ = lost.cancelled() => {
            abandon_launch(inner, launching, None);
            return Err(end(
                RunStatus::SandboxError,
                started.elapsed(),
                Some(engine_lost(inner)),
            ));
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

/// Why a run ended when its engine was found down.
pub fn engine_lost(inner: &Inner) -> String {
    escape(&format!(
        "the sandbox engine at {} stopped answering during the run",
        inner.engine.addr()
    ))
}

/// Checks the engine every `health_interval`, or at once after a failure; when it comes back,
/// sweeps for containers left during the outage and wakes the pool.
async fn health_loop(inner: Arc<Inner>) {
    let mut was_ok = false;
    loop {
        let ok = inner.check().await;
        if ok && !was_ok {
            inner.reap_now.notify_one();
            for pool in &inner.pools {
                pool.wake();
            }
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
