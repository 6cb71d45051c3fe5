//! A run's output policy in the room, without a runtime: what the program writes waits a few
//! milliseconds to share a record, is stored when due (the caller passes the time in), and is
//! kept to the run's output cap, past which the room asks for the run to be stopped, once.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_core::{collect_output, run_index, Effect, Room, RoomConfig, COALESCE_BYTES, COALESCE_MS};
use duet_protocol::{
    EventKind, LogRecord, Role, RunFinished, RunKind, RunLimit, RunStarted, RunStatus, Stream,
};

/// A room with one run going on, and everything it asked the server to do.
struct Run {
    room: Room,
    log: Vec<LogRecord>,
    cancels: Vec<String>,
    events: Vec<serde_json::Value>,
}

impl Run {
    fn start(output_cap: usize) -> Run {
        let mut run = Run {
            room: Room::new(RoomConfig::default()),
            log: Vec::new(),
            cancels: Vec::new(),
            events: Vec::new(),
        };
        let started = RunStarted {
            run_id: "r".into(),
            kind: RunKind::Run,
            by: Role::Candidate,
            at: 0,
            code: None,
            code_seq: 0,
            private: false,
            environment: "python".into(),
        };
        let effects = run.room.run_started(&started, output_cap, 0);
        run.carry_out(effects);
        run
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => self.log.push(record),
                Effect::CancelRun { run_id } => self.cancels.push(run_id),
                Effect::Event { event, .. } => {
                    self.events.push(serde_json::to_value(event).unwrap())
                }
                other => panic!("a run asks for no {other:?}"),
            }
        }
    }

    fn print(&mut self, stream: Stream, bytes: &[u8], at: i64) {
        let effects = self.room.run_printed("r", stream, bytes, at);
        self.carry_out(effects);
    }

    fn flush_due(&mut self, now: i64) {
        let effects = self.room.flush_due_output(now);
        self.carry_out(effects);
    }

    fn finish(&mut self, status: RunStatus, at: i64) {
        let finished = RunFinished {
            run_id: "r".into(),
            status,
            limit: None,
            exit_code: None,
            duration_ms: 1,
            tests: None,
            lint: None,
            at,
        };
        let effects = self
            .room
            .run_finished(&finished, Role::Candidate, false, at);
        self.carry_out(effects);
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.log.iter().map(|r| r.kind).collect()
    }

    fn stored(&self) -> (Vec<u8>, Vec<u8>) {
        let out = collect_output(&self.log, "r");
        (out.stdout, out.stderr)
    }

    fn status(&self) -> (RunStatus, Option<RunLimit>) {
        let run = &run_index(&self.log, Role::Reviewer)[0].summary;
        (run.status, run.limit)
    }
}

#[test]
fn writes_within_the_window_share_one_record_stored_when_due() {
    let mut run = Run::start(1 << 20);
    run.print(Stream::Stdout, b"ab", 10);
    run.print(Stream::Stdout, b"cd", 12);
    assert_eq!(run.kinds(), [EventKind::RunStarted], "nothing stored yet");
    assert_eq!(run.room.next_output_due(), Some(10 + COALESCE_MS));

    run.flush_due(10 + COALESCE_MS - 1);
    assert_eq!(run.kinds(), [EventKind::RunStarted], "not due yet");

    run.flush_due(10 + COALESCE_MS);
    assert_eq!(run.kinds(), [EventKind::RunStarted, EventKind::RunOutput]);
    let pieces: Vec<(i64, std::ops::Range<usize>)> = collect_output(&run.log, "r")
        .pieces
        .into_iter()
        .map(|p| (p.at, p.range))
        .collect();
    assert_eq!(
        pieces,
        [(10, 0..2), (12, 2..4)],
        "each write keeps its time"
    );
    assert_eq!(run.stored().0, b"abcd");
    assert_eq!(run.room.next_output_due(), None, "nothing waits any more");
    let output: Vec<&serde_json::Value> = run
        .events
        .iter()
        .filter(|e| e["type"] == "run.output")
        .collect();
    assert_eq!(output.len(), 1, "one event for the one record");
    assert_eq!(
        (output[0]["data"].as_str(), output[0]["offset"].as_u64()),
        (Some("abcd"), Some(0))
    );
}

#[test]
fn a_full_batch_is_stored_at_once_without_waiting() {
    let mut run = Run::start(1 << 20);
    run.print(Stream::Stderr, b"e", 10);
    run.print(Stream::Stdout, &vec![b'x'; COALESCE_BYTES], 11);
    assert_eq!(
        run.kinds(),
        [
            EventKind::RunStarted,
            EventKind::RunOutput,
            EventKind::RunOutput
        ],
        "the full batch, and what the other stream had waiting, go together"
    );
    assert_eq!(run.stored(), (vec![b'x'; COALESCE_BYTES], b"e".to_vec()));
}

