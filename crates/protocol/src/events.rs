//! What people are told: the events socket's [`RoomEvent`]s and the replay's timeline and
//! snapshots.
//!
//! Both are projections of the room's log and share one envelope: the record's head
//! ([`Head`]: its `seq`, its time `at`, its author `by`) beside a body tagged by `type`
//! ([`RoomEventBody`], [`TimelineBody`]). They differ only where a projection must: the socket
//! carries output (and leaves `seq` out for the candidate), the timeline carries edit bursts.

use crate::{
    Actor, LintFinding, Role, RunId, RunKind, RunLimit, RunStatus, SignalKind, Stream,
    SubmitReason, TestCounts, TestResults,
};
use serde::{Deserialize, Serialize};

/// A log record's head: its place in the room's log, when the server accepted it (unix ms) and
/// who made it (the person, or the server, whose action it records; for a run's output and
/// finish, the role that started the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Head {
    pub seq: u64,
    pub at: i64,
    pub by: Actor,
}

impl crate::LogRecord {
    /// The record's head, as every projection of it carries it.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            at: self.at_ms,
            by: self.by,
        }
    }
}

/// Whether `role` is told the room log's `seq` of what it receives. Only roles that may read
/// private records are: to the candidate, the gaps between its events' seqs would count the
/// private records between them (hidden-test runs and their output, notes, scorecard saves,
/// signals).
pub fn sees_log_seq(role: Role) -> bool {
    role.can_read_scorecard()
}

/// What the events socket says: one JSON text frame per event, the record's head beside a
/// body tagged by `type`. Built by the room, serialized by the server once per projection
/// ([`RoomEvent::seen_by`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomEvent {
    /// The record's seq in the room's log, for the roles [`sees_log_seq`] names; left out
    /// for the candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub seq: Option<u64>,
    pub at: i64,
    pub by: Actor,
    #[serde(flatten)]
    pub body: RoomEventBody,
}

impl RoomEvent {
    /// The event of the record with this head.
    pub fn new(head: Head, body: RoomEventBody) -> RoomEvent {
        RoomEvent {
            seq: Some(head.seq),
            at: head.at,
            by: head.by,
            body,
        }
    }

    /// The event as `role` receives it: without `seq` unless [`sees_log_seq`].
    pub fn seen_by(mut self, role: Role) -> RoomEvent {
        if !sees_log_seq(role) {
            self.seq = None;
        }
        self
    }
}

/// What a [`RoomEvent`] says, by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum RoomEventBody {
    #[serde(rename = "run.started")]
    RunStarted { run_id: RunId, kind: RunKind },
    /// The run waits for a free sandbox slot: `ahead` runs (of this and other interviews) will
    /// get one before it. Sent when it is queued and each time its place changes, before any
    /// output; never stored (the log holds the run's start and end), so its head is the run's
    /// start's.
    #[serde(rename = "run.queued")]
    RunQueued { run_id: RunId, ahead: u32 },
    /// Output as the program wrote it, one stored record's worth: `data` when it is text
    /// JSON carries at about its size, `base64` (its bytes) otherwise; exactly one is set
    /// (see [`crate::WireOutput`]). A character may be split across two events: decode each
    /// stream's events in order with one streaming UTF-8 decoder.
    #[serde(rename = "run.output")]
    RunOutput {
        run_id: RunId,
        stream: Stream,
        /// Where these bytes start in the run's stream (the bytes of that stream before
        /// them): a page that read the run's record (`stdout_bytes`, `stderr_bytes`) skips
        /// what the record already held.
        offset: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        base64: Option<String>,
    },
    /// Someone typed into a running program (sent as it was stored).
    #[serde(rename = "run.input")]
    RunInput {
        run_id: RunId,
        data: String,
        eof: bool,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
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
        question_id: String,
        /// The question's title, for the banner that names it.
        title: String,
        /// Whether `main.py` now holds the code last written for this question (a switch back)
        /// rather than its starter.
        restored: bool,
    },
    /// A scorecard was saved or submitted (private: only its author's own connections hear
    /// of it).
    #[serde(rename = "scorecard")]
    Scorecard {
        action: String,
        version: u64,
        /// The panel member who wrote it (their person id); absent for the interviewer link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        person: Option<String>,
    },
    /// A private note (only its author's own connections receive it: a panel stays blind).
    #[serde(rename = "note")]
    Note {
        text: String,
        /// The panel member who wrote it (their person id); absent for the interviewer link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        person: Option<String>,
    },
    /// An integrity signal (private).
    #[serde(rename = "signal")]
    Signal { kind: SignalKind, size: Option<u64> },
    #[serde(rename = "end")]
    End,
}

