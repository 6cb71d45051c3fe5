//! What the room does with each command: the core decides, the task carries out its effects,
//! and answers that must wait for durability wait behind the records they answer for.

use super::{Delivery, RoomCmd, RoomTask};
use duet_core::Effect;
use tokio::sync::oneshot;

impl RoomTask {
    pub(super) fn on_command(&mut self, cmd: RoomCmd) {
        let now = self.clock.now_ms();
        // A take-home past its deadline is submitted before anything else is taken.
        self.submit_if_due(now);
        let effects = match cmd {
            RoomCmd::Join {
                conn,
                role,
                identity,
                sink,
            } => {
                let replies = sink.replies.clone();
                self.peers.insert(conn, sink);
                self.room.join(conn, role, identity, replies, now)
            }
            RoomCmd::Message { conn, bytes } => self.room.receive(conn, &bytes, now),
            RoomCmd::Leave { conn } => {
                self.peers.remove(&conn);
                self.room.leave(conn, now)
            }
            RoomCmd::Subscribe { conn, who, sink } => {
                self.subscribers.insert(conn, (who, sink));
                Vec::new()
            }
            RoomCmd::Unsubscribe { conn } => {
                self.subscribers.remove(&conn);
                Vec::new()
            }
            RoomCmd::StartRun {
                by,
                kind,
                stdin,
                reply,
            } => {
                // A take-home's candidate runs only while the clock runs (the start page's
                // check runs outside the room); staff only their private checks, the REPL nobody.
                if let Some(reason) = self.take_home_run_refusal(by, kind) {
                    let _ = reply.send(Err(super::RunError::Forbidden(reason)));
                    return;
                }
                // Answered once the run's start is stored, so the run can be read at once.
                let (result, effects) = self.start_run(by, kind, stdin, now);
                self.answer_when_stored(result.map(|run_id| (run_id, effects)), reply);
                Vec::new()
            }
            RoomCmd::SaveScorecard {
                author,
                update,
                reply,
            } => {
                let outcome = self.room.save_scorecard_of(author.as_deref(), update, now);
                self.answer_when_stored(outcome, reply);
                Vec::new()
            }
            RoomCmd::SubmitScorecard { author, reply } => {
                let outcome = self.room.submit_scorecard_of(author.as_deref(), now);
                self.answer_when_stored(outcome, reply);
                Vec::new()
            }
            RoomCmd::AddNote {
                author,
                text,
                reply,
            } => {
                let outcome = self.room.add_note_of(author.as_deref(), text, now);
                self.answer_when_stored(outcome, reply);
                Vec::new()
            }
            RoomCmd::Signal { kind, size, reply } => {
                let effects = self.room.signal(kind, size, now);
                let _ = reply.send(effects.is_some());
                effects.unwrap_or_default()
            }
            RoomCmd::End { reply } => {
                self.cancel_all_runs();
                let effects = self.room.end(now);
                self.execute(effects);
                let seq = self.room.last_seq();
                self.deliver(Delivery::Reply(Box::new(move || {
                    let _ = reply.send(seq);
                })));
                Vec::new()
            }
            RoomCmd::Erase { reply } => {
                self.erasing = Some(reply);
                Vec::new()
            }
            RoomCmd::SwitchQuestion {
                question,
                by,
                reply,
            } => {
                // Answered once the switch and its code are stored.
                let outcome = self.switch_question(question, by.into());
                self.answer_when_stored(outcome.map(|(effects, s)| (s, effects)), reply);
                Vec::new()
            }
            RoomCmd::RunStdin {
                run_id,
                by,
                data,
                eof,
                reply,
            } => {
                if let Some(reason) = self.take_home_touch_refusal(by, &run_id) {
                    let _ = reply.send(Err(super::RunError::Forbidden(reason)));
                    return;
                }
                // Answered once the input is stored.
                let outcome = self.feed_run(&run_id, by, data, eof, now);
                self.answer_when_stored(outcome.map(|effects| ((), effects)), reply);
                Vec::new()
            }
            RoomCmd::CancelRun { run_id, by, reply } => {
                if let Some(reason) = self.take_home_touch_refusal(by, &run_id) {
                    let _ = reply.send(Err(super::RunError::Forbidden(reason)));
                    return;
                }
                let _ = reply.send(self.cancel_run(&run_id, by));
                Vec::new()
            }
            RoomCmd::RunEvent { run_id, event } => self.on_run_event(&run_id, event, now),
            RoomCmd::TakeHome(cmd) => {
                self.on_take_home(cmd, now);
                Vec::new()
            }
        };
        self.execute(effects);
        if self.edits_since_checkpoint >= self.rooms.settings.checkpoint_every {
            drop(self.store_checkpoint());
        }
    }

    /// Carries out a change the room accepted and answers with its value once it is stored, or
    /// answers the refusal at once.
    pub(super) fn answer_when_stored<T: Send + 'static, E>(
        &mut self,
        outcome: Result<(T, Vec<Effect>), E>,
        reply: oneshot::Sender<Result<T, E>>,
    ) where
        E: Send + 'static,
    {
        match outcome {
            Ok((value, effects)) => {
                self.execute(effects);
                self.deliver(Delivery::Reply(Box::new(move || {
                    let _ = reply.send(Ok(value));
                })));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}
