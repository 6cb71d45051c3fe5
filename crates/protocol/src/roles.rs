//! Who takes part: roles and what each may do, the actors a record names, the interview id
//! and the identity the server stamps on presence.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a token speaks for. Each interview issues one token per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

/// One value per role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PerRole {
    pub interviewer: String,
    pub candidate: String,
    pub reviewer: String,
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
