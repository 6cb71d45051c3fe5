//! The debrief: a candidate's loop side by side (every interview with one `candidate_ref`,
//! every submitted card of each, named by who scored it), blind until the reader's own
//! scorecard is submitted.

use crate::api::blocking;
use crate::auth;
use crate::error::AppError;
use crate::scorecard_api::{author, names, reader, stored_cards};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::Json;
use duet_core::ScorecardState;
use duet_protocol::{Author, EventKind, InterviewId, InterviewStatus, Role, Scorecard};
use serde::Serialize;

/// One interview of a candidate's loop in a debrief.
#[derive(Debug, Serialize)]
pub struct DebriefEntry {
    pub interview_id: InterviewId,
    pub title: String,
    pub question_id: Option<String>,
    pub status: InterviewStatus,
    /// The interviewer link's card: `null` until it is submitted.
    pub scorecard: Option<Scorecard>,
    /// Every submitted card of the interview (the link's first, then the panel's), each with
    /// who scored it.
    pub cards: Vec<DebriefCard>,
}

/// One submitted scorecard and who scored it.
#[derive(Debug, Serialize)]
pub struct DebriefCard {
    pub author: Author,
    pub scorecard: Scorecard,
}

/// One column of the debrief's table: a submitted card, or an interview with none yet.
#[derive(Debug, Serialize)]
pub struct DebriefColumn {
    pub interview_id: InterviewId,
    /// Who scored it; `null` for an interview with no submitted card.
    pub author: Option<Author>,
}

/// A candidate's loop side by side.
#[derive(Debug, Serialize)]
pub struct Debrief {
    pub candidate_ref: String,
    pub interviews: Vec<DebriefEntry>,
    /// The table's columns: each submitted card of each interview, in the order of
    /// `interviews` (an interview with none yet: one column with no author).
    pub columns: Vec<DebriefColumn>,
    /// Per area, the rating of each column.
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
            let state = ScorecardState::from_log(&records);
            let submitted: Vec<(Option<&str>, &Scorecard)> = state
                .cards()
                .filter(|(_, card)| card.submitted_at.is_some())
                .collect();
            let names = names(
                &*store,
                submitted.iter().filter_map(|(a, _)| a.map(str::to_owned)),
            )?;
            let cards = submitted
                .iter()
                .map(|(a, card)| DebriefCard {
                    author: author(*a, &names),
                    scorecard: (*card).clone(),
                })
                .collect();
            let link = state.card();
            let question_id = crate::api::current_question(&*store, &interview)?;
            entries.push(DebriefEntry {
                status: store.status(&interview.id)?,
                interview_id: interview.id,
                title: interview.title,
                question_id,
                scorecard: link.submitted_at.is_some().then(|| link.clone()),
                cards,
            });
        }
        Ok(entries)
    })
    .await?;
    // One column per submitted card; an interview with none keeps an empty column.
    let mut columns = Vec::new();
    let mut cards: Vec<Option<&Scorecard>> = Vec::new();
    for entry in &entries {
        if entry.cards.is_empty() {
            columns.push(DebriefColumn {
                interview_id: entry.interview_id.clone(),
                author: None,
            });
            cards.push(None);
        }
        for card in &entry.cards {
            columns.push(DebriefColumn {
                interview_id: entry.interview_id.clone(),
                author: Some(card.author.clone()),
            });
            cards.push(Some(&card.scorecard));
        }
    }
    let ratings = duet_protocol::Area::ALL
        .into_iter()
        .map(|area| AreaRow {
            area,
            ratings: cards
                .iter()
                .map(|c| c.and_then(|c| c.ratings.get(&area).copied().flatten()))
                .collect(),
        })
        .collect();
    let recommendations = cards
        .iter()
        .map(|c| c.and_then(|c| c.recommendation))
        .collect();
    Ok(Debrief {
        candidate_ref,
        interviews: entries,
        columns,
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

/// `GET /api/interviews/{id}/debrief` (interviewer, reviewer): the scorecards of the candidate's
/// loop, blind: an interviewer sees them only once their own card of this interview is
/// submitted (a signed-in one theirs, the link the link's), a reviewer once any card of it is;
/// a signed-in admin at once (the loop's debrief is theirs to read anyway).
pub async fn interview_debrief(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Debrief>, AppError> {
    let who = reader(&state, &parts, &id).await?;
    let interview = who.interview.clone();
    let cards = stored_cards(&state, &interview).await?;
    let open = match who.role {
        _ if who.is_admin() => true,
        Role::Reviewer => cards.cards().any(|(_, c)| c.submitted_at.is_some()),
        _ => cards.is_submitted(who.author()),
    };
    if !open {
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
