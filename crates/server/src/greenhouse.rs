//! Greenhouse's assessment-partner API, served by Duet so a Greenhouse customer can put Duet
//! in a job's interview plan: `list_tests`, `send_test` and `test_status`, with the field
//! names and statuses of Greenhouse's partner documentation, under HTTP Basic with an
//! integration key an admin creates (the key is the username, the password empty). Also the
//! admin's routes for those keys (created, listed, revoked, audited; stored as SHA-256).
//!
//! Tests are templates made from the question bank: every question is offered twice, as a
//! take-home (`take_home:<question id>`, with `--greenhouse-take-home-minutes`) and as a live
//! interview (`live:<question id>`). `send_test` creates the interview and mails the candidate
//! their link; `test_status` says `sent`, `in_progress` or `complete` (a take-home by its Start
//! and Submit, a live interview by its joins, end and submitted scorecards), the score and a
//! staff link to the replay. Errors answer `{"errors": ["..."]}`, the shape of the `errors` Greenhouse
//! itself reports to a partner.

use crate::api::{blocking, written};
use crate::auth;
use crate::error::AppError;
use crate::people_api::audit;
use crate::rooms::now_ms;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use duet_protocol::{
    AuditAction, EventKind, InterviewId, InterviewMode, InterviewStatus, Recommendation, Record,
    RunKind, SubmitReason,
};
use duet_store::integrations::{Callback, IntegrationKey, PartnerTest};
use duet_store::{Interview, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An answer in Greenhouse's error shape.
pub struct PartnerError {
    status: StatusCode,
    message: String,
}

impl PartnerError {
    fn new(status: StatusCode, message: impl Into<String>) -> PartnerError {
        PartnerError {
            status,
            message: message.into(),
        }
    }
}

impl From<AppError> for PartnerError {
    fn from(e: AppError) -> PartnerError {
        // The server's own error answer decides the status and the public message.
        let response = e.into_response();
        let status = response.status();
        let message = if status.is_server_error() {
            "internal server error".to_owned()
        } else {
            status.canonical_reason().unwrap_or("error").to_owned()
        };
        PartnerError { status, message }
    }
}

impl IntoResponse for PartnerError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "errors": [self.message] }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"Duet\""),
            );
        }
        response
    }
}

/// The integration key a request carries as its HTTP Basic username, checked.
async fn partner(state: &AppState, headers: &HeaderMap) -> Result<IntegrationKey, PartnerError> {
    partner_key(state, headers).await.map(|(key, _)| key)
}

