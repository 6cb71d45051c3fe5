//! Interview rooms at run time: one task per loaded room owns its [`duet_core::Room`] (and so
//! its yrs `Doc`), and a registry finds or loads the task for an interview.
//!
//! The task carries out the core's effects. Records go to the store, and every message that
//! follows a record waits in order behind that record's ticket (a "gate"), so no participant
//! receives an edit before it is durable, while a burst of edits still flows as a pipeline and
//! the store commits them in batches. An answer that must wait for durability (a question switch,
//! a scorecard save, a note, the end) is a delivery like any other: `Delivery::Reply`.
//!
//! A room's life:
//! - **loading**: the task reopens the room in the store (after an earlier failure) and reads
//!   its checkpoint and log on a blocking thread. A log it cannot read (or with a gap) makes it
//!   **refusing**: every connection is closed with 1011, never an empty room.
//! - **live**: it takes commands while fewer than [`MAX_IN_FLIGHT`] records and
//!   [`MAX_WAITING`] deliveries wait for the store (backpressure: senders wait on the bounded
//!   command queue), logs leaves after their grace, and checkpoints every so many edits.
//! - then one of: **poisoned** (a record failed to store: everyone is closed with 1011 "not
//!   saved", the room retires, and the next connection loads it afresh from what is stored);
//!   **erasing** (the interview is deleted: what is in flight lands, everyone is closed, the
//!   room retires); **retiring** (idle: pending leaves are logged, a checkpoint is stored, late
//!   commands are answered "reconnect"); **shutting down** (runs are ended as `sandbox_error`,
//!   every ack is awaited, a checkpoint is stored, everyone is closed with 1001).

use crate::config::RoomSettings;
use crate::metrics::Metrics;
pub use crate::outbound::PeerSink;
use crate::questions::QuestionBank;
use crate::room_runs::{ActiveRun, RunError};
use axum::body::Bytes;
use axum::extract::ws::Message;
use duet_core::{Audience, CheckpointRef, ConnId, Effect, Reply, Room, RoomConfig};
use duet_core::{Restored, ScorecardError, ScorecardState};
use duet_protocol::{
    close, Actor, EventKind, Identity, InterviewId, Question, Role, RunId, RunKind,
};
use duet_protocol::{Note, Scorecard, ScorecardUpdate};
use duet_sandbox::{Limits, RunEvent, Sandbox};
use duet_store::{Checkpoint, Store, StoreError, Ticket};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Records in flight to the store per room before the room stops taking commands (backpressure).
const MAX_IN_FLIGHT: usize = 4096;
/// Messages waiting behind gates before the room stops taking commands (a store stall must not
/// let awareness traffic grow the queues without bound).
const MAX_WAITING: usize = 16_384;

