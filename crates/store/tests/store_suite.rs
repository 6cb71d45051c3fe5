//! One suite of the store's behaviour, run against both stores: each test below is written
//! once over `S: Store` and runs on embedded SQLite (`sqlite::`) and on a real PostgreSQL server
//! on loopback (`postgres::`, a database of its own on the test binary's cluster, see
//! `duet_store::testing`). What only one store has (SQLite's WAL, Postgres's connection loss)
//! is tested beside its implementation or in tests/postgres.rs.
//!
//! The reads are called straight from the tests' async bodies, as the server never does: on
//! Postgres that also proves a read from inside a runtime blocks and answers, never panics.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use duet_protocol::WebhookEvent;
use duet_protocol::{
    Actor, ApiTokenInfo, AuditAction, EventKind, Interview, InterviewId, InterviewMode,
    InterviewStatus, LogEntry, LogRecord, Person, PersonState, PersonUpdate, Role, StaffRole,
};
use duet_store::integrations::{Callback, IntegrationKey, PartnerTest};
use duet_store::outbox::{Attempt, NewEndpoint, NewMail, Next};
use duet_store::{Checkpoint, NewAudit, NewSession, Store, StoreError};

macro_rules! both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let config = duet_store::SqliteConfig::at(dir.path().join("duet.db"));
                    let store = duet_store::SqliteStore::open(config).unwrap();
                    super::$test(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let url = duet_store::testing::PgCluster::shared().database();
                    let store = duet_store::PgStore::open(duet_store::PgConfig::at(url)).unwrap();
                    super::$test(&store).await;
                }
            )*
        }
    };
}

both_stores!(
    appends_are_kept_in_order_and_replay_queries_read_exactly_the_ranges_they_name,
    nothing_is_stored_for_an_interview_that_does_not_exist_and_the_rest_of_a_batch_is,
    a_record_that_fails_holds_its_room_back_until_it_reloads_so_the_log_never_has_a_gap,
    a_room_loads_from_its_newest_checkpoint_and_counts_its_whole_log,
    role_tokens_find_their_interview_until_they_are_replaced,
    erasing_an_interview_leaves_nothing_of_it,
    an_interview_is_scheduled_then_live_then_ended_and_ended_ones_are_found_for_retention,
    interviews_are_listed_newest_first_and_found_by_candidate,
    a_burst_from_many_rooms_is_stored_whole_and_in_order,
    the_store_answers_its_health_checks,
    an_address_belongs_to_one_person_and_a_refusal_fails_no_keystroke_beside_it,
    a_password_link_works_once_and_never_after_it_expires,
    disabling_a_person_ends_their_sessions_and_silences_their_tokens_at_once,
    a_panel_names_people_and_goes_with_its_interview,
    the_audit_log_pages_newest_first,
    interview_events_are_queued_with_their_records_and_offered_in_order,
    mail_waits_until_sent_and_integration_keys_work_until_revoked,
    a_sent_tests_callback_is_queued_once_when_it_completes_and_forgets_its_key,
    take_homes_in_progress_are_the_started_ones_with_a_clock_or_owed_hidden_tests,
);

fn record(seq: u64, kind: EventKind) -> LogRecord {
    LogRecord {
        seq,
        at_ms: 1000 + seq as i64,
        kind,
        by: Actor::Candidate,
        data: vec![seq as u8; 3],
    }
}

fn interview(name: &str, created_at: i64, candidate_ref: Option<&str>) -> Interview {
    Interview {
        id: InterviewId::parse(name).unwrap(),
        title: format!("Title of {name}"),
        candidate_name: "Ada".into(),
        created_at,
        question_id: Some("two-sum".into()),
        candidate_ref: candidate_ref.map(str::to_owned),
        mode: if created_at == 20 {
            InterviewMode::TakeHome
        } else {
            InterviewMode::Live
        },
        time_limit_minutes: (created_at == 20).then_some(90),
        environment: "python".into(),
    }
}

/// Creates an interview named `name` (a log is kept only for one that exists).
async fn created<S: Store>(store: &S, name: &str) -> InterviewId {
    let interview = interview(name, 0, None);
    store
        .create_interview(&interview, &[])
        .await
        .unwrap()
        .unwrap();
    interview.id
}

fn seqs(records: Vec<LogRecord>) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

async fn appends_are_kept_in_order_and_replay_queries_read_exactly_the_ranges_they_name<
    S: Store,
