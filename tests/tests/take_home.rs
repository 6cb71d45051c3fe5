//! Take-home rounds: the whole round through the real server and the real sandbox (the start
//! page's data before Start, Start, work, Submit, the hidden tests private to staff, the
//! candidate's link showing only "submitted"), the deadline firing with nobody connected (on a
//! paused clock, in-process, as tests/tests/room_clock.rs drives rooms), and a restart with a
//! deadline that passed while the server was down.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{
    close, Actor, EventKind, InterviewId, InterviewMode, LogRecord, Record, SubmitReason,
    TakeHomeStarted, TakeHomeSubmitted,
};
use duet_server::config::RoomSettings;
use duet_server::metrics::Metrics;
use duet_server::questions::QuestionBank;
use duet_server::rooms::{RoomCmd, Rooms, RoomsParts, TakeHomeCmd};
use duet_store::{Interview, InterviewStore, LogStore, SqliteConfig, SqliteStore, Store};
use duet_tests::{api, eventually, soon, EventsClient, FakeSandbox, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(60);
const MINUTE: i64 = 60_000;

/// A solution of the bank's lru-cache question that passes its visible and hidden tests.
const LRU: &str = "from collections import OrderedDict\n\n\nclass LRUCache:\n    def __init__(self, capacity):\n        if capacity < 0:\n            raise ValueError(capacity)\n        self.capacity = capacity\n        self._data = OrderedDict()\n\n    def get(self, key, default=None):\n        if key not in self._data:\n            return default\n        self._data.move_to_end(key)\n        return self._data[key]\n\n    def put(self, key, value):\n        if self.capacity == 0:\n            return\n        self._data[key] = value\n        self._data.move_to_end(key)\n        if len(self._data) > self.capacity:\n            self._data.popitem(last=False)\n\n    def __len__(self):\n        return len(self._data)\n\n    def __contains__(self, key):\n        return key in self._data\n";

async fn docker_server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut args = duet_server::config::ServeArgs::for_data_dir(dir.path());
    args.sandbox.pool = 1;
    // The image the build script tagged, as the server's own flag reads it.
    let image = std::env::var("DUET_SANDBOX_IMAGE").ok();
    if let Some(image) = &image {
        args.sandbox.image = image.clone();
    }
    let sandbox = Arc::new(duet_server::docker_sandbox(&args).unwrap());
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "ok", "\n\nTHESE TESTS NEED DOCKER AND THE SANDBOX IMAGE: {:?}\n(run `bash scripts/ensure-docker.sh` as root)\n", health.detail);
    TestServer::start_full(dir, sandbox, |a| {
        a.sandbox.pool = 1;
        if let Some(image) = image {
            a.sandbox.image = image;
        }
    })
    .await
}

