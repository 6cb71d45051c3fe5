//! Staff as people: accounts with a role and a state, sign-in, personal API tokens, the
//! interviews a person sits on ("my interviews") and the audit log. Candidates never have an
//! account: they keep their one link.

use crate::{InterviewSummary, Role};
use serde::{Deserialize, Serialize};

/// What a staff member may do across the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Everything: people, every interview, the audit log.
    Admin,
    /// Leads the interviews whose panel names them; reads the question bank.
    Interviewer,
    /// Reads the replay, notes and scorecards of the interviews whose panel names them.
    Reviewer,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [
        StaffRole::Admin,
        StaffRole::Interviewer,
        StaffRole::Reviewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Interviewer => "interviewer",
            StaffRole::Reviewer => "reviewer",
        }
    }

    pub fn parse(s: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a person may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum PersonState {
    Active,
    /// Signed out everywhere, and no session, token or password of theirs works.
    Disabled,
}

impl PersonState {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonState::Active => "active",
            PersonState::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<PersonState> {
        [PersonState::Active, PersonState::Disabled]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A staff member. Passwords are kept only as argon2id hashes, never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Person {
    pub id: String,
    /// Lower case: one address, one person.
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub state: PersonState,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Whether a password has been set (an invited person has none until they use their link).
    pub password_set: bool,
}

/// `POST /api/people` body (admin): invites a person; the answer holds their one-time link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    pub email: String,
    pub name: String,
    pub role: StaffRole,
}

/// `PATCH /api/people/{id}` body (admin): what changes; what is left out stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PersonUpdate {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub role: Option<StaffRole>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub state: Option<PersonState>,
}

/// A one-time link to set a password: shown once, single use, expiring.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PasswordLink {
    pub person: Person,
    pub link: String,
    /// Unix milliseconds after which the link no longer works.
    pub expires_at: i64,
}

/// `GET /api/password-links/{token}`: whose link it is, for the page that sets the password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PasswordLinkView {
    pub email: String,
    pub name: String,
    pub expires_at: i64,
}

/// `POST /api/password-links/{token}` body: the new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

/// `POST /api/session` body: sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// `GET /api/session` (and the answer to a sign-in): who the session is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionView {
    pub person: Person,
    /// Unix milliseconds: the session ends then whatever happens (absolute expiry).
    pub expires_at: i64,
}

/// `POST /api/me/tokens` body: a personal API token for automation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// What the token is for ("CI", "ATS sync").
    pub name: String,
}

/// A personal API token as its owner lists it (the token itself is shown only once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiTokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// `201` answer to `POST /api/me/tokens`: the token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiTokenCreated {
    #[serde(flatten)]
    pub info: ApiTokenInfo,
    pub token: String,
}

/// `PUT /api/interviews/{id}/panel` body and answer: the people on an interview's panel, by
/// id. Interviewers lead the room; reviewers read the replay and the scorecard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub interviewers: Vec<String>,
    pub reviewers: Vec<String>,
}

/// One interview on a person's list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MyInterview {
    #[serde(flatten)]
    pub summary: InterviewSummary,
    /// The role the person has in it (an admin off the panel has the interviewer's).
    pub role: Role,
}

/// `GET /api/me/interviews`: the person's interviews by where they stand, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MyInterviews {
    pub upcoming: Vec<MyInterview>,
    pub live: Vec<MyInterview>,
    pub ended: Vec<MyInterview>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SignedIn,
    SignInFailed,
    SignedOut,
    PersonAdded,
    PersonChanged,
    PersonDisabled,
    PasswordSet,
    TokenCreated,
    TokenRevoked,
    InterviewCreated,
    InterviewDeleted,
    LinksRotated,
    PanelChanged,
    WebhookAdded,
    WebhookRemoved,
    IntegrationKeyCreated,
    IntegrationKeyRevoked,
    /// A panel member (or the interviewer link) submitted their scorecard.
    ScorecardSubmitted,
}

impl AuditAction {
    pub const ALL: [AuditAction; 18] = [
        AuditAction::SignedIn,
        AuditAction::SignInFailed,
        AuditAction::SignedOut,
        AuditAction::PersonAdded,
        AuditAction::PersonChanged,
        AuditAction::PersonDisabled,
        AuditAction::PasswordSet,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::InterviewCreated,
        AuditAction::InterviewDeleted,
        AuditAction::LinksRotated,
        AuditAction::PanelChanged,
        AuditAction::WebhookAdded,
        AuditAction::WebhookRemoved,
        AuditAction::IntegrationKeyCreated,
        AuditAction::IntegrationKeyRevoked,
        AuditAction::ScorecardSubmitted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignedIn => "signed_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::SignedOut => "signed_out",
            AuditAction::PersonAdded => "person_added",
            AuditAction::PersonChanged => "person_changed",
            AuditAction::PersonDisabled => "person_disabled",
            AuditAction::PasswordSet => "password_set",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::InterviewCreated => "interview_created",
            AuditAction::InterviewDeleted => "interview_deleted",
            AuditAction::LinksRotated => "links_rotated",
            AuditAction::PanelChanged => "panel_changed",
            AuditAction::WebhookAdded => "webhook_added",
            AuditAction::WebhookRemoved => "webhook_removed",
            AuditAction::IntegrationKeyCreated => "integration_key_created",
            AuditAction::IntegrationKeyRevoked => "integration_key_revoked",
            AuditAction::ScorecardSubmitted => "scorecard_submitted",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One line of the audit log: who did what, to what, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    /// Increasing: the paging cursor.
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Who: a person's email, `admin-token`, `cli`, or for a failed sign-in the email tried.
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to: a person's email, an interview id, a token's name.
    pub target: Option<String>,
    /// The address the request came from (none for the command line).
    pub from: Option<String>,
}

/// `GET /api/audit`: newest first; `next_before` pages on (`?before=`), null at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<i64>,
}
