//! Running untrusted Python: a small [`Sandbox`] trait and its Docker implementation.
//!
//! A run takes files, what to run (the program or pytest over test files), optional stdin and
//! limits, and yields a stream of [`RunEvent`]s: stdout and stderr chunks as they happen, then
//! exactly one [`RunEvent::Finished`]. A candidate's failing program is data (an exit code, a
//! timeout), never an `Err`; errors here mean the run could not be queued at all.
//!
//! What does not belong here: rooms, run records, who may run what (the server and core).
//!
//! [`DockerSandbox`] is the implementation: one fresh, hardened container per run (never reused,
//! never exec'd into), on one or more Docker engines, each with its own warm pool, run slots,
//! health and reaper, behind one bounded queue that is fair between interviews. The trait
//! knows nothing of Docker: a Kubernetes implementation (a Job per run) would fit behind it. The image and the runner inside it are in `sandbox/` at the repository root;
//! `sandbox/README.md` holds the contract between them and this crate.

mod config;
mod container;
mod docker;
mod engine;
mod escape;
mod owned;
mod pool;
mod protocol;
mod reaper;
mod run;
mod slots;

pub use config::{DockerConfig, EngineAddr, EnvironmentImage, MIN_UID};
pub use container::{INSTANCE_LABEL, LABEL};
pub use docker::DockerSandbox;
pub use escape::escape;

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `python3 <entry>` with the run's stdin.
    Program { entry: String },
    /// pytest over these test files, with per-test results.
    Pytest { test_files: Vec<String> },
    /// pyflakes and pycodestyle (max line length 100) over each of these files, with findings
    /// (each naming its file) in [`RunOutcome::lint`]. Nothing of the files is executed.
    Lint { files: Vec<String> },
    /// `python3 -i <entry>`: the program runs, then the interactive interpreter reads lines
    /// from stdin with the program's names in scope (its prompts go to stderr), until
    /// `exit()`, the end of stdin, [`Limits::repl_idle`] without input or
    /// [`Limits::repl_wall`].
    Repl { entry: String },
}

/// Limits of one run. Every default is configurable by the server's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from start to kill, for every run but interactive programs.
    pub wall: Duration,
    /// Wall-clock time from start to kill for interactive runs: programs
    /// ([`Target::Program`]) whose stdin stays open ([`RunRequest::keep_stdin_open`]). Sized
    /// for a person thinking and typing, minutes. [`Limits::cpu`] keeps a busy loop in such a
    /// run as short as any other. pytest and lint runs always have [`Limits::wall`].
    pub interactive_wall: Duration,
    /// CPU time the whole container may use (every process, from the engine's cgroup figures,
    /// sampled about once a second) before the run is stopped as `timeout`. Watched only where
    /// it can bind before the wall limit (wall × CPUs above it): interactive runs by default.
    pub cpu: Duration,
    /// Wall-clock time from start to kill for a REPL ([`Target::Repl`]): a session a person
    /// works in, longer than an interactive program's. [`Limits::cpu`] holds as for any run.
    pub repl_wall: Duration,
    /// A REPL with no input for this long is stopped (`timeout`, [`RunLimit::Idle`]).
    pub repl_idle: Duration,
    /// Memory, and memory plus swap (swap equal to it: no swapping).
    pub memory_bytes: i64,
    /// Processes and threads in the container.
    pub pids: i64,
    /// CPUs, in billionths (1_000_000_000 = one CPU).
    pub nano_cpus: i64,
    /// CPU seconds per process (RLIMIT_CPU), a backstop should the server die mid-run.
    pub cpu_secs: u64,
    /// Open files per process (RLIMIT_NOFILE).
    pub nofile: u64,
    /// Largest file a process may write (RLIMIT_FSIZE).
    pub fsize_bytes: u64,
    /// Size of the noexec tmpfs work dir.
    pub work_dir_bytes: u64,
    /// Bytes of stdout plus stderr kept before the run ends as `output_limit`.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            interactive_wall: Duration::from_secs(5 * 60),
            repl_wall: Duration::from_secs(30 * 60),
            repl_idle: Duration::from_secs(5 * 60),
            cpu: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            pids: 64,
            nano_cpus: 1_000_000_000,
            cpu_secs: 15,
            nofile: 256,
            fsize_bytes: 16 << 20,
            work_dir_bytes: 32 << 20,
            output_bytes: 1 << 20,
        }
    }
}

/// One run's input.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// File path to content: `main.py`, `shop/cart.py`, test files (relative, no `..`).
    pub files: BTreeMap<String, String>,
    pub target: Target,
    /// The environment (`python`, `python-data`): which image the run's container is made
    /// from. One the sandbox does not have is refused ([`SandboxError::UnknownEnvironment`]).
    pub environment: String,
    /// Bytes fed to the program's stdin at start.
    pub stdin: Option<Vec<u8>>,
    /// Whether stdin stays open after `stdin` for more through [`RunHandle::stdin`] (until
    /// [`Stdin::Eof`] or the sender is dropped). When false, the program's stdin ends right
    /// after `stdin` (at once if there is none), so `sys.stdin.read()` returns.
    pub keep_stdin_open: bool,
    pub limits: Limits,
    /// Whose run this is, for fairness: when runs wait for a slot, parties (interviews) take
    /// turns, so one party's burst cannot hold up the others.
    pub party: String,
}

/// What the run handle sends to the program's stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// More bytes.
    Data(Vec<u8>),
    /// End of input: the program's stdin is closed (later messages are ignored).
    Eof,
}

