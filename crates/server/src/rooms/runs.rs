//! The room task's side of runs: starting a run in the sandbox with the room's current code,
//! feeding and cancelling it, and turning what the sandbox reports into room events (each with
//! its own sequence number, stored before anyone sees it).
//!
//! The output policy (coalescing per stream, the run's output cap) is the core's
//! ([`duet_core::Room::run_printed`]): this side passes the sandbox's output in with the time,
//! asks when output is next due ([`RoomTask::next_output_due`]) for the room task's timer, and
//! stops the sandbox run when the room says it wrote past its cap (`Effect::CancelRun`).

use super::{RoomCmd, RoomTask};
use crate::auth;
use duet_core::{Effect, QuestionPick};
use duet_protocol::{
    Actor, Question, QuestionKind, Role, RoomEvent, RoomEventBody, RunFinished, RunId, RunInput,
    RunKind, RunStarted, Stream, MAIN_FILE,
};
use duet_sandbox::{RunEvent, RunOutcome, RunRequest, RunStatus, SandboxError, Stdin, Target};
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
    #[error("the sandbox refused the run")]
    Refused(#[source] SandboxError),
    /// The run asked for is not running (finished or cancelled).
    #[error("the run is not running (it finished or was stopped)")]
    NotRunning,
    /// No run of this interview that this role may see has that id (a private run answers so
    /// to a role that may not see it, exactly as a run that never was).
    #[error("no such run")]
    NoSuchRun,
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
}

