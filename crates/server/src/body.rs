//! Request bodies: one JSON extractor with the app's error shape. The body is read by axum (so
//! its size limit holds) but parsed only when the handler asks, after it checked who is
//! asking: a stranger with a malformed body is told 401, not 400.
//!
//! Each body type says what it looks like ([`Shape`]), so a malformed body is answered with
//! the shape the endpoint takes and serde's reason.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// What a body type looks like, for the message a malformed body gets.
pub trait Shape {
    const SHAPE: &'static str;
}

/// A JSON body of `T`, parsed by [`JsonBody::read`].
pub struct JsonBody<T> {
    bytes: Result<Bytes, BytesRejection>,
    of: PhantomData<T>,
}

impl<S: Send + Sync, T> FromRequest<S> for JsonBody<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonBody {
            bytes: Bytes::from_request(req, state).await,
            of: PhantomData,
        })
    }
}

impl<T: DeserializeOwned + Shape> JsonBody<T> {
    /// The body as `T`: 413 past the endpoint's size limit, 400 saying the shape otherwise.
    pub fn read(self) -> Result<T, AppError> {
        let bytes = self.bytes?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AppError::BadRequest(format!("expected {}: {e}", T::SHAPE)))
    }
}

macro_rules! shapes {
    ($($ty:ty => $shape:literal,)*) => {
        $(impl Shape for $ty {
            const SHAPE: &'static str = $shape;
        })*
    };
}

shapes! {
    duet_protocol::CreateInterview =>
        r#"{"title": str, "candidate_name": str, "question_id": optional str, "candidate_ref": optional str, "mode": optional "live" or "take_home", "time_limit_minutes": optional 30 to 240 (take-home), "environment": optional str, "candidate_email": optional str}"#,
    duet_protocol::SwitchQuestion => r#"{"question_id": str}"#,
    duet_protocol::StartRun => r#"{"kind": "run" | "test" | "lint", "stdin": optional str}"#,
    duet_protocol::RunStdin => r#"{"data": str, "eof": optional bool}"#,
    duet_protocol::ScorecardUpdate =>
        r#"{"ratings": {area: 1-4 | null}, "notes": str, "recommendation": "strong_no"|"no"|"yes"|"strong_yes"|null, "level": "mid"|"senior"|null, "evidence": {area: [run_id | seq]}, "version": int}"#,
    duet_protocol::NewNote => r#"{"text": str}"#,
    duet_protocol::NewSignal => r#"{"kind": "paste" | "blur", "size": optional int}"#,
}
