use super::event_body;
use crate::outbox::{Attempt, NewEndpoint, NewMail, Next};
use crate::sqlite::testing::created;
use crate::sqlite::{SqliteConfig, SqliteStore};
use crate::{InterviewStore, LogStore, OutboxStore, StoreError};
use duet_protocol::{
    Actor, DeliveryState, InterviewId, LogRecord, Record, Scorecard, ScorecardChange, WebhookEvent,
};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap();
    (dir, store)
}

async fn endpoint(store: &SqliteStore, id: &str, events: &[WebhookEvent]) {
    let endpoint = NewEndpoint {
        id: id.into(),
        url: format!("https://hooks.example.com/{id}"),
        events: events.to_vec(),
        secret: "a-secret-of-sixteen".into(),
        created_at: 1,
    };
    store.add_webhook(&endpoint).await.unwrap().unwrap();
}

fn record(seq: u64, by: Actor, record: &Record) -> LogRecord {
    LogRecord {
        seq,
        at_ms: 5_000 + seq as i64,
        kind: record.kind(),
        by,
        data: record.encode(),
    }
}

fn scorecard(action: &str) -> Record {
    Record::Scorecard(ScorecardChange {
        action: action.into(),
        scorecard: Scorecard::default(),
        person: None,
    })
}

async fn append(store: &SqliteStore, id: &InterviewId, log: LogRecord) {
    store.append(id, log).await.unwrap().unwrap();
}

fn delivered(at: i64) -> Attempt {
    Attempt {
        at,
        status: Some(200),
        error: None,
        next: Next::Delivered,
    }
}

#[tokio::test]
async fn each_interview_event_is_queued_with_its_record_and_offered_in_order() {
    let (_dir, store) = store();
    endpoint(&store, "all", &WebhookEvent::ALL).await;
    endpoint(&store, "ends", &[WebhookEvent::InterviewEnded]).await;
    let id = created(&store, "orderedRoom").await;
    // The interviewer's join starts nothing; the candidate's first join does, once.
    append(&store, &id, record(1, Actor::Interviewer, &Record::Join)).await;
    append(&store, &id, record(2, Actor::Candidate, &Record::Join)).await;
    append(&store, &id, record(3, Actor::Candidate, &Record::Leave)).await;
    append(&store, &id, record(4, Actor::Candidate, &Record::Join)).await;
    append(
        &store,
        &id,
        record(5, Actor::Interviewer, &scorecard("saved")),
    )
    .await;
    append(&store, &id, record(6, Actor::Interviewer, &Record::End)).await;
    append(
        &store,
        &id,
        record(7, Actor::Interviewer, &scorecard("submitted")),
    )
    .await;

    let events = |webhook: &str| -> Vec<WebhookEvent> {
        let mut listed = store.deliveries(webhook, None, 50).unwrap();
        listed.reverse();
        listed.iter().map(|d| d.event).collect()
    };
    assert_eq!(
        events("all"),
        [
            WebhookEvent::InterviewCreated,
            WebhookEvent::InterviewStarted,
            WebhookEvent::InterviewEnded,
            WebhookEvent::ScorecardSubmitted
        ]
    );
    assert_eq!(events("ends"), [WebhookEvent::InterviewEnded]);

    // Only the head of each (endpoint, interview) chain is due: "all" offers created and
    // nothing after it until created is delivered.
    let mut order = Vec::new();
    for round in 0..4 {
        let due = store.due_deliveries(i64::MAX, 10, &[]).unwrap();
        let mine: Vec<_> = due.iter().filter(|d| d.endpoint_id == "all").collect();
        assert_eq!(mine.len(), 1, "round {round}: {due:?}");
        order.push(mine[0].event_id.clone());
        store
            .record_attempt(mine[0].id, &delivered(round))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        order,
        [
            "evt_orderedRoom_created",
            "evt_orderedRoom_started",
            "evt_orderedRoom_6",
            "evt_orderedRoom_7"
        ]
    );
    let body: serde_json::Value = serde_json::from_str(
        &event_body(&store.reader(), "evt_orderedRoom_7")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["type"], "scorecard.submitted");
    assert_eq!(body["data"]["interview"]["id"], "orderedRoom");
    assert_eq!(body["data"]["seq"], 7);
}

