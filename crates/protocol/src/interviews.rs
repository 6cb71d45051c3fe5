//! Interviews as the API creates, lists and shows them, and the error body of every API
//! answer.

use crate::{InterviewId, PerRole, QuestionView, Role};
use serde::{Deserialize, Serialize};

/// Where an interview stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateInterview {
    pub title: String,
    pub candidate_name: String,
    /// A question from the bank: the room starts with its starter code.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub question_id: Option<String>,
    /// An opaque reference the team uses for one candidate (an ATS id, an email hash):
    /// interviews with one reference form that candidate's loop, debriefed together.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub candidate_ref: Option<String>,
    /// `live` (the default) or `take_home`: a timed solo round.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub mode: Option<InterviewMode>,
    /// A take-home's time limit in minutes, 30 to 240: required for `take_home`, refused for
    /// `live`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub time_limit_minutes: Option<u32>,
    /// The sandbox environment runs use (`GET /api/environments`); default: the question's,
    /// else `python`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub environment: Option<String>,
    /// The candidate's email address: when the server sends mail (`--smtp-url`), the
    /// candidate's link is mailed to it. Not stored.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub candidate_email: Option<String>,
}

/// How an interview is held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InterviewMode {
    /// An interviewer and the candidate together.
    #[default]
    Live,
    /// The candidate alone against a clock that starts when they press Start.
    TakeHome,
}

impl InterviewMode {
    pub fn as_str(self) -> &'static str {
        match self {
            InterviewMode::Live => "live",
            InterviewMode::TakeHome => "take_home",
        }
    }

    pub fn parse(s: &str) -> Option<InterviewMode> {
        match s {
            "live" => Some(InterviewMode::Live),
            "take_home" => Some(InterviewMode::TakeHome),
            _ => None,
        }
    }
}

/// The environment of an interview created before environments existed.
pub const DEFAULT_ENVIRONMENT: &str = "python";

/// `201` answer to `POST /api/interviews`. The tokens are shown once; only hashes are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreatedInterview {
    pub id: InterviewId,
    pub tokens: PerRole,
    pub urls: PerRole,
}

/// An interview's description: what the store keeps and the API shows (tokens are kept only
/// as hashes, elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Interview {
    pub id: InterviewId,
    pub title: String,
    pub candidate_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The team's reference for the candidate: interviews with one reference form a loop.
    pub candidate_ref: Option<String>,
    /// The question the interview was created with. The question it is on now is the last
    /// switch in its log (`GET /api/interviews/{id}` answers that one).
    pub question_id: Option<String>,
    /// Live or take-home.
    pub mode: InterviewMode,
    /// A take-home's time limit in minutes; `None` for a live interview.
    pub time_limit_minutes: Option<u32>,
    /// The sandbox environment its runs use.
    pub environment: String,
}

/// An interview as the admin lists it: its description and where it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InterviewSummary {
    #[serde(flatten)]
    pub interview: Interview,
    pub status: InterviewStatus,
}

/// `GET /api/interviews/{id}`: the interview as one role sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InterviewView {
    pub id: InterviewId,
    pub title: String,
    pub candidate_name: String,
    pub role: Role,
    pub created_at: i64,
    /// The interview's current question, as this role may see it (a take-home's candidate
    /// sees it only while their clock runs).
    pub question: Option<QuestionView>,
    pub status: InterviewStatus,
    /// Live or take-home: a take-home's candidate link opens its start page
    /// (`GET /api/interviews/{id}/take-home`).
    pub mode: InterviewMode,
    /// The sandbox environment the room's runs use now ([`crate::run_environment`]: the
    /// current question's when it names one beyond `python`, else the interview's).
    pub environment: String,
}

/// Every 4xx/5xx body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