// A run's status, test results and lint findings are the protocol's own types: the sandbox
// reports them exactly as the API shows them.
pub use duet_protocol::{
    LintFinding, RunLimit, RunStatus, TestCaseResult as TestCase, TestResults as TestReport,
};

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub duration: Duration,
    pub tests: Option<TestReport>,
    /// For [`Target::Lint`]: the findings (empty when the file is clean), in file order.
    pub lint: Option<Vec<LintFinding>>,
    /// For `sandbox_error`: what failed, for the log and the operator. For `timeout`,
    /// `output_limit` and `memory_limit`: which limit stopped the run, as a sentence for the
    /// person who ran it ("stopped after 10 s of CPU time", "stopped after 5 min of wall time",
    /// "output over 1 MiB: the rest was dropped", "stopped at the memory limit of 256 MiB").
    /// Otherwise none. Control characters are escaped (`\u{1b}`), so it is safe to log as it is.
    pub detail: Option<String>,
    /// For `timeout`, `output_limit` and `memory_limit`: the limit that stopped the run, typed
    /// (the same fact as `detail`'s sentence, for the API).
    pub limit: Option<RunLimit>,
}

/// What a run yields, in order; `Finished` comes exactly once, last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The run waits for a slot, `ahead` runs will get one before it. Sent when it is queued
    /// and whenever its place changes; only before any output.
    Queued {
        ahead: usize,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Finished(RunOutcome),
}

/// A queued or running run.
pub struct RunHandle {
    pub events: mpsc::Receiver<RunEvent>,
    /// More stdin for the program when the request kept it open; [`Stdin::Eof`] or dropping
    /// the sender closes the program's stdin.
    pub stdin: mpsc::Sender<Stdin>,
    /// Cancelling ends the run at once with status `cancelled`.
    pub cancel: CancellationToken,
}

/// Why a run could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Every run slot and queue place is taken.
    #[error(
        "the sandbox is busy: {running} runs in progress and {queued} queued; try again shortly"
    )]
    Busy { running: usize, queued: usize },
    /// The request names an environment this sandbox was not configured with.
    #[error("no sandbox environment {0:?}")]
    UnknownEnvironment(String),
    /// The request itself is unusable (a file name with a slash, no files...).
    #[error("invalid run request: {0}")]
    Invalid(String),
    /// A file (or, with `file: None`, all files together) is larger than the run may hold:
    /// one file over the fsize limit, all of them over the work dir.
    #[error("{}", too_large(file.as_deref(), *bytes, *limit))]
    TooLarge {
        file: Option<String>,
        bytes: u64,
        limit: u64,
    },
}

fn too_large(file: Option<&str>, bytes: u64, limit: u64) -> String {
    match file {
        Some(f) => format!("{f} holds {bytes} bytes, over the limit of {limit} bytes per file"),
        None => format!("the files hold {bytes} bytes together, over the limit of {limit} bytes"),
    }
}

/// The sandbox's state, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok`, or `degraded` when an engine is unusable or an environment's image is missing on
    /// every engine.
    pub status: &'static str,
    /// What is wrong, on which engine, and exactly what to run to fix it, when degraded.
    pub detail: Option<String>,
    /// Runs in progress on every engine.
    pub running: usize,
    /// Runs waiting for a slot.
    pub queued: usize,
    /// Warm containers on every engine.
    pub warm: usize,
    /// Runs since start that started a container on demand (no warm one, and no refill coming
    /// for them).
    pub cold_starts: u64,
    /// Runs since start that waited in the queue for a slot, and their waits' sum.
    pub waited: u64,
    pub waited_ms: u64,
    /// Each environment: usable where at least one engine has its image.
    pub environments: Vec<EnvironmentStatus>,
    /// Each engine, in the order configured.
    pub engines: Vec<EngineStatus>,
}

/// One environment's state across the engines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentStatus {
    pub name: String,
    /// `ok` when at least one engine answers with its image, else `degraded` (runs in it
    /// cannot start anywhere).
    pub status: &'static str,
    /// What is wrong and exactly what to run, when degraded.
    pub detail: Option<String>,
}

/// An environment as its image describes itself (labels written when the image was built):
/// what `GET /api/environments` lists.
pub use duet_protocol::{Environment, EnvironmentPackage};

/// One engine's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    /// Where it answers: `unix:///var/run/docker.sock`, `tcp://host:2376`.
    pub engine: String,
    /// `ok` when it takes runs (it answers and has at least one environment's image), else
    /// `degraded`. It takes none in an environment whose image it lacks; `detail` names those
    /// too.
    pub status: &'static str,
    /// What is wrong and exactly what to run.
    pub detail: Option<String>,
    pub running: usize,
    /// Runs it may hold at once.
    pub slots: usize,
    /// Warm containers, every environment's.
    pub warm: usize,
    /// Warm containers it aims to keep now, every environment's (each environment's pool
    /// between its minimum and maximum, from the rate of its runs).
    pub pool_target: usize,
    /// Runs given a slot on it since start.
    pub runs: u64,
    /// Of those, runs that started a container of their own: none was warm, and no refill was
    /// coming for them.
    pub cold_starts: u64,
}

/// Somewhere untrusted code runs: one or more Docker engines today, a Kubernetes cluster
/// could be another (nothing here assumes containers are local or Docker's).
pub trait Sandbox: Send + Sync + 'static {
    /// Queues a run. Its events arrive on the handle: `Queued` while it waits for a slot, then
    /// output, ending with exactly one `Finished` (`sandbox_error` if the engine fails, within
    /// the run's deadline; at once when the engine is found down).
    fn start(&self, request: RunRequest) -> Result<RunHandle, SandboxError>;
    /// The last known health (checked in the background; this never blocks).
    fn health(&self) -> Health;
    /// The environments runs can use now (each on at least one engine), as their images
    /// describe them, in the order configured. Never blocks (read at the last health check).
    fn environments(&self) -> Vec<Environment>;
}
