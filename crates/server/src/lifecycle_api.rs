//! An interview's lifecycle: the interviewer ends it, the admin deletes it (and the retention
//! job does, in `jobs.rs`). Deletion closes the room first, so nothing of it is written after
//! the erase; the store refuses whatever still arrives for it.

use crate::api::{ask_room, blocking, written};
use crate::auth;
use crate::error::AppError;
use crate::rooms::RoomCmd;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use duet_protocol::{InterviewId, InterviewStatus};
use tokio::sync::oneshot;

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
    let admin = auth::require_admin(&state, &parts).await?;
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
    let target = Some(interview.to_string());
    crate::people_api::audit(
        &state,
        admin.name(),
        duet_protocol::AuditAction::InterviewDeleted,
        target,
        Some(&parts),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
