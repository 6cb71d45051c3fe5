//! The room task's side of runs: starting a run in the sandbox with the room's current code,
//! feeding and cancelling it, and turning what the sandbox reports into room events (each with
//! its own sequence number, stored before anyone sees it).

use crate::auth;
use crate::rooms::{now_ms, RoomCmd, RoomTask};
use duet_core::{Effect, Room};
use duet_protocol::{
    Actor, LintFinding, Question, QuestionKind, Role, RunFinished, RunId, RunKind, RunOutput,
    RunStarted, Stream, TestCaseResult, TestResults, MAIN_FILE,
};
use duet_sandbox::{
    RunEvent, RunOutcome, RunRequest, RunStatus, SandboxError, Stdin, Target, TestReport,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why a run request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `main.py` is empty or only white space.
    #[error("main.py is empty: write some code first")]
    EmptyProgram,
    /// This kind of run does not apply here (tests with no question, tests of a discussion).
    #[error("{0}")]
    Unsupported(&'static str),
    /// This role may not start this kind of run.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The sandbox has no room for another run.
    #[error("{0}")]
    Busy(String),
    /// The interviewer ended the interview.
    #[error("the interview has ended: no more runs")]
    Ended,
    /// The files are larger than a run may take.
    #[error("{0}")]
    TooLarge(String),
    /// The sandbox refused the request as built by the server (a configuration problem).
    #[error("the sandbox refused the run: {0}")]
    Refused(String),
    /// The run asked for is not running (finished, cancelled, or never was).
    #[error("no such running run")]
    NotRunning,
    /// The program has not read the stdin sent before; try again.
    #[error("the program's input buffer is full; wait for it to read")]
    StdinFull,
    /// The room could not be loaded or is reloading.
    #[error("the interview's room is unavailable: {0}")]
    RoomUnavailable(String),
}

/// A run in progress.
pub struct ActiveRun {
    pub by: Role,
    pub private: bool,
    started: Instant,
    stdin: mpsc::Sender<Stdin>,
    cancel: CancellationToken,
    stdout: Utf8Carry,
    stderr: Utf8Carry,
}

impl RoomTask {
    pub(crate) fn start_run(
        &mut self,
        room: &mut Room,
        by: Role,
        kind: RunKind,
        stdin: Option<String>,
        now: i64,
    ) -> (Result<RunId, RunError>, Vec<Effect>) {
        if room.is_ended() {
            return (Err(RunError::Ended), Vec::new());
        }
        let code = room.text();
        if code.trim().is_empty() {
            return (Err(RunError::EmptyProgram), Vec::new());
        }
        let (target, files, private) = match self.run_target(kind, by, &code) {
            Ok(target) => target,
            Err(e) => return (Err(e), Vec::new()),
        };
        // A new run from a role replaces that role's active run.
        for run in self.runs.values().filter(|r| r.by == by) {
            run.cancel.cancel();
        }
        let request = RunRequest {
            files,
            target,
            // Stdin given at start ends after it (so `sys.stdin.read()` returns); without it,
            // stdin stays open for `/stdin`.
            keep_stdin_open: stdin.is_none(),
            stdin: stdin.map(String::into_bytes),
            limits: self.rooms.run_limits.clone(),
        };
        let handle = match self.rooms.sandbox.start(request) {
            Ok(handle) => handle,
            Err(e @ SandboxError::Busy { .. }) => {
                return (Err(RunError::Busy(e.to_string())), Vec::new())
            }
            Err(e @ SandboxError::TooLarge { .. }) => {
                return (Err(RunError::TooLarge(e.to_string())), Vec::new())
            }
            Err(e @ SandboxError::Invalid(_)) => {
                return (Err(RunError::Refused(e.to_string())), Vec::new())
            }
        };
        let run_id: RunId = auth::random_token(12);
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(pump(handle.events, me, run_id.clone()));
        }
        let started = RunStarted {
            run_id: run_id.clone(),
            kind,
            by,
            at: now,
            code,
            code_seq: room.last_seq(),
            private,
        };
        self.runs.insert(
            run_id.clone(),
            ActiveRun {
                by,
                private: started.private,
                started: Instant::now(),
                stdin: handle.stdin,
                cancel: handle.cancel,
                stdout: Utf8Carry::default(),
                stderr: Utf8Carry::default(),
            },
        );
        (Ok(run_id), room.run_started(&started, now))
    }

    /// What a run of `kind` by `by` executes, with which files, and whether it is private.
    fn run_target(
        &self,
        kind: RunKind,
        by: Role,
        code: &str,
    ) -> Result<(Target, BTreeMap<String, String>, bool), RunError> {
        let mut files = BTreeMap::from([(MAIN_FILE.to_owned(), code.to_owned())]);
        match kind {
            RunKind::Run => Ok((
                Target::Program {
                    entry: MAIN_FILE.to_owned(),
                },
                files,
                false,
            )),
            RunKind::Lint => {
                if !by.can_run_hidden_tests() {
                    return Err(RunError::Forbidden(
                        "style findings are the interviewer's: only the interviewer runs lint",
                    ));
                }
                Ok((
                    Target::Lint {
                        file: MAIN_FILE.to_owned(),
                    },
                    files,
                    true,
                ))
            }
            RunKind::Test => {
                let question = self.question.as_ref().ok_or(RunError::Unsupported(
                    "this interview has no question: pick one before running tests",
                ))?;
                if question.summary.kind == QuestionKind::Discussion {
                    return Err(RunError::Unsupported(
                        "a discussion question has no tests to run",
                    ));
                }
                files.insert(VISIBLE_TESTS.to_owned(), question.visible_tests.clone());
                let mut test_files = vec![VISIBLE_TESTS.to_owned()];
                // The interviewer's test runs include the hidden tests, and so are private.
                let hidden = by.can_run_hidden_tests();
                if hidden {
                    files.insert(HIDDEN_TESTS.to_owned(), question.hidden_tests.clone());
                    test_files.push(HIDDEN_TESTS.to_owned());
                }
                Ok((Target::Pytest { test_files }, files, hidden))
            }
        }
    }

    /// Moves the room to `question`: the switch is logged, the starter replaces `main.py`.
    pub(crate) fn switch_question(
        &mut self,
        room: &mut Room,
        question: Arc<Question>,
        by: Actor,
    ) -> Vec<Effect> {
        let starter =
            (question.summary.kind == QuestionKind::Coding).then_some(question.starter.as_str());
        let effects = room.switch_question(question.id(), starter, by, now_ms());
        self.question = Some(question);
        effects
    }

    pub(crate) fn feed_run(
        &mut self,
        run_id: &str,
        data: String,
        eof: bool,
    ) -> Result<(), RunError> {
        let run = self.runs.get(run_id).ok_or(RunError::NotRunning)?;
        let full = |e| match e {
            mpsc::error::TrySendError::Full(_) => RunError::StdinFull,
            mpsc::error::TrySendError::Closed(_) => RunError::NotRunning,
        };
        if !data.is_empty() {
            run.stdin
                .try_send(Stdin::Data(data.into_bytes()))
                .map_err(full)?;
        }
        if eof {
            run.stdin.try_send(Stdin::Eof).map_err(full)?;
        }
        Ok(())
    }

    pub(crate) fn cancel_run(&mut self, run_id: &str) -> Result<(), RunError> {
        let run = self.runs.get(run_id).ok_or(RunError::NotRunning)?;
        run.cancel.cancel();
        Ok(())
    }

    pub(crate) fn on_run_event(
        &mut self,
        room: &mut Room,
        run_id: &str,
        event: RunEvent,
        now: i64,
    ) -> Vec<Effect> {
        let Some(run) = self.runs.get_mut(run_id) else {
            return Vec::new();
        };
        let (by, private) = (run.by, run.private);
        match event {
            RunEvent::Stdout(bytes) => {
                let data = run.stdout.push(&bytes);
                output(room, run_id, Stream::Stdout, data, by, private, now)
            }
            RunEvent::Stderr(bytes) => {
                let data = run.stderr.push(&bytes);
                output(room, run_id, Stream::Stderr, data, by, private, now)
            }
            RunEvent::Finished(outcome) => {
                let Some(mut run) = self.runs.remove(run_id) else {
                    return Vec::new();
                };
                let mut effects = output(
                    room,
                    run_id,
                    Stream::Stdout,
                    run.stdout.finish(),
                    by,
                    private,
                    now,
                );
                effects.extend(output(
                    room,
                    run_id,
                    Stream::Stderr,
                    run.stderr.finish(),
                    by,
                    private,
                    now,
                ));
                if let Some(detail) = &outcome.detail {
                    tracing::warn!(interview = %self.id, run = run_id, %detail, "run ended with a sandbox problem");
                }
                effects.extend(room.run_finished(
                    &finished(run_id, &outcome, now),
                    by,
                    private,
                    now,
                ));
                effects
            }
        }
    }

    /// Runs the log shows as started but never finished (the server stopped under them) are
    /// closed as `sandbox_error`, so the history never shows a run as running forever.
    pub(crate) fn finish_interrupted(
        &mut self,
        room: &mut Room,
        unfinished: Vec<(String, Role, bool)>,
    ) {
        let now = now_ms();
        for (run_id, by, private) in unfinished {
            let record = RunFinished {
                run_id,
                status: "sandbox_error".into(),
                exit_code: None,
                duration_ms: 0,
                tests: None,
                lint: None,
                at: now,
            };
            let effects = room.run_finished(&record, by, private, now);
            self.execute(room, effects);
        }
    }

    /// Ends every active run as `sandbox_error` (the server is stopping) and records it.
    pub(crate) fn abandon_runs(&mut self, room: &mut Room) {
        let now = now_ms();
        for (run_id, run) in std::mem::take(&mut self.runs) {
            run.cancel.cancel();
            let record = RunFinished {
                run_id,
                status: "sandbox_error".into(),
                exit_code: None,
                duration_ms: run.started.elapsed().as_millis() as u64,
                tests: None,
                lint: None,
                at: now,
            };
            let effects = room.run_finished(&record, run.by, run.private, now);
            self.execute(room, effects);
        }
    }

    /// Cancels every active run without recording (the room is reloading; the next load
    /// records them as interrupted).
    pub(crate) fn cancel_all_runs(&mut self) {
        for (_, run) in self.runs.drain() {
            run.cancel.cancel();
        }
    }
}

