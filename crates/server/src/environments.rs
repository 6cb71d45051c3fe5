//! The sandbox environments an interview's runs can use (`python`, `python-data`): what the
//! engines' images say about themselves, read by the sandbox at its health checks. An
//! environment whose image is missing on every engine is not listed, is reported in
//! `/healthz`, and is refused when an interview asks for it.

use crate::error::AppError;
use crate::{auth, AppState};
use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use duet_protocol::Environment;
use duet_sandbox::Sandbox;

/// Whether `name` is an environment runs can use now (its image is on at least one engine).
pub fn is_known(sandbox: &dyn Sandbox, name: &str) -> bool {
    sandbox.environments().iter().any(|e| e.name == name)
}

/// `GET /api/environments` (the admin token, any role token, or anyone signed in): each usable
/// environment with its Python version and packages.
pub async fn list(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Vec<Environment>>, AppError> {
    auth::require_anyone(&state, &parts).await?;
    Ok(Json(state.sandbox.environments()))
}
