//! The people endpoints: sign-in and sign-out, people (admins invite, change and disable
//! them), one-time set-password links, personal API tokens, interview panels, "my interviews"
//! and the audit log. How a request is authenticated is in `session.rs` and `auth.rs`.

use crate::api::{blocking, written};
use crate::auth::{self, AdminActor};
use crate::body::{JsonBody, Shape};
use crate::error::AppError;
use crate::rooms::now_ms;
use crate::session::{self, Staff, Via};
use crate::sockets::Revoked;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_protocol::{
    ApiTokenCreated, ApiTokenInfo, AuditAction, AuditPage, InterviewId, InterviewStatus,
    InterviewSummary, MyInterview, MyInterviews, NewApiToken, NewPerson, Panel, PasswordLink,
    PasswordLinkView, Person, PersonState, PersonUpdate, Role, SessionView, SetPassword, SignIn,
    StaffRole,
};
use duet_store::{NewAudit, StoreError};
use serde::Deserialize;

const MAX_NAME: usize = 100;
/// People on one panel at most.
const MAX_PANEL: usize = 20;
/// Personal tokens one person may hold.
const MAX_TOKENS: usize = 20;

impl Shape for SignIn {
    const SHAPE: &'static str = r#"{"email": str, "password": str}"#;
}
impl Shape for NewPerson {
    const SHAPE: &'static str =
        r#"{"email": str, "name": str, "role": "admin" | "interviewer" | "reviewer"}"#;
}
impl Shape for PersonUpdate {
    const SHAPE: &'static str = r#"{"name": optional str, "role": optional "admin" | "interviewer" | "reviewer", "state": optional "active" | "disabled"}"#;
}
impl Shape for SetPassword {
    const SHAPE: &'static str = r#"{"password": str}"#;
}
impl Shape for NewApiToken {
    const SHAPE: &'static str = r#"{"name": str}"#;
}
impl Shape for Panel {
    const SHAPE: &'static str = r#"{"interviewers": [person id], "reviewers": [person id]}"#;
}

/// Writes a line of the audit log. A failure to write it is logged; the request it records
/// has happened and is answered anyway.
pub async fn audit(
    state: &AppState,
    actor: String,
    action: AuditAction,
    target: Option<String>,
    parts: Option<&Parts>,
) {
    let entry = NewAudit {
        at: now_ms(),
        actor,
        action,
        target,
        from: parts.and_then(session::client_ip).map(|ip| ip.to_string()),
    };
    if let Err(e) = written(state.store.audit(&entry)).await {
        tracing::error!(error = %e, action = action.as_str(), "audit: could not record");
    }
}

fn map_store(e: AppError) -> AppError {
    match e {
        AppError::Store(StoreError::EmailTaken) => {
            AppError::Conflict("someone has this email address already".into())
        }
        AppError::Store(StoreError::NoSuchPerson) => AppError::NotFound("no such person"),
        AppError::Store(StoreError::NoSuchToken) => AppError::NotFound("no such token"),
        AppError::Store(StoreError::LinkUnusable) => {
            AppError::NotFound("this link is unknown, used or expired; ask an admin for a new one")
        }
        other => other,
    }
}

