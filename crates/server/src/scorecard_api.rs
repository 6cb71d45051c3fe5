//! The interviewer's scorecard and private notes, the interview's lifecycle (end, delete,
//! retention), and the blind debrief across a candidate's interviews.
//!
//! Every change goes through the room, so it takes its place on the room's sequence and is
//! answered only once stored; reads come from the log through the store, on blocking threads.
//! Nothing here is ever served to the candidate.

use crate::api::{ask_room, blocking, written};
use crate::auth;
use crate::error::AppError;
use crate::rooms::RoomCmd;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use duet_core::scorecard::{rubric, Anchors};
use duet_core::{ScorecardError, ScorecardState};
use duet_protocol::{
    EventKind, Hints, InterviewId, InterviewStatus, NewNote, Note, Record, Role, Scorecard,
    ScorecardUpdate,
};
use serde::Serialize;
use tokio::sync::oneshot;

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
async fn reader(
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

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("expected {shape}: {e}")))
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
async fn stored_card(state: &AppState, interview: &InterviewId) -> Result<Scorecard, AppError> {
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Scorecard>, AppError> {
    let interview = writer(&state, &parts, &id).await?;
    let update: ScorecardUpdate = parse(
        &body?,
        r#"{"ratings": {area: 1-4 | null}, "notes": str, "recommendation": "strong_no"|"no"|"yes"|"strong_yes"|null, "level": "mid"|"senior"|null, "evidence": {area: [run_id | seq]}, "version": int}"#,
    )?;
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
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Note>), AppError> {
    let interview = writer(&state, &parts, &id).await?;
    let note: NewNote = parse(&body?, r#"{"text": str}"#)?;
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
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    if role != Role::Candidate {
        return Err(AppError::Forbidden(
            "integrity signals come from the candidate's page",
        ));
    }
    let signal: duet_protocol::NewSignal = parse(
        &body?,
        r#"{"kind": "paste" | "blur", "size": optional int}"#,
    )?;
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

/// `POST /api/interviews/{id}/end` (interviewer): from now on nobody edits or runs code.
pub async fn end(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    if !role.can_lead_interview() {
        return Err(AppError::Forbidden(
            "only the interviewer ends the interview",
        ));
    }
    let seq = ask_room(&state, &interview, |reply| RoomCmd::End { reply }).await?;
    Ok(Json(
        serde_json::json!({ "status": InterviewStatus::Ended, "seq": seq }),
    ))
}

/// Erases an interview: closes its room and every connection, then removes everything of it.
pub async fn erase(state: &AppState, interview: &InterviewId) -> Result<(), AppError> {
    // The room stops first, so nothing of it is written after the erase.
    if let Some(room) = state.rooms.loaded_handle(interview) {
        let (reply, answer) = oneshot::channel();
        if room.tx.send(RoomCmd::Erase { reply }).await.is_ok() {
            let _ = answer.await;
        }
    }
    written(state.store.erase(interview)).await
}

/// `DELETE /api/interviews/{id}` (admin): erases the interview and everything of it.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<StatusCode, AppError> {
    auth::require_admin(&state, &parts).await?;
    let interview = InterviewId::parse(&id).ok_or(AppError::NotFound("no such interview"))?;
    let store = state.store.clone();
    let lookup = interview.clone();
    if blocking(move || store.get_interview(&lookup))
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("no such interview"));
    }
    erase(&state, &interview).await?;
    tracing::info!(interview = %interview, "interview deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// One interview of a candidate's loop in a debrief.
#[derive(Debug, Serialize)]
pub struct DebriefEntry {
    pub interview_id: InterviewId,
    pub title: String,
    pub question_id: Option<String>,
    pub status: InterviewStatus,
    /// `null` until that interview's scorecard is submitted.
    pub scorecard: Option<Scorecard>,
}

/// A candidate's loop side by side.
#[derive(Debug, Serialize)]
pub struct Debrief {
    pub candidate_ref: String,
    pub interviews: Vec<DebriefEntry>,
    /// Per area, the rating each interview gave (in the order of `interviews`).
    pub ratings: Vec<AreaRow>,
    pub recommendations: Vec<Option<duet_protocol::Recommendation>>,
}

#[derive(Debug, Serialize)]
pub struct AreaRow {
    pub area: duet_protocol::Area,
    pub ratings: Vec<Option<u8>>,
}

async fn debrief_of(state: &AppState, candidate_ref: String) -> Result<Debrief, AppError> {
    let store = state.store.clone();
    let wanted = candidate_ref.clone();
    let entries = blocking(move || {
        let mut entries = Vec::new();
        for interview in store.interviews_of(&wanted)? {
            let records = store.read_kinds(&interview.id, &[EventKind::Scorecard])?;
            let card = ScorecardState::from_log(&records).card().clone();
            let question_id = crate::api::current_question(&*store, &interview)?;
            entries.push(DebriefEntry {
                status: store.status(&interview.id)?,
                interview_id: interview.id,
                title: interview.title,
                question_id,
                scorecard: card.submitted_at.is_some().then_some(card),
            });
        }
        Ok(entries)
    })
    .await?;
    let ratings = duet_protocol::Area::ALL
        .into_iter()
        .map(|area| AreaRow {
            area,
            ratings: entries
                .iter()
                .map(|e| {
                    e.scorecard
                        .as_ref()
                        .and_then(|c| c.ratings.get(&area).copied().flatten())
                })
                .collect(),
        })
        .collect();
    let recommendations = entries
        .iter()
        .map(|e| e.scorecard.as_ref().and_then(|c| c.recommendation))
        .collect();
    Ok(Debrief {
        candidate_ref,
        interviews: entries,
        ratings,
        recommendations,
    })
}

/// `GET /api/candidates/{ref}/debrief` (admin): every interview of the loop with its submitted
/// scorecard, the ratings per area in one table, and the recommendations.
pub async fn candidate_debrief(
    State(state): State<AppState>,
    Path(candidate_ref): Path<String>,
    parts: Parts,
) -> Result<Json<Debrief>, AppError> {
    auth::require_admin(&state, &parts).await?;
    let debrief = debrief_of(&state, candidate_ref).await?;
    if debrief.interviews.is_empty() {
        return Err(AppError::NotFound("no interviews with that candidate_ref"));
    }
    Ok(Json(debrief))
}

/// `GET /api/interviews/{id}/debrief` (interviewer, reviewer): the other scorecards of the
/// candidate's loop, only once this interview's own scorecard is submitted (a blind debrief).
pub async fn interview_debrief(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Debrief>, AppError> {
    let (interview, _) = reader(&state, &parts, &id).await?;
    if stored_card(&state, &interview)
        .await?
        .submitted_at
        .is_none()
    {
        return Err(AppError::Forbidden("submit your own scorecard first: the others stay hidden until then, so they cannot bias yours"));
    }
    let store = state.store.clone();
    let lookup = interview.clone();
    let meta = blocking(move || store.get_interview(&lookup))
        .await?
        .ok_or(AppError::NotFound("no such interview"))?;
    let Some(candidate_ref) = meta.candidate_ref else {
        return Err(AppError::NotFoundMsg(
            "this interview has no candidate_ref, so no loop to debrief".into(),
        ));
    };
    Ok(Json(debrief_of(&state, candidate_ref).await?))
}

/// Deletes ended interviews older than `days`, every hour, until `shutdown`.
pub async fn retention(state: AppState, days: u64, shutdown: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let cutoff = crate::rooms::now_ms()
            - i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        let store = state.store.clone();
        let due = match blocking(move || store.ended_before(cutoff)).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "retention: could not list ended interviews");
                continue;
            }
        };
        for interview in due {
            match erase(&state, &interview).await {
                Ok(()) => {
                    tracing::info!(interview = %interview, days, "retention: deleted an interview ended more than the retention ago")
                }
                Err(e) => {
                    tracing::warn!(interview = %interview, error = %e, "retention: delete failed")
                }
            }
        }
    }
}
