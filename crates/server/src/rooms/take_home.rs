//! The room task's side of a take-home: it carries out the core's Start and Submit, holds the
//! deadline's timer (the live loop wakes at [`duet_core::Room::take_home_due`]), starts the
//! hidden tests on the submitted code, and closes the candidate's sockets after the submit.
//!
//! The hidden tests are the interviewer's run as today (visible and hidden tests, private to
//! staff), started by the server on the interviewer's behalf right after the submit and the
//! end are logged: nothing is edited after the end, so it runs exactly the code submitted. The
//! core keeps them owed until their run starts (and again if it ends as `sandbox_error`): a busy
//! sandbox is tried again after a few seconds, and a server that stopped first runs them when
//! it comes back (the room's load, or the take-home clock job, brings the room up).

use super::{Delivery, RoomCmd, RoomTask, RunError};
use duet_core::TakeHomeError;
use duet_protocol::{close, Role, RunKind, TakeHomeStarted, TakeHomeSubmitted};
use tokio::sync::oneshot;

/// Why staff may not start a run that would reach the candidate's console, nor feed or stop
/// one of theirs, while a take-home's round goes on.
pub const STAFF_RUNS_REFUSED: &str = "a take-home is the candidate's solo round: until it is \
     submitted staff run only their private checks (the hidden tests, the style check) and \
     touch none of the candidate's runs";
/// Why nobody starts a REPL in a take-home.
pub const REPL_REFUSED: &str =
    "a take-home has no REPL: run main.py or the tests (every run is recorded for review)";

/// What a room is asked to do about its take-home.
pub enum TakeHomeCmd {
    /// The candidate pressed Start (answered with the deadline once it is stored).
    Start {
        reply: oneshot::Sender<Result<TakeHomeStarted, TakeHomeError>>,
    },
    /// The candidate pressed Submit (answered once the submit and the end are stored; a
    /// submit after the deadline is refused, the round being submitted at the limit instead).
    Submit {
        reply: oneshot::Sender<Result<TakeHomeSubmitted, TakeHomeError>>,
    },
    /// The submit and the end reached the events socket: close the candidate's subscribers.
    CloseCandidates,
}

