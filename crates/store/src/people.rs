//! Staff accounts and what hangs off them: passwords (argon2id hashes, made by the server),
//! one-time set-password links, sessions, personal API tokens, interview panels and the audit
//! log. Secrets are kept only as hashes: a session's or token's SHA-256, a password's PHC string.
//!
//! The trait says what the server needs and nothing of SQL, so a Postgres implementation can
//! follow; the embedded one is in `sqlite/people.rs`.

use crate::{Interview, Result, Ticket, TokenHash};
use duet_protocol::{
    ApiTokenInfo, AuditAction, AuditEntry, InterviewId, Person, PersonUpdate, Role,
};

/// A session to start: the hash of its cookie's value and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub hash: TokenHash,
    pub person_id: String,
    pub created_at: i64,
    /// The absolute end, whatever the activity.
    pub expires_at: i64,
}

/// A stored session and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub person: Person,
    pub created_at: i64,
    /// The last request it authenticated, to the minute (for idle expiry).
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// A line for the audit log (the store numbers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at: i64,
    pub actor: String,
    pub action: AuditAction,
    pub target: Option<String>,
    pub from: Option<String>,
}

/// The people of the server, their credentials, panels and the audit log.
pub trait PeopleStore: Send + Sync + 'static {
    /// Adds a person (no password yet). [`crate::StoreError::EmailTaken`] if the address is
    /// someone's already.
    fn add_person(&self, person: &Person) -> Ticket;
    /// Changes a person; disabling one also ends their sessions, in the same transaction.
    /// [`crate::StoreError::NoSuchPerson`] if there is none.
    fn update_person(&self, id: &str, update: &PersonUpdate) -> Ticket;
    /// Sets a person's password hash (a PHC string) and ends their sessions.
    fn set_password(&self, id: &str, password_hash: &str) -> Ticket;
    fn person(&self, id: &str) -> Result<Option<Person>>;
    /// The person with this (lower-case) address and their password hash, if any.
    fn person_by_email(&self, email: &str) -> Result<Option<(Person, Option<String>)>>;
    /// Everyone, by email.
    fn people(&self) -> Result<Vec<Person>>;

    /// Issues a one-time link to set the person's password; their earlier links stop working.
    fn issue_password_link(&self, person_id: &str, hash: &TokenHash, expires_at: i64) -> Ticket;
    /// The person a link (still unused, unexpired at `now`) is for, and when it expires.
    fn password_link(&self, hash: &TokenHash, now: i64) -> Result<Option<(Person, i64)>>;
    /// Uses a link: sets the password and removes the link, at once, so it works once.
    /// [`crate::StoreError::LinkUnusable`] when it is unknown, used, expired, or its person is
    /// disabled.
    fn use_password_link(&self, hash: &TokenHash, password_hash: &str, now: i64) -> Ticket;

    fn start_session(&self, session: &NewSession) -> Ticket;
    /// The session with this hash, if its person is active (expiry is the caller's to judge).
    fn session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>>;
    fn touch_session(&self, hash: &TokenHash, at: i64) -> Ticket;
    fn end_session(&self, hash: &TokenHash) -> Ticket;
    /// Ends every session of the person (sign-out everywhere).
    fn end_sessions_of(&self, person_id: &str) -> Ticket;

    fn add_api_token(&self, person_id: &str, hash: &TokenHash, info: &ApiTokenInfo) -> Ticket;
    fn api_tokens_of(&self, person_id: &str) -> Result<Vec<ApiTokenInfo>>;
    /// The token with this hash and its owner, if the owner is active.
    fn api_token(&self, hash: &TokenHash) -> Result<Option<(Person, ApiTokenInfo)>>;
    fn touch_api_token(&self, token_id: &str, at: i64) -> Ticket;
    /// [`crate::StoreError::NoSuchToken`] if the person has no token with this id.
    fn revoke_api_token(&self, person_id: &str, token_id: &str) -> Ticket;

    /// Replaces an interview's panel. [`crate::StoreError::NoSuchInterview`] or
    /// [`crate::StoreError::NoSuchPerson`] when either is unknown (nothing changes then).
    fn set_panel(&self, interview: &InterviewId, seats: &[(String, Role)]) -> Ticket;
    /// The panel: person ids and their roles.
    fn panel(&self, interview: &InterviewId) -> Result<Vec<(String, Role)>>;
    /// The person's seat on the interview's panel, if they have one.
    fn seat(&self, interview: &InterviewId, person_id: &str) -> Result<Option<Role>>;
    /// The interviews whose panel names the person, newest first, with their role on each.
    fn seats_of(&self, person_id: &str) -> Result<Vec<(Interview, Role)>>;

    fn audit(&self, entry: &NewAudit) -> Ticket;
    /// Removes the audit entries from before `before` (unix ms): the retention job's.
    fn prune_audit(&self, before: i64) -> Ticket;
    /// Up to `limit` entries with an id below `before` (all when `None`), newest first.
    fn audit_page(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// A write to the people tables, as each store's writer thread is handed it.
#[derive(Debug)]
pub(crate) enum PeopleWrite {
    AddPerson(Person),
    UpdatePerson(String, PersonUpdate),
    SetPassword(String, String),
    IssueLink(String, TokenHash, i64),
    UseLink(TokenHash, String, i64),
    StartSession(NewSession),
    TouchSession(TokenHash, i64),
    EndSession(TokenHash),
    EndSessionsOf(String),
    AddToken(String, TokenHash, ApiTokenInfo),
    TouchToken(String, i64),
    RevokeToken(String, String),
    SetPanel(InterviewId, Vec<(String, Role)>),
    Audit(NewAudit),
    PruneAudit(i64),
}
