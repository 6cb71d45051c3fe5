//! The room log: the kinds of record, a stored record, and [`Record`], the one typed form of
//! every record's payload. `Record::decode` is the only place stored bytes are read.

use crate::{
    Actor, Note, QuestionSwitched, RunFinished, RunId, RunInput, RunOutput, RunOutputHeader,
    RunStarted, ScorecardChange, Signal, Stream, TakeHomeStarted, TakeHomeSubmitted,
};
use serde::{Deserialize, Serialize};

/// The kinds of event a room's log holds, each with one room sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A Yjs update (v1 encoding) that changed the shared document.
    Edit,
    /// A participant connected to the room.
    Join,
    /// A participant left the room.
    Leave,
    /// A run began (JSON [`RunStarted`]).
    #[serde(rename = "run.started")]
    RunStarted,
    /// A run's output, coalesced per stream ([`RunOutputHeader`] then raw bytes).
    #[serde(rename = "run.output")]
    RunOutput,
    /// A line typed into a running program (JSON [`RunInput`]).
    #[serde(rename = "run.input")]
    RunInput,
    /// A run ended (JSON [`RunFinished`]).
    #[serde(rename = "run.finished")]
    RunFinished,
    /// The room switched questions (JSON [`QuestionSwitched`]).
    Question,
    /// The scorecard changed or was submitted (JSON [`ScorecardChange`]). Private.
    Scorecard,
    /// An interviewer's private note (JSON [`Note`]). Private.
    Note,
    /// The interviewer ended the interview: no more edits or runs.
    End,
    /// An integrity signal the candidate's browser reported (JSON [`Signal`]). Private.
    Signal,
    /// A take-home's candidate pressed Start (JSON [`TakeHomeStarted`]: the deadline).
    #[serde(rename = "take_home.started")]
    TakeHomeStarted,
    /// A take-home was submitted, by the candidate or at the time limit (JSON
    /// [`TakeHomeSubmitted`]); an `end` record follows it.
    #[serde(rename = "take_home.submitted")]
    TakeHomeSubmitted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Edit => "edit",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::RunStarted => "run.started",
            EventKind::RunOutput => "run.output",
            EventKind::RunInput => "run.input",
            EventKind::RunFinished => "run.finished",
            EventKind::Question => "question",
            EventKind::Scorecard => "scorecard",
            EventKind::Note => "note",
            EventKind::End => "end",
            EventKind::Signal => "signal",
            EventKind::TakeHomeStarted => "take_home.started",
            EventKind::TakeHomeSubmitted => "take_home.submitted",
        }
    }
    pub const ALL: [EventKind; 14] = [
        EventKind::Edit,
        EventKind::Join,
        EventKind::Leave,
        EventKind::RunStarted,
        EventKind::RunOutput,
        EventKind::RunInput,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::Note,
        EventKind::End,
        EventKind::Signal,
        EventKind::TakeHomeStarted,
        EventKind::TakeHomeSubmitted,
    ];
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of a room's durable log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Per-room sequence number, starting at 1, without gaps.
    pub seq: u64,
    /// The server's clock when the event was accepted, unix milliseconds.
    pub at_ms: i64,
    pub kind: EventKind,
    /// Who caused it.
    pub by: Actor,
    /// For `Edit`: the Yjs update the server applied, encoded by the server from its own
    /// document (never a client's raw bytes). For `RunStarted`/`RunFinished`: their JSON. For
    /// `RunOutput`: a [`RunOutputHeader`] line then raw bytes (older logs: JSON [`RunOutput`]).
    /// Empty for joins and leaves.
    pub data: Vec<u8>,
}

impl LogRecord {
    /// A record of `payload` at `seq`, encoded as the log stores it.
    pub fn new(seq: u64, at_ms: i64, by: Actor, payload: Record) -> LogRecord {
        LogRecord {
            seq,
            at_ms,
            kind: payload.kind(),
            by,
            data: payload.into_bytes(),
        }
    }

    /// The record's payload, typed.
    pub fn decode(&self) -> Result<Record, RecordError> {
        Record::decode(self.kind, &self.data, self.at_ms)
    }
}