>(
    store: &S,
) {
    let id = created(store, "replayQueries").await;
    let tickets: Vec<_> = (1..=10)
        .map(|seq| {
            let kind = if seq % 4 == 0 {
                EventKind::RunStarted
            } else {
                EventKind::Edit
            };
            store.append(&id, record(seq, kind))
        })
        .collect();
    for ticket in tickets {
        ticket.await.unwrap().unwrap();
    }
    for seq in [3, 7] {
        let cp = Checkpoint {
            seq,
            state: vec![seq as u8],
            owners: vec![1, 2],
        };
        store.checkpoint(&id, cp).await.unwrap().unwrap();
    }
    assert_eq!(
        store.read_log(&id, 0).unwrap(),
        (1..=10)
            .map(|s| {
                record(
                    s,
                    if s % 4 == 0 {
                        EventKind::RunStarted
                    } else {
                        EventKind::Edit
                    },
                )
            })
            .collect::<Vec<_>>(),
        "every field comes back as it went in"
    );
    assert_eq!(seqs(store.read_range(&id, 2, 5).unwrap()), [3, 4, 5]);
    assert_eq!(
        seqs(store.read_kinds_in(&id, &[EventKind::Edit], 2, 6).unwrap()),
        [3, 5, 6]
    );
    assert_eq!(
        seqs(
            store
                .read_kinds(&id, &[EventKind::RunStarted, EventKind::Edit])
                .unwrap()
        ),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(seqs(store.read_runs(&id).unwrap()), [4, 8]);
    let at = |seq| {
        store
            .checkpoint_at_or_before(&id, seq)
            .unwrap()
            .map(|c| (c.seq, c.state, c.owners))
    };
    assert_eq!(at(2), None);
    assert_eq!(at(3), Some((3, vec![3], vec![1, 2])));
    assert_eq!(at(6).map(|c| c.0), Some(3));
    assert_eq!(at(100).map(|c| c.0), Some(7));
    assert_eq!(
        store.read_index(&id, 8).unwrap(),
        [
            LogEntry {
                seq: 9,
                at_ms: 1009,
                kind: Some(EventKind::Edit),
                by: Some(Actor::Candidate)
            },
            LogEntry {
                seq: 10,
                at_ms: 1010,
                kind: Some(EventKind::Edit),
                by: Some(Actor::Candidate)
            },
        ]
    );
}

async fn nothing_is_stored_for_an_interview_that_does_not_exist_and_the_rest_of_a_batch_is<
    S: Store,
>(
    store: &S,
) {
    let kept = created(store, "keptRoom").await;
    let gone = created(store, "erasedRoom").await;
    store.erase(&gone).await.unwrap().unwrap();
    // A request that passed its token check just before the delete writes after it.
    let late = store.append(&gone, record(1, EventKind::Note));
    let other = store.append(&kept, record(1, EventKind::Edit));
    let never = store.append(
        &InterviewId::parse("neverWas").unwrap(),
        record(1, EventKind::Edit),
    );
    assert!(matches!(
        late.await.unwrap(),
        Err(StoreError::NoSuchInterview)
    ));
    assert!(matches!(
        never.await.unwrap(),
        Err(StoreError::NoSuchInterview)
    ));
    other.await.unwrap().unwrap();
    assert!(
        store.read_log(&gone, 0).unwrap().is_empty(),
        "the erased interview stays erased"
    );
    assert!(store.get_interview(&gone).unwrap().is_none());
    assert_eq!(store.read_log(&kept, 0).unwrap().len(), 1);
    // A checkpoint is refused too, and the refused room stores nothing more until it reloads.
    let cp = Checkpoint {
        seq: 1,
        state: vec![1],
        owners: Vec::new(),
    };
    assert!(store.checkpoint(&gone, cp).await.unwrap().is_err());
    assert!(store.checkpoint_at_or_before(&gone, 5).unwrap().is_none());
}

async fn a_record_that_fails_holds_its_room_back_until_it_reloads_so_the_log_never_has_a_gap<
    S: Store,
>(
    store: &S,
) {
    let room = created(store, "failingRoom").await;
    store
        .append(&room, record(1, EventKind::Edit))
        .await
        .unwrap()
        .unwrap();
    // A second record 1 breaks the log's key: its batch fails, as a full disk would fail it.
    let twin = store
        .append(&room, record(1, EventKind::Edit))
        .await
        .unwrap();
    let Err(StoreError::WriteFailed { .. }) = twin else {
        panic!("a duplicate seq was stored: {twin:?}");
    };
    // What the room sends next is held back: storing it would leave a gap where the failed
    // record was meant to be.
    let next = store
        .append(&room, record(2, EventKind::Edit))
        .await
        .unwrap();
    assert!(matches!(next, Err(StoreError::RoomFailed)), "{next:?}");
    let cp = Checkpoint {
        seq: 2,
        state: vec![2],
        owners: Vec::new(),
    };
    assert!(matches!(
        store.checkpoint(&room, cp).await.unwrap(),
        Err(StoreError::RoomFailed)
    ));
    // The room reloads from what is stored, and goes on from there.
    store.reopen(&room).await.unwrap().unwrap();
    assert_eq!(seqs(store.load_history(&room).unwrap().records), [1]);
    store
        .append(&room, record(2, EventKind::Edit))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seqs(store.read_log(&room, 0).unwrap()), [1, 2]);
}

async fn a_room_loads_from_its_newest_checkpoint_and_counts_its_whole_log<S: Store>(store: &S) {
    let room = created(store, "loadingRoom").await;
    let empty = store.load_history(&room).unwrap();
    assert!(empty.checkpoint.is_none() && empty.records.is_empty() && empty.log_bytes == 0);
    for seq in 1..=6 {
        drop(store.append(&room, record(seq, EventKind::Edit)));
    }
    let cp = Checkpoint {
        seq: 4,
        state: vec![4, 4],
        owners: vec![9],
    };
    store.checkpoint(&room, cp.clone()).await.unwrap().unwrap();
    let history = store.load_history(&room).unwrap();
    assert_eq!(history.checkpoint, Some(cp));
    assert_eq!(seqs(history.records), [5, 6]);
    assert_eq!(history.log_bytes, 6 * 3, "the whole log's record data");
}