/// What a room task is asked to do.
pub enum RoomCmd {
    Join {
        conn: ConnId,
        role: Role,
        identity: Identity,
        sink: PeerSink,
    },
    Message {
        conn: ConnId,
        bytes: Bytes,
    },
    Leave {
        conn: ConnId,
    },
    /// An events-socket subscriber arrived or left.
    Subscribe {
        conn: ConnId,
        role: Role,
        sink: PeerSink,
    },
    Unsubscribe {
        conn: ConnId,
    },
    /// Runs: start one, feed it, cancel it, and what the sandbox reports about it.
    StartRun {
        by: Role,
        kind: RunKind,
        stdin: Option<String>,
        reply: oneshot::Sender<Result<RunId, RunError>>,
    },
    RunStdin {
        run_id: RunId,
        data: String,
        eof: bool,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    /// The interviewer saves the scorecard (answered with the stored card once durable).
    SaveScorecard {
        update: ScorecardUpdate,
        reply: oneshot::Sender<Result<Scorecard, ScorecardError>>,
    },
    /// The interviewer submits the scorecard (answered once the lock is durable).
    SubmitScorecard {
        reply: oneshot::Sender<Result<Scorecard, ScorecardError>>,
    },
    /// The interviewer writes a private note (answered once durable).
    AddNote {
        text: String,
        reply: oneshot::Sender<Result<Note, String>>,
    },
    /// The candidate's browser reports an integrity signal (answered whether it was logged).
    Signal {
        kind: duet_protocol::SignalKind,
        size: Option<u64>,
        reply: oneshot::Sender<bool>,
    },
    /// The interviewer ends the interview (answered with the seq of the end once durable).
    End {
        reply: oneshot::Sender<u64>,
    },
    /// The interview is being deleted: close everyone and stop taking anything. Answered once
    /// nothing of the room is still on its way to the store.
    Erase {
        reply: oneshot::Sender<()>,
    },
    /// The interviewer moves the room to another question. Answered with the seq of the switch
    /// once it is stored.
    SwitchQuestion {
        question: Arc<Question>,
        by: Role,
        reply: oneshot::Sender<u64>,
    },
    CancelRun {
        run_id: RunId,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    RunEvent {
        run_id: RunId,
        event: RunEvent,
    },
}

#[derive(Clone)]
pub struct RoomHandle {
    pub tx: mpsc::Sender<RoomCmd>,
    generation: u64,
}

/// Finds or loads the room of an interview.
pub struct Rooms {
    map: Mutex<HashMap<InterviewId, RoomHandle>>,
    pub(crate) questions: Arc<QuestionBank>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) run_limits: Limits,
    settings: RoomSettings,
    metrics: Arc<Metrics>,
    generations: AtomicU64,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Rooms {
    pub fn new(parts: RoomsParts) -> Arc<Rooms> {
        let RoomsParts {
            questions,
            store,
            sandbox,
            run_limits,
            settings,
            metrics,
            shutdown,
        } = parts;
        Arc::new(Rooms {
            map: Mutex::new(HashMap::new()),
            questions,
            store,
            sandbox,
            run_limits,
            settings,
            metrics,
            generations: AtomicU64::new(0),
            tracker: TaskTracker::new(),
            shutdown,
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<InterviewId, RoomHandle>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's handle, starting its task (which loads it) if it is not running.
    pub fn get(self: &Arc<Self>, id: &InterviewId) -> RoomHandle {
        let mut map = self.map();
        if let Some(handle) = map.get(id) {
            if !handle.tx.is_closed() {
                return handle.clone();
            }
        }
        let (tx, rx) = mpsc::channel(self.settings.queue.max(1));
        let handle = RoomHandle {
            tx,
            generation: self.generations.fetch_add(1, Relaxed),
        };
        map.insert(id.clone(), handle.clone());
        let task = RoomTask::new(
            self.clone(),
            id.clone(),
            handle.generation,
            handle.tx.downgrade(),
        );
        let span = tracing::info_span!("room", interview = %id);
        self.tracker
            .spawn(tracing::Instrument::instrument(task.run(rx), span));
        handle
    }

    /// Removes the room from the registry if `generation` is still the one registered and its
    /// queue is empty. Returns whether it did.
    fn retire(&self, id: &InterviewId, generation: u64, rx: &mpsc::Receiver<RoomCmd>) -> bool {
        let mut map = self.map();
        match map.get(id) {
            Some(h) if h.generation == generation => {
                if !rx.is_empty() {
                    return false;
                }
                map.remove(id);
                true
            }
            _ => true, // already replaced: this task is not the registered one any more
        }
    }

    /// The room's handle if it is loaded, without loading it.
    pub fn loaded_handle(&self, id: &InterviewId) -> Option<RoomHandle> {
        self.map().get(id).filter(|h| !h.tx.is_closed()).cloned()
    }

    /// Rooms loaded right now.
    pub fn loaded(&self) -> usize {
        self.map().len()
    }

    /// Waits for every room task to checkpoint and stop (after the shutdown token fired).
    pub async fn wait_closed(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// What a room needs from the server.
pub struct RoomsParts {
    pub questions: Arc<QuestionBank>,
    pub store: Arc<dyn Store>,
    pub sandbox: Arc<dyn Sandbox>,
    pub run_limits: Limits,
    pub settings: RoomSettings,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

/// A message waiting for a record to become durable.
pub(crate) enum Delivery {
    /// An answer to whoever asked, sent once everything before it is durable.
    Reply(Box<dyn FnOnce() + Send>),
    To(ConnId, Message, Option<Reply>),
    All {
        except: Option<ConnId>,
        message: Message,
    },
    Event {
        audience: Audience,
        message: Message,
    },
}

struct Gate {
    ticket: Ticket,
    handed_at: Instant,
    is_edit: bool,
    then: Vec<Delivery>,
}

pub(crate) struct RoomTask {
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) id: InterviewId,
    generation: u64,
    /// This room's own queue, for the tasks that pump a run's events into it.
    pub(crate) me: mpsc::WeakSender<RoomCmd>,
    peers: HashMap<ConnId, PeerSink>,
    subscribers: HashMap<ConnId, (Role, PeerSink)>,
    pub(crate) runs: HashMap<RunId, ActiveRun>,
    gates: VecDeque<Gate>,
    edits_since_checkpoint: u64,
    /// Set when the room must close everyone and reload from the store.
    poisoned: Option<String>,
    /// The question the room is on (the last switch in its log).
    pub(crate) question: Option<Arc<Question>>,
    /// Set when the interview is being deleted: the room closes and answers this.
    erasing: Option<oneshot::Sender<()>>,
    /// Deliveries waiting behind gates.
    waiting: usize,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl RoomTask {
    fn new(
        rooms: Arc<Rooms>,
        id: InterviewId,
        generation: u64,
        me: mpsc::WeakSender<RoomCmd>,
    ) -> RoomTask {
        RoomTask {
            rooms,
            id,
            generation,
            me,
            peers: HashMap::new(),
            subscribers: HashMap::new(),
            runs: HashMap::new(),
            gates: VecDeque::new(),
            edits_since_checkpoint: 0,
            poisoned: None,
            question: None,
            erasing: None,
            waiting: 0,
        }
    }

    fn is_idle(&self, room: &Room) -> bool {
        room.connections() == 0
            && self.subscribers.is_empty()
            && self.runs.is_empty()
            && self.gates.is_empty()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<RoomCmd>) {
        let metrics = self.rooms.metrics.clone();
        metrics.rooms_open.fetch_add(1, Relaxed);
        let store = self.rooms.store.clone();
        let id = self.id.clone();
        let config = self.rooms.settings.room_config();
        // After an earlier failure the store holds this room's appends back until it reloads;
        // everything the previous life of the room queued is dealt with before the load reads.
        let _ = store.reopen(&id).await;
        let loaded = tokio::task::spawn_blocking(move || load(&*store, &id, config)).await;
        match loaded {
            Ok(Ok(Loaded {
                mut room,
                unfinished,
                question,
                initial_question,
                restored,
            })) => {
                room.restore(restored);
                self.question = question.and_then(|q| self.rooms.questions.get(&q));
                // A new interview with a question: its starter is the room's first edit.
                if let Some(initial) = initial_question.and_then(|q| self.rooms.questions.get(&q)) {
                    let effects = self.switch_question(&mut room, initial, Actor::Server);
                    self.execute(&mut room, effects);
                }
                self.live(room, unfinished, &mut rx).await
            }
            Ok(Err(reason)) => self.refuse(&mut rx, reason).await,
            Err(join) => {
                self.refuse(&mut rx, format!("room load crashed: {join}"))
                    .await
            }
        }
        metrics.rooms_open.fetch_sub(1, Relaxed);
    }

    /// The room could not be loaded: refuse every connection with the reason, never start empty.
    async fn refuse(&mut self, rx: &mut mpsc::Receiver<RoomCmd>, reason: String) {
        self.rooms.metrics.room_load_failures.fetch_add(1, Relaxed);
        tracing::error!(interview = %self.id, %reason, "room failed to load; refusing connections");
        let reason = format!("room state failed to load: {reason}");
        loop {
            let linger = tokio::time::sleep(std::time::Duration::from_secs(5));
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(RoomCmd::Join { sink, .. } | RoomCmd::Subscribe { sink, .. }) => sink.close(close::INTERNAL, truncate(&reason)),
                    Some(RoomCmd::StartRun { reply, .. }) => { let _ = reply.send(Err(RunError::RoomUnavailable(reason.clone()))); }
                    Some(_) => {}
                    None => return,
                },
                _ = linger => if self.rooms.retire(&self.id, self.generation, rx) { return },
                _ = self.rooms.shutdown.cancelled() => return,
            }
        }
    }

    async fn live(
        &mut self,
        mut room: Room,
        unfinished: Vec<duet_core::UnfinishedRun>,
        rx: &mut mpsc::Receiver<RoomCmd>,
    ) {
        self.finish_interrupted(&mut room, unfinished);
        let idle = self.rooms.settings.idle();
        let mut idle_since = Instant::now();
        loop {
            // A role's leave is logged once its grace has passed (the room's clock is the wall
            // clock in unix ms; the sleep converts it to the runtime's clock).
            let leave_due = room.next_deadline().map(|at| {
                let wait = u64::try_from(at - now_ms()).unwrap_or(0);
                tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
            });
            if let Some(reason) = self.poisoned.take() {
                self.close_everyone(close::INTERNAL, &reason);
                self.rooms.retire(&self.id, self.generation, rx);
                rx.close();
                self.drain_refusing(rx, close::TRY_AGAIN, "room reloading; reconnect")
                    .await;
                return;
            }
            if let Some(erased) = self.erasing.take() {
                // Whatever is on its way to the store lands first, so the erase that follows
                // this answer removes it too.
                while let Some(ack) = self.pop_ack().await {
                    self.on_ack(ack);
                }
                self.close_everyone(close::GOING_AWAY, "interview deleted");
                self.rooms.retire(&self.id, self.generation, rx);
                rx.close();
                let _ = erased.send(());
                self.drain_refusing(rx, close::GOING_AWAY, "interview deleted")
                    .await;
                return;
            }
            // Run output waiting to share a record is stored when its few milliseconds are up.
            let output_due = self.next_output_due().map(|at| {
                let wait = u64::try_from(at - now_ms()).unwrap_or(0);
                tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
            });
            let can_take = self.gates.len() < MAX_IN_FLIGHT && self.waiting < MAX_WAITING;
            let idle_armed = self.is_idle(&room);
            let idle_deadline = tokio::time::Instant::from_std(idle_since + idle);
            tokio::select! {
                biased;
                ack = next_ack(&mut self.gates) => self.on_ack(ack),
                cmd = rx.recv(), if can_take => match cmd {
                    Some(cmd) => {
                        self.on_command(&mut room, cmd);
                        if !self.is_idle(&room) { idle_since = Instant::now(); }
                    }
                    None => return,
                },
                _ = sleep_until_maybe(output_due), if output_due.is_some() => {
                    let effects = self.flush_due_output(&mut room, now_ms());
                    self.execute(&mut room, effects);
                }
                _ = sleep_until_maybe(leave_due), if leave_due.is_some() => {
                    let effects = room.tick(now_ms());
                    self.execute(&mut room, effects);
                }
                _ = tokio::time::sleep_until(idle_deadline), if idle_armed => {
                    let effects = room.flush_leaves(now_ms());
                    self.execute(&mut room, effects);
                    while let Some(ack) = self.pop_ack().await { self.on_ack(ack); }
                    if self.poisoned.is_some() { continue; }
                    self.checkpoint(&room).await;
                    if self.rooms.retire(&self.id, self.generation, rx) {
                        rx.close();
                        self.drain_refusing(rx, close::GOING_AWAY, "room unloaded; reconnect").await;
                        return;
                    }
                    idle_since = Instant::now();
                }
                _ = self.rooms.shutdown.cancelled() => {
                    self.abandon_runs(&mut room);
                    let effects = room.flush_leaves(now_ms());
                    self.execute(&mut room, effects);
                    while let Some(ack) = self.pop_ack().await { self.on_ack(ack); }
                    self.checkpoint(&room).await;
                    self.close_everyone(close::GOING_AWAY, "server shutting down");
                    return;
                }
            }
        }
    }

    /// Answers what is left in a closed queue so no connection waits for a room that is gone.
    async fn drain_refusing(&mut self, rx: &mut mpsc::Receiver<RoomCmd>, code: u16, reason: &str) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                RoomCmd::Join { sink, .. } | RoomCmd::Subscribe { sink, .. } => {
                    sink.close(code, reason)
                }
                RoomCmd::StartRun { reply, .. } => {
                    let _ = reply.send(Err(RunError::RoomUnavailable(reason.to_owned())));
                }
                _ => {}
            }
        }
    }

    fn on_command(&mut self, room: &mut Room, cmd: RoomCmd) {
        let now = now_ms();
        let effects = match cmd {
            RoomCmd::Join {
                conn,
                role,
                identity,
                sink,
            } => {
                let replies = sink.replies.clone();
                self.peers.insert(conn, sink);
                room.join(conn, role, identity, replies, now)
            }
            RoomCmd::Message { conn, bytes } => room.receive(conn, &bytes, now),
            RoomCmd::Leave { conn } => {
                self.peers.remove(&conn);
                room.leave(conn, now)
            }
            RoomCmd::Subscribe { conn, role, sink } => {
                self.subscribers.insert(conn, (role, sink));
                Vec::new()
            }
            RoomCmd::Unsubscribe { conn } => {
                self.subscribers.remove(&conn);
                Vec::new()
            }
            RoomCmd::StartRun {
                by,
                kind,
                stdin,
                reply,
            } => {
                let (result, effects) = self.start_run(room, by, kind, stdin, now);
                let _ = reply.send(result);
                effects
            }
            RoomCmd::SaveScorecard { update, reply } => {
                let outcome = room.save_scorecard(update, now);
                self.answer_when_stored(room, outcome, reply);
                Vec::new()
            }
            RoomCmd::SubmitScorecard { reply } => {
                let outcome = room.submit_scorecard(now);
                self.answer_when_stored(room, outcome, reply);
                Vec::new()
            }
            RoomCmd::AddNote { text, reply } => {
                let outcome = room.add_note(text, now);
                self.answer_when_stored(room, outcome, reply);
                Vec::new()
            }
            RoomCmd::Signal { kind, size, reply } => {
                let effects = room.signal(kind, size, now);
                let _ = reply.send(effects.is_some());
                effects.unwrap_or_default()
            }
            RoomCmd::End { reply } => {
                self.cancel_all_runs();
                let effects = room.end(now);
                self.execute(room, effects);
                let seq = room.last_seq();
                self.deliver(Delivery::Reply(Box::new(move || {
                    let _ = reply.send(seq);
                })));
                Vec::new()
            }
            RoomCmd::Erase { reply } => {
                self.erasing = Some(reply);
                Vec::new()
            }
            RoomCmd::SwitchQuestion {
                question,
                by,
                reply,
            } => {
                let effects = self.switch_question(room, question, by.into());
                self.execute(room, effects);
                let seq = room.last_seq();
                // Answered once the switch and its starter are stored.
                self.deliver(Delivery::Reply(Box::new(move || {
                    let _ = reply.send(seq);
                })));
                Vec::new()
            }
            RoomCmd::RunStdin {
                run_id,
                data,
                eof,
                reply,
            } => {
                let _ = reply.send(self.feed_run(&run_id, data, eof));
                Vec::new()
            }
            RoomCmd::CancelRun { run_id, reply } => {
                let _ = reply.send(self.cancel_run(&run_id));
                Vec::new()
            }
            RoomCmd::RunEvent { run_id, event } => self.on_run_event(room, &run_id, event, now),
        };
        self.execute(room, effects);
        if self.edits_since_checkpoint >= self.rooms.settings.checkpoint_every {
            let (seq, state, owners) = room.checkpoint();
            drop(
                self.rooms
                    .store
                    .checkpoint(&self.id, Checkpoint { seq, state, owners }),
            );
            self.edits_since_checkpoint = 0;
        }
    }

    pub(crate) fn execute(&mut self, room: &mut Room, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => {
                    let is_edit = record.kind == EventKind::Edit;
                    self.edits_since_checkpoint += u64::from(is_edit);
                    let ticket = self.rooms.store.append(&self.id, record);
                    self.gates.push_back(Gate {
                        ticket,
                        handed_at: Instant::now(),
                        is_edit,
                        then: Vec::new(),
                    });
                }
                Effect::Send { to, message, reply } => self.deliver(Delivery::To(
                    to,
                    Message::Binary(Bytes::from(message)),
                    reply,
                )),
                Effect::Broadcast { except, message } => self.deliver(Delivery::All {
                    except,
                    message: Message::Binary(Bytes::from(message)),
                }),
                Effect::Event { audience, event } => {
                    // One spelling: the protocol's type, serialized here once for every subscriber.
                    let json = serde_json::to_string(&event).unwrap_or_default();
                    self.deliver(Delivery::Event {
                        audience,
                        message: Message::Text(json.into()),
                    })
                }
                Effect::Close { conn, code, reason } => self.drop_peer(room, conn, code, &reason),
                Effect::Reload { reason } => self.poisoned = Some(reason),
            }
        }
    }

    /// Carries out a change the room accepted and answers with its value once it is stored, or
    /// answers the refusal at once.
    fn answer_when_stored<T: Send + 'static, E>(
        &mut self,
        room: &mut Room,
        outcome: Result<(T, Vec<Effect>), E>,
        reply: oneshot::Sender<Result<T, E>>,
    ) where
        E: Send + 'static,
    {
        match outcome {
            Ok((value, effects)) => {
                self.execute(room, effects);
                self.deliver(Delivery::Reply(Box::new(move || {
                    let _ = reply.send(Ok(value));
                })));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        match self.gates.back_mut() {
            Some(gate) => {
                gate.then.push(delivery);
                self.waiting += 1;
            }
            None => self.send(delivery),
        }
    }

    /// Closes one connection and takes it out of the room.
    fn drop_peer(&mut self, room: &mut Room, conn: ConnId, code: u16, reason: &str) {
        if let Some(sink) = self.peers.remove(&conn) {
            self.rooms
                .metrics
                .connections_closed_by_server
                .fetch_add(1, Relaxed);
            sink.close(code, truncate(reason));
        }
        let effects = room.leave(conn, now_ms());
        self.execute(room, effects);
    }

    fn on_ack(&mut self, result: Result<(), StoreError>) {
        let Some(gate) = self.gates.pop_front() else {
            return;
        };
        match result {
            Ok(()) => {
                self.rooms.metrics.observe_persist(gate.handed_at.elapsed());
                self.rooms.metrics.events_persisted.fetch_add(1, Relaxed);
                if gate.is_edit {
                    self.rooms.metrics.updates_persisted.fetch_add(1, Relaxed);
                }
                self.waiting -= gate.then.len();
                for delivery in gate.then {
                    self.send(delivery);
                }
            }
            Err(e) => {
                tracing::error!(interview = %self.id, error = %e, "room: storing an event failed");
                // The browser app shows this as "not saved"; the room reloads from what is stored.
                self.poisoned = Some(format!(
                    "not saved: storage failed ({}); reconnect",
                    e.failure()
                ));
            }
        }
    }

    /// Sends a message now. A peer whose queue is full is closed; its leave reaches the room
    /// through the connection's own `Leave` command, so nobody is dropped silently.
    fn send(&mut self, delivery: Delivery) {
        let mut too_slow = Vec::new();
        let mut offer = |conn: ConnId, sink: &PeerSink, message: &Message, reply: Option<Reply>| {
            if sink.offer(message.clone(), reply).is_err() {
                too_slow.push(conn);
            }
        };
        match delivery {
            Delivery::Reply(answer) => answer(),
            Delivery::To(conn, message, reply) => {
                if let Some(sink) = self.peers.get(&conn) {
                    offer(conn, sink, &message, reply);
                }
            }
            Delivery::All { except, message } => {
                for (conn, sink) in self.peers.iter().filter(|(c, _)| Some(**c) != except) {
                    offer(*conn, sink, &message, None);
                }
            }
            Delivery::Event { audience, message } => {
                for (conn, (_, sink)) in self
                    .subscribers
                    .iter()
                    .filter(|(_, (role, _))| audience.includes(*role))
                {
                    offer(*conn, sink, &message, None);
                }
            }
        }
        for conn in too_slow {
            let sink = self
                .peers
                .remove(&conn)
                .or_else(|| self.subscribers.remove(&conn).map(|(_, s)| s));
            if let Some(sink) = sink {
                self.rooms
                    .metrics
                    .connections_closed_by_server
                    .fetch_add(1, Relaxed);
                sink.close(
                    close::TRY_AGAIN,
                    "client too slow to keep up; reconnect to resync",
                );
            }
        }
    }

    async fn pop_ack(&mut self) -> Option<Result<(), StoreError>> {
        let gate = self.gates.front_mut()?;
        Some(
            (&mut gate.ticket)
                .await
                .unwrap_or(Err(StoreError::WriterGone)),
        )
    }

    /// Stores the whole document and waits until it is stored.
    async fn checkpoint(&mut self, room: &Room) {
        if self.edits_since_checkpoint == 0 {
            return;
        }
        let (seq, state, owners) = room.checkpoint();
        if let Ok(Err(e)) = self
            .rooms
            .store
            .checkpoint(&self.id, Checkpoint { seq, state, owners })
            .await
        {
            tracing::warn!(interview = %self.id, error = %e, "room: checkpoint failed (the log is intact)");
        }
        self.edits_since_checkpoint = 0;
    }

    fn close_everyone(&mut self, code: u16, reason: &str) {
        self.cancel_all_runs();
        for (_, sink) in self.peers.drain() {
            sink.close(code, truncate(reason));
        }
        for (_, (_, sink)) in self.subscribers.drain() {
            sink.close(code, truncate(reason));
        }
        self.gates.clear();
        self.waiting = 0;
    }
}

async fn sleep_until_maybe(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_ack(gates: &mut VecDeque<Gate>) -> Result<(), StoreError> {
    match gates.front_mut() {
        Some(gate) => (&mut gate.ticket)
            .await
            .unwrap_or(Err(StoreError::WriterGone)),
        None => std::future::pending().await,
    }
}

/// Loads a room from its history, with the runs the log shows as never finished.
/// A room read back from the store.
struct Loaded {
    room: Room,
    /// Runs the log shows as started and never finished.
    unfinished: Vec<duet_core::UnfinishedRun>,
    /// The last question switch in the log.
    question: Option<String>,
    /// For a room whose log is empty: the question it was created with.
    initial_question: Option<String>,
    restored: Restored,
}

fn load(store: &dyn Store, id: &InterviewId, config: RoomConfig) -> Result<Loaded, String> {
    let history = store.load_history(id).map_err(|e| e.to_string())?;
    let checkpoint = history.checkpoint.as_ref().map(|cp| CheckpointRef {
        seq: cp.seq,
        state: &cp.state,
        owners: &cp.owners,
    });
    let rebuilt = duet_core::rebuild(checkpoint, history.records).map_err(|e| e.to_string())?;
    let kinds = [
        EventKind::RunStarted,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::End,
    ];
    let records = store.read_kinds(id, &kinds).map_err(|e| e.to_string())?;
    let of = |kind: EventKind| records.iter().filter(move |r| r.kind == kind);
    let runs: Vec<_> = records
        .iter()
        .filter(|r| matches!(r.kind, EventKind::RunStarted | EventKind::RunFinished))
        .cloned()
        .collect();
    let switches: Vec<_> = of(EventKind::Question).collect();
    let restored = Restored {
        ended: of(EventKind::End).next().is_some(),
        runs: of(EventKind::RunStarted)
            .filter_map(|r| serde_json::from_slice::<duet_protocol::RunStarted>(&r.data).ok())
            .map(|s| s.run_id)
            .collect(),
        scorecard: ScorecardState::from_log(of(EventKind::Scorecard)),
    };
    let question = switches
        .last()
        .and_then(|r| serde_json::from_slice::<duet_protocol::QuestionSwitched>(&r.data).ok())
        .map(|s| s.question_id);
    let initial_question = match rebuilt.last_seq {
        0 => store
            .get_interview(id)
            .map_err(|e| e.to_string())?
            .and_then(|i| i.question_id),
        _ => None,
    };
    Ok(Loaded {
        room: Room::from_history(config, rebuilt, history.log_bytes),
        unfinished: duet_core::unfinished_runs(&runs),
        question,
        initial_question,
        restored,
    })
}

/// Close reasons must fit a websocket close frame (123 bytes).
pub(crate) fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