/// A record's payload, one variant per [`EventKind`]: the one place that says how each kind is
/// written to the log and read back (older stored forms included). The bytes on disk are
/// exactly what earlier versions wrote, so nothing is migrated.
///
/// Adding a kind of record: a variant here (with its `EventKind`), a method in the core's
/// feature file that returns it as an effect, a command and its handler in the server, a route
/// if people act on it, and one `case` in the page's event handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A Yjs update (v1 encoding) the server applied, encoded by the server from its own
    /// document (never a client's raw bytes).
    Edit(Vec<u8>),
    /// A participant connected to the room.
    Join,
    /// A participant left the room.
    Leave,
    RunStarted(RunStarted),
    RunOutput(OutputChunk),
    /// What someone typed into a running program, as it was sent.
    RunInput(RunInput),
    RunFinished(RunFinished),
    Question(QuestionSwitched),
    /// Private.
    Scorecard(ScorecardChange),
    /// Private.
    Note(Note),
    /// The interview ended: no more edits or runs.
    End,
    /// Private.
    Signal(Signal),
    /// A take-home's clock started.
    TakeHomeStarted(TakeHomeStarted),
    /// A take-home was submitted (an [`Record::End`] follows).
    TakeHomeSubmitted(TakeHomeSubmitted),
}

/// When each write of an output chunk happened: `(offset into its bytes, unix ms)`, offsets
/// ascending, the first 0.
pub type Pieces = Vec<(usize, i64)>;

/// What one stream of a run printed in one record: raw bytes (no escaping, no UTF-8 repair)
/// and when each write happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub run_id: RunId,
    pub stream: Stream,
    pub pieces: Pieces,
    pub bytes: Vec<u8>,
}

/// Why a stored payload could not be read as its kind.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The JSON payload of a kind that stores JSON did not parse as that kind.
    #[error("a {kind} record's payload is not valid: {source}")]
    Json {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// An output record's pieces point outside its bytes or go backwards.
    #[error("a run.output record's pieces do not fit its bytes")]
    BadPieces,
}

impl Record {
    /// The kind this payload is stored under.
    pub fn kind(&self) -> EventKind {
        match self {
            Record::Edit(_) => EventKind::Edit,
            Record::Join => EventKind::Join,
            Record::Leave => EventKind::Leave,
            Record::RunStarted(_) => EventKind::RunStarted,
            Record::RunOutput(_) => EventKind::RunOutput,
            Record::RunInput(_) => EventKind::RunInput,
            Record::RunFinished(_) => EventKind::RunFinished,
            Record::Question(_) => EventKind::Question,
            Record::Scorecard(_) => EventKind::Scorecard,
            Record::Note(_) => EventKind::Note,
            Record::End => EventKind::End,
            Record::Signal(_) => EventKind::Signal,
            Record::TakeHomeStarted(_) => EventKind::TakeHomeStarted,
            Record::TakeHomeSubmitted(_) => EventKind::TakeHomeSubmitted,
        }
    }

    /// The bytes the log stores: the update itself for an edit, nothing for a join, leave or
    /// end, a [`RunOutputHeader`] line then the raw bytes for output, JSON otherwise.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Edit(update) => update.clone(),
            Record::Join | Record::Leave | Record::End => Vec::new(),
            Record::RunStarted(v) => json(v),
            Record::RunOutput(chunk) => {
                let header = RunOutputHeader {
                    run_id: chunk.run_id.clone(),
                    stream: chunk.stream,
                    pieces: chunk
                        .pieces
                        .iter()
                        .map(|(offset, at)| [*offset as i64, *at])
                        .collect(),
                };
                let mut data = json(&header);
                data.push(b'\n');
                data.extend_from_slice(&chunk.bytes);
                data
            }
            Record::RunInput(v) => json(v),
            Record::RunFinished(v) => json(v),
            Record::Question(v) => json(v),
            Record::Scorecard(v) => json(v),
            Record::Note(v) => json(v),
            Record::Signal(v) => json(v),
            Record::TakeHomeStarted(v) => json(v),
            Record::TakeHomeSubmitted(v) => json(v),
        }
    }

    /// [`Record::encode`], without copying an edit's update.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Record::Edit(update) => update,
            other => other.encode(),
        }
    }

    /// Reads a stored payload of `kind`. `at_ms` is the record's time: output written before
    /// pieces were kept is dated by it.
    pub fn decode(kind: EventKind, data: &[u8], at_ms: i64) -> Result<Record, RecordError> {
        Ok(match kind {
            EventKind::Edit => Record::Edit(data.to_vec()),
            EventKind::Join => Record::Join,
            EventKind::Leave => Record::Leave,
            EventKind::End => Record::End,
            EventKind::RunStarted => Record::RunStarted(read_json(kind, data)?),
            EventKind::RunOutput => Record::RunOutput(decode_output(data, at_ms)?),
            EventKind::RunInput => Record::RunInput(read_json(kind, data)?),
            EventKind::RunFinished => Record::RunFinished(read_json(kind, data)?),
            EventKind::Question => Record::Question(read_json(kind, data)?),
            EventKind::Scorecard => Record::Scorecard(read_json(kind, data)?),
            EventKind::Note => Record::Note(read_json(kind, data)?),
            EventKind::Signal => Record::Signal(read_json(kind, data)?),
            EventKind::TakeHomeStarted => Record::TakeHomeStarted(read_json(kind, data)?),
            EventKind::TakeHomeSubmitted => Record::TakeHomeSubmitted(read_json(kind, data)?),
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    kind: EventKind,
    data: &[u8],
) -> Result<T, RecordError> {
    serde_json::from_slice(data).map_err(|source| RecordError::Json {
        kind: kind.as_str(),
        source,
    })
}

fn json(value: &impl Serialize) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no I/O).
    serde_json::to_vec(value).unwrap_or_default()
}

