//! The REST endpoints: interviews and their role views, health and metrics.

use crate::auth;
use crate::body::JsonBody;
use crate::error::AppError;
use crate::rooms::now_ms;
use crate::rooms::RoomCmd;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_protocol::{
    AuditAction, CreateInterview, CreatedInterview, EventKind, InterviewId, InterviewMode,
    InterviewSummary, InterviewView, PerRole, Question, QuestionSummary, QuestionView, Record,
    Role, SwitchQuestion, DEFAULT_ENVIRONMENT,
};
use duet_store::Interview;

const MAX_TITLE: usize = 200;
const MAX_NAME: usize = 100;

/// `POST /api/interviews` (admin): creates an interview and its three role tokens.
pub async fn create_interview(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<CreateInterview>,
) -> Result<Response, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let req = body.read()?;
    let question = match &req.question_id {
        Some(q) => Some(state.questions.get(q).ok_or_else(|| unknown_question(q))?),
        None => None,
    };
    let question_id = question.as_ref().map(|q| q.id().to_owned());
    let (mode, time_limit_minutes) = checked_mode(req.mode, req.time_limit_minutes)?;
    let default = question.as_ref().map(|q| q.environment.as_str());
    let environment = checked_environment(&state, req.environment.as_deref().or(default))?;
    let candidate_ref = req
        .candidate_ref
        .as_deref()
        .map(|r| checked_text("candidate_ref", r, MAX_TITLE))
        .transpose()?;
    let title = checked_text("title", &req.title, MAX_TITLE)?;
    let candidate_email = req
        .candidate_email
        .as_deref()
        .map(crate::mail::checked_address)
        .transpose()?;
    if candidate_email.is_some() && !crate::mail::enabled(&state) {
        return Err(AppError::BadRequest(
            "candidate_email: this server sends no mail (start it with --smtp-url and --mail-from)"
                .into(),
        ));
    }
    let candidate_name = checked_text("candidate_name", &req.candidate_name, MAX_NAME)?;

    let id = InterviewId::parse(&auth::random_token(16))
        .ok_or_else(|| AppError::Internal("minted a bad id".into()))?;
    let (tokens, hashes) = new_tokens();
    let interview = Interview {
        id: id.clone(),
        title,
        candidate_name,
        created_at: now_ms(),
        question_id,
        candidate_ref,
        mode,
        time_limit_minutes,
        environment,
    };
    written(state.store.create_interview(&interview, &hashes)).await?;
    let target = Some(id.to_string());
    crate::people_api::audit(
        &state,
        admin.name(),
        AuditAction::InterviewCreated,
        target,
        Some(&parts),
    )
    .await;
    let urls = links(&state, &id, &tokens);
    if let Some(email) = candidate_email {
        let (subject, body) = crate::mail::candidate_link(&interview, &urls.candidate);
        crate::mail::queue(&state, Some(&id), &email, subject, body).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(CreatedInterview { id, tokens, urls }),
    )
        .into_response())
}

/// A take-home's shortest and longest time limits, in minutes.
pub const TAKE_HOME_MINUTES: std::ops::RangeInclusive<u32> = 30..=240;

/// The mode and time limit asked for, checked: a take-home needs a limit in
/// [`TAKE_HOME_MINUTES`], a live interview has none.
fn checked_mode(
    mode: Option<InterviewMode>,
    minutes: Option<u32>,
) -> Result<(InterviewMode, Option<u32>), AppError> {
    match (mode.unwrap_or_default(), minutes) {
        (InterviewMode::Live, None) => Ok((InterviewMode::Live, None)),
        (InterviewMode::Live, Some(_)) => Err(AppError::BadRequest(
            "time_limit_minutes is for take-home interviews (\"mode\": \"take_home\") only".into(),
        )),
        (InterviewMode::TakeHome, Some(m)) if TAKE_HOME_MINUTES.contains(&m) => {
            Ok((InterviewMode::TakeHome, Some(m)))
        }
        (InterviewMode::TakeHome, _) => Err(AppError::BadRequest(format!(
            "a take-home needs time_limit_minutes from {} to {}",
            TAKE_HOME_MINUTES.start(),
            TAKE_HOME_MINUTES.end()
        ))),
    }
}

/// The environment asked for, checked against the ones this server has.
fn checked_environment(state: &AppState, asked: Option<&str>) -> Result<String, AppError> {
    let name = asked.unwrap_or(DEFAULT_ENVIRONMENT);
    if crate::environments::is_known(&*state.sandbox, name) {
        Ok(name.to_owned())
    } else {
        Err(AppError::BadRequest(format!(
            "unknown environment {name:?} (GET /api/environments lists them)"
        )))
    }
}

/// Three fresh role tokens and the hashes the store keeps of them.
pub(crate) fn new_tokens() -> (PerRole, [(Role, duet_store::TokenHash); 3]) {
    let tokens = PerRole {
        interviewer: auth::random_token(32),
        candidate: auth::random_token(32),
        reviewer: auth::random_token(32),
    };
    let hashes = [
        (Role::Interviewer, auth::hash(&tokens.interviewer)),
        (Role::Candidate, auth::hash(&tokens.candidate)),
        (Role::Reviewer, auth::hash(&tokens.reviewer)),
    ];
    (tokens, hashes)
}