fn checked_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "name must have 1 to {MAX_NAME} characters and no control characters"
        )));
    }
    Ok(name.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// `POST /api/session`: signs in with an email and a password; sets the session cookie.
/// Wrong password, unknown email, disabled person, or no password yet: the same 401 after the
/// same work. Locked out (too many failures for the account or from the address): 429.
pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<SignIn>,
) -> Result<Response, AppError> {
    session::check_csrf(&state, &parts)?;
    let req = body.read()?;
    // Not an address: still throttled and audited under what was sent, cut to an address's
    // length.
    let email = session::normalized_email(&req.email)
        .unwrap_or_else(|| req.email.trim().to_lowercase().chars().take(254).collect());
    let ip = session::client_ip(&parts);
    if let Some((secs, what)) = state.sessions.locked_for(ip, &email) {
        // Not audited: a flood of locked-out tries would write a row each, for free. The
        // failures that led to the lockout are audited.
        return Ok(session::locked_out(secs, what));
    }
    let store = state.store.clone();
    let lookup = email.clone();
    let found = blocking(move || store.person_by_email(&lookup)).await?;
    let (person, stored) = match found {
        Some((person, stored)) => (Some(person), stored),
        None => (None, None),
    };
    let matches = state.sessions.verify(req.password, stored).await?;
    let person = person.filter(|p| matches && p.state == PersonState::Active);
    let Some(person) = person else {
        state.sessions.failed(ip, &email);
        audit(&state, email, AuditAction::SignInFailed, None, Some(&parts)).await;
        return Err(AppError::Unauthorized("wrong email or password"));
    };
    let (cookie, expires_at) = session::start(&state, &person).await?;
    audit(
        &state,
        person.email.clone(),
        AuditAction::SignedIn,
        None,
        Some(&parts),
    )
    .await;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionView { person, expires_at }),
    )
        .into_response())
}

/// `GET /api/session`: who is signed in (by the cookie or a personal token).
pub async fn whoami(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<SessionView>, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    let expires_at = match &staff.via {
        Via::Session(hash) => {
            let store = state.store.clone();
            let hash = *hash;
            blocking(move || store.session(&hash))
                .await?
                .map_or(0, |s| s.expires_at)
        }
        Via::ApiToken(_) => 0,
    };
    Ok(Json(SessionView {
        person: staff.person,
        expires_at,
    }))
}

/// `DELETE /api/session`: signs this session out (its websockets close) and clears the cookie.
pub async fn sign_out(State(state): State<AppState>, parts: Parts) -> Result<Response, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    if let Via::Session(hash) = &staff.via {
        written(state.store.end_session(hash)).await?;
        state.sockets.revoke_session(hash);
    }
    audit(
        &state,
        staff.person.email,
        AuditAction::SignedOut,
        None,
        Some(&parts),
    )
    .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.sessions.cookie(None))],
    )
        .into_response())
}

/// `DELETE /api/me/sessions`: signs the person out everywhere (every session of theirs ends,
/// and their websockets close).
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Response, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    written(state.store.end_sessions_of(&staff.person.id)).await?;
    state
        .sockets
        .revoke_person(&staff.person.id, Revoked::SignedOutEverywhere);
    audit(
        &state,
        staff.person.email,
        AuditAction::SignedOut,
        Some("everywhere".into()),
        Some(&parts),
    )
    .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.sessions.cookie(None))],
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// People

/// `GET /api/people` (admin): everyone, by email.
pub async fn list_people(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<Person>>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let store = state.store.clone();
    Ok(Json(blocking(move || store.people()).await?))
}

/// A fresh one-time link for `person`, stored (hashed) and shown once.
async fn password_link(state: &AppState, person: Person) -> Result<PasswordLink, AppError> {
    let token = auth::random_token(32);
    let expires_at = now_ms() + state.sessions.settings().password_link().as_millis() as i64;
    written(
        state
            .store
            .issue_password_link(&person.id, &auth::hash(&token), expires_at),
    )
    .await
    .map_err(map_store)?;
    let link = password_url(&state.public_url, &token);
    Ok(PasswordLink {
        person,
        link,
        expires_at,
    })
}

/// The page that sets a password; the token rides in the fragment (never sent to a server).
pub fn password_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/password#token={token}",
        public_url.trim_end_matches('/')
    )
}

/// `POST /api/people` (admin): invites a person; answers 201 with their one-time link to set a
/// password. 409 if the address is someone's already.
pub async fn invite(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<NewPerson>,
) -> Result<Response, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let req = body.read()?;
    let email = session::normalized_email(&req.email)
        .ok_or_else(|| AppError::BadRequest("email is not an email address".into()))?;
    let person = Person {
        id: auth::random_token(12),
        email,
        name: checked_name(&req.name)?,
        role: req.role,
        state: PersonState::Active,
        created_at: now_ms(),
        password_set: false,
    };
    written(state.store.add_person(&person))
        .await
        .map_err(map_store)?;
    let target = Some(format!("{} ({})", person.email, person.role));
    audit(
        &state,
        admin.name(),
        AuditAction::PersonAdded,
        target,
        Some(&parts),
    )
    .await;
    let link = password_link(&state, person).await?;
    crate::mail::invitation(&state, &link).await;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

