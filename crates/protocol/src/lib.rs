//! Duet's wire vocabulary: roles and their capabilities, id newtypes, the JSON bodies of the
//! public API, the kinds of event in a room's log and the websocket close codes.
//!
//! Everything here is plain data: no tokio, no I/O, no yrs. The other crates agree through it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a token speaks for. Each interview issues one token per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the interview: edits, runs code, runs hidden tests, keeps the scorecard.
    Interviewer,
    /// Writes the program: edits and runs it, sees nothing private.
    Candidate,
    /// Looks back afterwards: reads and replays, never changes anything.
    Reviewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Interviewer, Role::Candidate, Role::Reviewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Interviewer => "interviewer",
            Role::Candidate => "candidate",
            Role::Reviewer => "reviewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// May change the shared document.
    pub fn can_edit(self) -> bool {
        matches!(self, Role::Interviewer | Role::Candidate)
    }
    /// May start, feed and cancel runs of the shared program.
    pub fn can_run(self) -> bool {
        matches!(self, Role::Interviewer | Role::Candidate)
    }
    /// May run the question's hidden tests and see their results.
    pub fn can_run_hidden_tests(self) -> bool {
        matches!(self, Role::Interviewer)
    }
    /// May read the private scorecard, hints and interviewer notes.
    pub fn can_read_scorecard(self) -> bool {
        matches!(self, Role::Interviewer | Role::Reviewer)
    }
    /// May change the scorecard.
    pub fn can_write_scorecard(self) -> bool {
        matches!(self, Role::Interviewer)
    }
    /// May lead the interview: switch questions and end it.
    pub fn can_lead_interview(self) -> bool {
        matches!(self, Role::Interviewer)
    }
    /// May read the replay timeline and snapshots.
    pub fn can_replay(self) -> bool {
        matches!(self, Role::Interviewer | Role::Reviewer)
    }

    /// The colour the server stamps on this role's cursor and presence.
    pub fn colour(self) -> &'static str {
        match self {
            Role::Interviewer => "#2563eb",
            Role::Candidate => "#16a34a",
            Role::Reviewer => "#9333ea",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused an event in a room: a participant (by role) or the server itself (starter code
/// inserted, a question switched, an interview ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Interviewer,
    Candidate,
    Reviewer,
    Server,
}

impl Actor {
    pub const ALL: [Actor; 4] = [
        Actor::Interviewer,
        Actor::Candidate,
        Actor::Reviewer,
        Actor::Server,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Interviewer => "interviewer",
            Actor::Candidate => "candidate",
            Actor::Reviewer => "reviewer",
            Actor::Server => "server",
        }
    }

    pub fn parse(s: &str) -> Option<Actor> {
        Actor::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The participant's role, or `None` for the server.
    pub fn role(self) -> Option<Role> {
        match self {
            Actor::Interviewer => Some(Role::Interviewer),
            Actor::Candidate => Some(Role::Candidate),
            Actor::Reviewer => Some(Role::Reviewer),
            Actor::Server => None,
        }
    }
}

impl From<Role> for Actor {
    fn from(role: Role) -> Actor {
        match role {
            Role::Interviewer => Actor::Interviewer,
            Role::Candidate => Actor::Candidate,
            Role::Reviewer => Actor::Reviewer,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interview's public id: 22 url-safe characters (128 random bits, base64url).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InterviewId(String);

impl InterviewId {
    /// Accepts only what an id can look like, so a path segment never reaches the store raw.
    pub fn parse(s: &str) -> Option<InterviewId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| InterviewId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity the server stamps on a participant's awareness state. Clients cannot choose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub color: String,
}

impl Identity {
    pub fn for_role(role: Role, candidate_name: &str) -> Identity {
        let name = match role {
            Role::Candidate => candidate_name.to_owned(),
            Role::Interviewer => "Interviewer".to_owned(),
            Role::Reviewer => "Reviewer".to_owned(),
        };
        Identity {
            name,
            role,
            color: role.colour().to_owned(),
        }
    }
}

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
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Edit => "edit",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::RunStarted => "run.started",
            EventKind::RunOutput => "run.output",
            EventKind::RunFinished => "run.finished",
            EventKind::Question => "question",
            EventKind::Scorecard => "scorecard",
            EventKind::Note => "note",
            EventKind::End => "end",
            EventKind::Signal => "signal",
        }
    }
    pub const ALL: [EventKind; 11] = [
        EventKind::Edit,
        EventKind::Join,
        EventKind::Leave,
        EventKind::RunStarted,
        EventKind::RunOutput,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::Note,
        EventKind::End,
        EventKind::Signal,
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

/// What a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// The program, `python3 main.py`.
    Run,
    /// pytest over the question's tests: the visible ones for the candidate, visible and hidden
    /// for the interviewer (then the run is private).
    Test,
    /// pyflakes and pycodestyle over `main.py` (interviewer only; private).
    Lint,
}

/// One finding of a lint run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LintFinding {
    pub line: u32,
    pub col: u32,
    /// `F...` from pyflakes, `E...`/`W...` from pycodestyle.
    pub code: String,
    pub message: String,
}

/// The five areas of the scorecard's rubric; a question names the ones it probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    CodingQuality,
    SystemDesign,
    Debugging,
    Collaboration,
    ProductionExperience,
}