async fn role_tokens_find_their_interview_until_they_are_replaced<S: Store>(store: &S) {
    let interview = interview("tokenRoom", 5, None);
    let old = [(Role::Candidate, [1u8; 32]), (Role::Interviewer, [2u8; 32])];
    store
        .create_interview(&interview, &old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.find_token(&[2u8; 32]).unwrap(),
        Some((interview.id.clone(), Role::Interviewer))
    );
    let new = [(Role::Candidate, [3u8; 32]), (Role::Reviewer, [4u8; 32])];
    store
        .replace_tokens(&interview.id, &new)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.find_token(&[1u8; 32]).unwrap(), None);
    assert_eq!(store.find_token(&[2u8; 32]).unwrap(), None);
    assert_eq!(
        store.find_token(&[4u8; 32]).unwrap(),
        Some((interview.id.clone(), Role::Reviewer))
    );
    // A replacement that lost a race with a delete gives the deleted interview nothing.
    store.erase(&interview.id).await.unwrap().unwrap();
    store
        .replace_tokens(&interview.id, &[(Role::Candidate, [5u8; 32])])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.find_token(&[5u8; 32]).unwrap(), None);
}

async fn erasing_an_interview_leaves_nothing_of_it<S: Store>(store: &S) {
    let interview = interview("doomedRoom", 5, Some("cand-1"));
    store
        .create_interview(&interview, &[(Role::Candidate, [7u8; 32])])
        .await
        .unwrap()
        .unwrap();
    let id = interview.id.clone();
    for seq in 1..=3 {
        drop(store.append(&id, record(seq, EventKind::Edit)));
    }
    let cp = Checkpoint {
        seq: 3,
        state: vec![3],
        owners: Vec::new(),
    };
    store.checkpoint(&id, cp).await.unwrap().unwrap();
    let keep = created(store, "keptRoom").await;
    store
        .append(&keep, record(1, EventKind::Edit))
        .await
        .unwrap()
        .unwrap();

    // What the outbox holds about it: the candidate's mail (their link, name and title), the
    // test Greenhouse sent for it and that test's completion callback.
    let mail = |interview: &InterviewId| NewMail {
        interview_id: Some(interview.as_str().to_owned()),
        to: "ada@example.com".into(),
        subject: "Your take-home: Doomed".into(),
        body: format!(
            "Hello Ada, https://duet.example.com/interview/{interview}/candidate#token=t"
        ),
        created_at: 1,
    };
    let sent = |interview: &InterviewId| PartnerTest {
        partner_interview_id: format!("gh-{interview}"),
        application_key: format!("app {interview}"),
        interview_id: interview.as_str().to_owned(),
        test_id: "take_home:two-sum".into(),
        created_at: 1,
        callback: Some(Callback {
            url: "https://app.greenhouse.io/x".into(),
            key: "duetgh_key".into(),
        }),
    };
    for room in [&id, &keep] {
        store.queue_mail(&mail(room)).await.unwrap().unwrap();
        store.add_partner_test(&sent(room)).await.unwrap().unwrap();
        let submit = duet_protocol::Record::TakeHomeSubmitted(duet_protocol::TakeHomeSubmitted {
            reason: duet_protocol::SubmitReason::Submitted,
            at: 10,
            started_at: 5,
            deadline: 50,
        });
        let seq = store.read_log(room, 0).unwrap().len() as u64 + 1;
        store
            .append(room, outbox_record(seq, Actor::Server, &submit))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(store.due_callbacks(i64::MAX, 10, &[]).unwrap().len(), 2);

    store.erase(&id).await.unwrap().unwrap();
    let mails = store.due_mail(i64::MAX, 10, &[]).unwrap();
    assert_eq!(
        mails
            .iter()
            .map(|m| m.body.contains("keptRoom"))
            .collect::<Vec<_>>(),
        [true],
        "the erased interview's mail is gone, the other's stays: {mails:?}"
    );
    assert_eq!(store.partner_test("gh-doomedRoom").unwrap(), None);
    assert_eq!(store.partner_test_for("app doomedRoom").unwrap(), None);
    assert!(store.partner_test("gh-keptRoom").unwrap().is_some());
    let callbacks = store.due_callbacks(i64::MAX, 10, &[]).unwrap();
    assert_eq!(
        callbacks
            .iter()
            .map(|c| c.interview_id.as_str())
            .collect::<Vec<_>>(),
        ["keptRoom"]
    );
    assert!(store.get_interview(&id).unwrap().is_none());
    assert!(store.read_log(&id, 0).unwrap().is_empty());
    assert!(store.checkpoint_at_or_before(&id, 10).unwrap().is_none());
    assert!(store.find_token(&[7u8; 32]).unwrap().is_none());
    assert!(store.interviews_of("cand-1").unwrap().is_empty());
    assert_eq!(
        store
            .list_interviews()
            .unwrap()
            .iter()
            .map(|i| i.id.as_str().to_owned())
            .collect::<Vec<_>>(),
        ["keptRoom"]
    );
    assert_eq!(
        store.read_log(&keep, 0).unwrap().len(),
        2,
        "the other room is untouched (its edit and its submit)"
    );
}

async fn an_interview_is_scheduled_then_live_then_ended_and_ended_ones_are_found_for_retention<
    S: Store,
>(
    store: &S,
) {
    let id = created(store, "lifeRoom").await;
    assert_eq!(store.status(&id).unwrap(), InterviewStatus::Scheduled);
    store
        .append(&id, record(1, EventKind::Edit))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status(&id).unwrap(), InterviewStatus::Scheduled);
    store
        .append(&id, record(2, EventKind::Join))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status(&id).unwrap(), InterviewStatus::Live);
    assert!(store.ended_before(i64::MAX).unwrap().is_empty());
    let mut end = record(3, EventKind::End);
    end.at_ms = 50_000;
    store.append(&id, end).await.unwrap().unwrap();
    assert_eq!(store.status(&id).unwrap(), InterviewStatus::Ended);
    assert!(
        store.ended_before(50_000).unwrap().is_empty(),
        "not before its end"
    );
    assert_eq!(store.ended_before(50_001).unwrap(), [id]);
}

