//! The room task's side of runs: starting a run in the sandbox with the room's current code,
//! feeding and cancelling it, and turning what the sandbox reports into room events (each with
//! its own sequence number, stored before anyone sees it).
//!
//! Output is coalesced per stream: what a stream prints within [`duet_core::runs`]'s few
//! milliseconds (or up to 16 KiB) becomes one record of raw bytes with each write's time, and
//! one `run.output` event. The room task's loop flushes a batch when it is due
//! ([`RoomTask::next_output_due`]). The run's output cap is counted on the program's bytes
//! stored (record headers aside).

use super::{RoomCmd, RoomTask};
use crate::auth;
use duet_core::{Coalescer, Effect, QuestionPick};
use duet_protocol::{
    Actor, OutputChunk, Question, QuestionKind, Role, RoomEvent, RoomEventBody, RunFinished, RunId,
    RunInput, RunKind, RunLimit, RunStarted, Stream, MAIN_FILE,
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
    stdout: Coalescer,
    stderr: Coalescer,
    /// Bytes of output the program wrote and the log stored for this run, against the cap.
    stored: usize,
    /// Set once the program wrote past the cap: later output is not stored, and the run,
    /// cancelled, finishes as `output_limit`.
    capped: bool,
}

impl ActiveRun {
    fn stream(&mut self, stream: Stream) -> &mut Coalescer {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

impl RoomTask {
    pub(super) fn start_run(
        &mut self,
        by: Role,
        kind: RunKind,
        stdin: Option<String>,
        now: i64,
    ) -> (Result<RunId, RunError>, Vec<Effect>) {
        if self.room.is_ended() {
            return (Err(RunError::Ended), Vec::new());
        }
        let code = self.room.text();
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
            Err(e @ SandboxError::Invalid(_)) => return (Err(RunError::Refused(e)), Vec::new()),
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
        };
        let effects = self.room.run_started(&started, now);
        self.runs.insert(
            run_id.clone(),
            ActiveRun {
                by,
                private: started.private,
                started: Instant::now(),
                stdin: handle.stdin,
                cancel: handle.cancel,
                stdout: Coalescer::default(),
                stderr: Coalescer::default(),
                stored: 0,
                capped: false,
            },
        );
        (Ok(run_id), effects)
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

    /// Moves the room to `question`: the switch is logged, and `main.py` becomes the code last
    /// written for it or its starter, the board the one left on it or its starter drawing (see
    /// [`duet_core::Room::switch_question`]).
    pub(super) fn switch_question(
        &mut self,
        question: Arc<Question>,
        by: Actor,
    ) -> Result<(Vec<Effect>, super::Switched), duet_core::Ended> {
        let pick = QuestionPick {
            id: question.id(),
            title: &question.summary.title,
            starter: (question.summary.kind == QuestionKind::Coding)
                .then_some(question.starter.as_str()),
            board: &question.board,
        };
        let effects = self.room.switch_question(pick, by, self.clock.now_ms())?;
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
        let Some(run) = self.runs.get_mut(run_id) else {
            return Vec::new();
        };
        let (bytes, stream) = match event {
            RunEvent::Queued { ahead } => {
                let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
                return self.room.run_queued(run_id, ahead);
            }
            RunEvent::Stdout(bytes) => (bytes, Stream::Stdout),
            RunEvent::Stderr(bytes) => (bytes, Stream::Stderr),
            RunEvent::Finished(outcome) => {
                let mut effects = self.flush_output(run_id, true, now);
                let Some(run) = self.runs.remove(run_id) else {
                    return effects;
                };
                if outcome.status == RunStatus::SandboxError {
                    let detail = outcome.detail.as_deref().unwrap_or("no detail");
                    tracing::warn!(interview = %self.id, run = run_id, %detail, "run ended with a sandbox problem");
                }
                let mut record = finished(run_id, &outcome, now);
                if run.capped && outcome.status == RunStatus::Cancelled {
                    record.status = RunStatus::OutputLimit;
                    record.limit = Some(RunLimit::Output {
                        bytes: self.rooms.run_limits.output_bytes as u64,
                    });
                }
                effects.extend(self.room.run_finished(&record, run.by, run.private, now));
                return effects;
            }
        };
        if run.capped {
            return Vec::new();
        }
        let out = run.stream(stream);
        out.push(&bytes, now);
        if out.is_full() {
            return self.flush_output(run_id, true, now);
        }
        Vec::new()
    }

    /// When the next batch of output is due to be stored (unix ms), if any waits.
    pub(super) fn next_output_due(&self) -> Option<i64> {
        self.runs
            .values()
            .flat_map(|r| [r.stdout.due_at(), r.stderr.due_at()])
            .flatten()
            .min()
    }

    /// Stores every batch of output that is due at `now`.
    pub(super) fn flush_due_output(&mut self, now: i64) -> Vec<Effect> {
        let due: Vec<RunId> = self
            .runs
            .iter()
            .filter(|(_, r)| {
                [r.stdout.due_at(), r.stderr.due_at()]
                    .into_iter()
                    .flatten()
                    .any(|at| at <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        due.iter()
            .flat_map(|id| self.flush_output(id, false, now))
            .collect()
    }

    /// Stores a run's waiting output: both streams if `all`, else those that are due or full.
    fn flush_output(&mut self, run_id: &str, all: bool, now: i64) -> Vec<Effect> {
        let cap = self.rooms.run_limits.output_bytes;
        let Some(run) = self.runs.get_mut(run_id) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (by, private) = (run.by, run.private);
            let room_left = cap.saturating_sub(run.stored);
            let out = run.stream(stream);
            let due = out.due_at().is_some_and(|at| at <= now) || out.is_full();
            if !(all || due) {
                continue;
            }
            let Some((mut bytes, mut pieces)) = out.take() else {
                continue;
            };
            // The cap counts the bytes the program wrote: exactly the cap is kept whole, and
            // only a byte past it ends the run as over the limit.
            let mut capped = false;
            if bytes.len() > room_left {
                bytes.truncate(room_left);
                pieces.retain(|(offset, _)| *offset < room_left.max(1));
                capped = true;
            }
            if !bytes.is_empty() {
                run.stored += bytes.len();
                let chunk = OutputChunk {
                    run_id: run_id.to_owned(),
                    stream,
                    pieces,
                    bytes,
                };
                effects.extend(self.room.run_output(chunk, by, private, now));
            }
            if capped && !run.capped {
                run.capped = true;
                run.cancel.cancel();
                tracing::info!(interview = %self.id, run = run_id, cap, "run output reached the stored cap; run cancelled");
            }
        }
        effects
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
        let ids: Vec<RunId> = self.runs.keys().cloned().collect();
        for run_id in ids {
            let effects = self.flush_output(&run_id, true, now);
            self.execute(effects);
        }
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

/// Where the question's tests go beside `main.py` in the sandbox.
const VISIBLE_TESTS: &str = "test_visible.py";
const HIDDEN_TESTS: &str = "test_hidden.py";

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
