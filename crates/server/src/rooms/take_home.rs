//! The room task's side of a take-home: it carries out the core's Start and Submit, holds the
//! deadline's timer (the live loop wakes at [`duet_core::Room::take_home_due`]), starts the
//! hidden tests on the submitted code, and closes the candidate's sockets after the submit.
//!
//! The hidden tests are the interviewer's run as today (visible and hidden tests, private to
//! staff), started by the server on the interviewer's behalf just before the submit is
//! logged, on exactly the code submitted: its `code_seq` is the last record before the submit.

use super::{Delivery, RoomCmd, RoomTask};
use duet_core::TakeHomeError;
use duet_protocol::{close, Role, RunKind, TakeHomeStarted, TakeHomeSubmitted};
use tokio::sync::oneshot;

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

    /// The deadline's timer fired: submits the round, dated no earlier than its deadline
    /// (the timer's instant and the room's clock in whole milliseconds may differ by one).
    pub(super) fn on_take_home_timer(&mut self) {
        if let Some(due) = self.room.take_home_due() {
            let now = self.clock.now_ms().max(due);
            let _ = self.submit_take_home(false, now);
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
            self.start_hidden_tests(now);
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
        }
        outcome
    }

    /// The interviewer's hidden-test run on the code as it stands (nothing to run for a
    /// discussion question or an empty program: then none starts, and the log says so by
    /// having no run).
    fn start_hidden_tests(&mut self, now: i64) {
        let (started, effects) = self.start_run(Role::Interviewer, RunKind::Test, None, now);
        match started {
            Ok(run_id) => {
                self.execute(effects);
                tracing::info!(interview = %self.id, run = %run_id, "take-home: hidden tests started on the submitted code");
            }
            Err(e) => {
                tracing::warn!(interview = %self.id, error = %e, "take-home: the hidden tests did not start on the submitted code")
            }
        }
    }
}