impl RoomTask {
    /// Why a run of `kind` by `by` may not start in this room now because it is a take-home,
    /// if it may not. The candidate runs only while their clock runs. Staff, during the round,
    /// start only their private checks (their test run, with the hidden tests, and the style
    /// check): those never reach the candidate (a private run is 404 to them and is not sent to
    /// their sockets) and are not the round's score (`test_status` counts only the hidden-test
    /// run after the submit), while a public run would print in the candidate's console. After
    /// the submit staff start nothing but the hidden tests the server starts itself (the room
    /// has ended). Nobody starts a REPL: it takes lines from anyone in the room, and its
    /// answers are no test of the work.
    pub(super) fn take_home_run_refusal(&self, by: Role, kind: RunKind) -> Option<&'static str> {
        self.room.take_home()?;
        if let Some((_, reason)) = self.room.take_home_refusal(by) {
            return Some(reason);
        }
        if kind == RunKind::Repl {
            return Some(REPL_REFUSED);
        }
        let private = match kind {
            RunKind::Lint => true,
            RunKind::Test => by.can_run_hidden_tests(),
            RunKind::Run | RunKind::Repl => false,
        };
        (self.in_take_home_round(by) && !private).then_some(STAFF_RUNS_REFUSED)
    }

    /// Why `by` may not feed or stop run `run_id` now, if they are staff during a take-home's
    /// round and it is not their own (private) run.
    pub(super) fn take_home_touch_refusal(&self, by: Role, run_id: &str) -> Option<&'static str> {
        let own = self
            .runs
            .get(run_id)
            .is_some_and(|r| r.by == by && r.private);
        (self.in_take_home_round(by) && !own).then_some(STAFF_RUNS_REFUSED)
    }

    /// Whether `by` is staff in a take-home whose round has not ended.
    fn in_take_home_round(&self, by: Role) -> bool {
        self.room.take_home().is_some() && by != Role::Candidate && !self.room.is_ended()
    }

    pub(super) fn on_take_home(&mut self, cmd: TakeHomeCmd, now: i64) {
        match cmd {
            TakeHomeCmd::Start { reply } => {
                let outcome = self.room.start_take_home(now);
                self.answer_when_stored(outcome, reply);
            }
            TakeHomeCmd::Submit { reply } => {
                let outcome = self.submit_take_home(true, now);
                match outcome {
                    Ok(submitted) => self.deliver(Delivery::Reply(Box::new(move || {
                        let _ = reply.send(Ok(submitted));
                    }))),
                    // A refusal that came with a submit at the limit waits for it to be
                    // stored, so the page that reads the view next sees it.
                    Err(refused @ TakeHomeError::PastLimit(_)) => {
                        self.deliver(Delivery::Reply(Box::new(move || {
                            let _ = reply.send(Err(refused));
                        })))
                    }
                    Err(refused) => {
                        let _ = reply.send(Err(refused));
                    }
                }
            }
            TakeHomeCmd::CloseCandidates => {
                let candidates: Vec<_> = self
                    .subscribers
                    .iter()
                    .filter(|(_, (who, _))| who.role == Role::Candidate)
                    .map(|(conn, _)| *conn)
                    .collect();
                for conn in candidates {
                    if let Some((_, sink)) = self.subscribers.remove(&conn) {
                        sink.close_after_queued(close::SUBMITTED, duet_core::SUBMITTED_REASON);
                    }
                }
            }
        }
    }

    /// Submits the round if its deadline has come (the live loop's timer, and before every
    /// command, so nothing the candidate sends after the deadline is taken).
    pub(super) fn submit_if_due(&mut self, now: i64) {
        if self.room.take_home_due().is_some_and(|due| due <= now) {
            let _ = self.submit_take_home(false, now);
        }
    }

    /// The take-home's timer fired: submits the round at its deadline, or starts the hidden
    /// tests it owes, dated no earlier than when they were due (the timer's instant and the
    /// room's clock in whole milliseconds may differ by one).
    pub(super) fn on_take_home_timer(&mut self) {
        if let Some(due) = self.room.take_home_due() {
            let now = self.clock.now_ms().max(due);
            let _ = self.submit_take_home(false, now);
        } else if let Some(due) = self.room.take_home_tests_due() {
            self.start_owed_tests(self.clock.now_ms().max(due));
        }
    }

    /// Ends the round at `now`: the candidate's Submit, or the deadline. Any run going on is
    /// stopped, the hidden tests start on the code as it stands, then the submit and the end
    /// are logged and the candidate's sockets closed.
    fn submit_take_home(
        &mut self,
        by_candidate: bool,
        now: i64,
    ) -> Result<TakeHomeSubmitted, TakeHomeError> {
        if self.room.take_home_due().is_some() && !self.room.is_ended() {
            self.cancel_all_runs();
        }
        let (outcome, effects) = match by_candidate {
            true => self.room.submit_take_home(now),
            false => match self.room.take_home_tick(now) {
                Some((submitted, effects)) => (Ok(submitted), effects),
                None => (Err(TakeHomeError::Ended), Vec::new()),
            },
        };
        if !effects.is_empty() {
            self.execute(effects);
            let me = self.me.upgrade();
            // Told after the end reaches the events socket, so the candidate's page hears why.
            self.deliver(Delivery::Reply(Box::new(move || {
                if let Some(me) = me {
                    let _ = me.0.try_send(super::Queued::of(RoomCmd::TakeHome(
                        TakeHomeCmd::CloseCandidates,
                    )));
                }
            })));
            if let Ok(submitted) | Err(TakeHomeError::PastLimit(submitted)) = outcome {
                tracing::info!(interview = %self.id, reason = ?submitted.reason, "take-home submitted");
            }
            self.start_owed_tests(now);
        }
        outcome
    }

    /// Starts the hidden tests the submit owes, if they are due at `now`: the interviewer's
    /// test run on the submitted code. A busy sandbox is tried again later; a question without
    /// tests (or an empty program) has nothing to run, and the log says so by having no run.
    pub(super) fn start_owed_tests(&mut self, now: i64) {
        if self.room.take_home_tests_due().is_none_or(|at| at > now) {
            return;
        }
        let (started, effects) = self.start_run(Role::Interviewer, RunKind::Test, None, now);
        match started {
            Ok(run_id) => {
                self.execute(effects);
                tracing::info!(interview = %self.id, run = %run_id, "take-home: hidden tests started on the submitted code");
            }
            Err(e @ (RunError::Busy(_) | RunError::RoomUnavailable(_))) => {
                tracing::warn!(interview = %self.id, error = %e, "take-home: the sandbox cannot run the hidden tests now; trying again shortly");
                self.room.take_home_tests_refused(now, false);
            }
            Err(e) => {
                tracing::warn!(interview = %self.id, error = %e, "take-home: the hidden tests cannot run on the submitted code");
                self.room.take_home_tests_refused(now, true);
            }
        }
    }
}
