//! Runs in the room: who may see a run, and each run's start, typed input, output and finish as
//! records and events.

use super::*;

impl Room {
    /// Whether `run_id` is a run of this interview that `role` may see (a private run exists
    /// for nobody else: every action on it answers as for a run that never was).
    pub fn run_visible_to(&self, run_id: &str, role: Role) -> bool {
        self.runs.contains(run_id)
            && (!self.private_runs.contains(run_id) || role.can_read_scorecard())
    }

    /// Someone typed into a running program: logged as sent, and shown to everyone who may see
    /// the run.
    pub fn run_input(&mut self, input: RunInput, by: Role, now_ms: i64) -> Vec<Effect> {
        let private = self.private_runs.contains(&input.run_id);
        let event = RoomEvent::RunInput {
            seq: self.last_seq + 1,
            run_id: input.run_id.clone(),
            by,
            data: input.data.clone(),
            eof: input.eof,
        };
        vec![
            self.record(by.into(), Record::RunInput(input), now_ms),
            Effect::Event {
                audience: audience(private),
                event,
            },
        ]
    }

    /// A run began: log it (with the code that ran) and tell the events socket.
    pub fn run_started(&mut self, started: &RunStarted, now_ms: i64) -> Vec<Effect> {
        self.runs.insert(started.run_id.clone());
        if started.private {
            self.private_runs.insert(started.run_id.clone());
        }
        let record = self.record(
            started.by.into(),
            Record::RunStarted(started.clone()),
            now_ms,
        );
        let seq = self.last_seq;
        let event = RoomEvent::RunStarted {
            seq,
            run_id: started.run_id.clone(),
            kind: started.kind,
            by: started.by,
            at: started.at,
        };
        vec![
            record,
            Effect::Event {
                audience: audience(started.private),
                event,
            },
        ]
    }

    /// A run printed something: `chunk` (raw bytes as the program wrote them on one stream,
    /// possibly several writes coalesced) is logged, and the events socket gets the same bytes
    /// as they travel ([`duet_protocol::WireOutput`]): nothing is decoded here, so live and
    /// stored output are one thing.
    pub fn run_output(
        &mut self,
        chunk: OutputChunk,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        let wire = duet_protocol::WireOutput::of(&chunk.bytes);
        let event = RoomEvent::RunOutput {
            seq: self.last_seq + 1,
            run_id: chunk.run_id.clone(),
            stream: chunk.stream,
            data: wire.text,
            base64: wire.base64,
        };
        vec![
            self.record(by.into(), Record::RunOutput(chunk), now_ms),
            Effect::Event {
                audience: audience(private),
                event,
            },
        ]
    }

    /// A run ended.
    pub fn run_finished(
        &mut self,
        finished: &RunFinished,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        let record = self.record(by.into(), Record::RunFinished(finished.clone()), now_ms);
        let event = RoomEvent::RunFinished {
            seq: self.last_seq,
            run_id: finished.run_id.clone(),
            status: finished.status,
            limit: finished.limit,
            exit_code: finished.exit_code,
            duration_ms: finished.duration_ms,
            tests: finished.tests.clone(),
            lint: finished.lint.clone(),
        };
        vec![
            record,
            Effect::Event {
                audience: audience(private),
                event,
            },
        ]
    }

    /// A run of this room waits for a sandbox slot with `ahead` runs before it: told to
    /// everyone who may see the run, not stored, under the seq of the run's start (nothing
    /// for a run this room does not know).
    pub fn run_queued(&self, run_id: &str, ahead: u32, started_seq: u64) -> Vec<Effect> {
        if !self.runs.contains(run_id) {
            return Vec::new();
        }
        vec![Effect::Event {
            audience: audience(self.private_runs.contains(run_id)),
            event: RoomEvent::RunQueued {
                seq: started_seq,
                run_id: run_id.to_owned(),
                ahead,
            },
        }]
    }
}

fn audience(private: bool) -> Audience {
    if private {
        Audience::Private
    } else {
        Audience::Everyone
    }
}