fn output(
    room: &mut Room,
    run_id: &str,
    stream: Stream,
    data: String,
    by: Role,
    private: bool,
    now: i64,
) -> Vec<Effect> {
    if data.is_empty() {
        return Vec::new();
    }
    room.run_output(
        &RunOutput {
            run_id: run_id.to_owned(),
            stream,
            data,
            at: now,
        },
        by,
        private,
        now,
    )
}

fn finished(run_id: &str, outcome: &RunOutcome, now: i64) -> RunFinished {
    RunFinished {
        run_id: run_id.to_owned(),
        status: status_name(outcome.status).to_owned(),
        exit_code: outcome.exit_code,
        duration_ms: outcome.duration.as_millis() as u64,
        tests: outcome.tests.as_ref().map(test_results),
        lint: outcome.lint.as_ref().map(|findings| {
            findings
                .iter()
                .map(|f| LintFinding {
                    line: f.line,
                    col: f.col,
                    code: f.code.clone(),
                    message: f.message.clone(),
                })
                .collect()
        }),
        at: now,
    }
}

/// Where the question's tests go beside `main.py` in the sandbox.
const VISIBLE_TESTS: &str = "test_visible.py";
const HIDDEN_TESTS: &str = "test_hidden.py";

pub fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Ok => "ok",
        RunStatus::Error => "error",
        RunStatus::Timeout => "timeout",
        RunStatus::MemoryLimit => "memory_limit",
        RunStatus::OutputLimit => "output_limit",
        RunStatus::Cancelled => "cancelled",
        RunStatus::SandboxError => "sandbox_error",
    }
}

