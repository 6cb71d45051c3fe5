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
    /// pyflakes and pycodestyle over every listed `.py` file (interviewer only; private).
    Lint,
    /// `python3 -i main.py`: the program, then its interactive interpreter with the program's
    /// names in scope, fed lines through the run's stdin by either person, until `exit()`,
    /// Stop, or a while without input.
    Repl,
}

/// A sandbox environment as `GET /api/environments` lists it, read from its image's labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Environment {
    /// `python`, `python-data`.
    pub name: String,
    /// The interpreter's version, `3.11.2`.
    pub python: String,
    /// Every installed Python distribution, by name.
    pub packages: Vec<EnvironmentPackage>,
}

/// One installed Python distribution of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EnvironmentPackage {
    pub name: String,
    pub version: String,
}

/// One finding of a lint run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LintFinding {
    /// The file it is in (`shop/cart.py`). Records stored before lint covered every file lack
    /// it: they linted `main.py` alone, so it reads as that.
    #[serde(default = "main_file")]
    pub path: String,
    pub line: u32,
    pub col: u32,
    /// `F...` from pyflakes, `E...`/`W...` from pycodestyle.
    pub code: String,
    pub message: String,
}

fn main_file() -> String {
    crate::MAIN_FILE.to_owned()
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
    /// The sandbox environment it ran in. Records written before there were environments
    /// lack it: they ran in `python`.
    #[serde(default = "default_environment")]
    pub environment: String,
}

fn default_environment() -> String {
    crate::DEFAULT_ENVIRONMENT.to_owned()
}

/// The environment a room's runs use: its question's when that names one beyond the default
/// (a data question needs its packages), else the interview's (chosen at creation; the default
/// `python` is within every other).
pub fn run_environment<'a>(question: Option<&'a str>, interview: &'a str) -> &'a str {
    match question {
        Some(q) if q != crate::DEFAULT_ENVIRONMENT => q,
        _ => interview,
    }
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
    /// Time without input (a REPL).
    Idle { ms: u64 },
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
    /// The sandbox environment it ran in (`python` for runs recorded before environments).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// The log seq of the run's start, for the roles [`crate::sees_log_seq`] names (left out
    /// for the candidate, see [`RunSummary::seen_by`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub seq: Option<u64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running` until it finishes.
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    /// The seq whose snapshot is the code that ran (left out as `seq` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub code_seq: Option<u64>,
    /// pytest's counts; left out for a run that is not a test run (and in [`RunDetail`], whose
    /// own `tests` has the cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// The limit that stopped it, if one did.
    #[serde(default)]
    pub limit: Option<RunLimit>,
}

impl RunSummary {
    /// The summary as `role` receives it: without the log's seqs unless
    /// [`crate::sees_log_seq`].
    pub fn seen_by(mut self, role: Role) -> RunSummary {
        if !crate::sees_log_seq(role) {
            self.seq = None;
            self.code_seq = None;
        }
        self
    }
}

/// Program output as it travels in JSON: as text when the bytes are UTF-8 that JSON carries at
/// about their size, as base64 otherwise (invalid UTF-8, NUL bytes and other control
/// characters JSON would escape in six bytes each), so what is served stays near the size of
/// what the program wrote. Exactly one is set. The events socket and the run record encode
/// output this one way, and a reader decodes both the same way (the page with one streaming
/// UTF-8 decoder per run and stream), so live and stored output read alike.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WireOutput {
    pub text: Option<String>,
    pub base64: Option<String>,
}

impl WireOutput {
    pub fn of(bytes: &[u8]) -> WireOutput {
        if let Ok(text) = std::str::from_utf8(bytes) {
            // What JSON adds: a backslash for `"`, `\` and the short escapes, `\u00XX` for
            // the other control characters.
            let added: usize = bytes
                .iter()
                .map(|b| match b {
                    b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                    0..=0x1f => 5,
                    _ => 0,
                })
                .sum();
            if added * 3 <= bytes.len() + 16 {
                return WireOutput {
                    text: Some(text.to_owned()),
                    base64: None,
                };
            }
        }
        use base64::Engine;
        WireOutput {
            text: None,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

/// `GET /api/interviews/{id}/runs`: one page of runs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass as `?after=` for the next page (the id of this page's last run); `null` on the
    /// last page.
    pub next: Option<RunId>,
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
    /// Each stream's output ([`WireOutput`]): as text when it is UTF-8 that JSON carries at
    /// about its size, else `null` with the bytes in `*_base64`. Each is cut at the run output
    /// cap; `*_truncated` says when it was cut.
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// How many bytes of each stream this answer accounts for (before any cut): for a run
    /// still going on, a `run.output` event whose `offset` is at or past it is what came after.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The seq of the newest output record this answer includes, for the roles
    /// [`crate::sees_log_seq`] names (left out for the candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through_seq: Option<u64>,
    pub tests: Option<TestResults>,
    /// For lint runs: what pyflakes and pycodestyle found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
}

impl RunDetail {
    /// The run as `role` receives it: without the log's seqs unless [`crate::sees_log_seq`].
    pub fn seen_by(mut self, role: Role) -> RunDetail {
        self.summary = self.summary.seen_by(role);
        if !crate::sees_log_seq(role) {
            self.through_seq = None;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON size of what [`WireOutput::of`] gives for `bytes`.
    fn wire_size(bytes: &[u8]) -> usize {
        let out = WireOutput::of(bytes);
        serde_json::to_string(&(out.text, out.base64))
            .unwrap_or_default()
            .len()
    }

    #[test]
    fn output_travels_near_its_size_whatever_the_program_wrote() {
        let mib = 1 << 20;
        for (what, bytes) in [
            ("NUL bytes", vec![0u8; mib]),
            ("0xFF bytes", vec![0xFF; mib]),
            ("control characters", vec![0x01; mib]),
            ("text", b"hello, world\n".repeat(mib / 13)),
            ("every byte value", (0..=255u8).cycle().take(mib).collect()),
        ] {
            let size = wire_size(&bytes);
            assert!(
                size * 100 <= bytes.len() * 134 + 100,
                "{what}: {} bytes travel as {size}",
                bytes.len()
            );
        }
    }

    #[test]
    fn text_stays_text_and_anything_else_is_base64_of_the_exact_bytes() {
        let plain = WireOutput::of("héllo 🐍\n\tcolumns\n".as_bytes());
        assert_eq!(plain.text.as_deref(), Some("héllo 🐍\n\tcolumns\n"));
        assert_eq!(plain.base64, None);
        // Half a character (the rest comes in the next write) and invalid bytes: kept exactly.
        for bytes in [
            &"🐍".as_bytes()[..2],
            &[b'a', 0xFF, b'b'][..],
            &[0u8; 64][..],
        ] {
            let out = WireOutput::of(bytes);
            assert_eq!(out.text, None);
            use base64::Engine;
            let back = base64::engine::general_purpose::STANDARD
                .decode(out.base64.unwrap_or_default())
                .unwrap_or_default();
            assert_eq!(back, bytes);
        }
    }

    #[test]
    fn a_finding_stored_before_lint_covered_every_file_is_in_main_py() {
        let old: LintFinding =
            serde_json::from_str(r#"{"line": 3, "col": 1, "code": "F401", "message": "unused"}"#)
                .expect("an old finding reads");
        assert_eq!(old.path, "main.py");
        let new: LintFinding = serde_json::from_str(
            r#"{"path": "shop/cart.py", "line": 3, "col": 1, "code": "F401", "message": "unused"}"#,
        )
        .expect("a finding reads");
        assert_eq!(new.path, "shop/cart.py");
    }
}