impl Area {
    pub const ALL: [Area; 5] = [
        Area::CodingQuality,
        Area::SystemDesign,
        Area::Debugging,
        Area::Collaboration,
        Area::ProductionExperience,
    ];
}

/// How hard a question is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

/// A coding question (code, tests) or a discussion prompt (hints only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    Coding,
    Discussion,
}

/// A question as `GET /api/questions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionSummary {
    pub id: String,
    pub title: String,
    pub kind: QuestionKind,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub areas: Vec<Area>,
}

/// What a strong answer shows and what should worry the interviewer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    pub strong: Vec<String>,
    pub red_flags: Vec<String>,
}

/// A whole question, as the interviewer (and a reviewer) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    #[serde(flatten)]
    pub summary: QuestionSummary,
    pub prompt: String,
    pub starter: String,
    pub solution: String,
    pub visible_tests: String,
    pub hidden_tests: String,
    pub hints: Hints,
    pub follow_ups: Vec<String>,
}

/// The part of a question the candidate may see: never hints, follow-ups, the solution or the
/// hidden tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateQuestion {
    pub id: String,
    pub title: String,
    pub kind: QuestionKind,
    pub difficulty: Difficulty,
    pub prompt: String,
    pub visible_tests: String,
}

impl Question {
    pub fn id(&self) -> &str {
        &self.summary.id
    }

    pub fn for_candidate(&self) -> CandidateQuestion {
        CandidateQuestion {
            id: self.summary.id.clone(),
            title: self.summary.title.clone(),
            kind: self.summary.kind,
            difficulty: self.summary.difficulty,
            prompt: self.prompt.clone(),
            visible_tests: self.visible_tests.clone(),
        }
    }
}

/// The question part of `GET /api/interviews/{id}`: whole for roles that may read private
/// material, the candidate's part otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QuestionView {
    Full(Box<Question>),
    Candidate(CandidateQuestion),
}

/// `POST /api/interviews/{id}/question` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchQuestion {
    pub question_id: String,
}

/// Stored with `EventKind::Question`: the room switched to a question (its starter follows as
/// a server edit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionSwitched {
    pub question_id: String,
    pub by: Actor,
}

/// A run's id: 16 url-safe characters.
pub type RunId = String;

/// Stored with `EventKind::RunStarted`: everything needed to show and replay the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: RunId,
    pub kind: RunKind,
    pub by: Role,
    pub at: i64,
    /// The code that ran, kept only in records written before runs stored their code by
    /// reference. Newer records leave it out: the code is the document at `code_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The room's sequence number the code matches: the snapshot at this seq is exactly the
    /// `main.py` that ran.
    pub code_seq: u64,
    /// Seen only by roles that can read private material (hidden-test runs).
    #[serde(default)]
    pub private: bool,
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The JSON form `EventKind::RunOutput` records had before output was stored as raw bytes
/// ([`RunOutputHeader`]); still read back from old logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    pub run_id: RunId,
    pub stream: Stream,
    pub data: String,
    pub at: i64,
}

/// The header of a `RunOutput` record: the record's data is this JSON on one line, a `\n`, then
/// the raw bytes the program wrote on `stream` (no escaping, no UTF-8 repair). Several writes
/// a few milliseconds apart share one record; `pieces` keeps when each was written, as
/// `[offset into the raw bytes, unix ms]`, offsets ascending and the first 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutputHeader {
    pub run_id: RunId,
    pub stream: Stream,
    pub pieces: Vec<[i64; 2]>,
}

/// pytest's results as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub cases: Vec<TestCaseResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCaseResult {
    pub name: String,
    pub outcome: String,
    pub message: Option<String>,
}