/// `PATCH /api/people/{id}` (admin): changes a person's name, role or state. Disabling ends
/// their sessions and closes their websockets at once. An admin cannot disable or demote
/// themselves (409): another admin, or the admin token, must.
pub async fn update_person(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<PersonUpdate>,
) -> Result<Json<Person>, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let mut update = body.read()?;
    if let Some(name) = &update.name {
        update.name = Some(checked_name(name)?);
    }
    if let AdminActor::Person(me) = &admin {
        let demoted = update.role.is_some_and(|r| r != StaffRole::Admin);
        if me.id == id && (demoted || update.state == Some(PersonState::Disabled)) {
            return Err(AppError::Conflict(
                "you cannot disable or demote yourself; another admin can".into(),
            ));
        }
    }
    written(state.store.update_person(&id, &update))
        .await
        .map_err(map_store)?;
    if update.state == Some(PersonState::Disabled) {
        state.sockets.revoke_person(&id, Revoked::Disabled);
    }
    let store = state.store.clone();
    let lookup = id.clone();
    let person = blocking(move || store.person(&lookup))
        .await?
        .ok_or(AppError::NotFound("no such person"))?;
    let action = match update.state {
        Some(PersonState::Disabled) => AuditAction::PersonDisabled,
        _ => AuditAction::PersonChanged,
    };
    let target = Some(format!(
        "{} ({}, {})",
        person.email,
        person.role,
        person.state.as_str()
    ));
    audit(&state, admin.name(), action, target, Some(&parts)).await;
    Ok(Json(person))
}

/// `POST /api/people/{id}/password-link` (admin): a new one-time link to set the person's
/// password (a lost invitation, a forgotten password); their earlier links stop working.
pub async fn reissue_password_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<PasswordLink>, AppError> {
    let admin = auth::require_admin(&state, &parts).await?;
    let store = state.store.clone();
    let person = blocking(move || store.person(&id))
        .await?
        .ok_or(AppError::NotFound("no such person"))?;
    if person.state == PersonState::Disabled {
        return Err(AppError::Conflict(
            "this person is disabled: enable them first".into(),
        ));
    }
    let target = Some(format!("{}: new password link", person.email));
    audit(
        &state,
        admin.name(),
        AuditAction::PersonChanged,
        target,
        Some(&parts),
    )
    .await;
    Ok(Json(password_link(&state, person).await?))
}

/// The one-time link's token: `Authorization: Bearer <token>`.
fn link_token(parts: &Parts) -> Result<duet_store::TokenHash, AppError> {
    auth::token_of(parts)
        .filter(|_| parts.headers.contains_key(header::AUTHORIZATION))
        .map(|t| auth::hash(&t))
        .ok_or(AppError::Unauthorized(
            "send the link's token as Authorization: Bearer <token>",
        ))
}

/// `GET /api/password-link` (the link's token as bearer): whose link it is.
pub async fn view_password_link(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<PasswordLinkView>, AppError> {
    let hash = link_token(&parts)?;
    let store = state.store.clone();
    let (person, expires_at) = blocking(move || store.password_link(&hash, now_ms()))
        .await?
        .ok_or_else(|| map_store(AppError::Store(StoreError::LinkUnusable)))?;
    Ok(Json(PasswordLinkView {
        email: person.email,
        name: person.name,
        expires_at,
    }))
}

/// `PUT /api/password-link` (the link's token as bearer): sets the password; the link works
/// this once. The person's other sessions end.
pub async fn use_password_link(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<SetPassword>,
) -> Result<StatusCode, AppError> {
    let hash = link_token(&parts)?;
    let req = body.read()?;
    if let Some(problem) = session::password_problem(&req.password) {
        return Err(AppError::BadRequest(problem));
    }
    let store = state.store.clone();
    let (person, _) = blocking(move || store.password_link(&hash, now_ms()))
        .await?
        .ok_or_else(|| map_store(AppError::Store(StoreError::LinkUnusable)))?;
    let phc = state.sessions.hash_password(req.password).await?;
    written(state.store.use_password_link(&hash, &phc, now_ms()))
        .await
        .map_err(map_store)?;
    state
        .sockets
        .revoke_person(&person.id, Revoked::PasswordSet);
    audit(
        &state,
        person.email,
        AuditAction::PasswordSet,
        None,
        Some(&parts),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Personal API tokens

/// `GET /api/me/tokens`: the person's tokens (never the tokens themselves).
pub async fn list_tokens(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<ApiTokenInfo>>, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.api_tokens_of(&staff.person.id)).await?,
    ))
}