async fn interviews_are_listed_newest_first_and_found_by_candidate<S: Store>(store: &S) {
    for (name, at, candidate) in [
        ("first", 10, Some("cand-a")),
        ("second", 30, None),
        ("third", 20, Some("cand-a")),
    ] {
        store
            .create_interview(&interview(name, at, candidate), &[])
            .await
            .unwrap()
            .unwrap();
    }
    let names = |list: Vec<Interview>| {
        list.into_iter()
            .map(|i| i.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_interviews().unwrap()),
        ["second", "third", "first"]
    );
    assert_eq!(
        names(store.interviews_of("cand-a").unwrap()),
        ["first", "third"]
    );
    let third = store
        .get_interview(&InterviewId::parse("third").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(third, interview("third", 20, Some("cand-a")));
}

async fn a_burst_from_many_rooms_is_stored_whole_and_in_order<S: Store>(store: &S) {
    let mut rooms = Vec::new();
    for n in 0..20 {
        rooms.push(created(store, &format!("burstRoom{n}")).await);
    }
    // 2,000 records queued at once: the writer commits them in batches.
    let tickets: Vec<_> = (1..=100u64)
        .flat_map(|seq| rooms.iter().map(move |room| (room, seq)))
        .map(|(room, seq)| store.append(room, record(seq, EventKind::Edit)))
        .collect();
    for ticket in tickets {
        ticket.await.unwrap().unwrap();
    }
    for room in &rooms {
        assert_eq!(
            seqs(store.read_log(room, 0).unwrap()),
            (1..=100).collect::<Vec<_>>()
        );
    }
}

async fn the_store_answers_its_health_checks<S: Store>(store: &S) {
    store.ping().unwrap();
    store.probe_write().await.unwrap().unwrap();
    store.probe_write().await.unwrap().unwrap();
}

fn person(id: &str, email: &str, role: StaffRole) -> Person {
    Person {
        id: id.into(),
        email: email.into(),
        name: format!("Person {id}"),
        role,
        state: PersonState::Active,
        created_at: 1,
        password_set: false,
    }
}

async fn added<S: Store>(store: &S, id: &str, email: &str, role: StaffRole) -> Person {
    let p = person(id, email, role);
    store.add_person(&p).await.unwrap().unwrap();
    p
}

async fn an_address_belongs_to_one_person_and_a_refusal_fails_no_keystroke_beside_it<S: Store>(
    store: &S,
) {
    let room = created(store, "busyRoom").await;
    added(store, "p1", "ada@example.com", StaffRole::Admin).await;
    // Keystrokes and a refused person queue together: the writer may batch them.
    let keys: Vec<_> = (1..=50)
        .map(|seq| store.append(&room, record(seq, EventKind::Edit)))
        .collect();
    let twin = store.add_person(&person("p2", "ada@example.com", StaffRole::Reviewer));
    assert!(matches!(twin.await.unwrap(), Err(StoreError::EmailTaken)));
    for key in keys {
        key.await.unwrap().unwrap();
    }
    assert_eq!(store.read_log(&room, 0).unwrap().len(), 50);
    assert_eq!(store.people().unwrap().len(), 1);
    let (found, password) = store.person_by_email("ada@example.com").unwrap().unwrap();
    assert_eq!((found.role, password), (StaffRole::Admin, None));
    assert_eq!(store.person("p1").unwrap(), Some(found));
    assert_eq!(store.person("p2").unwrap(), None);
}

async fn a_password_link_works_once_and_never_after_it_expires<S: Store>(store: &S) {
    added(store, "p1", "grace@example.com", StaffRole::Interviewer).await;
    let link = [7u8; 32];
    store
        .issue_password_link("p1", &link, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .password_link(&link, 999)
            .unwrap()
            .map(|(p, at)| (p.id, at)),
        Some(("p1".into(), 1_000))
    );
    assert!(
        store.password_link(&link, 1_000).unwrap().is_none(),
        "expired at its time"
    );
    assert!(matches!(
        store
            .use_password_link(&link, "$argon2id$late", 1_000)
            .await
            .unwrap(),
        Err(StoreError::LinkUnusable)
    ));
    store
        .use_password_link(&link, "$argon2id$first", 500)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .use_password_link(&link, "$argon2id$second", 501)
            .await
            .unwrap(),
        Err(StoreError::LinkUnusable)
    ));
    let (p, hash) = store.person_by_email("grace@example.com").unwrap().unwrap();
    assert!(p.password_set);
    assert_eq!(hash.as_deref(), Some("$argon2id$first"));
    // A new link replaces the old: only the newest works.
    let (old, new) = ([8u8; 32], [9u8; 32]);
    store
        .issue_password_link("p1", &old, 2_000)
        .await
        .unwrap()
        .unwrap();
    store
        .issue_password_link("p1", &new, 2_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store.password_link(&old, 600).unwrap().is_none());
    assert!(store.password_link(&new, 600).unwrap().is_some());
    assert!(matches!(
        store
            .issue_password_link("nobody", &old, 2_000)
            .await
            .unwrap(),
        Err(StoreError::NoSuchPerson)
    ));
}