/// The integration key a request carries, checked, and the key itself (`send_test` keeps it
/// for the completion callback, which Greenhouse authenticates with the same key).
async fn partner_key(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(IntegrationKey, String), PartnerError> {
    let unauthorized = |why: &str| PartnerError::new(StatusCode::UNAUTHORIZED, why);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| unauthorized("send the integration key as HTTP Basic username"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("the Authorization header is not Basic base64"))?;
    let key = decoded.split(':').next().unwrap_or_default().to_owned();
    let hash = auth::hash(&key);
    let store = state.store.clone();
    let found = blocking(move || store.integration_key(&hash))
        .await?
        .ok_or_else(|| unauthorized("unknown or revoked integration key"))?;
    Ok((found, key))
}

/// The longest `url` `send_test` takes for the completion callback.
const MAX_CALLBACK_URL: usize = 2_000;

/// A test Duet offers: a question of the bank, as a take-home or live.
struct Template {
    id: String,
    name: String,
    question_id: String,
    mode: InterviewMode,
    minutes: Option<u32>,
}

fn templates(state: &AppState) -> Vec<Template> {
    let minutes = state.config.greenhouse.take_home_minutes;
    let mut all = Vec::new();
    for q in state.questions.list() {
        all.push(Template {
            id: format!("take_home:{}", q.id),
            name: format!("{} (take-home, {minutes} min)", q.title),
            question_id: q.id.clone(),
            mode: InterviewMode::TakeHome,
            minutes: Some(minutes),
        });
        all.push(Template {
            id: format!("live:{}", q.id),
            name: format!("{} (live pairing)", q.title),
            question_id: q.id,
            mode: InterviewMode::Live,
            minutes: None,
        });
    }
    all
}

#[derive(Serialize)]
struct ListedTest {
    partner_test_id: String,
    partner_test_name: String,
}

/// `GET /api/greenhouse/list_tests`.
pub async fn list_tests(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PartnerError> {
    partner(&state, &headers).await?;
    let tests: Vec<ListedTest> = templates(&state)
        .into_iter()
        .map(|t| ListedTest {
            partner_test_id: t.id,
            partner_test_name: t.name,
        })
        .collect();
    Ok(Json(tests).into_response())
}

#[derive(Deserialize)]
struct SendTest {
    /// A string in Greenhouse's documentation, a number in its older examples: both taken.
    partner_test_id: Value,
    candidate: Candidate,
    /// Where to send the "PATCH Completed Test" when the test is complete.
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct Candidate {
    first_name: String,
    last_name: String,
    email: String,
    #[serde(default)]
    greenhouse_profile_url: Option<String>,
}

/// `POST /api/greenhouse/send_test`: creates the interview and mails the candidate its link.
/// The same application and test sent again answers the first `partner_interview_id` and
/// mails nothing.
pub async fn send_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PartnerError> {
    let (key, secret) = partner_key(&state, &headers).await?;
    let bad = |why: String| PartnerError::new(StatusCode::BAD_REQUEST, why);
    let req: SendTest = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not a send_test request: {e}")))?;
    // Only its form here; where it leads is checked at every attempt (webhooks/address.rs).
    let callback = match req.url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => {
            let parsed = reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .filter(|_| url.len() <= MAX_CALLBACK_URL)
                .ok_or_else(|| {
                    bad(format!(
                        "url: not an http(s) URL of at most {MAX_CALLBACK_URL} bytes"
                    ))
                })?;
            Some(Callback {
                url: parsed.to_string(),
                key: secret,
            })
        }
    };
    let test_id = match &req.partner_test_id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("partner_test_id must be a string".into())),
    };
    let template = templates(&state)
        .into_iter()
        .find(|t| t.id == test_id)
        .ok_or_else(|| {
            PartnerError::new(
                StatusCode::NOT_FOUND,
                format!("no test {test_id:?} (list_tests lists them)"),
            )
        })?;
    let email = crate::mail::checked_address(&req.candidate.email)
        .map_err(|e| bad(format!("candidate.email: {e}")))?;
    if !crate::mail::enabled(&state) {
        return Err(PartnerError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this Duet server sends no mail (--smtp-url), so it cannot send a test",
        ));
    }
    let application = req
        .candidate
        .greenhouse_profile_url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| email.clone());
    let application_key = format!("{application} {test_id}");
    let store = state.store.clone();
    let lookup = application_key.clone();
    if let Some(sent) = blocking(move || store.partner_test_for(&lookup)).await? {
        return Ok(
            Json(json!({ "partner_interview_id": sent.partner_interview_id })).into_response(),
        );
    }

    let name = format!(
        "{} {}",
        req.candidate.first_name.trim(),
        req.candidate.last_name.trim()
    );
    let question = state
        .questions
        .get(&template.question_id)
        .ok_or_else(|| AppError::Internal("a listed test has no question".into()))?;
    let title = question.summary.title.clone();
    // The question's environment (a data question needs its packages), as an interview
    // created on it through the API gets.
    let environment = question.environment.clone();
    if !crate::environments::is_known(&*state.sandbox, &environment) {
        return Err(PartnerError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("this Duet server has no {environment:?} environment for this test"),
        ));
    }
    let id = InterviewId::parse(&auth::random_token(16))
        .ok_or_else(|| AppError::Internal("minted a bad id".into()))?;
    let (tokens, hashes) = crate::api::new_tokens();
    let interview = Interview {
        id: id.clone(),
        title: title.chars().take(200).collect(),
        candidate_name: name.trim().chars().take(100).collect(),
        created_at: now_ms(),
        question_id: Some(template.question_id.clone()),
        candidate_ref: Some(application.chars().take(200).collect()),
        mode: template.mode,
        time_limit_minutes: template.minutes,
        environment,
    };
    written(state.store.create_interview(&interview, &hashes)).await?;
    let sent = PartnerTest {
        partner_interview_id: format!("duet_{}", auth::random_token(12)),
        application_key: application_key.clone(),
        interview_id: id.to_string(),
        test_id,
        created_at: now_ms(),
        callback,
    };
    written(state.store.add_partner_test(&sent)).await?;
    let store = state.store.clone();
    let kept = blocking(move || store.partner_test_for(&application_key))
        .await?
        .ok_or_else(|| AppError::Internal("a sent test was not kept".into()))?;
    if kept.interview_id != sent.interview_id {
        // The same application was sent at the same moment and the other request won: this
        // interview is not anyone's.
        written(state.store.erase(&id)).await?;
        return Ok(
            Json(json!({ "partner_interview_id": kept.partner_interview_id })).into_response(),
        );
    }
    audit(
        &state,
        format!("integration:{}", key.name),
        AuditAction::InterviewCreated,
        Some(id.to_string()),
        None,
    )
    .await;
    let urls = crate::api::links(&state, &id, &tokens);
    let (subject, text) = crate::mail::candidate_link(&interview, &urls.candidate);
    crate::mail::queue(&state, Some(&id), &email, subject, text).await?;
    Ok(Json(json!({ "partner_interview_id": sent.partner_interview_id })).into_response())
}