#[tokio::test]
async fn a_failed_attempt_holds_the_interview_back_until_its_retry_and_then_delivers() {
    let (_dir, store) = store();
    endpoint(&store, "hook", &WebhookEvent::ALL).await;
    let id = created(&store, "retryRoom").await;
    append(&store, &id, record(1, Actor::Interviewer, &Record::End)).await;
    let first = store.due_deliveries(10_000, 10, &[]).unwrap();
    assert_eq!(first.len(), 1);
    let retry = Attempt {
        at: 10_000,
        status: Some(503),
        error: Some("503 Service Unavailable".into()),
        next: Next::RetryAt(20_000),
    };
    store
        .record_attempt(first[0].id, &retry)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store.due_deliveries(19_999, 10, &[]).unwrap().is_empty(),
        "neither the failed event nor the one after it is due before the retry"
    );
    let again = store.due_deliveries(20_000, 10, &[]).unwrap();
    assert_eq!((again[0].id, again[0].attempts), (first[0].id, 1));
    assert_eq!(
        again[0].body, first[0].body,
        "every attempt sends the same body"
    );
    assert!(
        store
            .due_deliveries(20_000, 10, &[first[0].id])
            .unwrap()
            .is_empty(),
        "a delivery in flight is not offered twice, nor the next of its interview"
    );
    let listed = store.deliveries("hook", None, 10).unwrap();
    let oldest = listed.last().unwrap();
    assert_eq!(oldest.state, DeliveryState::Pending);
    assert_eq!(oldest.last_status, Some(503));
    assert_eq!(oldest.next_attempt_at, Some(20_000));
}

#[tokio::test]
async fn redeliver_queues_the_same_event_again_and_removal_and_erasure_clear_the_outbox() {
    let (_dir, store) = store();
    endpoint(&store, "hook", &[WebhookEvent::InterviewCreated]).await;
    let id = created(&store, "redeliverRoom").await;
    let due = store.due_deliveries(i64::MAX, 10, &[]).unwrap();
    store
        .record_attempt(due[0].id, &delivered(7))
        .await
        .unwrap()
        .unwrap();
    let done = &store.deliveries("hook", None, 10).unwrap()[0];
    assert_eq!(
        (done.state, done.delivered_at, done.attempts),
        (DeliveryState::Delivered, Some(7), 1)
    );
    store.redeliver("hook", done.id, 9).await.unwrap().unwrap();
    let again = store.due_deliveries(9, 10, &[]).unwrap();
    assert_eq!(again[0].event_id, due[0].event_id);
    assert_ne!(again[0].id, due[0].id);
    assert!(matches!(
        store.redeliver("other", done.id, 9).await.unwrap(),
        Err(StoreError::NoSuchDelivery)
    ));

    store.erase(&id).await.unwrap().unwrap();
    assert!(store.deliveries("hook", None, 10).unwrap().is_empty());
    assert!(event_body(&store.reader(), "evt_redeliverRoom_created")
        .unwrap()
        .is_none());
    store.remove_webhook("hook").await.unwrap().unwrap();
    assert!(store.webhooks().unwrap().is_empty());
    assert!(matches!(
        store.remove_webhook("hook").await.unwrap(),
        Err(StoreError::NoSuchWebhook)
    ));
}

