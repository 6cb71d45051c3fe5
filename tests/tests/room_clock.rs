//! The room's timers on a paused clock: no scenario here waits on the wall clock. The runtime's
//! clock is paused and stepped past each deadline, and the room is driven through its command
//! queue the way the websocket and API handlers drive it, over the real store.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{EventKind, Identity, InterviewId, LogRecord, Role};
use duet_server::config::{RoomSettings, WsLimits};
use duet_server::metrics::Metrics;
use duet_server::questions::QuestionBank;
use duet_server::rooms::{PeerSink, RoomCmd, RoomHandle, Rooms, RoomsParts};
use duet_store::{Interview, SqliteConfig, SqliteStore, Store};
use duet_tests::{soon, FakeSandbox};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const IDLE: Duration = Duration::from_secs(30);

/// A registry of rooms over a real store, with one interview, and nothing else running.
struct World {
    rooms: Arc<Rooms>,
    store: Arc<dyn Store>,
    id: InterviewId,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap());
        let id = InterviewId::parse("pausedClockRoom").unwrap();
        let interview = Interview {
            id: id.clone(),
            title: "Clock".into(),
            candidate_name: "Ada".into(),
            created_at: 0,
            question_id: None,
            candidate_ref: None,
            mode: duet_protocol::InterviewMode::Live,
            time_limit_minutes: None,
            environment: "python".into(),
        };
        store
            .create_interview(&interview, &[])
            .await
            .unwrap()
            .unwrap();
        let rooms = Rooms::new(RoomsParts {
            questions: Arc::new(QuestionBank::default()),
            store: store.clone(),
            sandbox: FakeSandbox::new(),
            run_limits: duet_sandbox::Limits::default(),
            settings: RoomSettings {
                idle_secs: IDLE.as_secs(),
                ..RoomSettings::default()
            },
            metrics: Arc::new(Metrics::default()),
            shutdown: CancellationToken::new(),
        });
        World {
            rooms,
            store,
            id,
            _dir: dir,
        }
    }

    /// The room's handle once it has loaded and answers commands.
    async fn live_room(&self) -> RoomHandle {
        let room = self.rooms.get(&self.id);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ask = RoomCmd::RunStdin {
            run_id: "none".into(),
            by: duet_protocol::Role::Candidate,
            data: String::new(),
            eof: true,
            reply,
        };
        room.tx.send(ask).await.unwrap();
        assert!(answer.await.unwrap().is_err(), "no such run");
        room
    }

    fn log(&self, kind: EventKind) -> Vec<LogRecord> {
        self.store.read_kinds(&self.id, &[kind]).unwrap()
    }
}

/// Lets every task that is ready run, without letting the paused clock move.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_room_unloads_when_its_idle_time_is_up_and_not_before() {
    let world = World::new().await;
    let _room = world.live_room().await;

    tokio::time::advance(IDLE - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(world.rooms.loaded(), 1, "idle for 29 s: still loaded");

    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        soon(|| world.rooms.loaded() == 0).await,
        "idle for 31 s: unloaded"
    );
}

#[tokio::test(start_paused = true)]
async fn someone_connected_keeps_the_room_loaded_and_their_leave_is_logged_after_its_grace() {
    let world = World::new().await;
    let room = world.live_room().await;
    let (sink, _queue) = PeerSink::new(&WsLimits::default(), Arc::new(AtomicU64::new(0)));
    let join = RoomCmd::Join {
        conn: 1,
        role: Role::Candidate,
        identity: Identity::for_role(Role::Candidate, "Ada"),
        sink,
    };
    room.tx.send(join).await.unwrap();
    assert!(soon(|| world.log(EventKind::Join).len() == 1).await);

    // Ten quiet minutes with the candidate connected: the room stays.
    tokio::time::advance(Duration::from_secs(600)).await;
    settle().await;
    assert_eq!(world.rooms.loaded(), 1, "a connected room never idles out");

    // The candidate leaves: the leave is logged once its grace (5 s) is over, not before.
    room.tx.send(RoomCmd::Leave { conn: 1 }).await.unwrap();
    settle().await;
    tokio::time::advance(Duration::from_secs(4)).await;
    settle().await;
    assert!(world.log(EventKind::Leave).is_empty(), "within the grace");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        soon(|| world.log(EventKind::Leave).len() == 1).await,
        "once the grace is over"
    );
    // Record times are the room's clock: the leave is stamped when its grace ran out, ten
    // minutes and five seconds after the join.
    let joined = world.log(EventKind::Join)[0].at_ms;
    let left = world.log(EventKind::Leave)[0].at_ms;
    assert!(
        left - joined == 605_000,
        "joined at {joined}, left at {left}"
    );

    // The idle period starts when the last one leaves, not when the room last heard a message.
    tokio::time::advance(Duration::from_secs(24)).await;
    settle().await;
    assert_eq!(world.rooms.loaded(), 1, "29 s after the leave");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        soon(|| world.rooms.loaded() == 0).await,
        "31 s after the leave"
    );
}
