//! Outbound webhooks: the delivery worker that drains the store's outbox, how a body is
//! signed ([`sign`]), which addresses a delivery may reach ([`address`]), and the admin's
//! routes ([`api`]). The same worker sends Greenhouse's completion callbacks (a PATCH to the
//! `url` of `send_test`, HTTP Basic with the integration key, no body, as Greenhouse's partner
//! documentation asks), with the same client, address check, backoff and give-up age.
//!
//! The events themselves are written by the store in the transaction of what causes them (see
//! `duet_store::outbox`); this worker only reads what is due and sends it. It runs beside the
//! rooms and shares nothing with them but the store: a slow or dead receiver holds one of
//! [`WebhookArgs::concurrency`] slots (at most half of them, so the other endpoints keep theirs)
//! for at most [`WebhookArgs::timeout`] each, never a room.

pub mod address;
pub mod api;
pub mod sign;

use crate::config::WebhookArgs;
use crate::rooms::now_ms;
use duet_store::outbox::{Attempt, DueCallback, DueDelivery, Next};
use duet_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a delivery attempt needs besides the delivery: the client and the flags.
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    args: WebhookArgs,
}

impl Deliverer {
    pub fn new(args: &WebhookArgs) -> anyhow::Result<Deliverer> {
        let client = reqwest::Client::builder()
            .timeout(args.timeout())
            .connect_timeout(args.timeout())
            // A redirect could lead anywhere, past the address check: not followed.
            .redirect(reqwest::redirect::Policy::none())
            // Through an HTTP(S)_PROXY from the environment the proxy would resolve the host,
            // past the address check: deliveries always connect directly.
            .no_proxy()
            .dns_resolver(Arc::new(address::Guarded {
                allow_private: args.allow_private,
            }))
            .user_agent(concat!("Duet-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            client,
            args: args.clone(),
        })
    }

    /// Sends one delivery and says what became of it.
    pub async fn attempt(&self, delivery: &DueDelivery) -> Attempt {
        let sent = self.send(delivery).await;
        self.outcome(sent, delivery.attempts, delivery.created_at)
    }

    /// Sends one completion callback and says what became of it.
    pub async fn attempt_callback(&self, callback: &DueCallback) -> Attempt {
        let sent = self.patch(callback).await;
        self.outcome(sent, callback.attempts, callback.created_at)
    }

    /// An attempt's record from what the request gave: a 2xx is delivered, anything else is
    /// retried with backoff until the give-up age.
    fn outcome(&self, sent: Result<u16, String>, attempts: u32, created_at: i64) -> Attempt {
        let at = now_ms();
        let (status, error) = match sent {
            Ok(status) if (200..300).contains(&status) => {
                return Attempt {
                    at,
                    status: Some(status),
                    error: None,
                    next: Next::Delivered,
                }
            }
            Ok(status) => (Some(status), format!("answered {status}")),
            Err(e) => (None, e),
        };
        Attempt {
            at,
            status,
            error: Some(error),
            next: next_after(&self.args, attempts + 1, created_at, at),
        }
    }

    /// Greenhouse's "PATCH Completed Test": no body; the integration key as the HTTP Basic
    /// username, the password empty (as Greenhouse sends it to us).
    async fn patch(&self, callback: &DueCallback) -> Result<u16, String> {
        let url = address::checked_url(&callback.url, self.args.allow_private)
            .await
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .patch(url)
            .basic_auth(&callback.key, None::<&str>)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }

