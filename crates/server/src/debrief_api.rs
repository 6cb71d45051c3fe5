//! The debrief: a candidate's loop side by side (every interview with one `candidate_ref`),
//! blind until the reader's own scorecard is submitted.

use crate::api::blocking;
use crate::auth;
use crate::error::AppError;
use crate::scorecard_api::{reader, stored_card};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::Json;
use duet_core::ScorecardState;
use duet_protocol::{EventKind, InterviewId, InterviewStatus, Scorecard};
use serde::Serialize;

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
    /// The rubric the cards were scored against: each area's title and what a 1 to a 4 means.
    pub rubric: Vec<duet_core::scorecard::Anchors>,
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
        rubric: duet_core::scorecard::rubric(),
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