/// One entry of `GET /api/interviews/{id}/timeline`: the head of its (first) record beside a
/// body tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TimelineEvent {
    #[serde(flatten)]
    pub head: Head,
    #[serde(flatten)]
    pub body: TimelineBody,
}

impl TimelineEvent {
    /// The (first) seq of the event.
    pub fn seq(&self) -> u64 {
        self.head.seq
    }
}

/// What a [`TimelineEvent`] says, by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum TimelineBody {
    /// One author's consecutive edits of one file's text: from the head's `seq` at `at` to
    /// `last_seq` at `last_at`.
    #[serde(rename = "edit")]
    Edit {
        last_seq: u64,
        last_at: i64,
        /// How many edits the burst holds.
        edits: u32,
        /// The file edited (its path then); absent when replay could not tell (a log its index
        /// cannot follow).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        file: Option<String>,
    },
    /// One author's consecutive edits of the board: from the head's `seq` at `at` to
    /// `last_seq` at `last_at`.
    #[serde(rename = "board")]
    Board {
        last_seq: u64,
        last_at: i64,
        /// How many edits the burst holds.
        edits: u32,
        /// How many elements they drew, changed or erased (each counted once).
        elements: u32,
    },
    /// A file was created (its first text), by the head's author.
    #[serde(rename = "file.created")]
    FileCreated { path: String },
    /// A file was renamed (or moved) from `from` to `to`.
    #[serde(rename = "file.renamed")]
    FileRenamed { from: String, to: String },
    /// A file was deleted.
    #[serde(rename = "file.deleted")]
    FileDeleted { path: String },
    #[serde(rename = "join")]
    Join,
    #[serde(rename = "leave")]
    Leave,
    /// The room switched to a question.
    #[serde(rename = "question")]
    Question {
        question_id: String,
        /// The question's title in this server's bank (`null` if the bank no longer has it).
        #[serde(default)]
        title: Option<String>,
    },
    /// An interviewer's private note.
    #[serde(rename = "note")]
    Note {
        text: String,
        /// The panel member who wrote it (their person id); absent for the interviewer link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        person: Option<String>,
        /// Who wrote it, by name (the panel member's, or `Interviewer link`): the server fills
        /// it in when it serves the timeline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        name: Option<String>,
    },
    /// A scorecard was saved or submitted (`action`: `saved` or `submitted`).
    #[serde(rename = "scorecard")]
    Scorecard {
        action: String,
        /// The panel member who wrote it (their person id); absent for the interviewer link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        person: Option<String>,
        /// Who wrote it, by name (the panel member's, or `Interviewer link`): the server fills
        /// it in when it serves the timeline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        name: Option<String>,
    },
    /// An integrity signal the candidate's browser reported.
    #[serde(rename = "signal")]
    Signal { kind: SignalKind, size: Option<u64> },
    /// The interview was ended.
    #[serde(rename = "end")]
    End,
    /// A take-home's candidate pressed Start: the round's clock runs until `deadline` (unix ms,
    /// the server's clock).
    #[serde(rename = "take_home.started")]
    TakeHomeStarted {
        deadline: i64,
        time_limit_minutes: u32,
    },
    /// A take-home was submitted, by the head's `by`: the candidate (`reason` `submitted`) or
    /// the server at the time limit (`time_limit`). The `end` that follows is its own entry.
    #[serde(rename = "take_home.submitted")]
    TakeHomeSubmitted { reason: SubmitReason, deadline: i64 },
    #[serde(rename = "run.started")]
    RunStarted {
        run_id: RunId,
        kind: RunKind,
        code_seq: u64,
        private: bool,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
        run_id: RunId,
        kind: RunKind,
        status: RunStatus,
        exit_code: Option<i64>,
        duration_ms: u64,
        tests: Option<TestCounts>,
    },
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

