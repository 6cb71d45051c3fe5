//! The durable outbox: what Duet owes other systems, kept until it is delivered. Webhook
//! endpoints, the events they asked for and each event's delivery to each endpoint; and mail
//! waiting to be sent.
//!
//! Events are written by the store itself, in the same transaction as what causes them, so a
//! crash between the two cannot lose one: `interview.created` with the interview's row
//! ([`crate::InterviewStore::create_interview`]), the others with the log record that is the
//! fact ([`crate::LogStore::append`]: the candidate's first join of a live interview, or a
//! take-home's start, is `interview.started`, a take-home's submit `take_home.submitted`, an
//! `end` record `interview.ended`, a scorecard record whose action is `submitted`
//! `scorecard.submitted`). The same transaction adds a pending delivery for every
//! endpoint that wants the event at that moment. An implementation of this trait must do the
//! same in its own `create_interview` and `append`.
//!
//! The same transactions queue Greenhouse's completion callback (a PATCH to the `url` its
//! `send_test` gave) for a test Greenhouse sent: with a take-home's `take_home.submitted`
//! record, or for a live interview with its first submitted scorecard once it has ended (or
//! its `end` when a card was submitted before). One per test, however often the condition
//! recurs.
//!
//! Deliveries of one interview's events to one endpoint go in order: [`OutboxStore::due_deliveries`]
//! offers only the oldest pending delivery of each (endpoint, interview) pair.

use crate::{Result, Ticket};
use duet_protocol::{WebhookDelivery, WebhookEvent};

/// An endpoint to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// The signing secret. Kept as given: signing needs it (it is never served again).
    pub secret: String,
    pub created_at: i64,
}

/// A registered endpoint, with its secret (for signing; the API never serves it).
pub type Endpoint = NewEndpoint;

/// A delivery whose time has come, with what sending it needs (its `Debug` leaves the
/// secret out).
#[derive(Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub event_id: String,
    /// The JSON body, exactly as it is signed and sent (the same in every attempt).
    pub body: String,
    /// Attempts before this one.
    pub attempts: u32,
    /// When the delivery was first queued (unix ms): retries stop at the give-up age.
    pub created_at: i64,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("endpoint_id", &self.endpoint_id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("event_id", &self.event_id)
            .field("body", &self.body)
            .field("attempts", &self.attempts)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A completion callback whose time has come: the PATCH Greenhouse asked for (in `send_test`'s
/// `url`) when a test it sent is complete. Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct DueCallback {
    pub id: i64,
    pub partner_interview_id: String,
    pub interview_id: String,
    /// Where to send the PATCH (`send_test`'s `url`).
    pub url: String,
    /// The integration key Greenhouse called `send_test` with: the PATCH's HTTP Basic username.
    pub key: String,
    /// Attempts before this one.
    pub attempts: u32,
    /// When the callback was queued (unix ms): retries stop at the give-up age.
    pub created_at: i64,
}

impl std::fmt::Debug for DueCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueCallback")
            .field("id", &self.id)
            .field("partner_interview_id", &self.partner_interview_id)
            .field("interview_id", &self.interview_id)
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .field("attempts", &self.attempts)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Done (a 2xx, or the mail server took the message).
    Delivered,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    /// Past the give-up age: no more attempts unless someone redelivers.
    GiveUp,
}

/// One attempt at a delivery or a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    /// The HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    pub next: Next,
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The interview the mail is about (a candidate's link), if any: erased with it.
    pub interview_id: Option<String>,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

/// A queued mail whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: u32,
    pub created_at: i64,
}

/// Webhook endpoints, their deliveries, and mail waiting to be sent.
pub trait OutboxStore: Send + Sync + 'static {
    fn add_webhook(&self, endpoint: &NewEndpoint) -> Ticket;
    /// Removes the endpoint and its deliveries. [`crate::StoreError::NoSuchWebhook`] if there
    /// is none.
    fn remove_webhook(&self, id: &str) -> Ticket;
    /// Every endpoint, oldest first.
    fn webhooks(&self) -> Result<Vec<Endpoint>>;
    /// Up to `limit` pending deliveries due at `now` (unix ms), oldest first: for each
    /// (endpoint, interview) only the oldest pending one, and none whose id is in `busy`
    /// (the ones in flight).
    fn due_deliveries(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<DueDelivery>>;
    /// Records an attempt at delivery `id`.
    fn record_attempt(&self, id: i64, attempt: &Attempt) -> Ticket;
    /// The endpoint's deliveries with an id below `before` (all when `None`), newest first.
    fn deliveries(
        &self,
        webhook: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>>;
    /// Queues the event of delivery `delivery` (of endpoint `webhook`) again, as a new pending
    /// delivery due at `now`, after any of the same interview still pending.
    /// [`crate::StoreError::NoSuchDelivery`] if the endpoint has no such delivery.
    fn redeliver(&self, webhook: &str, delivery: i64, now: i64) -> Ticket;

    fn queue_mail(&self, mail: &NewMail) -> Ticket;
    /// Up to `limit` mails due at `now`, oldest first, none whose id is in `busy`.
    fn due_mail(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<QueuedMail>>;
    /// Records an attempt at sending mail `id`; the body of a mail sent or given up (it may
    /// hold a link) is dropped.
    fn record_mail_attempt(&self, id: i64, attempt: &Attempt) -> Ticket;

    /// Up to `limit` completion callbacks due at `now`, oldest first, none whose id is in
    /// `busy`.
    fn due_callbacks(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<DueCallback>>;
    /// Records an attempt at callback `id`; once it is delivered or given up, the key kept for
    /// it is dropped.
    fn record_callback_attempt(&self, id: i64, attempt: &Attempt) -> Ticket;
}

#[cfg(test)]
mod tests {
    use super::{DueCallback, DueDelivery};

    #[test]
    fn debug_never_prints_a_webhook_secret_or_an_integration_key() {
        let delivery = DueDelivery {
            id: 1,
            endpoint_id: "ep".into(),
            url: "https://hooks.example.com/x".into(),
            secret: "whsec_do_not_print".into(),
            event_id: "evt_1".into(),
            body: "{}".into(),
            attempts: 0,
            created_at: 1,
        };
        let callback = DueCallback {
            id: 1,
            partner_interview_id: "duet_1".into(),
            interview_id: "room".into(),
            url: "https://app.greenhouse.io/x".into(),
            key: "duetgh_do_not_print".into(),
            attempts: 0,
            created_at: 1,
        };
        for printed in [format!("{delivery:?}"), format!("{callback:?}")] {
            assert!(!printed.contains("do_not_print"), "{printed}");
            assert!(printed.contains("<redacted>"), "{printed}");
        }
        let callback = crate::integrations::Callback {
            url: "https://app.greenhouse.io/x".into(),
            key: "duetgh_do_not_print".into(),
        };
        assert!(!format!("{callback:?}").contains("do_not_print"));
    }
}
