//! Runs in the room: who may see a run, each run's start, typed input, output and finish as
//! records and events, and the run book's output policy: per run going on, each stream's
//! output coalesced into records ([`crate::runs::Coalescer`]) and counted against the run's
//! output cap. The server only asks when output is next due ([`Room::next_output_due`]) and
//! has what is due stored ([`Room::flush_due_output`]), passing the time in; the room tells it
//! to stop a run that wrote past its cap ([`Effect::CancelRun`]).

use super::*;
use crate::runs::OutputBook;
use duet_protocol::{RunLimit, RunStatus, Stream};

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

    /// A run began: log it (with the code that ran) and tell the events socket. The run's
    /// output is then kept to `output_cap` bytes ([`Room::run_printed`]).
    pub fn run_started(
        &mut self,
        started: &RunStarted,
        output_cap: usize,
        now_ms: i64,
    ) -> Vec<Effect> {
        self.runs.insert(started.run_id.clone());
        if started.private {
            self.private_runs.insert(started.run_id.clone());
        }
        self.take_home_learn(&Record::RunStarted(started.clone()));
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
                by: started.by,
                private: started.private,
                written: [0, 0],
                output: OutputBook::new(output_cap),
            },
        );
        effects
    }

    /// A run going on wrote `bytes` on `stream` at `now_ms`. Nothing is stored yet unless a
    /// batch filled up: the write waits to share a record with what follows it until
    /// [`Room::next_output_due`]. A write past the run's output cap stores exactly the cap,
    /// and the room asks for the run to be stopped ([`Effect::CancelRun`], once); output after
    /// it is not stored. Output of a run that is not going on is ignored.
    pub fn run_printed(
        &mut self,
        run_id: &str,
        stream: Stream,
        bytes: &[u8],
        now_ms: i64,
    ) -> Vec<Effect> {
        let Some(live) = self.live_runs.get_mut(run_id) else {
            return Vec::new();
        };
        if live.output.push(stream, bytes, now_ms) {
            return self.flush_output(run_id, true, now_ms);
        }
        Vec::new()
    }

    /// When the next batch of run output is due to be stored (unix ms), if any waits.
    pub fn next_output_due(&self) -> Option<i64> {
        self.live_runs
            .values()
            .filter_map(|live| live.output.due_at())
            .min()
    }

    /// Stores every batch of run output that is due at `now_ms` (runs in id order).
    pub fn flush_due_output(&mut self, now_ms: i64) -> Vec<Effect> {
        let mut due: Vec<String> = self
            .live_runs
            .iter()
            .filter(|(_, live)| live.output.due_at().is_some_and(|at| at <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        due.sort_unstable();
        due.iter()
            .flat_map(|id| self.flush_output(id, false, now_ms))
            .collect()
    }

    /// Stores a run's waiting output: both streams if `all`, else those due or full. If this
    /// passes the run's cap, the server is asked to stop the run.
    fn flush_output(&mut self, run_id: &str, all: bool, now_ms: i64) -> Vec<Effect> {
        let (mut effects, reached_cap) = self.store_output(run_id, all, now_ms);
        if reached_cap {
            effects.push(Effect::CancelRun {
                run_id: run_id.to_owned(),
            });
        }
        effects
    }

    /// Stores a run's waiting output (see [`Room::flush_output`]); `true` with it if it went
    /// past the run's cap for the first time.
    fn store_output(&mut self, run_id: &str, all: bool, now_ms: i64) -> (Vec<Effect>, bool) {
        let Some(live) = self.live_runs.get_mut(run_id) else {
            return (Vec::new(), false);
        };
        let (by, private) = (live.by, live.private);
        let taken = live.output.take(all, now_ms);
        let mut effects = Vec::new();
        for batch in taken.batches {
            let chunk = OutputChunk {
                run_id: run_id.to_owned(),
                stream: batch.stream,
                pieces: batch.pieces,
                bytes: batch.bytes,
            };
            effects.extend(self.run_output(chunk, by, private, now_ms));
        }
        (effects, taken.reached_cap)
    }

    /// A run's output is stored as given: `chunk` (raw bytes as the program wrote them on one
    /// stream, possibly several writes coalesced) is logged, and the events socket gets the same bytes
    /// as they travel ([`duet_protocol::WireOutput`]) with where they start in their stream:
    /// nothing is decoded here, so live and stored output are one thing. No coalescing and no
    /// cap here: a run's program output goes through [`Room::run_printed`]; this is the step
    /// after it, public for tools that write a log from chunks (the replay bench).
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
                by,
                private,
                written: [0, 0],
                output: OutputBook::new(usize::MAX),
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

    /// A run ended: what it printed and the room has not stored yet is stored first, then its
    /// finish. A run stopped for writing past its output cap (`cancelled` by the sandbox) is
    /// recorded as `output_limit`, with the cap.
    pub fn run_finished(
        &mut self,
        finished: &RunFinished,
        by: Role,
        private: bool,
        now_ms: i64,
    ) -> Vec<Effect> {
        // The run is over: nothing to stop, even if this last output went past the cap.
        let (mut effects, _) = self.store_output(&finished.run_id, true, now_ms);
        let mut finished = finished.clone();
        if let Some(live) = self.live_runs.remove(&finished.run_id) {
            if live.output.capped() && finished.status == RunStatus::Cancelled {
                finished.status = RunStatus::OutputLimit;
                finished.limit = Some(RunLimit::Output {
                    bytes: live.output.cap() as u64,
                });
            }
        }
        self.take_home_learn(&Record::RunFinished(finished.clone()));
        let body = RoomEventBody::RunFinished {
            run_id: finished.run_id.clone(),
            status: finished.status,
            limit: finished.limit,
            exit_code: finished.exit_code,
            duration_ms: finished.duration_ms,
            tests: finished.tests.clone(),
            lint: finished.lint.clone(),
        };
        effects.extend(self.record_and_tell(
            by.into(),
            Record::RunFinished(finished),
            now_ms,
            audience(private),
            body,
        ));
        effects
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
/// carry it), who started it and who may see it, the bytes of stdout and stderr logged so far
/// (each `run.output`'s `offset`), and its output on the way to the log.
#[derive(Debug)]
pub(super) struct LiveRun {
    start: Head,
    by: Role,
    private: bool,
    written: [u64; 2],
    output: OutputBook,
}

fn audience(private: bool) -> Audience {
    if private {
        Audience::Private
    } else {
        Audience::Everyone
    }
}