#[derive(Deserialize)]
pub struct StatusQuery {
    partner_interview_id: Option<String>,
}

/// `GET /api/greenhouse/test_status?partner_interview_id=`.
pub async fn test_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StatusQuery>,
) -> Result<Response, PartnerError> {
    partner(&state, &headers).await?;
    let Some(pid) = query.partner_interview_id.filter(|p| !p.is_empty()) else {
        return Err(PartnerError::new(
            StatusCode::BAD_REQUEST,
            "partner_interview_id is required",
        ));
    };
    let store = state.store.clone();
    let not_found = || PartnerError::new(StatusCode::NOT_FOUND, "no such partner_interview_id");
    let sent = blocking(move || store.partner_test(&pid))
        .await?
        .ok_or_else(not_found)?;
    let id = InterviewId::parse(&sent.interview_id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let (interview, status, scorecards, runs, round) = blocking(move || {
        let Some(interview) = store.get_interview(&id)? else {
            return Err(StoreError::NoSuchInterview);
        };
        let status = store.status(&id)?;
        let scorecards = store.read_kinds(&id, &[EventKind::Scorecard])?;
        let runs = store.read_runs(&id)?;
        let round = store.read_kinds(
            &id,
            &[EventKind::TakeHomeStarted, EventKind::TakeHomeSubmitted],
        )?;
        Ok((interview, status, scorecards, runs, round))
    })
    .await
    .map_err(|e| match e {
        AppError::Store(StoreError::NoSuchInterview) => {
            PartnerError::new(StatusCode::NOT_FOUND, "the interview was deleted")
        }
        other => other.into(),
    })?;

    let mut metadata = serde_json::Map::new();
    metadata.insert("Candidate".into(), interview.candidate_name.clone().into());
    metadata.insert("Question".into(), interview.title.clone().into());
    let recommendations = submitted_recommendations(&scorecards);
    // A take-home is scored on the hidden tests of the submitted code: the runs after its
    // submit, never a run during the round.
    let submitted_at = round
        .iter()
        .find(|r| r.kind == EventKind::TakeHomeSubmitted)
        .map(|r| r.seq);
    let hidden = submitted_at.and_then(|after| hidden_test_counts(&runs, after));
    let (partner_status, score) = match interview.mode {
        InterviewMode::TakeHome => {
            let score = hidden.map(|(passed, total)| {
                metadata.insert(
                    "Hidden tests".into(),
                    format!("{passed} of {total} passed").into(),
                );
                if total == 0 {
                    0
                } else {
                    (u64::from(passed) * 100 / u64::from(total)) as i64
                }
            });
            let (mut started, mut submitted) = (false, None);
            for record in &round {
                match record.decode() {
                    Ok(Record::TakeHomeStarted(_)) => started = true,
                    Ok(Record::TakeHomeSubmitted(s)) => submitted = Some(s.reason),
                    _ => {}
                }
            }
            let partner_status = match (submitted, started) {
                (Some(reason), _) => {
                    let how = match reason {
                        SubmitReason::Submitted => "by the candidate",
                        SubmitReason::TimeLimit => "at the time limit",
                    };
                    metadata.insert("Submitted".into(), how.into());
                    "complete"
                }
                (None, true) => "in_progress",
                (None, false) => "sent",
            };
            (partner_status, score)
        }
        InterviewMode::Live => {
            let score = average(&recommendations);
            (
                phase(
                    status,
                    status == InterviewStatus::Ended && !recommendations.is_empty(),
                ),
                score,
            )
        }
    };
    if !recommendations.is_empty() {
        let names: Vec<&str> = recommendations
            .iter()
            .map(|r| recommendation_name(*r))
            .collect();
        metadata.insert("Recommendations".into(), names.join(", ").into());
    }
    let replay = format!(
        "{}/replay/{}",
        state.public_url.trim_end_matches('/'),
        interview.id
    );
    Ok(Json(json!({
        "partner_status": partner_status,
        "partner_profile_url": replay,
        "partner_score": score,
        "metadata": metadata,
    }))
    .into_response())
}

fn phase(status: InterviewStatus, complete: bool) -> &'static str {
    match status {
        _ if complete => "complete",
        InterviewStatus::Scheduled => "sent",
        InterviewStatus::Live | InterviewStatus::Ended => "in_progress",
    }
}

