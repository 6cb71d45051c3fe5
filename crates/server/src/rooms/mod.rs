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
use axum::body::Bytes;
use axum::extract::ws::Message;
use duet_core::{Audience, ConnId, Reply, Room, ScorecardError};
use duet_protocol::{Identity, InterviewId, Question, Role, RoomEvent, RunId, RunKind};
use duet_protocol::{Note, Scorecard, ScorecardUpdate};
use duet_sandbox::{Limits, RunEvent, Sandbox};
use duet_store::{Store, Ticket};
use futures_util::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Records in flight to the store per room before the room stops taking commands (backpressure).
const MAX_IN_FLIGHT: usize = 4096;
/// Messages waiting behind gates before the room stops taking commands (a store stall must not
/// let awareness traffic grow the queues without bound).
const MAX_WAITING: usize = 16_384;

mod commands;
mod gates;
mod lease;
mod lifecycle;
mod load;
mod runs;
mod take_home;

use lease::HeldLease;
pub use lease::NodeLeases;
use runs::ActiveRun;
pub use runs::RunError;
pub use take_home::TakeHomeCmd;

/// A question switch, stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// The seq of the switch record.
    pub seq: u64,
    /// Whether `main.py` holds the code last written for the question (a switch back).
    pub restored: bool,
}

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
        /// Who subscribes: the role, and the panel member (`None` for a role link or the
        /// admin token), since a note or scorecard save goes only to its author's connections.
        who: Subscriber,
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
    /// Input for a running program from `by`: sent to it, then stored and shown (answered
    /// once stored).
    RunStdin {
        run_id: RunId,
        by: Role,
        data: String,
        eof: bool,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    /// An interviewer saves their scorecard (`author`: the panel member's id, `None` for the
    /// interviewer link; answered with the stored card once durable).
    SaveScorecard {
        author: Option<String>,
        update: ScorecardUpdate,
        reply: oneshot::Sender<Result<Scorecard, ScorecardError>>,
    },
    /// An interviewer submits their scorecard (answered once the lock is durable).
    SubmitScorecard {
        author: Option<String>,
        reply: oneshot::Sender<Result<Scorecard, ScorecardError>>,
    },
    /// An interviewer writes a private note (answered once durable).
    AddNote {
        author: Option<String>,
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
    /// and whether the question's earlier code came back, once stored; refused after the end.
    SwitchQuestion {
        question: Arc<Question>,
        by: Role,
        reply: oneshot::Sender<Result<Switched, duet_core::Ended>>,
    },
    CancelRun {
        run_id: RunId,
        by: Role,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    RunEvent {
        run_id: RunId,
        event: RunEvent,
    },
    /// A take-home's Start and Submit.
    TakeHome(TakeHomeCmd),
}

#[derive(Clone)]
pub struct RoomHandle {
    pub tx: RoomSender,
    generation: u64,
}

/// A command as it waits in a room's queue: a websocket message (nearly all of the traffic)
/// inline, anything else boxed. tokio's bounded channel allocates its slots 32 at a time, from
/// the start; at 168 bytes a `RoomCmd` made that first block 5.3 KiB of every open room, idle
/// or not, and this keeps it at 1.5 KiB.
enum Queued {
    Message { conn: ConnId, bytes: Bytes },
    Other(Box<RoomCmd>),
}

impl Queued {
    fn of(cmd: RoomCmd) -> Queued {
        match cmd {
            RoomCmd::Message { conn, bytes } => Queued::Message { conn, bytes },
            other => Queued::Other(Box::new(other)),
        }
    }

    fn into_cmd(self) -> RoomCmd {
        match self {
            Queued::Message { conn, bytes } => RoomCmd::Message { conn, bytes },
            Queued::Other(cmd) => *cmd,
        }
    }
}

/// The sending end of a room's bounded command queue (senders wait while it is full).
#[derive(Clone)]
pub struct RoomSender(mpsc::Sender<Queued>);

/// A sender that does not keep the room's queue open.
struct WeakRoomSender(mpsc::WeakSender<Queued>);

/// The room task's end of its queue.
struct RoomReceiver(mpsc::Receiver<Queued>);

fn room_queue(capacity: usize) -> (RoomSender, RoomReceiver) {
    let (tx, rx) = mpsc::channel(capacity);
    (RoomSender(tx), RoomReceiver(rx))
}

impl RoomSender {
    /// Queues a command, waiting while the queue is full; gives it back if the room is gone
    /// (as tokio's `send` does, hence the large error).
    #[allow(clippy::result_large_err)]
    pub fn send(
        &self,
        cmd: RoomCmd,
    ) -> impl Future<Output = Result<(), mpsc::error::SendError<RoomCmd>>> + '_ {
        // Converted before the future is made, so a waiting sender holds the small form only.
        self.0.send(Queued::of(cmd)).map(|sent| {
            sent.map_err(|mpsc::error::SendError(q)| mpsc::error::SendError(q.into_cmd()))
        })
    }

    /// Whether the room's task stopped taking commands.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn downgrade(&self) -> WeakRoomSender {
        WeakRoomSender(self.0.downgrade())
    }
}

impl WeakRoomSender {
    fn upgrade(&self) -> Option<RoomSender> {
        self.0.upgrade().map(RoomSender)
    }
}