async fn create_take_home(server: &TestServer) -> duet_protocol::CreatedInterview {
    let (status, created) = api(
        server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(
            json!({"title": "Screen", "candidate_name": "Ada", "question_id": "lru-cache",
            "mode": "take_home", "time_limit_minutes": 30}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value(created).unwrap()
}

fn kinds(server: &TestServer, id: &InterviewId) -> Vec<EventKind> {
    let log = server.state.store.read_log(id, 0).unwrap();
    log.into_iter()
        .map(|r| r.kind)
        .filter(|k| *k != EventKind::Edit && *k != EventKind::Join && *k != EventKind::Leave)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_home_from_the_start_page_to_submitted_with_the_hidden_tests_private_to_staff() {
    let server = docker_server().await;
    let interview = create_take_home(&server).await;
    let (id, tokens) = (&interview.id, &interview.tokens);
    let path = |tail: &str| format!("/api/interviews/{id}{tail}");

    // The candidate opens the link: the start page's data, and no clock.
    let (status, page) = api(
        &server,
        Method::GET,
        &path("/take-home"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["stage"], "not_started");
    assert_eq!(page["time_limit_minutes"], 30);
    assert_eq!(page["question_title"], "LRU cache with O(1) get and put");
    assert!(page["question"].is_null(), "no prompt before Start: {page}");
    assert!(page["started"].is_null());
    assert!(page["recorded"].as_array().unwrap().len() >= 3);
    let (_, view) = api(&server, Method::GET, &path(""), &tokens.candidate, None).await;
    assert!(
        view["question"].is_null(),
        "the role view hides it too: {view}"
    );
    // Their room socket is refused until they press Start, so nothing is written off the clock.
    let early = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || early.closed().is_some()).await);
    assert_eq!(early.closed().unwrap().code, close::POLICY);
    // The start page's check runs a program in the real sandbox, and records nothing.
    let (status, checked) = api(
        &server,
        Method::POST,
        &path("/take-home/check"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(checked["output"]
        .as_str()
        .unwrap()
        .contains("duet check ok"));
    assert!(!kinds(&server, id).contains(&EventKind::TakeHomeStarted));
    // Nor does the room run anything of theirs before Start.
    let (status, refused) = api(
        &server,
        Method::POST,
        &path("/runs"),
        &tokens.candidate,
        Some(json!({"kind": "test"})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.to_string().contains("press Start"), "{refused}");
    // Only the candidate starts their round.
    let (status, _) = api(
        &server,
        Method::POST,
        &path("/start"),
        &tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Start: the deadline is 30 minutes from the server's clock now.
    let (status, started) = api(
        &server,
        Method::POST,
        &path("/start"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let started: TakeHomeStarted = serde_json::from_value(started).unwrap();
    assert_eq!(started.deadline - started.started_at, 30 * MINUTE);
    let (status, again) = api(
        &server,
        Method::POST,
        &path("/start"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already started"),
        "{again}"
    );
    let (_, page) = api(
        &server,
        Method::GET,
        &path("/take-home"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(page["stage"], "running");
    assert_eq!(page["started"]["deadline"], started.deadline);
    assert!(
        page["question"]["prompt"].as_str().is_some(),
        "the prompt now: {page}"
    );

    // The candidate works; staff watch read-only, and cannot move them to another question.
    let (status, refused) = api(
        &server,
        Method::POST,
        &path("/question"),
        &tokens.interviewer,
        Some(json!({"question_id": "retry-backoff"})),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let candidate = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    let watcher = YClient::connect(&server.yjs_url(id, &tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && watcher.synced()).await);
    let starter_len = candidate.len();
    candidate.delete(0, starter_len);
    candidate.insert(0, LRU);
    assert!(
        eventually(PATIENCE, || watcher.text() == LRU).await,
        "staff see it live"
    );
    watcher.insert(0, "# staff were here\n");
    let candidate_events = EventsClient::connect(&server.events_url(id, &tokens.candidate))
        .await
        .unwrap();
    let staff_events = EventsClient::connect(&server.events_url(id, &tokens.interviewer))
        .await
        .unwrap();
    let (status, run) = api(
        &server,
        Method::POST,
        &path("/runs"),
        &tokens.candidate,
        Some(json!({"kind": "test"})),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    assert!(
        eventually(PATIENCE, || !candidate_events
            .of(&run_id, "run.finished")
            .is_empty())
        .await
    );
    assert_eq!(candidate.text(), LRU, "the watcher's edit was dropped");

    // Submit early.
    let (status, submitted) = api(
        &server,
        Method::POST,
        &path("/submit"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    let submitted: TakeHomeSubmitted = serde_json::from_value(submitted).unwrap();
    assert_eq!(submitted.reason, SubmitReason::Submitted);
    assert!(submitted.at < started.deadline);
    // Their sockets close with a reason that says so.
    assert!(
        eventually(PATIENCE, || candidate.closed().is_some()
            && candidate_events.closed())
        .await
    );
    assert_eq!(candidate.closed().unwrap().code, close::SUBMITTED);
    assert!(candidate.closed().unwrap().reason.contains("submitted"));
    assert!(
        candidate_events.all().iter().any(|e| e["type"] == "end"),
        "told why first"
    );

    // The log: the submit, the end, then the hidden tests on the code as submitted (no edit
    // after the submit).
    let log = server.state.store.read_log(id, 0).unwrap();
    let position = |kind| log.iter().position(|r| r.kind == kind).unwrap();
    let submit_at = position(EventKind::TakeHomeSubmitted);
    assert_eq!(log[submit_at + 1].kind, EventKind::End);
    assert_eq!(log[submit_at + 1].by, Actor::Candidate);
    let hidden = log[submit_at..]
        .iter()
        .find_map(|r| match r.decode() {
            Ok(Record::RunStarted(s)) if s.private => Some(s),
            _ => None,
        })
        .expect("a private run after the submit");
    assert_eq!(hidden.kind, duet_protocol::RunKind::Test);
    assert!(
        !log[submit_at..].iter().any(|r| r.kind == EventKind::Edit),
        "nothing edited after the submit: the run has the submitted code"
    );
    assert!(hidden.code_seq > log[submit_at].seq);
    assert!(
        eventually(PATIENCE, || !staff_events
            .of(&hidden.run_id, "run.finished")
            .is_empty())
        .await,
        "the hidden tests finish after the end"
    );
    let (status, detail) = api(
        &server,
        Method::GET,
        &path(&format!("/runs/{}", hidden.run_id)),
        &tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    let tests = &detail["tests"];
    assert!(
        tests["passed"].as_u64().unwrap() > 0 && tests["failed"] == 0,
        "{detail}"
    );
    assert!(
        tests["cases"]
            .to_string()
            .contains("test_capacity_zero_caches_nothing"),
        "the hidden tests ran: {detail}"
    );
    // Private to staff: the candidate never heard of it and cannot read it.
    assert!(candidate_events
        .of(&hidden.run_id, "run.started")
        .is_empty());
    let (status, _) = api(
        &server,
        Method::GET,
        &path(&format!("/runs/{}", hidden.run_id)),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The candidate's link now shows only "submitted".
    let (_, page) = api(
        &server,
        Method::GET,
        &path("/take-home"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(page["stage"], "submitted");
    assert_eq!(page["submitted"]["reason"], "submitted");
    assert!(page["question"].is_null());
    let (_, view) = api(&server, Method::GET, &path(""), &tokens.candidate, None).await;
    assert_eq!(view["status"], "ended");
    assert!(view["question"].is_null());
    let reopened = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || reopened.closed().is_some()).await);
    assert_eq!(reopened.closed().unwrap().code, close::SUBMITTED);
    // A second submit is refused, says when the first was, and changes nothing.
    let before = server.state.store.read_log(id, 0).unwrap().len();
    let (status, again) = api(
        &server,
        Method::POST,
        &path("/submit"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 409);
    let message = again["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("already submitted") && message.contains("GMT"),
        "{message}"
    );
    assert_eq!(server.state.store.read_log(id, 0).unwrap().len(), before);

    // Review, as for any ended interview: the replay's timeline and a scorecard.
    let (status, timeline) = api(
        &server,
        Method::GET,
        &path("/timeline"),
        &tokens.reviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{timeline}");
    // The round has its own entries: the candidate's Start with its deadline, and their submit
    // (not the time limit), then the end it caused.
    let round: Vec<&Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("take_home.started" | "take_home.submitted" | "end")
            )
        })
        .collect();
    assert_eq!(round.len(), 3, "{timeline}");
    assert_eq!(round[0]["type"], "take_home.started");
    assert_eq!(round[0]["by"], "candidate");
    assert_eq!(round[0]["time_limit_minutes"], 30);
    assert!(round[0]["deadline"].as_i64().unwrap() > round[0]["at"].as_i64().unwrap());
    assert_eq!(round[1]["type"], "take_home.submitted");
    assert_eq!(round[1]["by"], "candidate");
    assert_eq!(round[1]["reason"], "submitted");
    assert_eq!(round[1]["deadline"], round[0]["deadline"]);
    assert_eq!(round[2]["type"], "end");
    let (status, card) = api(&server, Method::PUT, &path("/scorecard"), &tokens.interviewer,
        Some(json!({"ratings": {"coding_quality": 4}, "notes": "clean", "recommendation": "yes", "version": 0}))).await;
    assert_eq!(status, 200, "{card}");
}

/// A registry of rooms over a real store with one take-home on the lru-cache question, on the
/// runtime's (paused) clock.
struct World {
    rooms: Arc<Rooms>,
    store: Arc<dyn Store>,
    sandbox: Arc<FakeSandbox>,
    id: InterviewId,
    _dir: tempfile::TempDir,
}

fn take_home(id: &InterviewId) -> Interview {
    Interview {
        id: id.clone(),
        title: "Screen".into(),
        candidate_name: "Ada".into(),
        created_at: 0,
        question_id: Some("lru-cache".into()),
        candidate_ref: None,
        mode: InterviewMode::TakeHome,
        time_limit_minutes: Some(30),
        environment: "python".into(),
    }
}

fn bank() -> Arc<QuestionBank> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../questions");
    Arc::new(QuestionBank::load(std::path::Path::new(dir)).0)
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap());
        let id = InterviewId::parse("pausedTakeHome").unwrap();
        store
            .create_interview(&take_home(&id), &[])
            .await
            .unwrap()
            .unwrap();
        let sandbox = FakeSandbox::new();
        let rooms = Rooms::new(RoomsParts {
            questions: bank(),
            store: store.clone(),
            sandbox: sandbox.clone(),
            run_limits: duet_sandbox::Limits::default(),
            settings: RoomSettings {
                idle_secs: 30,
                ..RoomSettings::default()
            },
            metrics: Arc::new(Metrics::default()),
            shutdown: CancellationToken::new(),
        });
        World {
            rooms,
            store,
            sandbox,
            id,
            _dir: dir,
        }
    }

    fn log(&self, kind: EventKind) -> Vec<LogRecord> {
        self.store.read_kinds(&self.id, &[kind]).unwrap()
    }
}

/// On a paused clock: waits for a room's answer (which waits on the store's writer thread)
/// without letting the paused clock move, as [`soon`] does.
async fn answered<T>(mut answer: tokio::sync::oneshot::Receiver<T>) -> T {
    let mut got = None;
    assert!(
        soon(|| {
            if got.is_none() {
                got = answer.try_recv().ok();
            }
            got.is_some()
        })
        .await,
        "the room answered"
    );
    got.unwrap()
}

/// Asks the room whether a run exists, to know it has loaded and takes commands.
async fn loaded(room: &duet_server::rooms::RoomHandle) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let ask = RoomCmd::RunStdin {
        run_id: "none".into(),
        by: duet_protocol::Role::Candidate,
        data: String::new(),
        eof: true,
        reply,
    };
    room.tx.send(ask).await.unwrap();
    assert!(answered(answer).await.is_err(), "no such run");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_submits_the_round_with_nobody_connected() {
    let world = World::new().await;
    let room = world.rooms.get(&world.id);
    let (reply, answer) = tokio::sync::oneshot::channel();
    room.tx
        .send(RoomCmd::TakeHome(TakeHomeCmd::Start { reply }))
        .await
        .unwrap();
    let started = answered(answer).await.unwrap();
    assert_eq!(started.deadline - started.started_at, 30 * MINUTE);

    // Nobody is connected. Past the idle time the room stays loaded: it holds the deadline.
    tokio::time::advance(Duration::from_secs(29 * 60)).await;
    assert!(soon(|| world.log(EventKind::TakeHomeSubmitted).is_empty()).await);
    assert_eq!(world.rooms.loaded(), 1, "the clock keeps its room loaded");

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(
        soon(|| world.log(EventKind::End).len() == 1).await,
        "submitted at the limit"
    );
    let [submit] = &world.log(EventKind::TakeHomeSubmitted)[..] else {
        panic!("one submit");
    };
    assert_eq!(submit.by, Actor::Server);
    let Ok(Record::TakeHomeSubmitted(submitted)) = submit.decode() else {
        panic!("a submit record");
    };
    assert_eq!(submitted.reason, SubmitReason::TimeLimit);
    assert!(submitted.at >= started.deadline && submitted.at - started.deadline < 1_000);
    // The hidden tests were asked of the sandbox, on the submitted code.
    let requests = world.sandbox.requests.lock().unwrap();
    let hidden = requests.last().expect("the hidden tests ran");
    assert!(
        hidden.files.keys().any(|f| f.contains("hidden")),
        "{:?}",
        hidden.files.keys()
    );
}

#[tokio::test(start_paused = true)]
async fn hidden_tests_the_busy_sandbox_refused_run_once_it_has_room() {
    let world = World::new().await;
    let room = world.rooms.get(&world.id);
    let (reply, answer) = tokio::sync::oneshot::channel();
    let start = RoomCmd::TakeHome(TakeHomeCmd::Start { reply });
    room.tx.send(start).await.unwrap();
    answered(answer).await.unwrap();
    world
        .sandbox
        .busy
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let (reply, answer) = tokio::sync::oneshot::channel();
    let submit = RoomCmd::TakeHome(TakeHomeCmd::Submit { reply });
    room.tx.send(submit).await.unwrap();
    let submitted = answered(answer).await.unwrap();
    assert_eq!(submitted.reason, SubmitReason::Submitted);
    assert!(
        world.log(EventKind::RunStarted).is_empty(),
        "the sandbox was busy"
    );

    // The sandbox frees up; the room tries again a few seconds later, by itself.
    world
        .sandbox
        .busy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(
        soon(|| world.log(EventKind::RunStarted).len() == 1).await,
        "the hidden tests ran"
    );
    let Ok(Record::RunStarted(run)) = world.log(EventKind::RunStarted)[0].decode() else {
        panic!("a run start");
    };
    assert!(run.private && run.kind == duet_protocol::RunKind::Test);
    let end = &world.log(EventKind::End)[0];
    assert!(
        run.code_seq >= end.seq,
        "after the end, on the code as submitted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_room_loaded_again_gets_its_deadline_back() {
    let world = World::new().await;
    let now = duet_server::rooms::now_ms();
    let started = TakeHomeStarted {
        started_at: now - 5 * MINUTE,
        deadline: now + 25 * MINUTE,
        time_limit_minutes: 30,
    };
    let record = LogRecord::new(
        1,
        started.started_at,
        Actor::Candidate,
        Record::TakeHomeStarted(started),
    );
    let stored = world.store.append(&world.id, record);
    assert!(soon(|| world.log(EventKind::TakeHomeStarted).len() == 1).await);
    drop(stored);

    // Loaded as the take-home clock job loads it after a restart, with nobody connected.
    loaded(&world.rooms.get(&world.id)).await;
    tokio::time::advance(Duration::from_secs(24 * 60)).await;
    assert!(soon(|| world.log(EventKind::TakeHomeSubmitted).is_empty()).await);
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    assert!(soon(|| world.log(EventKind::TakeHomeSubmitted).len() == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passed_while_the_server_was_down_is_submitted_when_it_comes_back() {
    // What the log holds after a server stopped mid-round: one take-home whose deadline passed
    // an hour and a half ago, one still running.
    let dir = tempfile::tempdir().unwrap();
    let now = duet_server::rooms::now_ms();
    let (late, running) = (
        InterviewId::parse("takeHomeLate").unwrap(),
        InterviewId::parse("takeHomeRunning").unwrap(),
    );
    {
        let store = SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap();
        for (id, started_at) in [(&late, now - 120 * MINUTE), (&running, now - 5 * MINUTE)] {
            store
                .create_interview(&take_home(id), &[])
                .await
                .unwrap()
                .unwrap();
            let started = TakeHomeStarted {
                started_at,
                deadline: started_at + 30 * MINUTE,
                time_limit_minutes: 30,
            };
            let record = LogRecord::new(
                1,
                started_at,
                Actor::Candidate,
                Record::TakeHomeStarted(started),
            );
            store.append(id, record).await.unwrap().unwrap();
        }
    }

    // The server comes back; nobody connects. Its take-home clock job's first pass, as `serve`
    // runs it at start-up (a TestServer serves the router without `serve`'s jobs):
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(
        duet_server::jobs::load_running_take_homes(&server.state).await,
        2,
        "both rooms loaded"
    );
    let store = server.state.store.clone();
    let submitted_of = |id: &InterviewId| {
        store
            .read_kinds(id, &[EventKind::TakeHomeSubmitted])
            .unwrap()
            .first()
            .and_then(|r| match r.decode() {
                Ok(Record::TakeHomeSubmitted(s)) => Some(s),
                _ => None,
            })
    };
    assert!(
        eventually(PATIENCE, || submitted_of(&late).is_some()).await,
        "submitted on return"
    );
    let submitted = submitted_of(&late).unwrap();
    assert_eq!(submitted.reason, SubmitReason::TimeLimit);
    assert_eq!(submitted.deadline, now - 90 * MINUTE);
    assert!(
        submitted.at >= now,
        "dated when it was submitted, after the deadline"
    );
    assert_eq!(
        store.status(&late).unwrap(),
        duet_protocol::InterviewStatus::Ended
    );
    // The one still running has its room loaded (its timer back) and is not submitted.
    assert!(
        eventually(PATIENCE, || server
            .state
            .rooms
            .loaded_handle(&running)
            .is_some())
        .await
    );
    assert!(submitted_of(&running).is_none());
}

/// A take-home on a data question (created with `"environment": "python"`, which the question's
/// own environment outranks for its runs), on the scripted sandbox: the start page's check runs
/// where the round's runs go; during the round staff run only their private checks (never seen
/// by the candidate) and touch none of the candidate's runs, nobody starts a REPL, and the
/// candidate runs as usual; after the submit the server runs the hidden tests, in the same
/// environment, and staff start nothing more.
#[tokio::test]
async fn during_a_take_home_staff_run_only_private_checks_and_nobody_opens_a_repl() {
    use duet_protocol::Role::{Candidate, Interviewer};
    let sandbox = FakeSandbox::new();
    let server =
        TestServer::start_full(tempfile::tempdir().unwrap(), sandbox.clone(), |_| {}).await;
    let (status, created) = api(
        &server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({"title": "Data screen", "candidate_name": "Ada",
            "question_id": "clean-messy-records", "environment": "python",
            "mode": "take_home", "time_limit_minutes": 30})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let interview: duet_protocol::CreatedInterview = serde_json::from_value(created).unwrap();
    let (id, tokens) = (&interview.id, &interview.tokens);
    let path = |tail: &str| format!("/api/interviews/{id}{tail}");
    let environments = || {
        sandbox
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.environment.clone())
            .collect::<Vec<_>>()
    };

    // The start page's check runs in the question's environment, where the round's runs go.
    // (The scripted program waits for input the check never sends: its request is what counts
    // here; the real sandbox's answer is in the Docker story above.)
    let check = tokio::spawn(
        reqwest::Client::new()
            .post(server.http(&path("/take-home/check")))
            .bearer_auth(&tokens.candidate)
            .send(),
    );
    assert!(eventually(PATIENCE, || !environments().is_empty()).await);
    assert_eq!(environments(), ["python-data"]);
    check.abort();

    let (status, _) = api(
        &server,
        Method::POST,
        &path("/start"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let candidate = YClient::connect(&server.yjs_url(id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    candidate.insert(0, "print('hello')\n");
    let run = |token: &str, kind: &str| {
        let (token, kind, path) = (token.to_owned(), kind.to_owned(), path("/runs"));
        let server = &server;
        async move {
            api(
                server,
                Method::POST,
                &path,
                &token,
                Some(json!({ "kind": kind })),
            )
            .await
        }
    };

    // The candidate runs their program, and feeds it.
    let (status, mine) = run(&tokens.candidate, "run").await;
    assert_eq!(status, 202, "{mine}");
    let run_id = mine["run_id"].as_str().unwrap().to_owned();
    let touch = |token: &str, what: &str, body: Option<Value>| {
        let (token, what) = (token.to_owned(), path(&format!("/runs/{run_id}/{what}")));
        let server = &server;
        async move { api(server, Method::POST, &what, &token, body).await }
    };
    let (status, _) = touch(&tokens.candidate, "stdin", Some(json!({"data": "more\n"}))).await;
    assert_eq!(status, 204);

    // Staff start no run that would print in the candidate's console, and neither feed nor stop
    // the candidate's.
    let (status, refused) = run(&tokens.interviewer, "run").await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.to_string().contains("solo round"), "{refused}");
    let (status, refused) = touch(
        &tokens.interviewer,
        "stdin",
        Some(json!({"data": "exit\n"})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = touch(&tokens.interviewer, "cancel", None).await;
    assert_eq!(status, 403, "{refused}");
    // Nobody starts a REPL in a take-home.
    for token in [&tokens.candidate, &tokens.interviewer] {
        let (status, refused) = run(token, "repl").await;
        assert_eq!(status, 403, "{refused}");
        assert!(refused.to_string().contains("no REPL"), "{refused}");
    }

    // Staff's private checks run, and the candidate never sees them.
    let mut private = Vec::new();
    for kind in ["test", "lint"] {
        let (status, theirs) = run(&tokens.interviewer, kind).await;
        assert_eq!(status, 202, "{kind}: {theirs}");
        let staff_run = theirs["run_id"].as_str().unwrap().to_owned();
        let (status, _) = api(
            &server,
            Method::GET,
            &path(&format!("/runs/{staff_run}")),
            &tokens.candidate,
            None,
        )
        .await;
        assert_eq!(status, 404, "the candidate cannot see staff's {kind} run");
        private.push(staff_run);
    }
    let (_, listed) = api(
        &server,
        Method::GET,
        &path("/runs"),
        &tokens.candidate,
        None,
    )
    .await;
    assert!(
        private
            .iter()
            .all(|r| !listed.to_string().contains(r.as_str())),
        "the candidate's run list leaves staff's out: {listed}"
    );
    let started_by = |server: &TestServer| {
        server
            .state
            .store
            .read_runs(id)
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.decode() {
                Ok(Record::RunStarted(s)) => Some(s.by),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(started_by(&server), [Candidate, Interviewer, Interviewer]);

    // Submitted: the server runs the hidden tests on the interviewer's behalf, in the same
    // environment; staff start nothing more.
    let (status, _) = api(
        &server,
        Method::POST,
        &path("/submit"),
        &tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        eventually(PATIENCE, || started_by(&server).len() == 4).await,
        "the hidden tests started after the submit"
    );
    assert!(
        environments().iter().all(|e| e == "python-data"),
        "{:?}",
        environments()
    );
    let (status, _) = run(&tokens.interviewer, "test").await;
    assert_eq!(status, 409);
}