/// How a run ended (or that it has not yet). The server's own flags win (timeout, output cap,
/// cancel), then the out-of-memory flag, then the exit code and test results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Only in histories and timelines, while the run goes on.
    Running,
    /// Exit 0 and, for pytest, every test passed.
    Ok,
    /// Non-zero exit or failing tests.
    Error,
    Timeout,
    MemoryLimit,
    /// Over the output cap.
    OutputLimit,
    Cancelled,
    /// The infrastructure failed, not the candidate (also a run the server stopped under).
    SandboxError,
}

/// Stored with `EventKind::RunFinished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFinished {
    pub run_id: RunId,
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub duration_ms: u64,
    pub tests: Option<TestResults>,
    /// For lint runs: what pyflakes and pycodestyle found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
    pub at: i64,
}

/// `POST /api/interviews/{id}/runs` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub kind: RunKind,
    #[serde(default)]
    pub stdin: Option<String>,
}

/// `POST /api/interviews/{id}/runs/{run_id}/stdin` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStdin {
    #[serde(default)]
    pub data: String,
    /// Ends the program's input after `data` (its `sys.stdin.read()` returns).
    #[serde(default)]
    pub eof: bool,
}

/// pytest's counts, without the cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
}

impl From<&TestResults> for TestCounts {
    fn from(t: &TestResults) -> TestCounts {
        TestCounts {
            passed: t.passed,
            failed: t.failed,
            errors: t.errors,
            skipped: t.skipped,
        }
    }
}

/// One run in `GET /api/interviews/{id}/runs`: light, without its code or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub kind: RunKind,
    pub by: Role,
    /// The log seq of the run's start (the paging cursor).
    pub seq: u64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running` until it finishes.
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    /// The seq whose snapshot is the code that ran.
    pub code_seq: u64,
    pub tests: Option<TestCounts>,
}

/// `GET /api/interviews/{id}/runs`: one page of runs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass as `?after=` for the next page; `null` on the last page.
    pub next: Option<u64>,
}

/// `GET /api/interviews/{id}/runs/{run_id}`: one run whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// `main.py` as it ran.
    pub code: String,
    /// The output as text (invalid UTF-8 shown as U+FFFD), each stream cut at the run output
    /// cap; `*_truncated` says when it was cut.
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub tests: Option<TestResults>,
    /// For lint runs: what pyflakes and pycodestyle found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
}

/// What the events socket says: one JSON text frame per event, tagged by `type`, each with the
/// room's `seq` of the record it announces. Built by the room, serialized once by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Output as the program printed it (decoded for display; a character is never split).
    #[serde(rename = "run.output")]
    RunOutput {
        seq: u64,
        run_id: RunId,
        stream: Stream,
        data: String,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
        seq: u64,
        run_id: RunId,
        status: RunStatus,
        exit_code: Option<i64>,
        duration_ms: u64,
        tests: Option<TestResults>,
        lint: Option<Vec<LintFinding>>,
    },
    #[serde(rename = "question")]
    Question {
        seq: u64,
        question_id: String,
        by: Actor,
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
pub struct Timeline {
    pub started_at: i64,
    pub ended_at: i64,
    /// The newest seq in the log (follow a live session with `?after=` this).
    pub last_seq: u64,
    pub events: Vec<TimelineEvent>,
}

/// `GET /api/interviews/{id}/snapshot`: the files as they stood at `seq` (moment `at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub at: i64,
    pub files: std::collections::BTreeMap<String, String>,
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

/// The name of the shared `Y.Text` holding the candidate's program.
pub const MAIN_FILE: &str = "main.py";

/// Websocket close codes the server uses, with what each means to a client.
pub mod close {
    /// The server is shutting down or the room is reloading; reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that is not a Yjs binary message (for example a text frame).
    pub const UNSUPPORTED: u16 = 1003;
    /// A binary message that is not a well-formed Yjs message.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Too many messages or bytes per second.
    pub const POLICY: u16 = 1008;
    /// A frame larger than the configured cap.
    pub const TOO_BIG: u16 = 1009;
    /// The room could not load its stored state, or storage failed.
    pub const INTERNAL: u16 = 1011;
    /// The client fell behind the room; reconnect and resync.
    pub const TRY_AGAIN: u16 = 1013;
}

/// The overall call at the end of an interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    StrongNo,
    No,
    Yes,
    StrongYes,
}

/// The level the evidence supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Mid,
    Senior,
}

/// A piece of evidence: a run of this interview (by id) or a moment of it (a log seq).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evidence {
    Seq(u64),
    Run(String),
}

