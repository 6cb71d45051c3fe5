//! Runs: what runs, how it ended, its output as stored, and the API bodies that show runs.

use crate::Role;
use serde::{Deserialize, Serialize};

/// What a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// The program, `python3 main.py`.
    Run,
    /// pytest over the question's tests: the visible ones for the candidate, visible and hidden
    /// for the interviewer (then the run is private).
    Test,
    /// pyflakes and pycodestyle over `main.py` (interviewer only; private).
    Lint,
}

/// One finding of a lint run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LintFinding {
    pub line: u32,
    pub col: u32,
    /// `F...` from pyflakes, `E...`/`W...` from pycodestyle.
    pub code: String,
    pub message: String,
}

/// A run's id: 16 url-safe characters.
pub type RunId = String;

/// Stored with `EventKind::RunStarted`: everything needed to show and replay the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: RunId,
    pub kind: RunKind,
    pub by: Role,
    pub at: i64,
    /// The code that ran, kept only in records written before runs stored their code by
    /// reference. Newer records leave it out: the code is the document at `code_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The room's sequence number the code matches: the snapshot at this seq is exactly the
    /// `main.py` that ran.
    pub code_seq: u64,
    /// Seen only by roles that can read private material (hidden-test runs).
    #[serde(default)]
    pub private: bool,
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The JSON form `EventKind::RunOutput` records had before output was stored as raw bytes
/// ([`RunOutputHeader`]); still read back from old logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    pub run_id: RunId,
    pub stream: Stream,
    pub data: String,
    pub at: i64,
}

/// The header of a `RunOutput` record: the record's data is this JSON on one line, a `\n`, then
/// the raw bytes the program wrote on `stream` (no escaping, no UTF-8 repair). Several writes
/// a few milliseconds apart share one record; `pieces` keeps when each was written, as
/// `[offset into the raw bytes, unix ms]`, offsets ascending and the first 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutputHeader {
    pub run_id: RunId,
    pub stream: Stream,
    pub pieces: Vec<[i64; 2]>,
}

/// pytest's results as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TestResults {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub cases: Vec<TestCaseResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TestCaseResult {
    pub name: String,
    pub outcome: String,
    pub message: Option<String>,
}

/// How a run ended (or that it has not yet). The server's own flags win (timeout, output cap,
/// cancel), then the out-of-memory flag, then the exit code and test results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Only in histories and timelines, while the run goes on.
    Running,
    /// Exit 0 and, for pytest, every test passed.
    Ok,
    /// Non-zero exit or failing tests.
    Error,
    Timeout,
    MemoryLimit,
    /// Over the output cap.
    OutputLimit,
    Cancelled,
    /// The infrastructure failed, not the candidate (also a run the server stopped under).
    SandboxError,
}

/// Stored with `EventKind::RunInput`: text someone sent to a running program's stdin, kept so
/// the other person sees it live and the replay and the run's cast include it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInput {
    pub run_id: RunId,
    pub data: String,
    /// The input was ended after `data`.
    #[serde(default)]
    pub eof: bool,
    pub at: i64,
}

/// The limit that stopped a run, with its value, so a page can say "stopped after 10 s of CPU
/// time" or "output over 1 MiB: the rest was dropped".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunLimit {
    /// Wall-clock time (an interactive program has a longer one than the rest).
    Wall { ms: u64 },
    /// CPU time of every process in the run.
    Cpu { ms: u64 },
    /// Bytes of output (stdout plus stderr) kept.
    Output { bytes: u64 },
    /// Memory.
    Memory { bytes: u64 },
}

/// Stored with `EventKind::RunFinished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFinished {
    pub run_id: RunId,
    pub status: RunStatus,
    /// For `timeout`, `output_limit` and `memory_limit`: the limit, with its value. Absent
    /// otherwise, and in records written before limits were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<RunLimit>,
    pub exit_code: Option<i64>,
    pub duration_ms: u64,
    pub tests: Option<TestResults>,
    /// For lint runs: what pyflakes and pycodestyle found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
    pub at: i64,
}

/// `POST /api/interviews/{id}/runs` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub kind: RunKind,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub stdin: Option<String>,
}

/// `POST /api/interviews/{id}/runs/{run_id}/stdin` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RunStdin {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub data: String,
    /// Ends the program's input after `data` (its `sys.stdin.read()` returns).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub eof: bool,
}

/// pytest's counts, without the cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
}

impl From<&TestResults> for TestCounts {
    fn from(t: &TestResults) -> TestCounts {
        TestCounts {
            passed: t.passed,
            failed: t.failed,
            errors: t.errors,
            skipped: t.skipped,
        }
    }
}

/// One run in `GET /api/interviews/{id}/runs`: light, without its code or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunSummary {
    pub run_id: RunId,
    pub kind: RunKind,
    pub by: Role,
    /// The log seq of the run's start (the paging cursor).
    pub seq: u64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running` until it finishes.
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    /// The seq whose snapshot is the code that ran.
    pub code_seq: u64,
    pub tests: Option<TestCounts>,
    /// The limit that stopped it, if one did.
    #[serde(default)]
    pub limit: Option<RunLimit>,
}

/// `GET /api/interviews/{id}/runs`: one page of runs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass as `?after=` for the next page; `null` on the last page.
    pub next: Option<u64>,
}

/// `GET /api/interviews/{id}/runs/{run_id}`: one run whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
// The summary's `tests` (counts) and this struct's (with the cases) share a key, which ts-rs
// would declare twice; the TypeScript is that of the JSON as a browser parses it (see ts.rs).
#[cfg_attr(feature = "ts", ts(as = "crate::ts::RunDetailJson"))]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// `main.py` as it ran.
    pub code: String,
    /// The output as text (invalid UTF-8 shown as U+FFFD), each stream cut at the run output
    /// cap; `*_truncated` says when it was cut.
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub tests: Option<TestResults>,
    /// For lint runs: what pyflakes and pycodestyle found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
}
