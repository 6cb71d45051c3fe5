//! A room's life, as the module above states it: loading (or refusing), live, and the ways a
//! live room ends (poisoned, erasing, retiring, shutting down).

use super::gates::{next_ack, MOVED};
use super::lease::{HeldLease, TakeError};
use super::load::{load, Loaded};
use super::{
    truncate, RoomClock, RoomCmd, RoomReceiver, RoomTask, Rooms, RunError, WeakRoomSender,
};
use super::{MAX_IN_FLIGHT, MAX_WAITING};
use duet_core::{Room, TakeHome, UnfinishedRun};
use duet_protocol::{close, Actor, InterviewId, Question};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::time::Instant;

/// The room's task: loads the room, then runs it until it retires, or refuses connections when
/// it cannot be loaded.
pub(super) async fn run(
    rooms: Arc<Rooms>,
    id: InterviewId,
    generation: u64,
    me: WeakRoomSender,
    mut rx: RoomReceiver,
) {
    let metrics = rooms.metrics.clone();
    metrics.rooms_open.fetch_add(1, Relaxed);
    // The task's future lives as long as the room: loading runs in a box of its own, freed
    // once it is done, and hands the room over boxed, so that future holds the live loop and
    // a pointer (an inline task was kept beside the space of the load's result: 4 KiB a room).
    match Box::pin(start(&rooms, &id, generation, me)).await {
        Ok((mut task, unfinished)) => {
            task.live(unfinished, &mut rx).await;
            task.let_go().await;
        }
        Err(Unloaded::Elsewhere) => {
            // Another node holds the room: this life ends at once, and whoever asked
            // reconnects (or retries) and is sent to that node.
            rooms.forget(&id, generation);
            rx.close();
            drain_refusing(&mut rx, close::GOING_AWAY, MOVED).await;
        }
        Err(Unloaded::Failed(reason)) => refuse(&rooms, &id, generation, &mut rx, reason).await,
    }
    metrics.rooms_open.fetch_sub(1, Relaxed);
}

/// Why a room did not load.
enum Unloaded {
    /// Another node holds its lease.
    Elsewhere,
    /// Its history could not be read (or its lease could not be asked for).
    Failed(String),
}

/// Loads the room into a task ready to go live, or says why it cannot be loaded. With several
/// nodes the room's lease is taken first, so the history read is everything the previous
/// holder wrote.
async fn start(
    rooms: &Arc<Rooms>,
    id: &InterviewId,
    generation: u64,
    me: WeakRoomSender,
) -> Result<(Box<RoomTask>, Vec<UnfinishedRun>), Unloaded> {
    let lease = match &rooms.leases {
        Some(leases) => match leases.take(id).await {
            Ok(lease) => Some(lease),
            Err(TakeError::HeldElsewhere) => return Err(Unloaded::Elsewhere),
            Err(e @ TakeError::Store(_)) => return Err(Unloaded::Failed(e.to_string())),
        },
        None => None,
    };
    match load_room(rooms, id, generation, me).await {
        Ok((mut task, unfinished)) => {
            task.lease = lease;
            task.start_question();
            Ok((task, unfinished))
        }
        Err(reason) => {
            if let Some(lease) = lease {
                lease.release().await;
            }
            Err(Unloaded::Failed(reason))
        }
    }
}