async fn disabling_a_person_ends_their_sessions_and_silences_their_tokens_at_once<S: Store>(
    store: &S,
) {
    added(store, "p1", "lin@example.com", StaffRole::Interviewer).await;
    let session = NewSession {
        hash: [1; 32],
        person_id: "p1".into(),
        created_at: 10,
        expires_at: 10_000,
    };
    store.start_session(&session).await.unwrap().unwrap();
    let token = ApiTokenInfo {
        id: "t1".into(),
        name: "CI".into(),
        created_at: 10,
        last_used_at: None,
    };
    store
        .add_api_token("p1", &[2; 32], &token)
        .await
        .unwrap()
        .unwrap();
    store.touch_session(&[1; 32], 70).await.unwrap().unwrap();
    store.touch_session(&[1; 32], 60).await.unwrap().unwrap();
    assert_eq!(
        store.session(&[1; 32]).unwrap().map(|s| s.last_seen_at),
        Some(70),
        "a late touch never moves the last activity back"
    );
    store.touch_api_token("t1", 80).await.unwrap().unwrap();
    assert_eq!(
        store.api_tokens_of("p1").unwrap(),
        [ApiTokenInfo {
            last_used_at: Some(80),
            ..token.clone()
        }]
    );
    assert!(store.api_token(&[2; 32]).unwrap().is_some());

    let disable = PersonUpdate {
        state: Some(PersonState::Disabled),
        ..PersonUpdate::default()
    };
    store.update_person("p1", &disable).await.unwrap().unwrap();
    assert!(store.session(&[1; 32]).unwrap().is_none());
    assert!(store.api_token(&[2; 32]).unwrap().is_none());
    assert!(matches!(
        store.update_person("nobody", &disable).await.unwrap(),
        Err(StoreError::NoSuchPerson)
    ));
    // Enabled again, the old session stays ended; the token (kept) works again.
    let enable = PersonUpdate {
        state: Some(PersonState::Active),
        ..PersonUpdate::default()
    };
    store.update_person("p1", &enable).await.unwrap().unwrap();
    assert!(store.session(&[1; 32]).unwrap().is_none());
    assert!(store.api_token(&[2; 32]).unwrap().is_some());
    assert!(matches!(
        store.revoke_api_token("someone-else", "t1").await.unwrap(),
        Err(StoreError::NoSuchToken)
    ));
    store.revoke_api_token("p1", "t1").await.unwrap().unwrap();
    assert!(store.api_token(&[2; 32]).unwrap().is_none());
    // A new password ends every session; signing out everywhere does too.
    store.start_session(&session).await.unwrap().unwrap();
    store
        .set_password("p1", "$argon2id$new")
        .await
        .unwrap()
        .unwrap();
    assert!(store.session(&[1; 32]).unwrap().is_none());
    store.start_session(&session).await.unwrap().unwrap();
    store.end_sessions_of("p1").await.unwrap().unwrap();
    assert!(store.session(&[1; 32]).unwrap().is_none());
    store.start_session(&session).await.unwrap().unwrap();
    store.end_session(&[1; 32]).await.unwrap().unwrap();
    assert!(store.session(&[1; 32]).unwrap().is_none());
}

async fn a_panel_names_people_and_goes_with_its_interview<S: Store>(store: &S) {
    let room = created(store, "panelRoom").await;
    added(store, "p1", "a@example.com", StaffRole::Interviewer).await;
    added(store, "p2", "b@example.com", StaffRole::Reviewer).await;
    let seats = vec![
        ("p1".to_owned(), Role::Interviewer),
        ("p2".to_owned(), Role::Reviewer),
    ];
    store.set_panel(&room, &seats).await.unwrap().unwrap();
    assert_eq!(store.seat(&room, "p2").unwrap(), Some(Role::Reviewer));
    assert_eq!(store.seat(&room, "p3").unwrap(), None);
    let of_p1 = store.seats_of("p1").unwrap();
    assert_eq!(
        of_p1
            .iter()
            .map(|(i, r)| (i.id.clone(), *r))
            .collect::<Vec<_>>(),
        [(room.clone(), Role::Interviewer)]
    );
    // An unknown person changes nothing.
    let bad = vec![
        ("p1".to_owned(), Role::Interviewer),
        ("ghost".to_owned(), Role::Reviewer),
    ];
    assert!(matches!(
        store.set_panel(&room, &bad).await.unwrap(),
        Err(StoreError::NoSuchPerson)
    ));
    assert_eq!(store.panel(&room).unwrap(), seats);
    store.erase(&room).await.unwrap().unwrap();
    assert!(store.seats_of("p1").unwrap().is_empty());
    assert!(matches!(
        store.set_panel(&room, &seats).await.unwrap(),
        Err(StoreError::NoSuchInterview)
    ));
}

