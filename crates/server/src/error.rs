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
    /// A wrong admin token (or one sent where it is not taken): 401, and a failed guess the
    /// per-address throttle counts ([`crate::auth::AuthThrottle`]).
    #[error("{0}")]
    AdminUnauthorized(&'static str),
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
    /// The store failed; its cause says how (a full disk and a read-only store answer 503 and
    /// say so; other failures are internal).
    #[error("store: {0}")]
    Store(#[from] duet_store::StoreError),
    /// A blocking task the request waited on panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Something broke inside while `doing` something; the cause is kept for the log.
    #[error("{doing} failed")]
    Failed {
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Something broke inside, with no cause to carry; the detail goes to the log, not the
    /// client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Unauthorized(_) | AppError::AdminUnauthorized(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
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
            AppError::Store(e) => store_status(e),
            AppError::Internal(_) | AppError::Task(_) | AppError::Failed { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// What the client is told: the message for a 4xx or a store failure it can act on,
    /// nothing internal for a 500 (the detail, with its chain of causes, goes to the log).
    fn public_message(&self) -> String {
        use duet_store::{Failure, StoreError};
        match self {
            AppError::Store(StoreError::NoSuchInterview) => "no such interview".to_owned(),
            AppError::Store(StoreError::RoomFailed | StoreError::WriterGone) => {
                "the store cannot take writes right now; try again shortly".to_owned()
            }
            AppError::Store(e) => match e.failure() {
                Failure::DiskFull => {
                    "the server's disk is full: nothing more can be stored until an operator frees space"
                        .to_owned()
                }
                Failure::ReadOnly => {
                    "the server's storage is read-only: nothing can be stored until an operator fixes it"
                        .to_owned()
                }
                Failure::Io | Failure::Other => "internal server error".to_owned(),
            },
            AppError::Internal(_) | AppError::Task(_) | AppError::Failed { .. } => {
                "internal server error".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// A store failure as an HTTP status: one an operator must fix (a full disk, a read-only
/// store) or that passes (a room reloading after a failed write) is 503 with its kind; a
/// deleted interview is 404; anything else is a 500.
fn store_status(e: &duet_store::StoreError) -> (StatusCode, &'static str) {
    use duet_store::{Failure, StoreError};
    match e {
        StoreError::NoSuchInterview => (StatusCode::NOT_FOUND, "not_found"),
        StoreError::RoomFailed | StoreError::WriterGone => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        _ => match e.failure() {
            Failure::DiskFull => (StatusCode::SERVICE_UNAVAILABLE, "storage_full"),
            Failure::ReadOnly => (StatusCode::SERVICE_UNAVAILABLE, "storage_read_only"),
            Failure::Io | Failure::Other => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        },
    }
}

impl From<axum::extract::rejection::BytesRejection> for AppError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The limit is the endpoint's: 64 KiB, or 512 KiB for runs and stdin.
            AppError::TooLarge("the request body is larger than this endpoint accepts".into())
        } else {
            AppError::BadRequest(format!("could not read the body: {e}"))
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // The whole chain of causes, for the operator.
            let mut detail = self.to_string();
            let mut source = std::error::Error::source(&self);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(%detail, %status, "request failed");
        }
        let message = self.public_message();
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let AppError::AdminUnauthorized(_) = self {
            response
                .extensions_mut()
                .insert(crate::auth::AdminGuessFailed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use duet_store::{Failure, StoreError};

    async fn answer(e: AppError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_full_disk_is_a_503_that_says_so_and_a_corrupt_store_a_500_that_says_nothing() {
        let full = StoreError::WriteFailed {
            failure: Failure::DiskFull,
            message: "database or disk is full".into(),
        };
        let (status, body) = answer(full.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "storage_full");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk is full")));

        let read_only = StoreError::WriteFailed {
            failure: Failure::ReadOnly,
            message: "attempt to write a readonly database".into(),
        };
        let (status, body) = answer(read_only.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "storage_read_only");

        let corrupt = StoreError::Corrupt("secret internals: row 7".into());
        let (status, body) = answer(corrupt.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["message"], "internal server error");

        let gone = StoreError::NoSuchInterview;
        assert_eq!(answer(gone.into()).await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn internal_errors_keep_their_cause_for_the_log() {
        let cause = std::io::Error::other("the engine said no");
        let e = AppError::Failed {
            doing: "starting a run",
            source: Box::new(cause),
        };
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("the engine said no"));
    }
}
