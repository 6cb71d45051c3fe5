//! A take-home round on the log and in the API: the candidate's Start (with the deadline the
//! server set), the submission that ends it (by the candidate, or by the server at the time
//! limit), and how the candidate's link and staff see where the round stands.

use crate::QuestionView;
use serde::{Deserialize, Serialize};

/// The candidate pressed Start: the round's clock runs from `started_at` to `deadline`, both
/// unix milliseconds on the server's clock. Stored once, as the `take_home.started` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TakeHomeStarted {
    pub started_at: i64,
    pub deadline: i64,
    /// The interview's time limit when the round started.
    pub time_limit_minutes: u32,
}

/// Why a take-home was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SubmitReason {
    /// The candidate pressed Submit before the time limit.
    Submitted,
    /// The time limit was reached: the server submitted what was written.
    TimeLimit,
}

/// The round is over: stored once, as the `take_home.submitted` record, right before the
/// `end` record that ends the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TakeHomeSubmitted {
    pub reason: SubmitReason,
    /// When the server recorded it (unix ms). For a time-limit submit this is at or after
    /// `deadline`: later when the server was down at the deadline.
    pub at: i64,
    pub started_at: i64,
    pub deadline: i64,
}

/// Where a take-home stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TakeHomeStage {
    /// The link was sent; the candidate has not pressed Start (no clock runs).
    NotStarted,
    /// The clock runs until `deadline`.
    Running,
    /// Submitted (by the candidate or at the limit): the room has ended.
    Submitted,
}

/// What recording a take-home keeps, as the start page tells the candidate.
pub const TAKE_HOME_RECORDED: [&str; 4] = [
    "every keystroke in the editor, replayable by the team",
    "every run and test run, with its output",
    "pastes into the editor and leaving the tab",
    "when you started and when you submitted",
];

/// `GET /api/interviews/{id}/take-home`: a take-home as one role sees it. Before Start and
/// after the submit, the candidate sees the question's title only (`question` is absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TakeHomeView {
    pub stage: TakeHomeStage,
    pub title: String,
    pub candidate_name: String,
    pub time_limit_minutes: u32,
    /// The question's title, shown on the start page.
    pub question_title: Option<String>,
    /// The question as this role may read it: the candidate only while the clock runs.
    pub question: Option<QuestionView>,
    pub started: Option<TakeHomeStarted>,
    pub submitted: Option<TakeHomeSubmitted>,
    /// The server's clock when it answered (unix ms): a page counts down from `deadline`
    /// corrected by the difference between this and its own clock.
    pub server_now: i64,
    /// What is recorded, for the start page.
    pub recorded: Vec<String>,
}

/// `POST /api/interviews/{id}/take-home/check`: the start page's check that a run works (a
/// fixed program, run in the sandbox; nothing is recorded).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TakeHomeCheck {
    /// Whether the program ran and printed what it should.
    pub ok: bool,
    /// What it printed (stdout then stderr), cut to a few KiB.
    pub output: String,
    pub duration_ms: u64,
}
