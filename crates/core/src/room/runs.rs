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
        let body = RoomEventBody::RunInput {
            run_id: input.run_id.clone(),
            data: input.data.clone(),
            eof: input.eof,
        };
        self.record_and_tell(
            by.into(),
            Record::RunInput(input),
            now_ms,
            audience(private),
            body,
        )
    }

    /// A run began: log it (with the code that ran) and tell the events socket.
    pub fn run_started(&mut self, started: &RunStarted, now_ms: i64) -> Vec<Effect> {
        self.runs.insert(started.run_id.clone());
        if started.private {
            self.private_runs.insert(started.run_id.clone());
        }
        let body = RoomEventBody::RunStarted {
            run_id: started.run_id.clone(),
            kind: started.kind,
        };
        let effects = self.record_and_tell(
            started.by.into(),
            Record::RunStarted(started.clone()),
            now_ms,
            audience(started.private),
            body,
        );
        let start = Head {
            seq: self.last_seq,
            at: now_ms,
            by: started.by.into(),
        };
        self.live_runs.insert(
            started.run_id.clone(),
            LiveRun {
                start,
                written: [0, 0],
            },
        );
        effects
    }

    /// A run printed something: `chunk` (raw bytes as the program wrote them on one stream,
    /// possibly several writes coalesced) is logged, and the events socket gets the same bytes
    /// as they travel ([`duet_protocol::WireOutput`]) with where they start in their stream:
    /// nothing is decoded here, so live and stored output are one thing.
    pub fn run_output(
        &mut self,
        chunk: OutputChunk,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        let wire = duet_protocol::WireOutput::of(&chunk.bytes);
        let live = self
            .live_runs
            .entry(chunk.run_id.clone())
            .or_insert_with(|| LiveRun {
                start: Head {
                    seq: 0,
                    at: now_ms,
                    by: by.into(),
                },
                written: [0, 0],
            });
        let stream = &mut live.written[match chunk.stream {
            duet_protocol::Stream::Stdout => 0,
            duet_protocol::Stream::Stderr => 1,
        }];
        let offset = *stream;
        *stream += chunk.bytes.len() as u64;
        let body = RoomEventBody::RunOutput {
            run_id: chunk.run_id.clone(),
            stream: chunk.stream,
            offset,
            data: wire.text,
            base64: wire.base64,
        };
        self.record_and_tell(
            by.into(),
            Record::RunOutput(chunk),
            now_ms,
            audience(private),
            body,
        )
    }

    /// A run ended.
    pub fn run_finished(
        &mut self,
        finished: &RunFinished,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        self.live_runs.remove(&finished.run_id);
        let body = RoomEventBody::RunFinished {
            run_id: finished.run_id.clone(),
            status: finished.status,
            limit: finished.limit,
            exit_code: finished.exit_code,
            duration_ms: finished.duration_ms,
            tests: finished.tests.clone(),
            lint: finished.lint.clone(),
        };
        self.record_and_tell(
            by.into(),
            Record::RunFinished(finished.clone()),
            now_ms,
            audience(private),
            body,
        )
    }

    /// A run of this room waits for a sandbox slot with `ahead` runs before it: told to
    /// everyone who may see the run, not stored, under the head of the run's start (nothing
    /// for a run that is not going on).
    pub fn run_queued(&self, run_id: &str, ahead: u32) -> Vec<Effect> {
        let Some(live) = self.live_runs.get(run_id) else {
            return Vec::new();
        };
        vec![Effect::Event {
            audience: audience(self.private_runs.contains(run_id)),
            event: RoomEvent::new(
                live.start,
                RoomEventBody::RunQueued {
                    run_id: run_id.to_owned(),
                    ahead,
                },
            ),
        }]
    }
}

/// A run going on, as the room tells of it: the head of its start (its `run.queued` events
/// carry it) and the bytes of stdout and stderr logged so far (each `run.output`'s `offset`).
#[derive(Debug, Clone, Copy)]
pub(super) struct LiveRun {
    start: Head,
    written: [u64; 2],
}

fn audience(private: bool) -> Audience {
    if private {
        Audience::Private
    } else {
        Audience::Everyone
    }
}
