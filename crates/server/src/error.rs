//! The server's error type and how each maps to an HTTP status and a JSON body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_protocol::{ErrorBody, ErrorDetail};

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No token, or a token nobody issued.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token whose role lacks the capability.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such resource, or the token belongs to another interview.
    #[error("{0}")]
    NotFound(&'static str),
    /// No such resource, said with its name.
    #[error("{0}")]
    NotFoundMsg(String),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the endpoint accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Too many runs in the last minute.
    #[error(
        "rate limit: at most {limit} runs a minute per participant; retry in {retry_after_secs} s"
    )]
    RateLimited { retry_after_secs: u64, limit: usize },
    /// A token holds as many websockets as it may.
    #[error("{0}")]
    TooManySockets(String),
    /// The request conflicts with the resource's state (a run that is not running).
    #[error("{0}")]
    Conflict(String),
    /// A dependency is busy or unavailable right now (the sandbox, a reloading room).
    #[error("{0}")]
    Unavailable(String),
    /// Something broke inside; the detail goes to the log, not the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound(_) | AppError::NotFoundMsg(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::TooManySockets(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_sockets"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<duet_store::StoreError> for AppError {
    fn from(e: duet_store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<axum::extract::rejection::BytesRejection> for AppError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge(format!(
                "request body over the {} byte limit",
                crate::MAX_BODY
            ))
        } else {
            AppError::BadRequest(format!("could not read the body: {e}"))
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let AppError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}