/// `POST /api/me/tokens` (signed in by session): a new personal token, shown this once. A
/// token cannot mint more tokens.
pub async fn create_token(
    State(state): State<AppState>,
    parts: Parts,
    body: JsonBody<NewApiToken>,
) -> Result<Response, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    if !matches!(staff.via, Via::Session(_)) {
        return Err(AppError::Forbidden(
            "personal tokens are created from a signed-in session, not with another token",
        ));
    }
    let req = body.read()?;
    let name = checked_name(&req.name)?;
    let store = state.store.clone();
    let owner = staff.person.id.clone();
    if blocking(move || store.api_tokens_of(&owner)).await?.len() >= MAX_TOKENS {
        return Err(AppError::Conflict(format!(
            "you hold {MAX_TOKENS} tokens already; revoke one first"
        )));
    }
    let token = format!("{}{}", session::API_TOKEN_PREFIX, auth::random_token(32));
    let info = ApiTokenInfo {
        id: auth::random_token(9),
        name,
        created_at: now_ms(),
        last_used_at: None,
    };
    written(
        state
            .store
            .add_api_token(&staff.person.id, &auth::hash(&token), &info),
    )
    .await?;
    audit(
        &state,
        staff.person.email,
        AuditAction::TokenCreated,
        Some(info.name.clone()),
        Some(&parts),
    )
    .await;
    Ok((StatusCode::CREATED, Json(ApiTokenCreated { info, token })).into_response())
}