/// Output in either stored form: a header line, `\n`, the raw bytes; or (logs written before
/// output was stored raw) one JSON [`RunOutput`], which never holds a raw newline.
fn decode_output(data: &[u8], at_ms: i64) -> Result<OutputChunk, RecordError> {
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        let old: RunOutput = read_json(EventKind::RunOutput, data)?;
        return Ok(OutputChunk {
            run_id: old.run_id,
            stream: old.stream,
            pieces: vec![(0, old.at)],
            bytes: old.data.into_bytes(),
        });
    };
    let header: RunOutputHeader = read_json(EventKind::RunOutput, &data[..nl])?;
    let bytes = data[nl + 1..].to_vec();
    let mut pieces: Vec<(usize, i64)> = Vec::with_capacity(header.pieces.len() + 1);
    for [offset, at] in header.pieces {
        let offset = usize::try_from(offset).map_err(|_| RecordError::BadPieces)?;
        if offset > bytes.len() || pieces.last().is_some_and(|(o, _)| *o > offset) {
            return Err(RecordError::BadPieces);
        }
        pieces.push((offset, at));
    }
    if pieces.first().is_none_or(|(o, _)| *o != 0) {
        pieces.insert(0, (0, at_ms));
    }
    Ok(OutputChunk {
        run_id: header.run_id,
        stream: header.stream,
        pieces,
        bytes,
    })
}

