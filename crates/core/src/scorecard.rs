//! The interviewer's scorecard: the rules a save and a submit follow, and the anchored rubric
//! every interviewer scores against (what a 1, 2, 3 and 4 look like in each area), so two
//! interviewers mean the same thing by a 3.
//!
//! The card lives in the room's log: every save and the submit are records on the room's
//! sequence, so replay shows when a rating was given and a restart finds the card (and its lock)
//! where it was. The room applies these rules; the server only carries the answers.

use duet_protocol::{Area, Evidence, LogRecord, Record, Scorecard, ScorecardUpdate};
use std::collections::{BTreeMap, HashSet};

/// Largest `notes` of a scorecard, in bytes.
pub const MAX_SCORECARD_NOTES: usize = 16 * 1024;
/// Largest private note, in bytes.
pub const MAX_NOTE: usize = 4 * 1024;
/// Most evidence items per area.
pub const MAX_EVIDENCE: usize = 50;

/// Why a save or submit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScorecardError {
    /// The card changed since the caller read it.
    #[error(
        "the scorecard changed since you read it (now version {current}); reload and save again"
    )]
    Stale { current: u64 },
    /// The card was submitted and is locked.
    #[error("the scorecard was submitted and is locked")]
    Submitted,
    /// A value out of range, or evidence that is not of this interview.
    #[error("{0}")]
    Invalid(String),
}

/// Whose card: a panel member's (their person id) or, `None`, the interviewer link's (the card
/// of role links, and of every log written before panels).
pub type Author = Option<String>;

/// The cards' current state, one per author, rebuilt from the log. Each card follows the same
/// rules on its own: versions, one submit, evidence of this interview.
#[derive(Debug, Clone)]
pub struct ScorecardState {
    /// Always holds the link's card (`None`), empty until first saved.
    cards: BTreeMap<Author, Scorecard>,
}

impl Default for ScorecardState {
    fn default() -> ScorecardState {
        ScorecardState {
            cards: BTreeMap::from([(None, normalised(Scorecard::default()))]),
        }
    }
}

/// An empty card with no areas listed: only a fallback, never served (see `Default`).
static EMPTY: Scorecard = Scorecard {
    ratings: BTreeMap::new(),
    notes: String::new(),
    recommendation: None,
    level: None,
    evidence: BTreeMap::new(),
    version: 0,
    updated_at: None,
    submitted_at: None,
};

impl ScorecardState {
    /// The state after `records` (the room's `Scorecard` records, in order).
    pub fn from_log<'a>(records: impl IntoIterator<Item = &'a LogRecord>) -> ScorecardState {
        let mut state = ScorecardState::default();
        for record in records {
            if let Ok(Record::Scorecard(change)) = record.decode() {
                state
                    .cards
                    .insert(change.person, normalised(change.scorecard));
            }
        }
        state
    }

    /// The interviewer link's card.
    pub fn card(&self) -> &Scorecard {
        self.cards.get(&None).unwrap_or(&EMPTY)
    }

    /// `author`'s card (an empty one, every area listed, before their first save).
    pub fn card_of(&self, author: Option<&str>) -> Scorecard {
        self.cards
            .get(&author.map(str::to_owned))
            .cloned()
            .unwrap_or_else(|| normalised(Scorecard::default()))
    }

    /// Every card ever saved, the link's first, then by person id.
    pub fn cards(&self) -> impl Iterator<Item = (Option<&str>, &Scorecard)> {
        self.cards
            .iter()
            .filter(|(author, card)| author.is_some() || card.version > 0)
            .map(|(author, card)| (author.as_deref(), card))
    }

    /// Whether `author` has submitted their card.
    pub fn is_submitted(&self, author: Option<&str>) -> bool {
        self.cards
            .get(&author.map(str::to_owned))
            .is_some_and(|c| c.submitted_at.is_some())
    }

    /// Checks `author`'s save against their card and the interview (`runs`: its run ids;
    /// `last_seq`: its newest seq) and returns the card it would store.
    pub fn save(
        &self,
        author: Option<&str>,
        update: ScorecardUpdate,
        runs: &HashSet<String>,
        last_seq: u64,
        now_ms: i64,
    ) -> Result<Scorecard, ScorecardError> {
        let current = self.card_of(author);
        if current.submitted_at.is_some() {
            return Err(ScorecardError::Submitted);
        }
        if update.version != current.version {
            return Err(ScorecardError::Stale {
                current: current.version,
            });
        }
        if let Some((area, rating)) = update
            .ratings
            .iter()
            .find(|(_, r)| r.is_some_and(|r| !(1..=4).contains(&r)))
        {
            return Err(ScorecardError::Invalid(format!(
                "rating of {} must be 1 to 4 or null, not {}",
                area_name(*area),
                rating.unwrap_or(0)
            )));
        }
        if update.notes.len() > MAX_SCORECARD_NOTES {
            return Err(ScorecardError::Invalid(format!(
                "notes are over {MAX_SCORECARD_NOTES} bytes"
            )));
        }
        for (area, items) in &update.evidence {
            if items.len() > MAX_EVIDENCE {
                return Err(ScorecardError::Invalid(format!(
                    "at most {MAX_EVIDENCE} pieces of evidence per area"
                )));
            }
            for item in items {
                match item {
                    Evidence::Run(id) if !runs.contains(id) => {
                        return Err(ScorecardError::Invalid(format!("evidence for {}: run {id:?} is not a run of this interview", area_name(*area))))
                    }
                    Evidence::Seq(seq) if *seq == 0 || *seq > last_seq => {
                        return Err(ScorecardError::Invalid(format!("evidence for {}: seq {seq} is not a moment of this interview (1 to {last_seq})", area_name(*area))))
                    }
                    _ => {}
                }
            }
        }
        let card = Scorecard {
            ratings: update.ratings,
            notes: update.notes,
            recommendation: update.recommendation,
            level: update.level,
            evidence: update.evidence,
            version: current.version + 1,
            updated_at: Some(now_ms),
            submitted_at: None,
        };
        Ok(normalised(card))
    }

    /// The card `author` would store on submit (locked from then on).
    pub fn submit(&self, author: Option<&str>, now_ms: i64) -> Result<Scorecard, ScorecardError> {
        let current = self.card_of(author);
        if current.submitted_at.is_some() {
            return Err(ScorecardError::Submitted);
        }
        Ok(Scorecard {
            submitted_at: Some(now_ms),
            version: current.version + 1,
            ..current
        })
    }

    /// Takes the card the room stored for `author`.
    pub fn stored(&mut self, author: Option<&str>, card: Scorecard) {
        self.cards.insert(author.map(str::to_owned), card);
    }
}

