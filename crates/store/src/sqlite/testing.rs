//! What the store's tests share: a log record to append and an interview to keep it under.

use super::SqliteStore;
use crate::{Interview, InterviewStore};
use duet_protocol::{Actor, EventKind, InterviewId, LogRecord};

pub(super) fn record(seq: u64, kind: EventKind) -> LogRecord {
    LogRecord {
        seq,
        at_ms: 1000 + seq as i64,
        kind,
        by: Actor::Candidate,
        data: vec![seq as u8; 3],
    }
}

/// Creates an interview named `name` (a log is kept only for one that exists).
pub(super) async fn created(store: &SqliteStore, name: &str) -> InterviewId {
    let id = InterviewId::parse(name).unwrap();
    let interview = Interview {
        id: id.clone(),
        title: "T".into(),
        candidate_name: "Ada".into(),
        created_at: 0,
        question_id: None,
        candidate_ref: None,
        mode: duet_protocol::InterviewMode::Live,
        time_limit_minutes: None,
        environment: "python".into(),
    };
    store
        .create_interview(&interview, &[])
        .await
        .unwrap()
        .unwrap();
    id
}