/// Reads the room's history into a task.
async fn load_room(
    rooms: &Arc<Rooms>,
    id: &InterviewId,
    generation: u64,
    me: WeakRoomSender,
) -> Result<(Box<RoomTask>, Vec<UnfinishedRun>), String> {
    let store = rooms.store.clone();
    let config = rooms.settings.room_config();
    // After an earlier failure the store holds this room's appends back until it reloads;
    // everything the previous life of the room queued is dealt with before the load reads.
    let _ = store.reopen(id).await;
    let loaded = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || load(&*store, &id, config)).await
    };
    let Loaded {
        mut room,
        initial_question,
        mut restored,
        environment,
        take_home_minutes,
    } = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(reason)) => return Err(reason),
        Err(join) => return Err(format!("room load crashed: {join}")),
    };
    let unfinished = std::mem::take(&mut restored.unfinished);
    let round = std::mem::take(&mut restored.take_home);
    room.restore(restored);
    if let Some(time_limit_minutes) = take_home_minutes {
        room.set_take_home(TakeHome {
            time_limit_minutes,
            ..round
        });
    }
    let question = room.question().and_then(|q| rooms.questions.get(q));
    let initial = initial_question.and_then(|q| rooms.questions.get(&q));
    let mut task = RoomTask::new(rooms.clone(), id.clone(), generation, me, room, question);
    task.environment = environment;
    task.initial = initial;
    Ok((Box::new(task), unfinished))
}

/// The room could not be loaded: refuse every connection with the reason, never start empty.
async fn refuse(
    rooms: &Rooms,
    id: &InterviewId,
    generation: u64,
    rx: &mut RoomReceiver,
    reason: String,
) {
    rooms.metrics.room_load_failures.fetch_add(1, Relaxed);
    tracing::error!(interview = %id, %reason, "room failed to load; refusing connections");
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
            _ = linger => if rooms.retire(id, generation, rx) { return },
            _ = rooms.shutdown.cancelled() => return,
        }
    }
}

impl RoomTask {
    fn new(
        rooms: Arc<Rooms>,
        id: InterviewId,
        generation: u64,
        me: WeakRoomSender,
        room: Room,
        question: Option<Arc<Question>>,
    ) -> RoomTask {
        RoomTask {
            rooms,
            id,
            generation,
            me,
            room,
            clock: RoomClock::start(),
            peers: HashMap::new(),
            subscribers: HashMap::new(),
            runs: HashMap::new(),
            gates: VecDeque::new(),
            edits_since_checkpoint: 0,
            poisoned: None,
            question,
            environment: duet_protocol::DEFAULT_ENVIRONMENT.to_owned(),
            erasing: None,
            waiting: 0,
            lease: None,
            moved: false,
            initial: None,
        }
    }

    /// A new interview with a question: its starter is the room's first edit (written once
    /// the room holds its lease, under it).
    fn start_question(&mut self) {
        if let Some(initial) = self.initial.take() {
            if let Ok((effects, _)) = self.switch_question(initial, Actor::Server) {
                self.execute(effects);
            }
        }
    }

    /// Gives the room's lease back, unless a later life of the room on this node holds it now.
    async fn let_go(&mut self) {
        if let Some(lease) = self.lease.take() {
            if !self.rooms.superseded(&self.id, self.generation) {
                lease.release().await;
            }
        }
    }

    /// Idle: nobody connected, nothing running or waiting, and no take-home clock running (the
    /// room holds the deadline's timer, so it stays loaded until the round is submitted).
    fn is_idle(&self) -> bool {
        self.room.take_home_due().is_none()
            && self.room.take_home_tests_due().is_none()
            && self.room.connections() == 0
            && self.subscribers.is_empty()
            && self.runs.is_empty()
            && self.gates.is_empty()
    }

