//! Tokens: minting, hashing, and finding out who a request speaks for.
//!
//! A token is 256 bits from the operating system's CSPRNG, base64url-encoded. Only its SHA-256
//! is stored. Per-interview endpoints take it as `Authorization: Bearer T` or `?token=T`
//! (browsers cannot set headers on websockets).

use crate::error::AppError;
use crate::AppState;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use duet_protocol::{InterviewId, Role};
use duet_store::TokenHash;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time whatever the contents.
pub fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of a request: the bearer header first, then the `token` query parameter.
pub fn token_of(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
    }
    let query = parts.uri.query()?;
    url_query_value(query, "token")
}

fn url_query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        // Tokens are base64url: no percent-escapes to undo.
        (k == key && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Which interview and role a token hash belongs to, looked up on a blocking thread.
async fn lookup(
    state: &AppState,
    hashed: TokenHash,
) -> Result<Option<(InterviewId, Role)>, AppError> {
    let store = state.store.clone();
    crate::api::blocking(move || store.find_token(&hashed)).await
}

/// Checks the admin token. A role token is known but lacks the capability: 403.
pub async fn require_admin(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    let token = token_of(parts).ok_or(AppError::Unauthorized("missing admin token"))?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) {
        return Ok(());
    }
    match lookup(state, hashed).await? {
        Some(_) => Err(AppError::Forbidden(
            "this needs the admin token, not an interview's role token",
        )),
        None => Err(AppError::Unauthorized("invalid admin token")),
    }
}

/// The admin token, or any interview's interviewer token (the question bank is theirs to read).
pub async fn require_admin_or_interviewer(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    let token = token_of(parts).ok_or(AppError::Unauthorized("missing token"))?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) {
        return Ok(());
    }
    match lookup(state, hashed).await? {
        Some((_, Role::Interviewer)) => Ok(()),
        Some(_) => Err(AppError::Forbidden(
            "the question bank is for the admin and interviewers",
        )),
        None => Err(AppError::Unauthorized("invalid token")),
    }
}

/// Finds the role a request has in the interview `id` names.
/// No or unknown token: 401. A token of another interview: 404 (its existence is not revealed).
pub async fn role_in(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let token = token_of(parts).ok_or(AppError::Unauthorized(
        "missing token: send Authorization: Bearer <token> or ?token=<token>",
    ))?;
    let found = lookup(state, hash(&token)).await?;
    let (interview, role) = found.ok_or(AppError::Unauthorized("invalid token"))?;
    if interview.as_str() != id {
        return Err(AppError::NotFound("no such interview"));
    }
    Ok((interview, role))
}