/// Each card's submitted recommendation (the last submit of each author).
fn submitted_recommendations(records: &[duet_protocol::LogRecord]) -> Vec<Recommendation> {
    let mut by_author: Vec<(Option<String>, Recommendation)> = Vec::new();
    for record in records {
        let Ok(Record::Scorecard(change)) = record.decode() else {
            continue;
        };
        let (true, Some(recommendation)) = (
            change.action == "submitted",
            change.scorecard.recommendation,
        ) else {
            continue;
        };
        by_author.retain(|(who, _)| *who != change.person);
        by_author.push((change.person, recommendation));
    }
    by_author.into_iter().map(|(_, r)| r).collect()
}

fn recommendation_name(r: Recommendation) -> &'static str {
    match r {
        Recommendation::StrongNo => "strong no",
        Recommendation::No => "no",
        Recommendation::Yes => "yes",
        Recommendation::StrongYes => "strong yes",
    }
}

/// The recommendations' average on 0 to 100 (strong no 0, no 33, yes 67, strong yes 100).
fn average(recommendations: &[Recommendation]) -> Option<i64> {
    if recommendations.is_empty() {
        return None;
    }
    let points: i64 = recommendations
        .iter()
        .map(|r| match r {
            Recommendation::StrongNo => 0,
            Recommendation::No => 1,
            Recommendation::Yes => 2,
            Recommendation::StrongYes => 3,
        })
        .sum();
    Some((points * 100 + recommendations.len() as i64 * 3 / 2) / (recommendations.len() as i64 * 3))
}