impl RoomTask {
    pub(super) fn start_run(
        &mut self,
        by: Role,
        kind: RunKind,
        stdin: Option<String>,
        now: i64,
    ) -> (Result<RunId, RunError>, Vec<Effect>) {
        // After a take-home's submit, the one run the room still starts: its hidden tests.
        if self.room.is_ended() && !self.room.take_home_owes(by, kind) {
            return (Err(RunError::Ended), Vec::new());
        }
        let code = self.room.text();
        if code.trim().is_empty() {
            return (Err(RunError::EmptyProgram), Vec::new());
        }
        let (target, files, private) = match self.run_target(kind, by, self.room.files()) {
            Ok(target) => target,
            Err(e) => return (Err(e), Vec::new()),
        };
        // A new run from a role replaces that role's active run.
        for run in self.runs.values().filter(|r| r.by == by) {
            run.cancel.cancel();
        }
        let environment = self.run_environment().to_owned();
        let request = RunRequest {
            files,
            target,
            environment: environment.clone(),
            // Stdin given at start ends after it (so `sys.stdin.read()` returns); without it,
            // stdin stays open for `/stdin`. A REPL reads its lines from there.
            keep_stdin_open: stdin.is_none() || kind == RunKind::Repl,
            stdin: stdin.map(String::into_bytes),
            limits: self.rooms.run_limits.clone(),
            party: self.id.to_string(),
        };
        let handle = match self.rooms.sandbox.start(request) {
            Ok(handle) => handle,
            Err(e @ SandboxError::Busy { .. }) => {
                return (Err(RunError::Busy(e.to_string())), Vec::new())
            }
            Err(e @ SandboxError::TooLarge { .. }) => {
                return (Err(RunError::TooLarge(e.to_string())), Vec::new())
            }
            Err(e @ (SandboxError::Invalid(_) | SandboxError::UnknownEnvironment(_))) => {
                return (Err(RunError::Refused(e)), Vec::new())
            }
        };
        let run_id: RunId = auth::random_token(12);
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(pump(handle.events, me, run_id.clone()));
        }
        // The code is stored by reference: the snapshot at `code_seq` is exactly `code`.
        let started = RunStarted {
            run_id: run_id.clone(),
            kind,
            by,
            at: now,
            code: None,
            code_seq: self.room.last_seq(),
            private,
            environment,
        };
        let effects = self
            .room
            .run_started(&started, self.rooms.run_limits.output_bytes, now);
        self.runs.insert(
            run_id.clone(),
            ActiveRun {
                by,
                private: started.private,
                started: Instant::now(),
                stdin: handle.stdin,
                cancel: handle.cancel,
            },
        );
        (Ok(run_id), effects)
    }

    /// The environment runs use now ([`duet_protocol::run_environment`]); each run's record
    /// carries it.
    fn run_environment(&self) -> &str {
        let question = self.question.as_ref().map(|q| q.environment.as_str());
        duet_protocol::run_environment(question, &self.environment)
    }

    /// What a run of `kind` by `by` executes, with which files (every file the document
    /// lists: `main.py` imports the others), and whether it is private.
    fn run_target(
        &self,
        kind: RunKind,
        by: Role,
        listed: Vec<(String, String)>,
    ) -> Result<(Target, BTreeMap<String, String>, bool), RunError> {
        let mut files: BTreeMap<String, String> = listed.into_iter().collect();
        let entry = self
            .question
            .as_ref()
            .map_or(MAIN_FILE, |q| q.entry.as_str())
            .to_owned();
        match kind {
            RunKind::Run => Ok((Target::Program { entry }, files, false)),
            // The program, then its interpreter with its names in scope, for both people.
            RunKind::Repl => Ok((Target::Repl { entry }, files, false)),
            RunKind::Lint => {
                if !by.can_run_hidden_tests() {
                    return Err(RunError::Forbidden(
                        "style findings are the interviewer's: only the interviewer runs lint",
                    ));
                }
                // Every listed Python file, each finding naming its file; data files are not
                // Python. `main.py` is always listed, so the list is never empty.
                let python: Vec<String> = files
                    .keys()
                    .filter(|path| path.ends_with(".py"))
                    .cloned()
                    .collect();
                Ok((Target::Lint { files: python }, files, true))
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
                // The question's tests run as it wrote them: the candidate's pytest
                // configuration (a conftest.py could deselect or pass any test) stays out.
                files.retain(|path, _| !is_pytest_config(path));
                // pytest collects the candidate's own test files beside the question's.
                let theirs: Vec<String> = files
                    .keys()
                    .filter(|path| is_test_file(path))
                    .filter(|path| {
                        !question.visible_tests.contains_key(*path)
                            && !question.hidden_tests.contains_key(*path)
                    })
                    .cloned()
                    .collect();
                files.extend(question.visible_tests.clone());
                let mut test_files: Vec<String> = question.visible_tests.keys().cloned().collect();
                // The interviewer's test runs include the hidden tests, and so are private.
                let hidden = by.can_run_hidden_tests();
                if hidden {
                    files.extend(question.hidden_tests.clone());
                    test_files.extend(question.hidden_tests.keys().cloned());
                }
                test_files.extend(theirs);
                Ok((Target::Pytest { test_files }, files, hidden))
            }
        }
    }

    /// Moves the room to `question`: the switch is logged, and its project's files become the
    /// text last left in them or their starter (the files of the question left that it lacks
    /// are deleted), the board the one left on it or its starter drawing (see
    /// [`duet_core::Room::switch_question`]).
    pub(super) fn switch_question(
        &mut self,
        question: Arc<Question>,
        by: Actor,
    ) -> Result<(Vec<Effect>, super::Switched), duet_core::Ended> {
        let pick = QuestionPick {
            id: question.id(),
            title: &question.summary.title,
            starter: (question.summary.kind == QuestionKind::Coding).then_some(&question.starter),
            board: &question.board,
        };
        // The files the room wrote for the question it leaves.
        let leaving: Vec<String> = match &self.question {
            Some(current) if current.summary.kind == QuestionKind::Coding => {
                current.starter.keys().cloned().collect()
            }
            _ => vec![MAIN_FILE.to_owned()],
        };
        let now = self.clock.now_ms();
        let effects = self.room.switch_question(pick, &leaving, by, now)?;
        let switched = super::Switched {
            seq: self.room.last_seq(),
            restored: effects.iter().any(|e| {
                matches!(
                    e,
                    Effect::Event {
                        event: RoomEvent {
                            body: RoomEventBody::Question { restored: true, .. },
                            ..
                        },
                        ..
                    }
                )
            }),
        };
        self.question = Some(question);
        Ok((effects, switched))
    }

    /// The active run `run_id` as `role` may act on it: a run the role may not see is no run
    /// at all to it, one that ended is not running.
    fn run_for(&self, run_id: &str, role: Role) -> Result<&ActiveRun, RunError> {
        if !self.room.run_visible_to(run_id, role) {
            return Err(RunError::NoSuchRun);
        }
        self.runs.get(run_id).ok_or(RunError::NotRunning)
    }

    /// Sends input to a running program, then stores it and shows it to everyone who may see
    /// the run (the replay and the cast include it).
    pub(super) fn feed_run(
        &mut self,
        run_id: &str,
        by: Role,
        data: String,
        eof: bool,
        now: i64,
    ) -> Result<Vec<Effect>, RunError> {
        let run = self.run_for(run_id, by)?;
        let full = |e| match e {
            mpsc::error::TrySendError::Full(_) => RunError::StdinFull,
            mpsc::error::TrySendError::Closed(_) => RunError::NotRunning,
        };
        if !data.is_empty() {
            run.stdin
                .try_send(Stdin::Data(data.clone().into_bytes()))
                .map_err(full)?;
        }
        if eof {
            run.stdin.try_send(Stdin::Eof).map_err(full)?;
        }
        let input = RunInput {
            run_id: run_id.to_owned(),
            data,
            eof,
            at: now,
        };
        Ok(self.room.run_input(input, by, now))
    }

    pub(super) fn cancel_run(&mut self, run_id: &str, by: Role) -> Result<(), RunError> {
        self.run_for(run_id, by)?.cancel.cancel();
        Ok(())
    }

    pub(super) fn on_run_event(&mut self, run_id: &str, event: RunEvent, now: i64) -> Vec<Effect> {
        if !self.runs.contains_key(run_id) {
            return Vec::new();
        }
        let (bytes, stream) = match event {
            RunEvent::Queued { ahead } => {
                let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
                return self.room.run_queued(run_id, ahead);
            }
            RunEvent::Stdout(bytes) => (bytes, Stream::Stdout),
            RunEvent::Stderr(bytes) => (bytes, Stream::Stderr),
            RunEvent::Finished(outcome) => {
                let Some(run) = self.runs.remove(run_id) else {
                    return Vec::new();
                };
                if outcome.status == RunStatus::SandboxError {
                    let detail = outcome.detail.as_deref().unwrap_or("no detail");
                    tracing::warn!(interview = %self.id, run = run_id, %detail, "run ended with a sandbox problem");
                }
                let record = finished(run_id, &outcome, now);
                return self.room.run_finished(&record, run.by, run.private, now);
            }
        };
        self.room.run_printed(run_id, stream, &bytes, now)
    }

    /// When the next batch of output is due to be stored (unix ms), if any waits.
    pub(super) fn next_output_due(&self) -> Option<i64> {
        self.room.next_output_due()
    }

    /// Stores every batch of output that is due at `now`.
    pub(super) fn flush_due_output(&mut self, now: i64) -> Vec<Effect> {
        self.room.flush_due_output(now)
    }

    /// The room says `run_id` wrote past its output cap: the sandbox run is stopped (the room
    /// records its finish as `output_limit` when the sandbox reports it cancelled).
    pub(super) fn stop_capped_run(&mut self, run_id: &str) {
        if let Some(run) = self.runs.get(run_id) {
            run.cancel.cancel();
            let cap = self.rooms.run_limits.output_bytes;
            tracing::info!(interview = %self.id, run = run_id, cap, "run output reached the stored cap; run cancelled");
        }
    }

    /// Runs the log shows as started but never finished (the server stopped under them) are
    /// closed as `sandbox_error`, so the history never shows a run as running forever.
    pub(super) fn finish_interrupted(&mut self, unfinished: Vec<duet_core::UnfinishedRun>) {
        let now = self.clock.now_ms();
        for duet_core::UnfinishedRun {
            run_id,
            by,
            private,
        } in unfinished
        {
            let record = RunFinished {
                run_id,
                status: RunStatus::SandboxError,
                limit: None,
                exit_code: None,
                duration_ms: 0,
                tests: None,
                lint: None,
                at: now,
            };
            let effects = self.room.run_finished(&record, by, private, now);
            self.execute(effects);
        }
    }

    /// Ends every active run as `sandbox_error` (the server is stopping) and records it.
    pub(super) fn abandon_runs(&mut self) {
        let now = self.clock.now_ms();
        // What a run printed and the room has not stored yet is stored before its finish.
        for (run_id, run) in std::mem::take(&mut self.runs) {
            run.cancel.cancel();
            let record = RunFinished {
                run_id,
                status: RunStatus::SandboxError,
                limit: None,
                exit_code: None,
                duration_ms: run.started.elapsed().as_millis() as u64,
                tests: None,
                lint: None,
                at: now,
            };
            let effects = self.room.run_finished(&record, run.by, run.private, now);
            self.execute(effects);
        }
    }

    /// Cancels every active run without recording (the room is reloading; the next load
    /// records them as interrupted).
    pub(super) fn cancel_all_runs(&mut self) {
        for (_, run) in self.runs.drain() {
            run.cancel.cancel();
        }
    }
}