impl RoomReceiver {
    async fn recv(&mut self) -> Option<RoomCmd> {
        self.0.recv().await.map(Queued::into_cmd)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn close(&mut self) {
        self.0.close()
    }
}

/// Finds or loads the room of an interview.
pub struct Rooms {
    map: Mutex<HashMap<InterviewId, RoomHandle>>,
    questions: Arc<QuestionBank>,
    store: Arc<dyn Store>,
    sandbox: Arc<dyn Sandbox>,
    run_limits: Limits,
    settings: RoomSettings,
    metrics: Arc<Metrics>,
    generations: AtomicU64,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Several nodes on one database: each room is held here only under its lease.
    leases: Option<Arc<NodeLeases>>,
}

impl Rooms {
    /// Rooms of a single node: no leases (SQLite, or tests).
    pub fn new(parts: RoomsParts) -> Arc<Rooms> {
        Rooms::new_on(parts, None)
    }

    /// Rooms held under leases when `leases` is given (several nodes on one database).
    pub fn new_on(parts: RoomsParts, leases: Option<Arc<NodeLeases>>) -> Arc<Rooms> {
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
            leases,
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
        let (tx, rx) = room_queue(self.settings.queue.max(1));
        let handle = RoomHandle {
            tx,
            generation: self.generations.fetch_add(1, Relaxed),
        };
        map.insert(id.clone(), handle.clone());
        let task = lifecycle::run(
            self.clone(),
            id.clone(),
            handle.generation,
            handle.tx.downgrade(),
            rx,
        );
        let span = tracing::info_span!("room", interview = %id);
        self.tracker
            .spawn(tracing::Instrument::instrument(task, span));
        handle
    }

    /// Removes the room from the registry if `generation` is still the one registered and its
    /// queue is empty. Returns whether it did.
    fn retire(&self, id: &InterviewId, generation: u64, rx: &RoomReceiver) -> bool {
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

    /// Removes the room from the registry if `generation` is still the one registered, whatever
    /// waits in its queue (the task answers that itself).
    fn forget(&self, id: &InterviewId, generation: u64) {
        let mut map = self.map();
        if map.get(id).is_some_and(|h| h.generation == generation) {
            map.remove(id);
        }
    }

    /// Whether a later life of the room than `generation` is registered on this node (it holds
    /// the same lease, which an earlier life must then not give back).
    fn superseded(&self, id: &InterviewId, generation: u64) -> bool {
        self.map()
            .get(id)
            .is_some_and(|h| h.generation > generation)
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
enum Delivery {
    /// An answer to whoever asked, sent once everything before it is durable.
    Reply(Box<dyn FnOnce() + Send>),
    To(ConnId, Message, Option<Reply>),
    All {
        except: Option<ConnId>,
        message: Message,
    },
    /// An event for the events-socket subscribers `audience` reaches, serialized when sent
    /// (with the log's seq for the roles that see it, without for the others).
    Event {
        audience: Audience,
        event: RoomEvent,
    },
}

/// An events-socket subscriber: its role, and the panel member it is, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub role: Role,
    pub person: Option<String>,
}

struct Gate {
    ticket: Ticket,
    handed_at: Instant,
    is_edit: bool,
    then: Vec<Delivery>,
}

/// A live room: owns the core [`Room`] (and so its document) and everything the room's task
/// keeps beside it. Its behaviour is split by concern over this module's children:
/// [`lifecycle`] (the loop and how it ends), [`commands`], [`gates`] (effects, acks and
/// deliveries) and [`runs`].
struct RoomTask {
    rooms: Arc<Rooms>,
    id: InterviewId,
    generation: u64,
    /// This room's own queue, for the tasks that pump a run's events into it.
    me: WeakRoomSender,
    room: Room,
    clock: RoomClock,
    peers: HashMap<ConnId, PeerSink>,
    subscribers: HashMap<ConnId, (Subscriber, PeerSink)>,
    runs: HashMap<RunId, ActiveRun>,
    gates: VecDeque<Gate>,
    edits_since_checkpoint: u64,
    /// Set when the room must close everyone and reload from the store.
    poisoned: Option<String>,
    /// The question the room is on (the last switch in its log).
    question: Option<Arc<Question>>,
    /// The interview's sandbox environment (see [`RoomTask::run_environment`]).
    environment: String,
    /// Set when the interview is being deleted: the room closes and answers this.
    erasing: Option<oneshot::Sender<()>>,
    /// The room's lease, when several nodes share the database.
    lease: Option<HeldLease>,
    /// Set when the lease was lost: the room closes everyone so they reconnect to its new owner.
    moved: bool,
    /// A new interview's question, switched to once the room goes live.
    initial: Option<Arc<Question>>,
    /// Deliveries waiting behind gates.
    waiting: usize,
}

/// The room's clock: unix milliseconds that advance with the runtime's clock, set from the wall
/// clock when the room loads. Record times, the leave grace and output batching read it, so
/// they agree with the runtime's timers (a test can pause time and step them together), and a
/// step of the wall clock never moves a live room's times backwards.
#[derive(Debug, Clone, Copy)]
struct RoomClock {
    /// The wall clock when the room loaded, to the nanosecond: truncating it (and then the
    /// elapsed time) to milliseconds separately put the room up to 2 ms behind the wall clock.
    unix_at_start: Duration,
    started: tokio::time::Instant,
}

impl RoomClock {
    fn start() -> RoomClock {
        // The runtime's instant first: the room's clock is never behind the wall clock it read.
        let started = tokio::time::Instant::now();
        RoomClock {
            unix_at_start: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            started,
        }
    }

    fn now_ms(&self) -> i64 {
        let now = self.unix_at_start + self.started.elapsed();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    }

    /// When, on the runtime's clock, the room's clock reads `at_ms`.
    fn instant_of(&self, at_ms: i64) -> tokio::time::Instant {
        let at = Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
        self.started + at.saturating_sub(self.unix_at_start)
    }
}

/// The wall clock, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Close reasons must fit a websocket close frame (123 bytes).
pub(crate) fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