/// The links for `tokens`: each names its role in the path, so a link sent to the wrong person
/// reads as wrong at a glance. Tokens travel in the fragment: browsers never send it to a
/// server or in a Referer.
pub(crate) fn links(state: &AppState, id: &InterviewId, tokens: &PerRole) -> PerRole {
    let base = state.public_url.trim_end_matches('/');
    PerRole {
        interviewer: format!(
            "{base}/interview/{id}/interviewer#token={}",
            tokens.interviewer
        ),
        candidate: format!("{base}/interview/{id}/candidate#token={}", tokens.candidate),
        reviewer: format!("{base}/replay/{id}/reviewer#token={}", tokens.reviewer),
    }
}

/// `POST /api/interviews/{id}/links` (admin): new links for a lost or mis-sent one. All three
/// role tokens are replaced; the old ones answer 401 from now on, and websockets open on them
/// are closed (1008). Answers like `POST /api/interviews`.
pub async fn reissue_links(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<CreatedInterview>, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let id = InterviewId::parse(&id).ok_or(AppError::NotFound("no such interview"))?;
    let store = state.store.clone();
    let lookup = id.clone();
    blocking(move || store.get_interview(&lookup))
        .await?
        .ok_or(AppError::NotFound("no such interview"))?;
    let (tokens, hashes) = new_tokens();
    // Sockets are told before and after the write: one that authenticated with an old token
    // just before the write and took its place meanwhile is closed by the second call.
    state.sockets.revoke(&id);
    written(state.store.replace_tokens(&id, &hashes)).await?;
    state.sockets.revoke(&id);
    tracing::info!(interview = %id, "links re-issued; the old tokens no longer work");
    let target = Some(id.to_string());
    crate::people_api::audit(
        &state,
        admin.name(),
        AuditAction::LinksRotated,
        target,
        Some(&parts),
    )
    .await;
    let urls = links(&state, &id, &tokens);
    Ok(Json(CreatedInterview { id, tokens, urls }))
}