/// `PUT /api/interviews/{id}/scorecard` body: the whole card, and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorecardUpdate {
    #[serde(default)]
    pub ratings: std::collections::BTreeMap<Area, Option<u8>>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub recommendation: Option<Recommendation>,
    #[serde(default)]
    pub level: Option<Level>,
    #[serde(default)]
    pub evidence: std::collections::BTreeMap<Area, Vec<Evidence>>,
    pub version: u64,
}

/// An interview's scorecard as stored and served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scorecard {
    /// Every area, rated 1 to 4 or not yet (`null`).
    pub ratings: std::collections::BTreeMap<Area, Option<u8>>,
    pub notes: String,
    pub recommendation: Option<Recommendation>,
    pub level: Option<Level>,
    pub evidence: std::collections::BTreeMap<Area, Vec<Evidence>>,
    /// 0 before the first save; each save adds one.
    pub version: u64,
    pub updated_at: Option<i64>,
    /// Set once submitted: the card is locked from then on.
    pub submitted_at: Option<i64>,
}

/// Stored with `EventKind::Scorecard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorecardChange {
    /// `saved` or `submitted`.
    pub action: String,
    pub scorecard: Scorecard,
}

/// Stored with `EventKind::Note`, and served by `GET /api/interviews/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    /// The server's time and the room's seq when it was written.
    pub at: i64,
    pub seq: u64,
}

/// `POST /api/interviews/{id}/notes` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

/// What the candidate's browser noticed: review aids, never a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// A large paste into the editor (its size, never its content).
    Paste,
    /// The tab lost focus.
    Blur,
}

/// `POST /api/interviews/{id}/signals` body. `at` (the browser's clock) is accepted and ignored:
/// the server stamps its own time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSignal {
    pub kind: SignalKind,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub at: Option<i64>,
}

/// Stored with `EventKind::Signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub size: Option<u64>,
    /// The server's time when it arrived.
    pub at: i64,
}

/// Where an interview stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterviewStatus {
    /// Nobody has joined yet.
    Scheduled,
    /// Someone joined.
    Live,
    /// The interviewer ended it.
    Ended,
}

/// `POST /api/interviews` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInterview {
    pub title: String,
    pub candidate_name: String,
    /// A question from the bank: the room starts with its starter code.
    #[serde(default)]
    pub question_id: Option<String>,
    /// An opaque reference the team uses for one candidate (an ATS id, an email hash):
    /// interviews with one reference form that candidate's loop, debriefed together.
    #[serde(default)]
    pub candidate_ref: Option<String>,
}

/// One value per role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerRole {
    pub interviewer: String,
    pub candidate: String,
    pub reviewer: String,
}

/// `201` answer to `POST /api/interviews`. The tokens are shown once; only hashes are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedInterview {
    pub id: InterviewId,
    pub tokens: PerRole,
    pub urls: PerRole,
}

/// An interview's description: what the store keeps and the API shows (tokens are kept only
/// as hashes, elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interview {
    pub id: InterviewId,
    pub title: String,
    pub candidate_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The team's reference for the candidate: interviews with one reference form a loop.
    pub candidate_ref: Option<String>,
    /// The question the interview is on (the room's log records every switch).
    pub question_id: Option<String>,
}

/// An interview as the admin lists it: its description and where it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterviewSummary {
    #[serde(flatten)]
    pub interview: Interview,
    pub status: InterviewStatus,
}

/// `GET /api/interviews/{id}`: the interview as one role sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterviewView {
    pub id: InterviewId,
    pub title: String,
    pub candidate_name: String,
    pub role: Role,
    pub created_at: i64,
    /// The interview's current question, as this role may see it.
    pub question: Option<QuestionView>,
    pub status: InterviewStatus,
}

/// Every 4xx/5xx body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_candidate_and_interviewer_edit() {
        assert!(Role::Candidate.can_edit());
        assert!(Role::Interviewer.can_edit());
        assert!(!Role::Reviewer.can_edit());
    }

    #[test]
    fn candidate_never_reads_private_material() {
        assert!(!Role::Candidate.can_read_scorecard());
        assert!(!Role::Candidate.can_run_hidden_tests());
        assert!(!Role::Candidate.can_replay());
        assert!(Role::Reviewer.can_read_scorecard() && !Role::Reviewer.can_write_scorecard());
    }

    #[test]
    fn interview_ids_reject_path_tricks() {
        assert!(InterviewId::parse("abc_DEF-123").is_some());
        for bad in ["", "../x", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(
                InterviewId::parse(bad).is_none(),
                "{bad:?} should be rejected"
            );
        }
    }

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

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap_or_default(),
                format!("\"{r}\"")
            );
        }
    }
}