fn finished(run_id: &str, outcome: &RunOutcome, now: i64) -> RunFinished {
    RunFinished {
        run_id: run_id.to_owned(),
        status: outcome.status,
        limit: outcome.limit,
        exit_code: outcome.exit_code,
        duration_ms: outcome.duration.as_millis() as u64,
        tests: outcome.tests.clone(),
        lint: outcome.lint.clone(),
        at: now,
    }
}

/// A file pytest would read as its configuration (`conftest.py` in any folder, or a root
/// file that may hold a `[pytest]`/`[tool.pytest.ini_options]` section).
fn is_pytest_config(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "conftest.py"
        || matches!(
            path,
            "pytest.ini" | ".pytest.ini" | "tox.ini" | "setup.cfg" | "pyproject.toml"
        )
}

/// A test file by pytest's default naming (`test_*.py` or `*_test.py`).
fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}
/// Forwards a run's events into its room. If the sandbox stops reporting without a finish, the
/// run is finished as `sandbox_error` so it never stays "running".
async fn pump(mut events: mpsc::Receiver<RunEvent>, room: super::RoomSender, run_id: RunId) {
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
        limit: None,
    };
    let _ = room
        .send(RoomCmd::RunEvent {
            run_id,
            event: RunEvent::Finished(outcome),
        })
        .await;
}
