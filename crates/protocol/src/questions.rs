//! The question bank as the API shows it: whole for staff, the candidate's part otherwise.

use crate::{Actor, Area};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Files by path (relative, under the rules of the document's files): path to text.
pub type ProjectFiles = BTreeMap<String, String>;

/// The environment a question runs in when it names none.
pub const DEFAULT_QUESTION_ENVIRONMENT: &str = "python";

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
    /// The sandbox environment its code runs in (`python`, `python-data`, ...).
    pub environment: String,
    /// The file a run starts (`main.py` unless the question names another).
    pub entry: String,
    /// The project the candidate starts from, path to text: its code and its data files
    /// (`main.py` always among them for a coding question). Empty for a discussion.
    pub starter: ProjectFiles,
    /// The project as solved: the starter with the reference solution's files over it.
    pub solution: ProjectFiles,
    /// The paths among the starter's that are data files (shipped as they are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<String>,
    /// Test files the candidate sees and runs, path to pytest source.
    pub visible_tests: ProjectFiles,
    /// Test files only the interviewer runs, path to pytest source.
    pub hidden_tests: ProjectFiles,
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
    /// The sandbox environment its code runs in.
    pub environment: String,
    /// The file a run starts.
    pub entry: String,
    /// The visible test files, path to pytest source (the starter files come in the document).
    pub visible_tests: ProjectFiles,
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
            environment: self.environment.clone(),
            entry: self.entry.clone(),
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
    /// `main.py` as it was left.
    pub code: String,
    /// The question's other project files as they were left, path to text; a file of the
    /// project missing here had been deleted. Absent in records written before questions had
    /// several files, and for a question whose project is `main.py` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<ProjectFiles>,
    /// The board's elements, each as its JSON. Absent in records written before the board
    /// existed, and when the board was empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub board: Vec<String>,
}