#[tokio::test]
async fn an_endpoint_added_later_gets_only_later_events_and_a_take_home_starts_at_start() {
    let (_dir, store) = store();
    let early = created(&store, "earlyRoom").await;
    endpoint(&store, "late", &WebhookEvent::ALL).await;
    append(&store, &early, record(1, Actor::Interviewer, &Record::End)).await;
    let events: Vec<_> = store
        .deliveries("late", None, 10)
        .unwrap()
        .iter()
        .map(|d| d.event)
        .collect();
    assert_eq!(events, [WebhookEvent::InterviewEnded]);

    let take_home = InterviewId::parse("takeHomeRoom").unwrap();
    let interview = crate::Interview {
        id: take_home.clone(),
        title: "T".into(),
        candidate_name: "Ada".into(),
        created_at: 0,
        question_id: None,
        candidate_ref: None,
        mode: duet_protocol::InterviewMode::TakeHome,
        time_limit_minutes: Some(60),
        environment: "python".into(),
    };
    store
        .create_interview(&interview, &[])
        .await
        .unwrap()
        .unwrap();
    // Opening the link starts nothing; Start does; the submit is its own event.
    append(
        &store,
        &take_home,
        record(1, Actor::Candidate, &Record::Join),
    )
    .await;
    let started = duet_protocol::TakeHomeStarted {
        started_at: 10,
        deadline: 3_600_010,
        time_limit_minutes: 60,
    };
    let submitted = duet_protocol::TakeHomeSubmitted {
        reason: duet_protocol::SubmitReason::TimeLimit,
        at: 3_600_010,
        started_at: 10,
        deadline: 3_600_010,
    };
    let th = &take_home;
    append(
        &store,
        th,
        record(2, Actor::Candidate, &Record::TakeHomeStarted(started)),
    )
    .await;
    append(
        &store,
        th,
        record(3, Actor::Server, &Record::TakeHomeSubmitted(submitted)),
    )
    .await;
    append(&store, th, record(4, Actor::Server, &Record::End)).await;
    let mut kinds: Vec<_> = store
        .deliveries("late", None, 10)
        .unwrap()
        .iter()
        .filter(|d| d.interview_id == "takeHomeRoom")
        .map(|d| d.event)
        .collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        [
            WebhookEvent::InterviewCreated,
            WebhookEvent::InterviewStarted,
            WebhookEvent::TakeHomeSubmitted,
            WebhookEvent::InterviewEnded
        ]
    );
    let body: serde_json::Value = serde_json::from_str(
        &event_body(&store.reader(), "evt_takeHomeRoom_3")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["data"]["take_home"]["reason"], "time_limit");
}

/// The retry story runs on both stores in tests/store_suite.rs; this checks what only SQLite's
/// own table shows: the body of a mail sent, or given up, (the candidate's link) is not kept,
/// while a mail still to be retried keeps it.
#[tokio::test]
async fn a_mail_sent_or_given_up_forgets_its_body() {
    let (_dir, store) = store();
    let mail = |to: &str| NewMail {
        interview_id: None,
        to: to.into(),
        subject: "Your take-home".into(),
        body: "https://duet.example.com/interview/x/candidate#token=secret".into(),
        created_at: 1,
    };
    for to in [
        "sent@example.com",
        "given-up@example.com",
        "retried@example.com",
    ] {
        store.queue_mail(&mail(to)).await.unwrap().unwrap();
    }
    let due = store.due_mail(1, 10, &[]).unwrap();
    let failed = |next| Attempt {
        at: 2,
        status: None,
        error: Some("refused".into()),
        next,
    };
    for (mail, attempt) in
        due.iter()
            .zip([delivered(2), failed(Next::GiveUp), failed(Next::RetryAt(3))])
    {
        store
            .record_mail_attempt(mail.id, &attempt)
            .await
            .unwrap()
            .unwrap();
    }
    let bodies: Vec<(String, Option<String>)> = store
        .reader()
        .prepare("SELECT to_addr, body FROM mail_outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let kept: Vec<(&str, bool)> = bodies
        .iter()
        .map(|(to, body)| (to.as_str(), body.is_some()))
        .collect();
    assert_eq!(
        kept,
        [
            ("sent@example.com", false),
            ("given-up@example.com", false),
            ("retried@example.com", true)
        ]
    );
}