fn checked_text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::BadRequest(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(AppError::BadRequest(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// `GET /api/interviews` (admin): every interview, newest first. Tokens are not kept, so not shown.
pub async fn list_interviews(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<InterviewSummary>>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let store = state.store.clone();
    let list = blocking(move || {
        let list = store.list_interviews()?;
        list.into_iter()
            .map(|interview| {
                let status = store.status(&interview.id)?;
                Ok(InterviewSummary { interview, status })
            })
            .collect::<Result<Vec<_>, duet_store::StoreError>>()
    })
    .await?;
    Ok(Json(list))
}

/// Sends a command to the interview's room and waits for its answer (503 while the room is
/// reloading or gone).
pub(crate) async fn ask_room<T>(
    state: &AppState,
    interview: &InterviewId,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> RoomCmd,
) -> Result<T, AppError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let unavailable =
        || AppError::Unavailable("the interview's room is reloading; try again".into());
    state
        .rooms
        .get(interview)
        .tx
        .send(make(reply))
        .await
        .map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

/// Waits for a store write's ticket.
pub(crate) async fn written(ticket: duet_store::Ticket) -> Result<(), AppError> {
    match ticket.await {
        Ok(result) => result.map_err(AppError::from),
        Err(_) => Err(AppError::Unavailable("the store is shutting down".into())),
    }
}

/// Runs a store call on a blocking thread, never on an async worker.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, duet_store::StoreError> + Send + 'static,
) -> Result<T, AppError> {
    Ok(tokio::task::spawn_blocking(call).await??)
}

/// The question `interview` is on: the last switch in its log, else the one it was created
/// with. The log is the one source; a switch is one durable write. Reads the store: blocking
/// threads only.
pub(crate) fn current_question(
    store: &dyn duet_store::Store,
    interview: &Interview,
) -> Result<Option<String>, duet_store::StoreError> {
    let switches = store.read_kinds(&interview.id, &[EventKind::Question])?;
    let last = switches.iter().rev().find_map(|r| match r.decode() {
        Ok(Record::Question(q)) => Some(q.question_id),
        _ => None,
    });
    Ok(last.or_else(|| interview.question_id.clone()))
}

/// `GET /api/interviews/{id}` (any role of that interview): the interview as that role sees it.
pub async fn get_interview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<InterviewView>, AppError> {
    let (id, role) = auth::role_in(&state, &parts, &id).await?;
    let store = state.store.clone();
    let lookup = id.clone();
    let (i, status, current) = blocking(move || {
        let Some(interview) = store.get_interview(&lookup)? else {
            return Ok(None);
        };
        let status = store.status(&lookup)?;
        let current = current_question(&*store, &interview)?;
        let stage = match interview.mode {
            InterviewMode::TakeHome => {
                Some(crate::take_home_api::read_round(&*store, &interview)?.stage())
            }
            InterviewMode::Live => None,
        };
        let current =
            current.filter(|_| crate::take_home_api::question_visible(interview.mode, stage, role));
        Ok(Some((interview, status, current)))
    })
    .await?
    .ok_or(AppError::NotFound("no such interview"))?;
    // A take-home's candidate reads the question only while the clock runs.
    let question = current
        .as_deref()
        .and_then(|q| state.questions.get(q))
        .map(|q| {
            if role.can_read_scorecard() {
                QuestionView::Full(Box::new((*q).clone()))
            } else {
                QuestionView::Candidate(q.for_candidate())
            }
        });
    let on = current
        .as_deref()
        .and_then(|q| state.questions.get(q))
        .map(|q| q.environment.clone());
    let environment = duet_protocol::run_environment(on.as_deref(), &i.environment).to_owned();
    Ok(Json(InterviewView {
        environment,
        status,
        id: i.id,
        title: i.title,
        candidate_name: i.candidate_name,
        role,
        created_at: i.created_at,
        question,
        mode: i.mode,
    }))
}

fn unknown_question(id: &str) -> AppError {
    AppError::NotFoundMsg(format!(
        "no question {id:?} in the bank (GET /api/questions lists them)"
    ))
}

/// `POST /api/interviews/{id}/question` (interviewer): moves the room to another question; its
/// starter replaces `main.py` for everyone. Answered once the switch is stored.
pub async fn switch_question(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<SwitchQuestion>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    if !role.can_lead_interview() {
        return Err(AppError::Forbidden(
            "only the interviewer switches questions",
        ));
    }
    // A take-home's candidate works alone on the question they were sent: staff only watch.
    let store = state.store.clone();
    let lookup = interview.clone();
    let take_home = blocking(move || store.get_interview(&lookup))
        .await?
        .is_some_and(|i| i.mode == InterviewMode::TakeHome);
    if take_home {
        return Err(AppError::Conflict(
            "a take-home's question is fixed: staff watch the round read-only".into(),
        ));
    }
    let req = body.read()?;
    let question = state
        .questions
        .get(&req.question_id)
        .ok_or_else(|| unknown_question(&req.question_id))?;
    // The room runs in the question's environment from the switch on: one this server cannot
    // run is refused before anything changes.
    checked_environment(&state, Some(&question.environment))?;
    let switched = ask_room(&state, &interview, |reply| RoomCmd::SwitchQuestion {
        question: question.clone(),
        by: role,
        reply,
    })
    .await?
    .map_err(|_| {
        AppError::Conflict("the interview has ended: its question can no longer change".into())
    })?;
    // One durable write: the log's switch record is the interview's current question.
    Ok(Json(serde_json::json!({
        "question_id": question.id(),
        "seq": switched.seq,
        "restored": switched.restored,
    })))
}

/// `GET /api/questions` (admin or an interviewer): the bank, without the questions' bodies.
pub async fn list_questions(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<QuestionSummary>>, AppError> {
    auth::require_admin_or_interviewer(&state, &parts).await?;
    Ok(Json(state.questions.list()))
}

/// `GET /api/questions/{id}` (admin or an interviewer): one question whole.
pub async fn get_question(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Question>, AppError> {
    auth::require_admin_or_interviewer(&state, &parts).await?;
    let question = state
        .questions
        .get(&id)
        .ok_or_else(|| unknown_question(&id))?;
    Ok(Json((*question).clone()))
}

/// `GET /healthz`: whether the store and the sandbox are usable. 503 when the store is not
/// (nothing works then); 200 with `"status": "degraded"` when only the sandbox is not (editing
/// still works, runs do not).
pub async fn healthz(State(state): State<AppState>) -> Response {
    // A read and a committed write through the log's own path: a full disk or a read-only
    // database shows here even while no room is writing.
    let probe =
        tokio::time::timeout(std::time::Duration::from_secs(2), state.store.probe_write()).await;
    let writes_ok = matches!(probe, Ok(Ok(Ok(()))));
    let write_problem = match &probe {
        Ok(Ok(Err(e))) => Some(e.failure().to_string()),
        Ok(Err(_)) => Some("the store's writer has stopped".to_owned()),
        Err(_) => Some("no commit within 2 s".to_owned()),
        Ok(Ok(Ok(()))) => None,
    };
    let store = state.store.clone();
    let read = blocking(move || store.ping()).await;
    let reads_ok = read.is_ok();
    let read_problem = read.err().map(|e| e.to_string());
    let store_ok = writes_ok && reads_ok;
    let sandbox = state.sandbox.health();
    let all_ok = store_ok && sandbox.status == "ok";
    let body = serde_json::json!({
        "status": if all_ok { "ok" } else { "degraded" },
        "store": if store_ok { "ok" } else if writes_ok { "unreadable" } else { "failing writes" },
        "store_problem": write_problem.or(read_problem),
        "sandbox": sandbox,
        "rooms_loaded": state.rooms.loaded(),
    });
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics` (admin): Prometheus text format.
pub async fn metrics(State(state): State<AppState>, parts: Parts) -> Result<Response, AppError> {
    auth::require_admin(&state, &parts).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render() + &crate::metrics::render_sandbox(&state.sandbox.health()),
    )
        .into_response())
}

pub async fn not_found() -> AppError {
    AppError::NotFound("no such endpoint")
}