/// `GET /api/interviews/{id}/snapshot`: the files and the board as they stood at `seq`
/// (moment `at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Snapshot {
    pub seq: u64,
    pub at: i64,
    /// Every file listed then, path to text (`main.py` always).
    pub files: std::collections::BTreeMap<String, String>,
    /// The board's elements then (Excalidraw elements, as the candidate's browser wrote them:
    /// data, never markup), sorted by id.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "Array<Record<string, unknown>>"))]
    pub board: Vec<BoardElement>,
}

/// One board element as the document holds it, served as the JSON object it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BoardElement(pub Box<serde_json::value::RawValue>);

impl BoardElement {
    /// An element from its JSON text (the board's values passed the room's check, so they are
    /// JSON objects).
    pub fn from_json(json: &str) -> Option<BoardElement> {
        serde_json::value::RawValue::from_string(json.to_owned())
            .ok()
            .map(BoardElement)
    }
}

impl PartialEq for BoardElement {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for BoardElement {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn output() -> RoomEvent {
        RoomEvent::new(
            Head {
                seq: 41,
                at: 1_700_000_000_123,
                by: Actor::Candidate,
            },
            RoomEventBody::RunOutput {
                run_id: "r1".into(),
                stream: Stream::Stdout,
                offset: 12,
                data: Some("hi\n".into()),
                base64: None,
            },
        )
    }

    #[test]
    fn a_socket_event_is_the_record_head_beside_its_tagged_body() {
        let json = serde_json::to_value(output()).unwrap_or_default();
        assert_eq!(
            json,
            json!({"seq": 41, "at": 1_700_000_000_123i64, "by": "candidate",
                   "type": "run.output", "run_id": "r1", "stream": "stdout", "offset": 12,
                   "data": "hi\n"})
        );
        let back: RoomEvent = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, output());
    }

    #[test]
    fn the_candidate_receives_no_log_seq_and_staff_do() {
        for role in Role::ALL {
            let json = serde_json::to_value(output().seen_by(role)).unwrap_or_default();
            assert_eq!(
                json.get("seq").is_some(),
                role != Role::Candidate,
                "{role}: {json}"
            );
            // Everything else is the same for every role.
            let mut rest = json.clone();
            rest.as_object_mut().map(|o| o.remove("seq"));
            assert_eq!(rest["offset"], 12);
            assert_eq!(rest.as_object().map(|o| o.len()), Some(7), "{rest}");
        }
        let candidate: RoomEvent =
            serde_json::from_value(json!({"at": 5, "by": "server", "type": "end"}))
                .expect("an event without seq reads back");
        assert_eq!(candidate.seq, None);
        assert_eq!(candidate.body, RoomEventBody::End);
    }

    #[test]
    fn a_timeline_event_is_the_same_head_beside_its_own_body() {
        let event = TimelineEvent {
            head: Head {
                seq: 3,
                at: 9,
                by: Actor::Interviewer,
            },
            body: TimelineBody::RunStarted {
                run_id: "r1".into(),
                kind: RunKind::Test,
                code_seq: 2,
                private: true,
            },
        };
        let json = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(
            json,
            json!({"seq": 3, "at": 9, "by": "interviewer", "type": "run.started",
                   "run_id": "r1", "kind": "test", "code_seq": 2, "private": true})
        );
        assert_eq!(
            serde_json::from_value::<TimelineEvent>(json).ok(),
            Some(event)
        );
        let join = serde_json::to_value(TimelineEvent {
            head: Head {
                seq: 1,
                at: 1,
                by: Actor::Reviewer,
            },
            body: TimelineBody::Join,
        })
        .unwrap_or_default();
        assert_eq!(
            join,
            json!({"seq": 1, "at": 1, "by": "reviewer", "type": "join"})
        );
    }
}