/// Every area present in `ratings` (null when not rated), so readers see all five.
fn normalised(mut card: Scorecard) -> Scorecard {
    for area in Area::ALL {
        card.ratings.entry(area).or_insert(None);
    }
    card
}

pub fn area_name(area: Area) -> &'static str {
    match area {
        Area::CodingQuality => "coding_quality",
        Area::SystemDesign => "system_design",
        Area::Debugging => "debugging",
        Area::Collaboration => "collaboration",
        Area::ProductionExperience => "production_experience",
    }
}

/// What a 1, 2, 3 and 4 look like in one area.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Anchors {
    pub area: Area,
    pub title: &'static str,
    /// Index 0 is the description of a 1, index 3 of a 4.
    pub levels: [&'static str; 4],
}

/// The rubric every interviewer scores against.
pub fn rubric() -> Vec<Anchors> {
    vec![
        Anchors {
            area: Area::CodingQuality,
            title: "Coding quality",
            levels: [
                "No working code, or code the candidate cannot explain; no tests; structure obscures intent.",
                "Works for the happy path with help; awkward data structures; naming and layout get in the way; tests only when asked.",
                "Idiomatic, readable Python with fitting data structures; edge cases handled; writes or extends tests unprompted.",
                "Clean, idiomatic and tested with little effort; picks structures for their complexity and says why; refactors safely behind tests.",
            ],
        },
        Anchors {
            area: Area::SystemDesign,
            title: "System design",
            levels: [
                "Cannot decompose the problem; no sense of trade-offs or scale.",
                "A workable shape once guided; trade-offs named only when asked; coupling not noticed.",
                "Sensible boundaries and interfaces; names the trade-offs (memory, latency, consistency) and chooses deliberately.",
                "Designs for change and failure: clear decoupling, quantified trade-offs, a path to scale, knows when not to.",
            ],
        },
        Anchors {
            area: Area::Debugging,
            title: "Debugging",
            levels: [
                "Changes code at random; does not read tracebacks or failing tests.",
                "Finds the bug with hints; reads the traceback but jumps to conclusions.",
                "Reproduces, isolates, forms a hypothesis and verifies it; uses tests, prints or pdb deliberately.",
                "Systematic and fast; explains the root cause, adds a test that pins it, and asks how it could recur.",
            ],
        },
        Anchors {
            area: Area::Collaboration,
            title: "Collaboration",
            levels: [
                "Silent or dismissive; does not take feedback.",
                "Explains when asked; takes feedback but struggles to act on it.",
                "Thinks aloud, checks assumptions, takes hints and feedback and uses them.",
                "Drives a shared understanding: clarifies the problem up front, invites critique, makes the interviewer's job easy.",
            ],
        },
        Anchors {
            area: Area::ProductionExperience,
            title: "Production experience",
            levels: [
                "No awareness of testing, errors, logging, security or deployment.",
                "Mentions these when prompted, in general terms.",
                "Handles errors specifically, logs usefully, thinks about security and performance with concrete examples.",
                "Brings lived experience: failure modes, observability, safe rollout, dependency and security hygiene, backed by specifics.",
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_protocol::{Level, Recommendation};

    fn update(version: u64) -> ScorecardUpdate {
        ScorecardUpdate {
            ratings: BTreeMap::from([(Area::CodingQuality, Some(3)), (Area::Debugging, None)]),
            notes: "clear thinking".into(),
            recommendation: Some(Recommendation::Yes),
            level: Some(Level::Senior),
            evidence: BTreeMap::from([(
                Area::CodingQuality,
                vec![Evidence::Run("r1".into()), Evidence::Seq(4)],
            )]),
            version,
        }
    }

    #[test]
    fn a_save_bumps_the_version_and_a_stale_one_is_refused() {
        let runs = HashSet::from(["r1".to_owned()]);
        let mut state = ScorecardState::default();
        let card = state
            .save(None, update(0), &runs, 10, 5)
            .expect("first save");
        assert_eq!(card.version, 1);
        assert_eq!(card.ratings.len(), 5, "every area is listed");
        state.stored(None, card);
        assert_eq!(
            state.save(None, update(0), &runs, 10, 6),
            Err(ScorecardError::Stale { current: 1 })
        );
        assert!(state.save(None, update(1), &runs, 10, 6).is_ok());
    }

    #[test]
    fn ratings_and_evidence_must_be_of_this_interview_and_in_range() {
        let runs = HashSet::from(["r1".to_owned()]);
        let state = ScorecardState::default();
        let mut bad = update(0);
        bad.ratings.insert(Area::SystemDesign, Some(5));
        assert!(
            matches!(state.save(None, bad, &runs, 10, 1), Err(ScorecardError::Invalid(m)) if m.contains("1 to 4"))
        );
        let mut foreign = update(0);
        foreign
            .evidence
            .insert(Area::Debugging, vec![Evidence::Run("someone-elses".into())]);
        assert!(
            matches!(state.save(None, foreign, &runs, 10, 1), Err(ScorecardError::Invalid(m)) if m.contains("not a run of this interview"))
        );
        let mut future = update(0);
        future
            .evidence
            .insert(Area::Debugging, vec![Evidence::Seq(11)]);
        assert!(matches!(
            state.save(None, future, &runs, 10, 1),
            Err(ScorecardError::Invalid(_))
        ));
    }

    #[test]
    fn a_submitted_card_is_locked_and_stays_locked_when_read_back_from_the_log() {
        let runs = HashSet::from(["r1".to_owned()]);
        let mut state = ScorecardState::default();
        state.stored(
            None,
            state.save(None, update(0), &runs, 10, 1).expect("save"),
        );
        let submitted = state.submit(None, 2).expect("submit");
        let change = duet_protocol::ScorecardChange {
            action: "submitted".into(),
            scorecard: submitted,
            person: None,
        };
        let record = LogRecord::new(
            12,
            2,
            duet_protocol::Actor::Interviewer,
            Record::Scorecard(change),
        );
        let reread = ScorecardState::from_log([&record]);
        assert!(reread.is_submitted(None));
        assert_eq!(
            reread.save(None, update(2), &runs, 12, 3),
            Err(ScorecardError::Submitted)
        );
        assert_eq!(reread.submit(None, 4), Err(ScorecardError::Submitted));
    }

    #[test]
    fn each_panel_member_keeps_a_card_of_their_own_with_its_own_versions_and_lock() {
        let runs = HashSet::from(["r1".to_owned()]);
        let mut state = ScorecardState::default();
        let ada = Some("p-ada");
        let ben = Some("p-ben");
        state.stored(
            ada,
            state.save(ada, update(0), &runs, 10, 1).expect("ada saves"),
        );
        state.stored(ada, state.submit(ada, 2).expect("ada submits"));
        assert!(state.is_submitted(ada));
        assert!(!state.is_submitted(ben), "ben's card is not ada's");
        assert!(!state.is_submitted(None), "nor is the link's");
        let bens = state
            .save(ben, update(0), &runs, 10, 3)
            .expect("ben starts at 0");
        assert_eq!(bens.version, 1);
        assert_eq!(
            state.save(ada, update(2), &runs, 10, 4),
            Err(ScorecardError::Submitted)
        );
        state.stored(ben, bens);
        let authors: Vec<_> = state.cards().map(|(a, _)| a).collect();
        assert_eq!(
            authors,
            [ada, ben],
            "the link never saved, so it has no card"
        );
    }

    #[test]
    fn every_area_has_four_anchored_levels() {
        let rubric = rubric();
        assert_eq!(rubric.iter().map(|a| a.area).collect::<Vec<_>>(), Area::ALL);
        assert!(rubric
            .iter()
            .all(|a| a.levels.iter().all(|l| !l.is_empty())));
    }
}