#[test]
fn output_of_exactly_the_cap_across_both_streams_is_kept_whole_and_the_run_is_not_stopped() {
    let mut run = Run::start(10);
    run.print(Stream::Stdout, b"1234", 10);
    run.print(Stream::Stderr, b"567", 11);
    run.flush_due(20);
    run.print(Stream::Stdout, b"890", 30);
    run.flush_due(40);
    assert_eq!(run.stored(), (b"1234890".to_vec(), b"567".to_vec()));
    assert!(run.cancels.is_empty(), "the cap itself is not over it");
    run.finish(RunStatus::Ok, 50);
    assert_eq!(run.status(), (RunStatus::Ok, None));
}

#[test]
fn one_byte_past_the_cap_keeps_exactly_the_cap_and_stops_the_run_once() {
    let mut run = Run::start(10);
    run.print(Stream::Stdout, b"1234", 10);
    run.print(Stream::Stderr, b"567", 11);
    run.flush_due(20);
    run.print(Stream::Stdout, b"890!", 30);
    run.print(Stream::Stderr, b"?", 33);
    // Stdout is due first and goes past the cap; stderr's byte still waits.
    run.flush_due(30 + COALESCE_MS);
    assert_eq!(run.stored(), (b"1234890".to_vec(), b"567".to_vec()));
    assert_eq!(run.cancels, ["r"], "the server is told to stop the run");

    // The program goes on writing until the sandbox stops it: none of it is stored, and the
    // room does not ask again.
    let before = run.log.len();
    run.print(Stream::Stdout, b"more", 41);
    run.print(Stream::Stderr, &vec![b'y'; COALESCE_BYTES], 42);
    assert_eq!(
        run.room.next_output_due(),
        None,
        "nothing waits to be stored"
    );
    run.flush_due(100);
    assert_eq!(run.log.len(), before, "output after the cap is not stored");
    assert_eq!(run.cancels, ["r"], "asked once");

    run.finish(RunStatus::Cancelled, 120);
    assert_eq!(
        run.status(),
        (RunStatus::OutputLimit, Some(RunLimit::Output { bytes: 10 })),
        "stopped for its output, not by a person"
    );
    assert_eq!(run.stored(), (b"1234890".to_vec(), b"567".to_vec()));
}

#[test]
fn a_single_write_past_the_cap_is_cut_at_the_cap() {
    let mut run = Run::start(5);
    run.print(Stream::Stdout, b"ab", 10);
    run.print(Stream::Stdout, b"cdefg", 11);
    run.flush_due(20);
    assert_eq!(run.stored().0, b"abcde");
    let pieces: Vec<i64> = collect_output(&run.log, "r")
        .pieces
        .iter()
        .map(|p| p.at)
        .collect();
    assert_eq!(pieces, [10, 11], "the cut write keeps its time");
    assert_eq!(run.cancels, ["r"]);
}

#[test]
fn a_finish_stores_what_was_waiting_before_the_finish_record() {
    let mut run = Run::start(1 << 20);
    run.print(Stream::Stdout, b"last words", 10);
    run.print(Stream::Stderr, b"warning", 10);
    run.finish(RunStatus::Ok, 11);
    assert_eq!(
        run.kinds(),
        [
            EventKind::RunStarted,
            EventKind::RunOutput,
            EventKind::RunOutput,
            EventKind::RunFinished
        ]
    );
    assert_eq!(run.stored(), (b"last words".to_vec(), b"warning".to_vec()));
    let seqs: Vec<u64> = run.log.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert_eq!(run.room.next_output_due(), None);
    assert!(run.cancels.is_empty());
}

#[test]
fn a_cancelled_run_under_its_cap_stays_cancelled() {
    let mut run = Run::start(10);
    run.print(Stream::Stdout, b"123", 10);
    run.finish(RunStatus::Cancelled, 11);
    assert_eq!(run.status(), (RunStatus::Cancelled, None));
    assert_eq!(run.stored().0, b"123");
}

#[test]
fn output_of_a_run_that_is_not_going_on_is_ignored() {
    let mut run = Run::start(10);
    run.finish(RunStatus::Ok, 5);
    let effects = run.room.run_printed("r", Stream::Stdout, b"late", 6);
    assert!(effects.is_empty());
    let effects = run.room.run_printed("never", Stream::Stdout, b"x", 6);
    assert!(effects.is_empty());
    assert_eq!(run.room.next_output_due(), None);
}
