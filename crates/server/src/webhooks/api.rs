//! The admin's webhook routes: register, list and remove endpoints, read an endpoint's delivery
//! log, and redeliver one event.

use super::address::{checked_url, UrlRefused};
use crate::api::{blocking, written};
use crate::auth;
use crate::body::JsonBody;
use crate::error::AppError;
use crate::people_api::audit;
use crate::rooms::now_ms;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_protocol::{AuditAction, DeliveryPage, NewWebhook, Webhook, WebhookCreated, WebhookEvent};
use duet_store::outbox::NewEndpoint;
use duet_store::StoreError;

impl crate::body::Shape for NewWebhook {
    const SHAPE: &'static str = r#"{"url": str, "events": ["interview.created" | "interview.started" | "interview.ended" | "take_home.submitted" | "scorecard.submitted"], "secret": optional str (16 to 200 characters)}"#;
}

const MAX_URL: usize = 2_000;
const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=200;
/// Endpoints one server keeps at most (each event is queued once per endpoint that wants it).
const MAX_WEBHOOKS: usize = 50;

fn listed(endpoint: duet_store::outbox::Endpoint) -> Webhook {
    Webhook {
        id: endpoint.id,
        url: endpoint.url,
        events: endpoint.events,
        created_at: endpoint.created_at,
    }
}

fn not_found(e: AppError) -> AppError {
    match e {
        AppError::Store(StoreError::NoSuchWebhook) => AppError::NotFound("no such webhook"),
        AppError::Store(StoreError::NoSuchDelivery) => AppError::NotFound("no such delivery"),
        other => other,
    }
}

/// `GET /api/webhooks` (admin): every endpoint, oldest first (secrets are never shown again).
pub async fn list(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<Webhook>>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let store = state.store.clone();
    let endpoints = blocking(move || store.webhooks()).await?;
    Ok(Json(endpoints.into_iter().map(listed).collect()))
}

/// `POST /api/webhooks` (admin): registers an endpoint. The URL must lead outside the server's
/// network unless the server allows private addresses; the secret is shown this once.
pub async fn create(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<NewWebhook>,
) -> Result<Response, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let req = body.read()?;
    if req.url.len() > MAX_URL {
        return Err(AppError::BadRequest(format!(
            "url: at most {MAX_URL} characters"
        )));
    }
    let url = checked_url(req.url.trim(), state.config.webhooks.allow_private)
        .await
        .map_err(|e| match e {
            UrlRefused::Internal { .. } => AppError::BadRequest(format!("url refused: {e}")),
            other => AppError::BadRequest(format!("url: {other}")),
        })?;
    let mut events = req.events;
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(AppError::BadRequest(format!(
            "events: name at least one of {}",
            WebhookEvent::ALL.map(|e| e.as_str()).join(", ")
        )));
    }
    let secret = match req.secret {
        Some(secret) if SECRET_CHARS.contains(&secret.chars().count()) => secret,
        Some(_) => {
            return Err(AppError::BadRequest(format!(
                "secret: {} to {} characters (or leave it out to have one made)",
                SECRET_CHARS.start(),
                SECRET_CHARS.end()
            )))
        }
        None => format!("whsec_{}", auth::random_token(32)),
    };
    let store = state.store.clone();
    if blocking(move || store.webhooks()).await?.len() >= MAX_WEBHOOKS {
        return Err(AppError::Conflict(format!(
            "this server keeps at most {MAX_WEBHOOKS} webhooks: remove one first"
        )));
    }
    let endpoint = NewEndpoint {
        id: format!("wh_{}", auth::random_token(12)),
        url: url.to_string(),
        events,
        secret: secret.clone(),
        created_at: now_ms(),
    };
    written(state.store.add_webhook(&endpoint)).await?;
    audit(
        &state,
        admin.name(),
        AuditAction::WebhookAdded,
        Some(endpoint.url.clone()),
        Some(&parts),
    )
    .await;
    let created = WebhookCreated {
        webhook: listed(endpoint),
        secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `DELETE /api/webhooks/{id}` (admin): removes the endpoint and its delivery log.
pub async fn remove(
    State(state): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    written(state.store.remove_webhook(&id))
        .await
        .map_err(not_found)?;
    audit(
        &state,
        admin.name(),
        AuditAction::WebhookRemoved,
        Some(id),
        Some(&parts),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/webhooks/{id}/deliveries?before=&limit=` (admin): the delivery log, newest first,
/// 50 a page (at most 500).
pub async fn deliveries(
    State(state): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryPage>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let Query(query) = query.map_err(|e| AppError::BadRequest(format!("query: {e}")))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let store = state.store.clone();
    let known = id.clone();
    let exists = blocking(move || store.webhooks())
        .await?
        .iter()
        .any(|w| w.id == known);
    if !exists {
        return Err(AppError::NotFound("no such webhook"));
    }
    let store = state.store.clone();
    let before = query.before;
    let deliveries = blocking(move || store.deliveries(&id, before, limit)).await?;
    let next_before = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries,
        next_before,
    }))
}

/// `POST /api/webhooks/{id}/deliveries/{delivery}/redeliver` (admin): sends that delivery's
/// event again (same event id and body), after any of the same interview still pending.
pub async fn redeliver(
    State(state): State<AppState>,
    parts: Parts,
    Path((id, delivery)): Path<(String, i64)>,
) -> Result<StatusCode, AppError> {
    auth::require_admin(&state, &parts).await?;
    written(state.store.redeliver(&id, delivery, now_ms()))
        .await
        .map_err(not_found)?;
    Ok(StatusCode::ACCEPTED)
}
