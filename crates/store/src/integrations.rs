//! Integrations that call Duet: API keys an admin creates for one (stored as SHA-256 hashes,
//! revocable), and the tests Greenhouse sent through Duet's assessment-partner endpoints (which
//! interview each is, so a repeated `send_test` for one application answers the same one).

use crate::{Result, Ticket, TokenHash};

/// An integration's API key, as listed (the key itself is shown only when created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationKey {
    pub id: String,
    /// What the key is for (e.g. "greenhouse").
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A test Greenhouse sent: its `partner_interview_id` and the interview it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTest {
    pub partner_interview_id: String,
    /// What makes a send the same one again: the application and the test.
    pub application_key: String,
    pub interview_id: String,
    pub test_id: String,
    pub created_at: i64,
    /// Where to say the test is complete, if Greenhouse gave a `url`.
    pub callback: Option<Callback>,
}

/// Greenhouse's completion callback for a sent test: a PATCH to `url` with `key` (the
/// integration key `send_test` came with) as the HTTP Basic username, as Greenhouse's
/// partner documentation asks. Its `Debug` leaves the key out. The key is kept until the
/// callback is delivered or given up, and goes with the interview's erasure.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .finish()
    }
}

pub trait IntegrationStore: Send + Sync + 'static {
    fn add_integration_key(&self, key: &IntegrationKey, hash: &TokenHash) -> Ticket;
    /// Every key, newest first.
    fn integration_keys(&self) -> Result<Vec<IntegrationKey>>;
    /// The key with this hash, if it is not revoked.
    fn integration_key(&self, hash: &TokenHash) -> Result<Option<IntegrationKey>>;
    /// [`crate::StoreError::NoSuchToken`] if no unrevoked key has this id.
    fn revoke_integration_key(&self, id: &str, at: i64) -> Ticket;

    /// Records a sent test unless one with its application key exists (then nothing changes:
    /// read it back with [`IntegrationStore::partner_test_for`]).
    fn add_partner_test(&self, test: &PartnerTest) -> Ticket;
    fn partner_test_for(&self, application_key: &str) -> Result<Option<PartnerTest>>;
    fn partner_test(&self, partner_interview_id: &str) -> Result<Option<PartnerTest>>;
}