fn test_results(report: &TestReport) -> TestResults {
    TestResults {
        passed: report.passed,
        failed: report.failed,
        errors: report.errors,
        skipped: report.skipped,
        cases: report
            .cases
            .iter()
            .map(|c| TestCaseResult {
                name: c.name.clone(),
                outcome: c.outcome.clone(),
                message: c.message.clone(),
            })
            .collect(),
    }
}

/// Forwards a run's events into its room. If the sandbox stops reporting without a finish, the
/// run is finished as `sandbox_error` so it never stays "running".
async fn pump(mut events: mpsc::Receiver<RunEvent>, room: mpsc::Sender<RoomCmd>, run_id: RunId) {
    let started = Instant::now();
    while let Some(event) = events.recv().await {
        let last = matches!(event, RunEvent::Finished(_));
        if room
            .send(RoomCmd::RunEvent {
                run_id: run_id.clone(),
                event,
            })
            .await
            .is_err()
            || last
        {
            return;
        }
    }
    let outcome = RunOutcome {
        status: RunStatus::SandboxError,
        exit_code: None,
        duration: started.elapsed(),
        tests: None,
        lint: None,
        detail: Some("the sandbox stopped reporting before the run finished".into()),
    };
    let _ = room
        .send(RoomCmd::RunEvent {
            run_id,
            event: RunEvent::Finished(outcome),
        })
        .await;
}

/// Turns a byte stream into text chunk by chunk without splitting a character across chunks;
/// invalid bytes become U+FFFD.
#[derive(Default)]
struct Utf8Carry(Vec<u8>);

impl Utf8Carry {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.0) {
                Ok(text) => {
                    out.push_str(text);
                    self.0.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.0[..valid]).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.0.drain(..valid); // an incomplete character: wait for the rest
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.0.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Carry;

    #[test]
    fn characters_split_across_chunks_come_out_whole() {
        let snake = "🐍".as_bytes();
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(&[b'a', snake[0], snake[1]]), "a");
        assert_eq!(carry.push(&[snake[2], snake[3], b'b']), "🐍b");
        assert_eq!(carry.push(&[0xff, b'c']), "\u{FFFD}c");
        assert_eq!(carry.push(&[snake[0]]), "");
        assert_eq!(carry.finish(), "\u{FFFD}");
    }
}
