//! Review: the rubric's areas, the scorecard and its evidence, private notes and integrity
//! signals.

use serde::{Deserialize, Serialize};

/// The five areas of the scorecard's rubric; a question names the ones it probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

/// The overall call at the end of an interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    StrongNo,
    No,
    Yes,
    StrongYes,
}

/// The level the evidence supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Mid,
    Senior,
}

/// A piece of evidence: a run of this interview (by id) or a moment of it (a log seq).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(untagged)]
pub enum Evidence {
    Seq(u64),
    Run(String),
}

/// `PUT /api/interviews/{id}/scorecard` body: the whole card, and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ScorecardUpdate {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub ratings: std::collections::BTreeMap<Area, Option<u8>>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub notes: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub recommendation: Option<Recommendation>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub level: Option<Level>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub evidence: std::collections::BTreeMap<Area, Vec<Evidence>>,
    pub version: u64,
}

/// An interview's scorecard as stored and served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// Whose card: the id of the panel member who wrote it; absent for the interviewer link's
    /// card (and in every record written before panels, which therefore read as the link's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
}

/// Stored with `EventKind::Note`, and served by `GET /api/interviews/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Note {
    pub text: String,
    /// The server's time and the room's seq when it was written.
    pub at: i64,
    pub seq: u64,
    /// Who wrote it: the panel member's id; absent for the interviewer link (and in notes
    /// written before panels). Left out of the TypeScript type: the page reads notes as
    /// [`NoteView`], which names the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub person: Option<String>,
}

/// Who wrote a scorecard or a note, as served: a panel member (their id and name, resolved
/// when read) or, with no `id`, the interviewer link (`name` is "Interviewer link").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Author {
    pub id: Option<String>,
    pub name: String,
}

/// A note as `GET /api/interviews/{id}/notes` serves it: the note and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NoteView {
    pub text: String,
    pub at: i64,
    pub seq: u64,
    pub author: Author,
}

/// `POST /api/interviews/{id}/notes` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

/// What the candidate's browser noticed: review aids, never a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewSignal {
    pub kind: SignalKind,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub size: Option<u64>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
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