    /// The live room: takes commands, opens gates as acks arrive, logs leaves and stores run
    /// output when due, and retires when idle. Returns when the room's life is over.
    async fn live(&mut self, unfinished: Vec<UnfinishedRun>, rx: &mut RoomReceiver) {
        self.finish_interrupted(unfinished);
        let idle = self.rooms.settings.idle();
        // The runtime's clock, so a test can pause time and step past the idle timeout.
        let mut idle_since = Instant::now();
        loop {
            // A role's leave is logged once its grace has passed (on the room's clock, which
            // is the runtime's clock in unix ms).
            let leave_due = self
                .room
                .next_deadline()
                .map(|at| self.clock.instant_of(at));
            if let Some(reason) = self.poisoned.take() {
                let code = if self.moved {
                    close::GOING_AWAY
                } else {
                    close::INTERNAL
                };
                self.close_everyone(code, &reason);
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
            let output_due = self.next_output_due().map(|at| self.clock.instant_of(at));
            // A running take-home is submitted at its deadline, whether anyone is here or not;
            // a submitted one's hidden tests start when the sandbox takes them.
            let take_home_due = self
                .room
                .take_home_due()
                .or(self.room.take_home_tests_due())
                .map(|at| self.clock.instant_of(at));
            let can_take = self.gates.len() < MAX_IN_FLIGHT && self.waiting < MAX_WAITING;
            let idle_due = self.is_idle().then_some(idle_since + idle);
            // One timer for the four deadlines, set to the earliest: each `Sleep` is 112 bytes
            // of the room's future, which every open room keeps. When it fires, the first one
            // due is handled (in this order, as the arms of a biased select were), and the loop
            // sets it again for the rest.
            let wake_at = [output_due, leave_due, take_home_due, idle_due]
                .into_iter()
                .flatten()
                .min();
            let lost = self.lease.as_ref().map(HeldLease::lost);
            tokio::select! {
                biased;
                _ = lease_lost(lost.as_ref()) => {
                    // Lapsed or taken over: whatever this room writes now is fenced out, so
                    // everyone reconnects to the room's new owner at once.
                    self.moved = true;
                    self.poisoned = Some(MOVED.to_owned());
                }
                ack = next_ack(&mut self.gates) => self.on_ack(ack),
                cmd = rx.recv(), if can_take => match cmd {
                    Some(cmd) => {
                        self.on_command(cmd);
                        // Idle means a whole idle period with no command at all: the last to
                        // leave starts it afresh (so a reconnect within the leave grace finds
                        // the room still loaded).
                        idle_since = Instant::now();
                    }
                    None => return,
                },
                _ = sleep_until_maybe(wake_at), if wake_at.is_some() => {
                    let now = Instant::now();
                    let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
                    if due(output_due) {
                        let effects = self.flush_due_output(self.clock.now_ms());
                        self.execute(effects);
                    } else if due(leave_due) {
                        let effects = self.room.tick(self.clock.now_ms());
                        self.execute(effects);
                    } else if due(take_home_due) {
                        self.on_take_home_timer();
                    } else if due(idle_due) {
                        let effects = self.room.flush_leaves(self.clock.now_ms());
                        self.execute(effects);
                        while let Some(ack) = self.pop_ack().await { self.on_ack(ack); }
                        if self.poisoned.is_some() { continue; }
                        self.checkpoint().await;
                        if self.rooms.retire(&self.id, self.generation, rx) {
                            rx.close();
                            self.drain_refusing(rx, close::GOING_AWAY, "room unloaded; reconnect").await;
                            return;
                        }
                        idle_since = Instant::now();
                    }
                }
                _ = self.rooms.shutdown.cancelled() => {
                    self.abandon_runs();
                    let effects = self.room.flush_leaves(self.clock.now_ms());
                    self.execute(effects);
                    while let Some(ack) = self.pop_ack().await { self.on_ack(ack); }
                    self.checkpoint().await;
                    // Given back before anyone is closed, so their reconnects find the room
                    // free on whichever node they reach next.
                    self.let_go().await;
                    self.close_everyone(close::GOING_AWAY, "server shutting down");
                    return;
                }
            }
        }
    }

    /// Answers what is left in a closed queue so no connection waits for a room that is gone.
    async fn drain_refusing(&mut self, rx: &mut RoomReceiver, code: u16, reason: &str) {
        drain_refusing(rx, code, reason).await
    }
}

/// Answers what is left in a closed queue so no connection waits for a room that is gone.
async fn drain_refusing(rx: &mut RoomReceiver, code: u16, reason: &str) {
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

/// Fires when the room's lease is known lost (never without a lease).
async fn lease_lost(lost: Option<&tokio_util::sync::CancellationToken>) {
    match lost {
        Some(lost) => lost.cancelled().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_maybe(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