async fn the_audit_log_pages_newest_first<S: Store>(store: &S) {
    for at in 1..=5 {
        let entry = NewAudit {
            at,
            actor: "cli".into(),
            action: AuditAction::PersonAdded,
            target: Some(format!("p{at}@example.com")),
            from: if at == 5 {
                Some("127.0.0.1".into())
            } else {
                None
            },
        };
        store.audit(&entry).await.unwrap().unwrap();
    }
    let first = store.audit_page(None, 2).unwrap();
    assert_eq!(first.iter().map(|e| e.at).collect::<Vec<_>>(), [5, 4]);
    assert_eq!(first[0].from.as_deref(), Some("127.0.0.1"));
    let next = store.audit_page(Some(first[1].id), 10).unwrap();
    assert_eq!(next.iter().map(|e| e.at).collect::<Vec<_>>(), [3, 2, 1]);
    store.prune_audit(3).await.unwrap().unwrap();
    let left = store.audit_page(None, 10).unwrap();
    assert_eq!(left.iter().map(|e| e.at).collect::<Vec<_>>(), [5, 4, 3]);
}

fn outbox_record(seq: u64, by: Actor, record: &duet_protocol::Record) -> LogRecord {
    LogRecord {
        seq,
        at_ms: 5_000 + seq as i64,
        kind: record.kind(),
        by,
        data: record.encode(),
    }
}

fn delivered(at: i64) -> Attempt {
    Attempt {
        at,
        status: Some(200),
        error: None,
        next: Next::Delivered,
    }
}

async fn interview_events_are_queued_with_their_records_and_offered_in_order<S: Store>(store: &S) {
    use duet_protocol::Record;
    for (id, events) in [
        ("all", WebhookEvent::ALL.to_vec()),
        ("ends", vec![WebhookEvent::InterviewEnded]),
    ] {
        let endpoint = NewEndpoint {
            id: id.into(),
            url: format!("https://hooks.example.com/{id}"),
            events,
            secret: "a-secret-of-sixteen".into(),
            created_at: 1,
        };
        store.add_webhook(&endpoint).await.unwrap().unwrap();
    }
    assert_eq!(store.webhooks().unwrap().len(), 2);
    let id = created(store, "orderedRoom").await;
    // The interviewer's join starts nothing; the candidate's first join does, once.
    for (seq, by, record) in [
        (1, Actor::Interviewer, Record::Join),
        (2, Actor::Candidate, Record::Join),
        (3, Actor::Candidate, Record::Leave),
        (4, Actor::Candidate, Record::Join),
        (5, Actor::Interviewer, Record::End),
    ] {
        store
            .append(&id, outbox_record(seq, by, &record))
            .await
            .unwrap()
            .unwrap();
    }
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
            WebhookEvent::InterviewEnded
        ]
    );
    assert_eq!(events("ends"), [WebhookEvent::InterviewEnded]);
    // Only the head of each (endpoint, interview) chain is due; a failed attempt holds the
    // chain back until its retry.
    let due = store.due_deliveries(i64::MAX, 10, &[]).unwrap();
    let head = due.iter().find(|d| d.endpoint_id == "all").unwrap();
    assert_eq!(head.event_id, "evt_orderedRoom_created");
    let body: serde_json::Value = serde_json::from_str(&head.body).unwrap();
    assert_eq!(body["data"]["interview"]["id"], "orderedRoom");
    let failed = Attempt {
        at: 10,
        status: Some(500),
        error: None,
        next: Next::RetryAt(100),
    };
    store
        .record_attempt(head.id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .due_deliveries(99, 10, &[])
        .unwrap()
        .iter()
        .all(|d| d.endpoint_id != "all"));
    let again = store.due_deliveries(100, 10, &[]).unwrap();
    let retry = again.iter().find(|d| d.endpoint_id == "all").unwrap();
    assert_eq!((retry.id, retry.attempts), (head.id, 1));
    assert!(store
        .due_deliveries(100, 10, &[retry.id])
        .unwrap()
        .iter()
        .all(|d| d.id != retry.id));
    store
        .record_attempt(retry.id, &delivered(100))
        .await
        .unwrap()
        .unwrap();
    let next = store.due_deliveries(i64::MAX, 10, &[]).unwrap();
    assert!(next.iter().any(|d| d.event_id == "evt_orderedRoom_started"));
    let listed = store.deliveries("all", None, 50).unwrap();
    let done = listed.iter().find(|d| d.id == head.id).unwrap();
    assert_eq!(
        (
            done.state,
            done.attempts,
            done.last_status,
            done.delivered_at
        ),
        (
            duet_protocol::DeliveryState::Delivered,
            2,
            Some(200),
            Some(100)
        )
    );
    // Redelivery queues the same event again; erasure and removal clear the outbox.
    store.redeliver("all", head.id, 200).await.unwrap().unwrap();
    assert_eq!(store.deliveries("all", None, 50).unwrap().len(), 4);
    assert!(matches!(
        store.redeliver("ends", head.id, 200).await.unwrap(),
        Err(StoreError::NoSuchDelivery)
    ));
    store.erase(&id).await.unwrap().unwrap();
    assert!(store.deliveries("all", None, 50).unwrap().is_empty());
    store.remove_webhook("all").await.unwrap().unwrap();
    assert!(matches!(
        store.remove_webhook("all").await.unwrap(),
        Err(StoreError::NoSuchWebhook)
    ));
    assert_eq!(store.webhooks().unwrap().len(), 1);
}