    async fn send(&self, delivery: &DueDelivery) -> Result<u16, String> {
        let url = address::checked_url(&delivery.url, self.args.allow_private)
            .await
            .map_err(|e| e.to_string())?;
        let signature = sign::header(&delivery.secret, now_ms() / 1000, &delivery.body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::HEADER, signature)
            .header("X-Duet-Event-Id", &delivery.event_id)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

/// When to try again after `attempts` failed attempts of something queued at `created_at`
/// (a delivery or a mail), or not at all past the give-up age.
pub fn next_after(args: &WebhookArgs, attempts: u32, created_at: i64, now: i64) -> Next {
    let give_up = i64::try_from(args.give_up_after().as_millis()).unwrap_or(i64::MAX);
    if now.saturating_sub(created_at) >= give_up {
        return Next::GiveUp;
    }
    let wait = i64::try_from(args.backoff(attempts).as_millis()).unwrap_or(i64::MAX);
    Next::RetryAt(now.saturating_add(wait))
}

/// A failed request said plainly, with the cause reqwest wraps (a refused address, a reset).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Which outbox row a task in flight carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Delivery(i64),
    Callback(i64),
}

/// The share callbacks count against: they all go to Greenhouse, as one endpoint.
const GREENHOUSE: &str = "greenhouse callbacks";

/// Drains due deliveries and completion callbacks until `shutdown`: at most `concurrency` in
/// flight, each recorded in the store when it ends (a restart finds the rest still pending).
pub async fn run(store: Arc<dyn Store>, deliverer: Deliverer, shutdown: CancellationToken) {
    let concurrency = deliverer.args.concurrency.max(1);
    let poll = deliverer.args.poll();
    // One endpoint holds at most half the slots (the one slot, when there is only one): a dead
    // one (each attempt waiting out its timeout) leaves the rest to the others.
    let per_endpoint = (concurrency / 2).max(1);
    let mut in_flight: JoinSet<()> = JoinSet::new();
    // Which row (and endpoint) each task carries, so even a task that panicked frees its slot.
    let mut busy: HashMap<tokio::task::Id, (Job, String)> = HashMap::new();
    loop {
        let room = concurrency.saturating_sub(busy.len());
        if room > 0 {
            let (deliveries, callbacks): (Vec<i64>, Vec<i64>) = (
                busy.values()
                    .filter_map(|(job, _)| match job {
                        Job::Delivery(id) => Some(*id),
                        Job::Callback(_) => None,
                    })
                    .collect(),
                busy.values()
                    .filter_map(|(job, _)| match job {
                        Job::Callback(id) => Some(*id),
                        Job::Delivery(_) => None,
                    })
                    .collect(),
            );
            // More than there is room for: some may belong to an endpoint at its share.
            let wanted = room.saturating_mul(4);
            let reader = store.clone();
            let due = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                Ok::<_, duet_store::StoreError>((
                    reader.due_deliveries(now, wanted, &deliveries)?,
                    reader.due_callbacks(now, wanted, &callbacks)?,
                ))
            })
            .await;
            match due {
                Ok(Ok((due, callbacks))) => {
                    let mut taken = 0;
                    let mut take = |endpoint: &str, busy: &HashMap<_, (Job, String)>| {
                        let held = busy.values().filter(|(_, e)| e == endpoint).count();
                        if taken == room || held >= per_endpoint {
                            return false;
                        }
                        taken += 1;
                        true
                    };
                    for delivery in due {
                        if !take(&delivery.endpoint_id, &busy) {
                            continue;
                        }
                        let (id, endpoint) = (delivery.id, delivery.endpoint_id.clone());
                        let (store, deliverer) = (store.clone(), deliverer.clone());
                        let task = in_flight.spawn(async move {
                            let attempt = deliverer.attempt(&delivery).await;
                            log_attempt(&delivery, &attempt);
                            if let Ok(Err(e)) = store.record_attempt(delivery.id, &attempt).await {
                                tracing::error!(error = %e, delivery = delivery.id, "webhooks: could not record an attempt");
                            }
                        });
                        busy.insert(task.id(), (Job::Delivery(id), endpoint));
                    }
                    for callback in callbacks {
                        if !take(GREENHOUSE, &busy) {
                            continue;
                        }
                        let id = callback.id;
                        let (store, deliverer) = (store.clone(), deliverer.clone());
                        let task = in_flight.spawn(async move {
                            let attempt = match key_revoked(&store, &callback).await {
                                true => Attempt {
                                    at: now_ms(),
                                    status: None,
                                    error: Some(KEY_REVOKED.to_owned()),
                                    next: Next::GiveUp,
                                },
                                false => deliverer.attempt_callback(&callback).await,
                            };
                            log_callback(&callback, &attempt);
                            if let Ok(Err(e)) =
                                store.record_callback_attempt(callback.id, &attempt).await
                            {
                                tracing::error!(error = %e, callback = callback.id, "webhooks: could not record a callback attempt");
                            }
                        });
                        busy.insert(task.id(), (Job::Callback(id), GREENHOUSE.to_owned()));
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "webhooks: could not read the outbox"),
                Err(e) => tracing::error!(error = %e, "webhooks: the outbox read failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    Err(e) => {
                        tracing::error!(error = %e, "webhooks: a delivery task failed");
                        e.id()
                    }
                };
                busy.remove(&task);
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
    // In-flight attempts are dropped: their rows stay pending and go out after a restart (at
    // least once).
    in_flight.abort_all();
}

/// Why a callback is given up without an attempt.
const KEY_REVOKED: &str = "the integration key the test was sent with was revoked";

/// Whether the integration key a callback would authenticate with was revoked (a revoked key
/// is sent nowhere; the callback is given up, which also drops the key). A store that cannot
/// answer now counts as not revoked: the attempt goes ahead and is recorded as usual.
async fn key_revoked(store: &Arc<dyn Store>, callback: &DueCallback) -> bool {
    let (store, hash) = (store.clone(), crate::auth::hash(&callback.key));
    matches!(
        tokio::task::spawn_blocking(move || store.integration_key(&hash)).await,
        Ok(Ok(None))
    )
}

fn log_callback(callback: &DueCallback, attempt: &Attempt) {
    let (pid, interview) = (&callback.partner_interview_id, &callback.interview_id);
    match attempt.next {
        Next::Delivered => tracing::info!(
            partner_interview_id = %pid,
            %interview,
            "greenhouse: told Greenhouse the test is complete"
        ),
        Next::RetryAt(at) => tracing::warn!(
            partner_interview_id = %pid,
            %interview,
            error = attempt.error.as_deref().unwrap_or(""),
            retry_in_ms = at - attempt.at,
            "greenhouse: the completion callback failed; will retry"
        ),
        Next::GiveUp => tracing::error!(
            partner_interview_id = %pid,
            %interview,
            error = attempt.error.as_deref().unwrap_or(""),
            "greenhouse: the completion callback failed past the give-up age; Greenhouse still reads test_status"
        ),
    }
}

fn log_attempt(delivery: &DueDelivery, attempt: &Attempt) {
    match attempt.next {
        Next::Delivered => tracing::info!(
            delivery = delivery.id,
            endpoint = %delivery.endpoint_id,
            event = %delivery.event_id,
            "webhooks: delivered"
        ),
        Next::RetryAt(at) => tracing::warn!(
            delivery = delivery.id,
            endpoint = %delivery.endpoint_id,
            event = %delivery.event_id,
            error = attempt.error.as_deref().unwrap_or(""),
            retry_in_ms = at - attempt.at,
            "webhooks: delivery failed; will retry"
        ),
        Next::GiveUp => tracing::error!(
            delivery = delivery.id,
            endpoint = %delivery.endpoint_id,
            event = %delivery.event_id,
            error = attempt.error.as_deref().unwrap_or(""),
            "webhooks: delivery failed past the give-up age; marked failed (redeliver from the admin page)"
        ),
    }
}
