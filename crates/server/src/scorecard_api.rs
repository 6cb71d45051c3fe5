//! The interviewer's scorecard, private notes and the candidate's integrity signals. (The
//! interview's end and deletion are in `lifecycle_api.rs`, the debrief in `debrief_api.rs`.)
//!
//! Every change goes through the room, so it takes its place on the room's sequence and is
//! answered only once stored; reads come from the log through the store, on blocking threads.
//! Nothing here is ever served to the candidate.

use crate::api::{ask_room, blocking};
use crate::auth;
use crate::body::JsonBody;
use crate::error::AppError;
use crate::rooms::RoomCmd;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use duet_core::scorecard::{rubric, Anchors};
use duet_core::{ScorecardError, ScorecardState};
use duet_protocol::{
    EventKind, Hints, InterviewId, NewNote, Note, Record, Role, Scorecard, ScorecardUpdate,
};
use serde::Serialize;

/// A run as the scorecard lists it: enough to attach as evidence.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub kind: duet_protocol::RunKind,
    pub by: Role,
    pub at: i64,
    pub status: duet_protocol::RunStatus,
    pub tests_passed: Option<u32>,
    pub tests_failed: Option<u32>,
}

impl From<&duet_core::RunEntry> for RunSummary {
    fn from(run: &duet_core::RunEntry) -> RunSummary {
        let run = &run.summary;
        RunSummary {
            run_id: run.run_id.clone(),
            kind: run.kind,
            by: run.by,
            at: run.started_at,
            status: run.status,
            tests_passed: run.tests.as_ref().map(|t| t.passed),
            tests_failed: run.tests.as_ref().map(|t| t.failed + t.errors),
        }
    }
}

/// The question's private guidance, served with the scorecard.
#[derive(Debug, Serialize)]
pub struct Guidance {
    pub question_id: String,
    pub title: String,
    pub hints: Hints,
    pub follow_ups: Vec<String>,
}

/// `GET /api/interviews/{id}/scorecard`.
#[derive(Debug, Serialize)]
pub struct ScorecardView {
    pub scorecard: Scorecard,
    pub rubric: Vec<Anchors>,
    pub runs: Vec<RunSummary>,
    pub question: Option<Guidance>,
}

/// The role must be able to read private material (interviewer, reviewer); the candidate: 403.
pub(crate) async fn reader(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let (interview, role) = auth::role_in(state, parts, id).await?;
    if !role.can_read_scorecard() {
        return Err(AppError::Forbidden(
            "the scorecard and notes are the interviewer's and reviewers'",
        ));
    }
    Ok((interview, role))
}

/// Only the interviewer writes.
async fn writer(state: &AppState, parts: &Parts, id: &str) -> Result<InterviewId, AppError> {
    let (interview, role) = auth::role_in(state, parts, id).await?;
    if !role.can_write_scorecard() {
        return Err(match role {
            Role::Reviewer => AppError::Forbidden(
                "reviewers read the scorecard and notes; only the interviewer writes them",
            ),
            _ => AppError::Forbidden("the scorecard and notes are the interviewer's"),
        });
    }
    Ok(interview)
}

impl From<ScorecardError> for AppError {
    fn from(e: ScorecardError) -> AppError {
        match e {
            ScorecardError::Stale { .. } | ScorecardError::Submitted => {
                AppError::Conflict(e.to_string())
            }
            ScorecardError::Invalid(why) => AppError::BadRequest(why),
        }
    }
}

/// The card as the log has it.
pub(crate) async fn stored_card(
    state: &AppState,
    interview: &InterviewId,
) -> Result<Scorecard, AppError> {
    let store = state.store.clone();
    let id = interview.clone();
    let records = blocking(move || store.read_kinds(&id, &[EventKind::Scorecard])).await?;
    Ok(ScorecardState::from_log(&records).card().clone())
}

/// `GET /api/interviews/{id}/scorecard` (interviewer, reviewer): the card, the rubric's anchors,
/// every run of the session, and the question's hints and follow-ups.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<ScorecardView>, AppError> {
    let (interview, role) = reader(&state, &parts, &id).await?;
    let scorecard = stored_card(&state, &interview).await?;
    let store = state.store.clone();
    let id = interview.clone();
    let (records, current) = blocking(move || {
        let records = store.read_kinds(&id, &[EventKind::RunStarted, EventKind::RunFinished])?;
        let current = match store.get_interview(&id)? {
            Some(meta) => crate::api::current_question(&*store, &meta)?,
            None => None,
        };
        Ok((records, current))
    })
    .await?;
    let runs = duet_core::run_index(&records, role)
        .iter()
        .map(RunSummary::from)
        .collect();
    let question = current
        .and_then(|q| state.questions.get(&q))
        .map(|q| Guidance {
            question_id: q.id().to_owned(),
            title: q.summary.title.clone(),
            hints: q.hints.clone(),
            follow_ups: q.follow_ups.clone(),
        });
    Ok(Json(ScorecardView {
        scorecard,
        rubric: rubric(),
        runs,
        question,
    }))
}

/// `PUT /api/interviews/{id}/scorecard` (interviewer): saves the whole card if `version` is the
/// one stored (409 with the current version otherwise).
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<ScorecardUpdate>,
) -> Result<Json<Scorecard>, AppError> {
    let interview = writer(&state, &parts, &id).await?;
    let update = body.read()?;
    let card = ask_room(&state, &interview, |reply| RoomCmd::SaveScorecard {
        update,
        reply,
    })
    .await??;
    Ok(Json(card))
}

/// `POST /api/interviews/{id}/scorecard/submit` (interviewer): locks the card; answered once
/// the lock is stored.
pub async fn submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Scorecard>, AppError> {
    let interview = writer(&state, &parts, &id).await?;
    let card = ask_room(&state, &interview, |reply| RoomCmd::SubmitScorecard {
        reply,
    })
    .await??;
    Ok(Json(card))
}

/// `POST /api/interviews/{id}/notes` (interviewer): a private note at this moment.
pub async fn add_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<NewNote>,
) -> Result<(StatusCode, Json<Note>), AppError> {
    let interview = writer(&state, &parts, &id).await?;
    let note = body.read()?;
    let note = ask_room(&state, &interview, |reply| RoomCmd::AddNote {
        text: note.text,
        reply,
    })
    .await?
    .map_err(AppError::BadRequest)?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /api/interviews/{id}/notes` (interviewer, reviewer): every note, oldest first.
pub async fn notes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Vec<Note>>, AppError> {
    let (interview, _) = reader(&state, &parts, &id).await?;
    let store = state.store.clone();
    let records = blocking(move || store.read_kinds(&interview, &[EventKind::Note])).await?;
    Ok(Json(
        records
            .iter()
            .filter_map(|r| match r.decode() {
                Ok(Record::Note(note)) => Some(note),
                _ => None,
            })
            .collect(),
    ))
}

/// `POST /api/interviews/{id}/signals` (candidate): a large paste (its size) or the tab losing
/// focus, logged for the interviewer's review. `202 {"logged": bool}` (false once the minute's
/// cap is reached or the interview has ended).
pub async fn signal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<duet_protocol::NewSignal>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    if role != Role::Candidate {
        return Err(AppError::Forbidden(
            "integrity signals come from the candidate's page",
        ));
    }
    let signal = body.read()?;
    let logged = ask_room(&state, &interview, |reply| RoomCmd::Signal {
        kind: signal.kind,
        size: signal.size,
        reply,
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "logged": logged })),
    ))
}
