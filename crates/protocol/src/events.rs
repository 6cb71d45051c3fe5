//! What people are told: the events socket's [`RoomEvent`]s and the replay's timeline and
//! snapshots.

use crate::{
    Actor, LintFinding, Role, RunId, RunKind, RunLimit, RunStatus, SignalKind, Stream, TestCounts,
    TestResults,
};
use serde::{Deserialize, Serialize};

/// What the events socket says: one JSON text frame per event, tagged by `type`, each with the
/// room's `seq` of the record it announces. Built by the room, serialized once by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum RoomEvent {
    #[serde(rename = "run.started")]
    RunStarted {
        seq: u64,
        run_id: RunId,
        kind: RunKind,
        by: Role,
        at: i64,
    },
    /// The run waits for a free sandbox slot: `ahead` runs (of this and other interviews) will
    /// get one before it. Sent when it is queued and each time its place changes, before any
    /// output; never stored (the log holds the run's start and end), so `seq` is the run's
    /// start's.
    #[serde(rename = "run.queued")]
    RunQueued { seq: u64, run_id: RunId, ahead: u32 },
    /// Output as the program wrote it, one stored record's worth: `data` when it is text
    /// JSON carries at about its size, `base64` (its bytes) otherwise; exactly one is set
    /// (see [`crate::WireOutput`]). A character may be split across two events: decode each
    /// stream's events in order with one streaming UTF-8 decoder.
    #[serde(rename = "run.output")]
    RunOutput {
        seq: u64,
        run_id: RunId,
        stream: Stream,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base64: Option<String>,
    },
    /// Someone typed into a running program (sent as it was stored).
    #[serde(rename = "run.input")]
    RunInput {
        seq: u64,
        run_id: RunId,
        by: Role,
        data: String,
        eof: bool,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
        seq: u64,
        run_id: RunId,
        status: RunStatus,
        /// The limit that stopped the run, if one did.
        limit: Option<RunLimit>,
        exit_code: Option<i64>,
        duration_ms: u64,
        tests: Option<TestResults>,
        lint: Option<Vec<LintFinding>>,
    },
    #[serde(rename = "question")]
    Question {
        seq: u64,
        question_id: String,
        /// The question's title, for the banner that names it.
        title: String,
        by: Actor,
        /// Whether `main.py` now holds the code last written for this question (a switch back)
        /// rather than its starter.
        restored: bool,
    },
    /// The scorecard was saved or submitted (private).
    #[serde(rename = "scorecard")]
    Scorecard {
        seq: u64,
        action: String,
        version: u64,
    },
    /// A private note.
    #[serde(rename = "note")]
    Note { seq: u64, at: i64, text: String },
    /// An integrity signal (private).
    #[serde(rename = "signal")]
    Signal {
        seq: u64,
        kind: SignalKind,
        size: Option<u64>,
        at: i64,
    },
    #[serde(rename = "end")]
    End { seq: u64, at: i64 },
}

/// One entry of `GET /api/interviews/{id}/timeline`, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum TimelineEvent {
    /// One author's consecutive edits: from `seq` at `at` to `last_seq` at `last_at`.
    #[serde(rename = "edit")]
    Edit {
        seq: u64,
        at: i64,
        by: Actor,
        last_seq: u64,
        last_at: i64,
        /// How many edits the burst holds.
        edits: u32,
    },
    #[serde(rename = "join")]
    Join { seq: u64, at: i64, by: Actor },
    #[serde(rename = "leave")]
    Leave { seq: u64, at: i64, by: Actor },
    /// The room switched to a question.
    #[serde(rename = "question")]
    Question {
        seq: u64,
        at: i64,
        by: Actor,
        question_id: String,
        /// The question's title in this server's bank (`null` if the bank no longer has it).
        #[serde(default)]
        title: Option<String>,
    },
    /// An interviewer's private note.
    #[serde(rename = "note")]
    Note {
        seq: u64,
        at: i64,
        by: Actor,
        text: String,
    },
    /// The scorecard was saved or submitted (`action`: `saved` or `submitted`).
    #[serde(rename = "scorecard")]
    Scorecard {
        seq: u64,
        at: i64,
        by: Actor,
        action: String,
    },
    /// An integrity signal the candidate's browser reported.
    #[serde(rename = "signal")]
    Signal {
        seq: u64,
        at: i64,
        by: Actor,
        kind: SignalKind,
        size: Option<u64>,
    },
    /// The interview was ended.
    #[serde(rename = "end")]
    End { seq: u64, at: i64, by: Actor },
    #[serde(rename = "run.started")]
    RunStarted {
        seq: u64,
        at: i64,
        run_id: RunId,
        kind: RunKind,
        by: Role,
        code_seq: u64,
        private: bool,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
        seq: u64,
        at: i64,
        run_id: RunId,
        kind: RunKind,
        by: Role,
        status: RunStatus,
        exit_code: Option<i64>,
        duration_ms: u64,
        tests: Option<TestCounts>,
    },
}

impl TimelineEvent {
    /// The (first) seq of the event.
    pub fn seq(&self) -> u64 {
        match self {
            TimelineEvent::Edit { seq, .. }
            | TimelineEvent::Join { seq, .. }
            | TimelineEvent::Leave { seq, .. }
            | TimelineEvent::Question { seq, .. }
            | TimelineEvent::Note { seq, .. }
            | TimelineEvent::Scorecard { seq, .. }
            | TimelineEvent::Signal { seq, .. }
            | TimelineEvent::End { seq, .. }
            | TimelineEvent::RunStarted { seq, .. }
            | TimelineEvent::RunFinished { seq, .. } => *seq,
        }
    }
}

/// `GET /api/interviews/{id}/timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Timeline {
    pub started_at: i64,
    pub ended_at: i64,
    /// The newest seq in the log (follow a live session with `?after=` this).
    pub last_seq: u64,
    pub events: Vec<TimelineEvent>,
}

/// `GET /api/interviews/{id}/snapshot`: the files as they stood at `seq` (moment `at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Snapshot {
    pub seq: u64,
    pub at: i64,
    pub files: std::collections::BTreeMap<String, String>,
}
