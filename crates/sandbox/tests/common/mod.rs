//! Helpers for the tests against the real Docker engine and image. They fail loudly, never skip,
//! when the engine or the image is missing.
#![allow(dead_code)]

pub mod daemon;

use bollard::query_parameters::ListContainersOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use duet_sandbox::{
    DockerConfig, DockerSandbox, EnvironmentImage, Limits, RunEvent, RunHandle, RunOutcome,
    RunRequest, RunStatus, Sandbox, Target, INSTANCE_LABEL,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub const SOCKET: &str = "/var/run/docker.sock";

/// The config tests use: no pool, short wall time, instance named after the test (stable across
/// runs, so a rerun reaps what a crashed run left).
pub fn config(test: &str) -> DockerConfig {
    let mut instance = format!("t-{test}");
    instance.truncate(40);
    DockerConfig {
        // One environment: the tests of others (tests/environments.rs) name theirs.
        environments: vec![EnvironmentImage::new("python", &image())],
        pool_min: 0,
        pool_max: 0,
        concurrency: 4,
        instance,
        limits: Limits {
            wall: Duration::from_secs(4),
            ..Limits::default()
        },
        ..DockerConfig::default()
    }
}

/// A sandbox whose engine and image answer; panics with what to run otherwise.
pub async fn sandbox(config: DockerConfig) -> DockerSandbox {
    let sandbox = DockerSandbox::new(config).expect("valid config");
    let health = sandbox.check_now().await;
    assert_eq!(
        health.status,
        "ok",
        "\n\nTHE SANDBOX TESTS NEED A RUNNING DOCKER ENGINE AND THE SANDBOX IMAGE: {}\n\
         (run `bash scripts/ensure-docker.sh` as root)\n",
        health.detail.unwrap_or_default()
    );
    sandbox
        .reap_now()
        .await
        .expect("reap leftovers of an earlier run");
    sandbox
}

pub fn program(code: &str) -> RunRequest {
    RunRequest {
        files: BTreeMap::from([("main.py".to_string(), code.to_string())]),
        environment: "python".into(),
        target: Target::Program {
            entry: "main.py".into(),
        },
        stdin: None,
        keep_stdin_open: false,
        limits: config("x").limits,
        party: "test".into(),
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outcome: RunOutcome,
    /// From `start` to the first byte of output, if any came.
    pub first_output: Option<Duration>,
    /// From `start` to `Finished`.
    pub total: Duration,
    /// Stdout chunks with their arrival time since start.
    pub chunks: Vec<(Duration, Vec<u8>)>,
    /// `Queued` events before it got a slot.
    pub queued: usize,
}

impl Ran {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn status(&self) -> RunStatus {
        self.outcome.status
    }
}

/// Starts a run and collects it; the stdin sender is dropped at once.
pub async fn run(sandbox: &DockerSandbox, request: RunRequest) -> Ran {
    let started = Instant::now();
    let RunHandle {
        events,
        stdin,
        cancel: _cancel,
    } = sandbox.start(request).expect("queued");
    drop(stdin);
    collect(events, started).await
}

pub async fn collect(mut events: tokio::sync::mpsc::Receiver<RunEvent>, started: Instant) -> Ran {
    let mut ran = Ran {
        stdout: Vec::new(),
        stderr: Vec::new(),
        outcome: RunOutcome {
            status: RunStatus::SandboxError,
            exit_code: None,
            duration: Duration::ZERO,
            tests: None,
            lint: None,
            detail: Some("no Finished event".into()),
            limit: None,
        },
        first_output: None,
        total: Duration::ZERO,
        chunks: Vec::new(),
        queued: 0,
    };
    let deadline = Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout(deadline, events.recv())
            .await
            .expect("the run must finish within 60 s");
        match event {
            Some(RunEvent::Stdout(b)) => {
                ran.first_output.get_or_insert(started.elapsed());
                ran.chunks.push((started.elapsed(), b.clone()));
                ran.stdout.extend(b);
            }
            Some(RunEvent::Stderr(b)) => {
                ran.first_output.get_or_insert(started.elapsed());
                ran.stderr.extend(b);
            }
            Some(RunEvent::Queued { .. }) => ran.queued += 1,
            Some(RunEvent::Finished(o)) => {
                ran.outcome = o;
                ran.total = started.elapsed();
                assert!(events.recv().await.is_none(), "nothing may follow Finished");
                return ran;
            }
            None => panic!("the event stream ended without Finished"),
        }
    }
}

/// The names of the containers the instance has on the engine.
pub async fn containers(instance: &str) -> Vec<String> {
    containers_at(SOCKET, instance).await
}

/// The names of the containers the instance has on the engine at `socket`.
pub async fn containers_at(socket: &str, instance: &str) -> Vec<String> {
    let docker = Docker::connect_with_socket(socket, 30, API_DEFAULT_VERSION)
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("docker answers");
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{INSTANCE_LABEL}={instance}")],
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect()
}

/// The image the tests run (`DUET_SANDBOX_IMAGE`, else the default).
pub fn image() -> String {
    std::env::var("DUET_SANDBOX_IMAGE").unwrap_or_else(|_| "duet-sandbox:latest".into())
}

/// No container of the instance is left: a run that ended by itself has its container removed
/// in the background (the run's end does not wait for it), so this allows it 10 s to go.
pub async fn assert_no_containers(instance: &str) {
    let mut left = containers(instance).await;
    for _ in 0..100 {
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = containers(instance).await;
    }
    panic!("containers left behind: {left:?}");
}

/// The hostile-program pattern: start it, start a normal run beside it a moment later, and
/// check that the normal run succeeds (within its own wall time), and that nothing is left
/// behind.
pub async fn hostile(test: &str, code: &str) -> Ran {
    hostile_with(test, program(code)).await
}

pub async fn hostile_with(test: &str, request: RunRequest) -> Ran {
    let config = config(test);
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let bad = run(&sandbox, request);
    let good = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        run(&sandbox, program("print('still fine')\n")).await
    };
    let (bad, good) = tokio::join!(bad, good);
    assert_eq!(
        good.status(),
        RunStatus::Ok,
        "the normal run beside it: {good:?}"
    );
    assert_eq!(good.out(), "still fine\n");
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
    bad
}
