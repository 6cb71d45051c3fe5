//! What Duet tells other systems: outbound webhooks (the events, an endpoint as an admin
//! registers and lists it, a delivery as the delivery log shows it).

use serde::{Deserialize, Serialize};

/// An event a webhook endpoint can ask for. Each delivery's JSON body is
/// `{"id", "type", "created", "data"}` with `type` one of these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum WebhookEvent {
    /// An interview was created (by an admin or through the Greenhouse integration).
    #[serde(rename = "interview.created")]
    InterviewCreated,
    /// The candidate first joined a live interview, or pressed Start on a take-home.
    #[serde(rename = "interview.started")]
    InterviewStarted,
    /// The interview ended.
    #[serde(rename = "interview.ended")]
    InterviewEnded,
    /// A take-home was submitted (by the candidate, or at its time limit); `interview.ended`
    /// follows it.
    #[serde(rename = "take_home.submitted")]
    TakeHomeSubmitted,
    /// A scorecard was submitted.
    #[serde(rename = "scorecard.submitted")]
    ScorecardSubmitted,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::InterviewCreated,
        WebhookEvent::InterviewStarted,
        WebhookEvent::InterviewEnded,
        WebhookEvent::TakeHomeSubmitted,
        WebhookEvent::ScorecardSubmitted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::InterviewCreated => "interview.created",
            WebhookEvent::InterviewStarted => "interview.started",
            WebhookEvent::InterviewEnded => "interview.ended",
            WebhookEvent::TakeHomeSubmitted => "take_home.submitted",
            WebhookEvent::ScorecardSubmitted => "scorecard.submitted",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// `POST /api/webhooks` (admin): an endpoint to register.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://` (or `http://`) URL the events are POSTed to.
    pub url: String,
    /// The events wanted (at least one).
    pub events: Vec<WebhookEvent>,
    /// The signing secret (16 to 200 characters); one is generated when left out.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub secret: Option<String>,
}

/// A registered endpoint as listed (its secret is shown only when it is created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: i64,
}

/// `201` answer to `POST /api/webhooks`: the endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet answered with a 2xx: tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Retried until the give-up age without a 2xx; a redeliver tries it again.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One event's delivery to one endpoint, as `GET /api/webhooks/{id}/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookDelivery {
    pub id: i64,
    /// The event's id (the body's `id`): the same in every attempt and every redelivery.
    pub event_id: String,
    pub event: WebhookEvent,
    pub interview_id: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (a status, a timeout, a refused address...).
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

/// `GET /api/webhooks/{id}/deliveries?before=&limit=`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeliveryPage {
    pub deliveries: Vec<WebhookDelivery>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_event_names_are_the_json_names() {
        for event in WebhookEvent::ALL {
            let json = serde_json::to_string(&event).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(WebhookEvent::parse("interview.deleted"), None);
    }
}