/// The passed and total counts of the last private test run (the hidden tests) started after
/// seq `after`.
fn hidden_test_counts(runs: &[duet_protocol::LogRecord], after: u64) -> Option<(u32, u32)> {
    let mut private_tests = std::collections::HashSet::new();
    let mut last = None;
    for record in runs {
        match record.decode() {
            Ok(Record::RunStarted(started))
                if record.seq > after && started.kind == RunKind::Test && started.private =>
            {
                private_tests.insert(started.run_id);
            }
            Ok(Record::RunFinished(finished)) if private_tests.contains(&finished.run_id) => {
                if let Some(t) = finished.tests {
                    last = Some((t.passed, t.passed + t.failed + t.errors));
                }
            }
            _ => {}
        }
    }
    last
}

/// At most this many of a `response_error` report's errors are logged, each cut to
/// [`REPORTED_ERROR_CHARS`] characters: the report is Greenhouse's, the log is ours.
const REPORTED_ERRORS: usize = 20;
const REPORTED_ERROR_CHARS: usize = 500;

/// At most this many characters of an id a `response_error` report names are logged.
const REPORTED_ID_CHARS: usize = 100;

/// An id from a `response_error` report as the log shows it: a string as it is, anything else
/// (a number in Greenhouse's examples, or whatever was sent) as its JSON, cut to
/// [`REPORTED_ID_CHARS`] characters.
fn reported_id(id: Option<&Value>) -> String {
    let text = match id {
        None => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    text.chars().take(REPORTED_ID_CHARS).collect()
}

/// What Greenhouse reports when an answer of ours did not validate. `api_call` and `errors`
/// are always sent; the rest as far as Greenhouse knows them (numbers in its examples,
/// strings in its table: both taken). The candidate's email it may send is not read.
#[derive(Deserialize)]
struct ResponseErrorReport {
    api_call: String,
    errors: Vec<String>,
    #[serde(default)]
    partner_test_id: Option<Value>,
    #[serde(default)]
    partner_interview_id: Option<Value>,
}

/// `POST /api/greenhouse/response_error`: Greenhouse tells the partner that an answer of ours
/// (`api_call`: `list_tests`, `send_test` or `test_status`) did not validate, and why. Duet
/// writes it to the server's log as a warning, with the key that Greenhouse used, and answers
/// `{"status": 200}` as Greenhouse's documentation asks. Nothing else is kept.
pub async fn response_error(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PartnerError> {
    let key = partner(&state, &headers).await?;
    let report: ResponseErrorReport = serde_json::from_slice(&body).map_err(|e| {
        PartnerError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a response_error report: {e}"),
        )
    })?;
    let errors: Vec<String> = report
        .errors
        .iter()
        .take(REPORTED_ERRORS)
        .map(|e| e.chars().take(REPORTED_ERROR_CHARS).collect())
        .collect();
    let api_call: String = report.api_call.chars().take(64).collect();
    tracing::warn!(
        key = %key.id,
        api_call,
        partner_test_id = reported_id(report.partner_test_id.as_ref()),
        partner_interview_id = reported_id(report.partner_interview_id.as_ref()),
        errors = ?errors,
        more = report.errors.len().saturating_sub(errors.len()),
        "Greenhouse could not validate an answer of ours"
    );
    Ok(Json(json!({ "status": 200 })).into_response())
}

// The admin's routes for integration keys.

#[derive(Deserialize)]
pub struct NewKey {
    name: String,
}

/// `POST /api/integrations/keys` (admin): a new key, shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Result<Response, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let req: NewKey = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("expected {{\"name\": str}}: {e}")))?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest("name: 1 to 100 characters".into()));
    }
    let secret = format!("duetgh_{}", auth::random_token(32));
    let key = IntegrationKey {
        id: auth::random_token(12),
        name: name.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
    };
    written(state.store.add_integration_key(&key, &auth::hash(&secret))).await?;
    audit(
        &state,
        admin.name(),
        AuditAction::IntegrationKeyCreated,
        Some(key.name.clone()),
        Some(&parts),
    )
    .await;
    let answer =
        json!({"id": key.id, "name": key.name, "created_at": key.created_at, "key": secret});
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /api/integrations/keys` (admin): every key, newest first, without the keys themselves.
pub async fn list_keys(State(state): State<AppState>, parts: Parts) -> Result<Response, AppError> {
    auth::require_admin(&state, &parts).await?;
    let store = state.store.clone();
    let keys = blocking(move || store.integration_keys()).await?;
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| json!({"id": k.id, "name": k.name, "created_at": k.created_at, "revoked_at": k.revoked_at}))
        .collect();
    Ok(Json(keys).into_response())
}

/// `DELETE /api/integrations/keys/{id}` (admin): revokes the key at once.
pub async fn revoke_key(
    State(state): State<AppState>,
    parts: Parts,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    written(state.store.revoke_integration_key(&id, now_ms()))
        .await
        .map_err(|e| match e {
            AppError::Store(StoreError::NoSuchToken) => AppError::NotFound("no such key"),
            other => other,
        })?;
    audit(
        &state,
        admin.name(),
        AuditAction::IntegrationKeyRevoked,
        Some(id),
        Some(&parts),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(seq: u64, kind: EventKind, json: serde_json::Value) -> duet_protocol::LogRecord {
        duet_protocol::LogRecord {
            seq,
            at_ms: seq as i64,
            kind,
            by: duet_protocol::Actor::Server,
            data: json.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_score_of_a_take_home_is_its_last_hidden_test_runs_pass_rate_after_the_submit() {
        let started = |run: &str, private: bool| json!({"run_id": run, "kind": "test", "by": "interviewer", "at": 1, "code_seq": 1, "private": private});
        let finished = |run: &str, passed: u32, failed: u32| {
            json!({"run_id": run, "status": "error", "exit_code": 1, "duration_ms": 5, "at": 2,
                   "tests": {"passed": passed, "failed": failed, "errors": 0, "skipped": 0, "cases": []}})
        };
        let runs = [
            logged(1, EventKind::RunStarted, started("visible", false)),
            logged(2, EventKind::RunFinished, finished("visible", 1, 0)),
            logged(3, EventKind::RunStarted, started("hidden1", true)),
            logged(4, EventKind::RunFinished, finished("hidden1", 1, 3)),
            logged(5, EventKind::RunStarted, started("hidden2", true)),
            logged(6, EventKind::RunFinished, finished("hidden2", 3, 1)),
        ];
        assert_eq!(hidden_test_counts(&runs, 0), Some((3, 4)));
        assert_eq!(
            hidden_test_counts(&runs[..2], 0),
            None,
            "visible runs do not count"
        );
        // Submitted at seq 4: the interviewer's hidden run at seq 3 was during the round.
        assert_eq!(
            hidden_test_counts(&runs[..4], 4),
            None,
            "a hidden run before the submit does not count"
        );
        assert_eq!(hidden_test_counts(&runs, 4), Some((3, 4)));
    }

    #[test]
    fn a_reported_id_is_logged_whole_when_short_and_cut_when_long() {
        assert_eq!(reported_id(None), "");
        assert_eq!(reported_id(Some(&json!("duet_abc"))), "duet_abc");
        assert_eq!(reported_id(Some(&json!(12345))), "12345");
        let long = json!("x".repeat(1_000_000));
        assert_eq!(reported_id(Some(&long)).chars().count(), REPORTED_ID_CHARS);
        let nested = json!({"a": vec![1; 100_000]});
        assert_eq!(
            reported_id(Some(&nested)).chars().count(),
            REPORTED_ID_CHARS
        );
    }

    #[test]
    fn recommendations_average_on_a_hundred_point_scale() {
        use Recommendation::*;
        assert_eq!(average(&[]), None);
        assert_eq!(average(&[StrongNo]), Some(0));
        assert_eq!(average(&[StrongYes]), Some(100));
        assert_eq!(average(&[Yes]), Some(67));
        assert_eq!(average(&[Yes, StrongYes]), Some(83));
    }
}
