//! A room's life, as the module above states it: loading (or refusing), live, and the ways a
//! live room ends (poisoned, erasing, retiring, shutting down).

use super::gates::next_ack;
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
        Ok((mut task, unfinished)) => task.live(unfinished, &mut rx).await,
        Err(reason) => refuse(&rooms, &id, generation, &mut rx, reason).await,
    }
    metrics.rooms_open.fetch_sub(1, Relaxed);
}

/// Loads the room into a task ready to go live, or says why it cannot be loaded.
async fn start(
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
    // A new interview with a question: its starter is the room's first edit.
    if let Some(initial) = initial {
        if let Ok((effects, _)) = task.switch_question(initial, Actor::Server) {
            task.execute(effects);
        }
    }
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
            tokio::select! {
                biased;
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
                    self.close_everyone(close::GOING_AWAY, "server shutting down");
                    return;
                }
            }
        }
    }

    /// Answers what is left in a closed queue so no connection waits for a room that is gone.
    async fn drain_refusing(&mut self, rx: &mut RoomReceiver, code: u16, reason: &str) {
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
}

async fn sleep_until_maybe(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