/// One entry of a room's log without its data (replay's light index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub at_ms: i64,
    /// `None` for a kind this version does not know (written by a newer one).
    pub kind: Option<EventKind>,
    pub by: Option<Actor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_have_one_spelling() {
        for kind in EventKind::ALL {
            assert_eq!(
                serde_json::to_string(&kind).unwrap_or_default(),
                format!("\"{}\"", kind.as_str())
            );
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }

    fn every_kind() -> Vec<Record> {
        use crate::{RunKind, RunStatus, Scorecard, SignalKind};
        vec![
            Record::Edit(vec![1, 2, 3]),
            Record::Join,
            Record::Leave,
            Record::RunStarted(RunStarted {
                run_id: "r1".into(),
                kind: RunKind::Test,
                by: crate::Role::Interviewer,
                at: 5,
                code: None,
                code_seq: 4,
                private: true,
                environment: "python".into(),
            }),
            Record::RunOutput(OutputChunk {
                run_id: "r1".into(),
                stream: Stream::Stderr,
                pieces: vec![(0, 7), (2, 9)],
                bytes: vec![0, 0xFF, b'\n', b'x'],
            }),
            Record::RunInput(RunInput {
                run_id: "r1".into(),
                data: "42\n".into(),
                eof: false,
                at: 8,
            }),
            Record::RunFinished(RunFinished {
                run_id: "r1".into(),
                status: RunStatus::Timeout,
                limit: Some(crate::RunLimit::Cpu { ms: 10_000 }),
                exit_code: Some(0),
                duration_ms: 3,
                tests: None,
                lint: None,
                at: 10,
            }),
            Record::Question(QuestionSwitched {
                question_id: "lru-cache".into(),
                by: Actor::Interviewer,
                left: Some(crate::KeptCode {
                    question_id: "retry-backoff".into(),
                    code: "def retry(): ...".into(),
                    files: Some([("shop/cart.py".into(), "TAX = 2\n".into())].into()),
                    board: vec![r#"{"id":"a","type":"rectangle"}"#.into()],
                }),
            }),
            Record::Scorecard(ScorecardChange {
                action: "saved".into(),
                scorecard: Scorecard::default(),
                person: Some("p-ada".into()),
            }),
            Record::Note(Note {
                text: "asks about eviction".into(),
                at: 5,
                seq: 2,
                person: Some("p-ada".into()),
            }),
            Record::End,
            Record::Signal(Signal {
                kind: SignalKind::Paste,
                size: Some(420),
                at: 6,
            }),
            Record::TakeHomeStarted(crate::TakeHomeStarted {
                started_at: 1_000,
                deadline: 1_000 + 30 * 60_000,
                time_limit_minutes: 30,
            }),
            Record::TakeHomeSubmitted(crate::TakeHomeSubmitted {
                reason: crate::SubmitReason::TimeLimit,
                at: 1_000 + 31 * 60_000,
                started_at: 1_000,
                deadline: 1_000 + 30 * 60_000,
            }),
        ]
    }

    #[test]
    fn every_kind_reads_back_as_it_was_written() {
        let all = every_kind();
        assert_eq!(all.len(), EventKind::ALL.len(), "one payload per kind");
        for record in all {
            let stored = LogRecord::new(3, 100, Actor::Candidate, record.clone());
            assert_eq!(stored.kind, record.kind());
            assert_eq!(stored.decode().expect("decodes"), record);
        }
    }

    #[test]
    fn a_scorecard_or_note_stored_before_panels_reads_as_the_interviewer_links() {
        let card = br#"{"action":"submitted","scorecard":{"ratings":{"debugging":3},"notes":"ok","recommendation":"yes","level":null,"evidence":{},"version":2,"updated_at":1,"submitted_at":2}}"#;
        match Record::decode(EventKind::Scorecard, card, 2) {
            Ok(Record::Scorecard(change)) => {
                assert_eq!(change.person, None);
                assert_eq!(change.scorecard.submitted_at, Some(2));
            }
            other => panic!("not a scorecard: {other:?}"),
        }
        match Record::decode(EventKind::Note, br#"{"text":"hi","at":5,"seq":2}"#, 5) {
            Ok(Record::Note(note)) => assert_eq!(note.person, None),
            other => panic!("not a note: {other:?}"),
        }
    }

    #[test]
    fn payloads_keep_the_bytes_earlier_versions_wrote() {
        let note = Note {
            text: "hi".into(),
            at: 5,
            seq: 2,
            person: None,
        };
        assert_eq!(
            Record::Note(note).encode(),
            br#"{"text":"hi","at":5,"seq":2}"#.to_vec()
        );
        let links_card = ScorecardChange {
            action: "saved".into(),
            scorecard: crate::Scorecard::default(),
            person: None,
        };
        assert!(
            !String::from_utf8_lossy(&Record::Scorecard(links_card).encode()).contains("person"),
            "the link's card is stored as before panels"
        );
        assert!(Record::Join.encode().is_empty() && Record::End.encode().is_empty());
        let chunk = Record::RunOutput(OutputChunk {
            run_id: "r".into(),
            stream: Stream::Stdout,
            pieces: vec![(0, 9)],
            bytes: b"ok".to_vec(),
        });
        assert_eq!(
            chunk.encode(),
            b"{\"run_id\":\"r\",\"stream\":\"stdout\",\"pieces\":[[0,9]]}\nok".to_vec()
        );
    }

    #[test]
    fn output_stored_as_json_by_older_versions_still_reads() {
        let old = serde_json::to_vec(&RunOutput {
            run_id: "r".into(),
            stream: Stream::Stdout,
            data: "héllo".into(),
            at: 9,
        })
        .unwrap_or_default();
        let Ok(Record::RunOutput(chunk)) = Record::decode(EventKind::RunOutput, &old, 1) else {
            panic!("the old form reads");
        };
        assert_eq!(chunk.bytes, "héllo".as_bytes());
        assert_eq!(chunk.pieces, vec![(0, 9)]);
        // A header without pieces is dated by its record.
        let bare = b"{\"run_id\":\"r\",\"stream\":\"stdout\",\"pieces\":[]}\nab";
        let Ok(Record::RunOutput(chunk)) = Record::decode(EventKind::RunOutput, bare, 4) else {
            panic!("a bare header reads");
        };
        assert_eq!(chunk.pieces, vec![(0, 4)]);
    }

    #[test]
    fn unreadable_payloads_are_errors_that_name_their_kind() {
        let err = Record::decode(EventKind::Note, b"not json", 1).expect_err("refused");
        assert!(err.to_string().contains("note"), "{err}");
        let past_end = b"{\"run_id\":\"r\",\"stream\":\"stdout\",\"pieces\":[[0,1],[9,2]]}\nab";
        assert!(matches!(
            Record::decode(EventKind::RunOutput, past_end, 1),
            Err(RecordError::BadPieces)
        ));
        let backwards = b"{\"run_id\":\"r\",\"stream\":\"stdout\",\"pieces\":[[1,1],[0,2]]}\nab";
        assert!(matches!(
            Record::decode(EventKind::RunOutput, backwards, 1),
            Err(RecordError::BadPieces)
        ));
    }
}
