//! The question bank as the API shows it: whole for staff, the candidate's part otherwise.

use crate::{Actor, Area};
use serde::{Deserialize, Serialize};

/// How hard a question is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

/// A coding question (code, tests) or a discussion prompt (hints only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    Coding,
    Discussion,
}

/// A question as `GET /api/questions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Hints {
    pub strong: Vec<String>,
    pub red_flags: Vec<String>,
}

/// A whole question, as the interviewer (and a reviewer) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// The starter drawing: Excalidraw elements, each as its JSON, that the board holds when
    /// the room first opens the question. Empty for a question without one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub board: Vec<String>,
}

/// The part of a question the candidate may see: never hints, follow-ups, the solution or the
/// hidden tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(untagged)]
pub enum QuestionView {
    Full(Box<Question>),
    Candidate(CandidateQuestion),
}

/// `POST /api/interviews/{id}/question` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SwitchQuestion {
    pub question_id: String,
}

/// Stored with `EventKind::Question`: the room switched to a question (its starter, or the
/// code last written for it, follows as a server edit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionSwitched {
    pub question_id: String,
    pub by: Actor,
    /// The code left behind on the question switched away from, so switching back restores it
    /// and a room loading after a restart knows it without replaying the document. Absent in
    /// records written before code was kept per question, and when no question was open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<KeptCode>,
}

/// The code (and the board) a question had when the room moved away from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptCode {
    pub question_id: String,
    pub code: String,
    /// The board's elements, each as its JSON. Absent in records written before the board
    /// existed, and when the board was empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub board: Vec<String>,
}