async fn mail_waits_until_sent_and_integration_keys_work_until_revoked<S: Store>(store: &S) {
    let mail = NewMail {
        interview_id: None,
        to: "ada@example.com".into(),
        subject: "Your take-home".into(),
        body: "https://duet.example.com/interview/x/candidate#token=secret".into(),
        created_at: 1,
    };
    store.queue_mail(&mail).await.unwrap().unwrap();
    let due = store.due_mail(1, 10, &[]).unwrap();
    assert_eq!(
        (due[0].to.as_str(), due[0].body.as_str()),
        (mail.to.as_str(), mail.body.as_str())
    );
    let failed = Attempt {
        at: 2,
        status: None,
        error: Some("connection refused".into()),
        next: Next::RetryAt(50),
    };
    store
        .record_mail_attempt(due[0].id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert!(store.due_mail(49, 10, &[]).unwrap().is_empty());
    let again = store.due_mail(50, 10, &[]).unwrap();
    assert_eq!(again[0].attempts, 1);
    store
        .record_mail_attempt(again[0].id, &delivered(51))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store.due_mail(i64::MAX, 10, &[]).unwrap().is_empty(),
        "sent, and its body forgotten"
    );

    let key = IntegrationKey {
        id: "k1".into(),
        name: "Greenhouse".into(),
        created_at: 3,
        revoked_at: None,
    };
    store
        .add_integration_key(&key, &[9; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.integration_key(&[9; 32]).unwrap(), Some(key.clone()));
    assert_eq!(store.integration_keys().unwrap(), [key]);
    let test = PartnerTest {
        partner_interview_id: "gh-1".into(),
        application_key: "app-1".into(),
        interview_id: "someRoom".into(),
        test_id: "two-sum".into(),
        created_at: 4,
        callback: None,
    };
    store.add_partner_test(&test).await.unwrap().unwrap();
    store.add_partner_test(&test).await.unwrap().unwrap();
    assert_eq!(store.partner_test("gh-1").unwrap(), Some(test.clone()));
    assert_eq!(store.partner_test_for("app-1").unwrap(), Some(test));
    store
        .revoke_integration_key("k1", 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.integration_key(&[9; 32]).unwrap(), None);
    assert!(matches!(
        store.revoke_integration_key("k1", 6).await.unwrap(),
        Err(StoreError::NoSuchToken)
    ));
}

async fn a_sent_tests_callback_is_queued_once_when_it_completes_and_forgets_its_key<S: Store>(
    store: &S,
) {
    use duet_protocol::{Record, Scorecard, ScorecardChange, SubmitReason, TakeHomeSubmitted};
    let sent = |interview: &InterviewId, url: Option<&str>| PartnerTest {
        partner_interview_id: format!("gh-{interview}"),
        application_key: format!("app {interview}"),
        interview_id: interview.as_str().to_owned(),
        test_id: "t".into(),
        created_at: 1,
        callback: url.map(|url| Callback {
            url: url.into(),
            key: "duetgh_the_key".into(),
        }),
    };
    let card = |action: &str| {
        Record::Scorecard(ScorecardChange {
            action: action.into(),
            scorecard: Scorecard::default(),
            person: None,
        })
    };
    let submit = Record::TakeHomeSubmitted(TakeHomeSubmitted {
        reason: SubmitReason::TimeLimit,
        at: 10,
        started_at: 5,
        deadline: 10,
    });
    let log = |id: &InterviewId, records: Vec<Record>| {
        let id = id.clone();
        async move {
            for (i, record) in records.iter().enumerate() {
                store
                    .append(&id, outbox_record(i as u64 + 1, Actor::Server, record))
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
    };
    let owed = || {
        let mut ids: Vec<String> = store
            .due_callbacks(i64::MAX, 10, &[])
            .unwrap()
            .into_iter()
            .map(|c| c.interview_id)
            .collect();
        ids.sort();
        ids
    };

    // A take-home is complete when it is submitted (its end after that adds nothing).
    let take_home = created(store, "takeHomeRoom").await;
    // A live interview whose card was submitted before it ended: complete at its end.
    let carded_first = created(store, "cardFirstRoom").await;
    // A live interview ended first: only a submitted card completes it, the first one only.
    let ended_first = created(store, "endFirstRoom").await;
    // Sent without a url: Greenhouse polls it, nothing is owed.
    let no_url = created(store, "noUrlRoom").await;
    for (room, url) in [
        (&take_home, Some("https://app.greenhouse.io/t/1")),
        (&carded_first, Some("https://app.greenhouse.io/t/2")),
        (&ended_first, Some("https://app.greenhouse.io/t/3")),
        (&no_url, None),
    ] {
        store
            .add_partner_test(&sent(room, url))
            .await
            .unwrap()
            .unwrap();
    }
    log(&take_home, vec![Record::Join, submit.clone(), Record::End]).await;
    log(&carded_first, vec![card("submitted")]).await;
    log(&ended_first, vec![Record::End, card("saved")]).await;
    log(&no_url, vec![submit, Record::End]).await;
    assert_eq!(
        owed(),
        ["takeHomeRoom"],
        "a saved card and a bare end owe nothing"
    );

    store
        .append(
            &carded_first,
            outbox_record(2, Actor::Interviewer, &Record::End),
        )
        .await
        .unwrap()
        .unwrap();
    for seq in [3, 4] {
        store
            .append(
                &ended_first,
                outbox_record(seq, Actor::Interviewer, &card("submitted")),
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        owed(),
        ["cardFirstRoom", "endFirstRoom", "takeHomeRoom"],
        "one each, however often the condition recurs"
    );

    // The worker's view: the url and key to PATCH with; a failure waits for its retry time.
    let due = store.due_callbacks(i64::MAX, 10, &[]).unwrap();
    let first = due
        .iter()
        .find(|c| c.interview_id == "takeHomeRoom")
        .unwrap()
        .clone();
    assert_eq!(
        (first.url.as_str(), first.key.as_str(), first.attempts),
        ("https://app.greenhouse.io/t/1", "duetgh_the_key", 0)
    );
    assert!(
        !format!("{first:?}").contains("duetgh_the_key"),
        "its Debug hides the key"
    );
    let failed = Attempt {
        at: 20,
        status: Some(503),
        error: Some("answered 503".into()),
        next: Next::RetryAt(100),
    };
    store
        .record_callback_attempt(first.id, &failed)
        .await
        .unwrap()
        .unwrap();
    let before_retry = store.due_callbacks(99, 10, &[]).unwrap();
    assert!(before_retry.iter().all(|c| c.id != first.id));
    let retried = store.due_callbacks(100, 10, &[]).unwrap();
    let again = retried.iter().find(|c| c.id == first.id).unwrap();
    assert_eq!(again.attempts, 1);
    let others: Vec<i64> = retried
        .iter()
        .map(|c| c.id)
        .filter(|id| *id != first.id)
        .collect();
    assert!(
        store
            .due_callbacks(100, 10, &others)
            .unwrap()
            .iter()
            .all(|c| c.id == first.id),
        "busy ones are left out"
    );

    // Delivered: never offered again, and the key is no longer kept.
    store
        .record_callback_attempt(first.id, &delivered(101))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owed(), ["cardFirstRoom", "endFirstRoom"]);
    let kept = store.partner_test("gh-takeHomeRoom").unwrap().unwrap();
    assert_eq!(kept.callback.map(|c| c.key), Some(String::new()));
    // Given up: the same.
    let given_up = Attempt {
        next: Next::GiveUp,
        ..failed
    };
    for callback in store.due_callbacks(i64::MAX, 10, &[]).unwrap() {
        store
            .record_callback_attempt(callback.id, &given_up)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(owed().is_empty());
    let kept = store.partner_test("gh-endFirstRoom").unwrap().unwrap();
    assert_eq!(kept.callback.map(|c| c.key), Some(String::new()));
}

async fn take_homes_in_progress_are_the_started_ones_with_a_clock_or_owed_hidden_tests<S: Store>(
    store: &S,
) {
    use duet_protocol::{
        Record, RunFinished, RunStatus, SubmitReason, TakeHomeStarted, TakeHomeSubmitted,
    };
    let started = Record::TakeHomeStarted(TakeHomeStarted {
        started_at: 1,
        deadline: 2,
        time_limit_minutes: 30,
    });
    let submitted = Record::TakeHomeSubmitted(TakeHomeSubmitted {
        reason: SubmitReason::Submitted,
        at: 2,
        started_at: 1,
        deadline: 2,
    });
    let finished = |status| {
        Record::RunFinished(RunFinished {
            run_id: "hidden".into(),
            status,
            limit: None,
            exit_code: None,
            duration_ms: 5,
            tests: None,
            lint: None,
            at: 3,
        })
    };
    // `interview` makes a take-home of one created at 20.
    let take_home = |name: &str| interview(name, 20, None);
    let mut rooms = Vec::new();
    for (name, records) in [
        ("notStarted", vec![Record::Join]),
        ("running", vec![started.clone(), Record::Join]),
        ("stoppedByEnd", vec![started.clone(), Record::End]),
        (
            "owesTests",
            vec![started.clone(), submitted.clone(), Record::End],
        ),
        (
            "tested",
            vec![
                started.clone(),
                submitted.clone(),
                Record::End,
                finished(RunStatus::Ok),
            ],
        ),
        (
            "sandboxFailed",
            vec![
                started.clone(),
                submitted.clone(),
                Record::End,
                finished(RunStatus::SandboxError),
            ],
        ),
    ] {
        let interview = take_home(name);
        store
            .create_interview(&interview, &[])
            .await
            .unwrap()
            .unwrap();
        for (i, record) in records.iter().enumerate() {
            store
                .append(
                    &interview.id,
                    outbox_record(i as u64 + 1, Actor::Server, record),
                )
                .await
                .unwrap()
                .unwrap();
        }
        rooms.push(interview.id);
    }
    // A live interview is never one, whatever its log.
    let live = created(store, "liveRoom").await;
    store
        .append(&live, outbox_record(1, Actor::Server, &started))
        .await
        .unwrap()
        .unwrap();

    let mut found: Vec<String> = store
        .take_homes_in_progress()
        .unwrap()
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    found.sort();
    assert_eq!(found, ["owesTests", "running", "sandboxFailed"]);
}