/// `DELETE /api/me/tokens/{id}`: revokes one of the person's tokens; it fails at once.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<StatusCode, AppError> {
    let staff = session::require_staff(&state, &parts).await?;
    written(state.store.revoke_api_token(&staff.person.id, &id))
        .await
        .map_err(map_store)?;
    // The sockets opened with it close now, as a request with it fails now.
    state.sockets.revoke_token(&id);
    audit(
        &state,
        staff.person.email,
        AuditAction::TokenRevoked,
        Some(id),
        Some(&parts),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Panels and "my interviews"

/// `GET /api/interviews/{id}/panel` (admin, or anyone on the panel).
pub async fn get_panel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Panel>, AppError> {
    let interview = match auth::require_admin(&state, &parts).await {
        Ok(_) => InterviewId::parse(&id).ok_or(AppError::NotFound("no such interview"))?,
        Err(AppError::Forbidden(_)) => {
            let staff = session::require_staff(&state, &parts).await?;
            auth::seat_in(&state, &staff.person, &id).await?.0
        }
        Err(e) => return Err(e),
    };
    let store = state.store.clone();
    let seats = blocking(move || {
        if store.get_interview(&interview)?.is_none() {
            return Ok(None);
        }
        store.panel(&interview).map(Some)
    })
    .await?
    .ok_or(AppError::NotFound("no such interview"))?;
    Ok(Json(panel_of(seats)))
}

fn panel_of(seats: Vec<(String, Role)>) -> Panel {
    let mut panel = Panel::default();
    for (person, role) in seats {
        match role {
            Role::Reviewer => panel.reviewers.push(person),
            _ => panel.interviewers.push(person),
        }
    }
    panel
}

/// `PUT /api/interviews/{id}/panel` (admin, or an interviewer on its panel): replaces the
/// panel. Interviewers must be admins or interviewers; reviewers may be anyone on the staff;
/// nobody sits twice. Unknown people: 400, nothing changes.
pub async fn put_panel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<Panel>,
) -> Result<Json<Panel>, AppError> {
    let actor = match auth::require_admin(&state, &parts).await {
        Ok(admin) => admin.name(),
        Err(AppError::Forbidden(_)) => {
            let staff = session::require_staff(&state, &parts).await?;
            let (_, role) = auth::seat_in(&state, &staff.person, &id).await?;
            if role != Role::Interviewer {
                return Err(AppError::Forbidden(
                    "only an admin or the interview's interviewers change its panel",
                ));
            }
            staff.person.email
        }
        Err(e) => return Err(e),
    };
    let interview = InterviewId::parse(&id).ok_or(AppError::NotFound("no such interview"))?;
    let panel = body.read()?;
    let seats: Vec<(String, Role)> = panel
        .interviewers
        .iter()
        .map(|p| (p.clone(), Role::Interviewer))
        .chain(panel.reviewers.iter().map(|p| (p.clone(), Role::Reviewer)))
        .collect();
    if seats.len() > MAX_PANEL {
        return Err(AppError::BadRequest(format!(
            "a panel has at most {MAX_PANEL} people"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some((twice, _)) = seats.iter().find(|(p, _)| !seen.insert(p.clone())) {
        return Err(AppError::BadRequest(format!(
            "{twice} sits on the panel twice"
        )));
    }
    let store = state.store.clone();
    let ids: Vec<String> = panel.interviewers.clone();
    let people = blocking(move || {
        ids.iter()
            .map(|id| store.person(id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    for (id, person) in panel.interviewers.iter().zip(people) {
        match person {
            Some(p) if session::leads(p.role) => {}
            Some(_) => {
                return Err(AppError::BadRequest(format!(
                    "{id} is a reviewer: a reviewer cannot sit as an interviewer"
                )))
            }
            None => return Err(AppError::BadRequest(format!("no person {id}"))),
        }
    }
    written(state.store.set_panel(&interview, &seats))
        .await
        .map_err(|e| match e {
            AppError::Store(StoreError::NoSuchPerson) => {
                AppError::BadRequest("a reviewer named is no person here".into())
            }
            other => other,
        })?;
    audit(
        &state,
        actor,
        AuditAction::PanelChanged,
        Some(id),
        Some(&parts),
    )
    .await;
    Ok(Json(panel_of(seats)))
}

/// `GET /api/me/interviews`: the signed-in person's interviews (the ones whose panel names
/// them; an admin's are all), upcoming, live and ended, newest first.
pub async fn my_interviews(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<MyInterviews>, AppError> {
    let staff: Staff = session::require_staff(&state, &parts).await?;
    let store = state.store.clone();
    let mine = blocking(move || {
        let seats = match staff.person.role {
            StaffRole::Admin => store
                .list_interviews()?
                .into_iter()
                .map(|i| (i, Role::Interviewer))
                .collect(),
            _ => store.seats_of(&staff.person.id)?,
        };
        let mut mine = MyInterviews::default();
        for (interview, role) in seats {
            let status = store.status(&interview.id)?;
            let entry = MyInterview {
                summary: InterviewSummary { interview, status },
                role,
            };
            match status {
                InterviewStatus::Scheduled => mine.upcoming.push(entry),
                InterviewStatus::Live => mine.live.push(entry),
                InterviewStatus::Ended => mine.ended.push(entry),
            }
        }
        Ok(mine)
    })
    .await?;
    Ok(Json(mine))
}

// ---------------------------------------------------------------------------------------------
// Audit

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/audit?before=&limit=` (admin): the audit log, newest first, 50 a page (at most
/// 500).
pub async fn audit_log(
    State(state): State<AppState>,
    parts: Parts,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let Query(query) = query.map_err(|e| AppError::BadRequest(format!("query: {e}")))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let before = query.before;
    let store = state.store.clone();
    let entries = blocking(move || store.audit_page(before, limit)).await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
