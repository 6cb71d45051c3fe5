//! The interviewer's scorecard with runs as evidence, private notes, the interview's lifecycle
//! (end, delete) and the blind debrief, through the real server.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{CreatedInterview, EventKind};
use duet_tests::{api, eventually, EventsClient, TestServer, YClient, PATIENCE};
use reqwest::Method;
use serde_json::{json, Value};

async fn create(server: &TestServer, candidate_ref: &str) -> CreatedInterview {
    let body = json!({"title": "Python pairing", "candidate_name": "Ada", "candidate_ref": candidate_ref, "question_id": "lru-cache"});
    let (status, created) = api(
        server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value(created).unwrap()
}

fn card(version: u64, notes: &str) -> Value {
    json!({
        "ratings": {"coding_quality": 3, "system_design": null, "debugging": 4, "collaboration": 3, "production_experience": 2},
        "notes": notes,
        "recommendation": "yes",
        "level": "senior",
        "evidence": {},
        "version": version,
    })
}

#[tokio::test]
async fn the_scorecard_is_the_interviewers_the_reviewer_reads_it_and_the_candidate_never_does() {
    let server = TestServer::start().await;
    let interview = create(&server, "ats-1").await;
    let path = format!("/api/interviews/{}/scorecard", interview.id);

    let (status, view) = api(
        &server,
        Method::GET,
        &path,
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(view["scorecard"]["version"], 0);
    assert_eq!(
        view["rubric"].as_array().unwrap().len(),
        5,
        "anchors for the five areas"
    );
    assert_eq!(
        view["rubric"][0]["levels"].as_array().unwrap().len(),
        4,
        "what a 1, 2, 3 and 4 look like"
    );
    assert!(
        view["question"]["hints"]["strong"].is_array(),
        "the question's hints come with it"
    );

    for (method, body) in [(Method::GET, None), (Method::PUT, Some(card(0, "x")))] {
        let (status, _) = api(
            &server,
            method.clone(),
            &path,
            &interview.tokens.candidate,
            body,
        )
        .await;
        assert_eq!(status, 403, "the candidate: {method}");
    }
    let (status, _) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.reviewer,
        Some(card(0, "x")),
    )
    .await;
    assert_eq!(status, 403, "the reviewer reads, never writes");
    let (status, _) = api(
        &server,
        Method::GET,
        &path,
        &interview.tokens.reviewer,
        None,
    )
    .await;
    assert_eq!(status, 200);

    let (status, saved) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(card(0, "first")),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["version"], 1);
    // A second tab still at version 0 does not overwrite it silently.
    let (status, stale) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(card(0, "other tab")),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        stale["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 1"),
        "{stale}"
    );

    // Bad input: a clear 400.
    let mut out_of_range = card(1, "x");
    out_of_range["ratings"]["debugging"] = json!(5);
    let mut unknown_area = card(1, "x");
    unknown_area["ratings"]["charisma"] = json!(3);
    let mut bad_recommendation = card(1, "x");
    bad_recommendation["recommendation"] = json!("maybe");
    let mut foreign_evidence = card(1, "x");
    foreign_evidence["evidence"] = json!({"debugging": ["a-run-of-another-interview"]});
    for body in [
        out_of_range,
        unknown_area,
        bad_recommendation,
        foreign_evidence,
    ] {
        let (status, answer) = api(
            &server,
            Method::PUT,
            &path,
            &interview.tokens.interviewer,
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }

    // Submit locks it, also after a restart.
    let (status, submitted) = api(
        &server,
        Method::POST,
        &format!("{path}/submit"),
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    assert!(submitted["submitted_at"].is_i64());
    let (status, _) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(card(2, "after")),
    )
    .await;
    assert_eq!(status, 409);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (status, _) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(card(2, "after restart")),
    )
    .await;
    assert_eq!(status, 409, "still locked after a restart");
    let (_, view) = api(
        &server,
        Method::GET,
        &path,
        &interview.tokens.reviewer,
        None,
    )
    .await;
    assert_eq!(view["scorecard"]["notes"], "first");
    assert!(
        view["scorecard"]["submitted_at"].is_i64(),
        "the submitted card is part of the record for reviewers"
    );

    // Its changes sit on the room's sequence.
    let log = server
        .state
        .store
        .read_kinds(&interview.id, &[EventKind::Scorecard])
        .unwrap();
    assert_eq!(log.len(), 2, "one save and the submit");
}

#[tokio::test]
async fn runs_of_the_interview_are_evidence_and_notes_are_stamped_with_their_moment() {
    let server = TestServer::start().await;
    let interview = create(&server, "ats-2").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && !candidate.is_empty()).await);
    let (status, started) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/runs", interview.id),
        &interview.tokens.candidate,
        Some(json!({"kind": "run", "stdin": "exit\n"})),
    )
    .await;
    assert_eq!(status, 202);
    let run_id = started["run_id"].as_str().unwrap().to_owned();

    let (status, note) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.interviewer,
        Some(json!({"text": "talks through the eviction order"})),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    assert!(note["seq"].as_u64().unwrap() > 1 && note["at"].as_i64().unwrap() > 0);
    let (status, _) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.interviewer,
        Some(json!({"text": "x".repeat(5000)})),
    )
    .await;
    assert_eq!(status, 400, "notes have a documented size");

    let mut with_evidence = card(0, "ran it early");
    with_evidence["evidence"] = json!({"coding_quality": [run_id, note["seq"]]});
    let path = format!("/api/interviews/{}/scorecard", interview.id);
    let (status, saved) = api(
        &server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(with_evidence),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let (_, view) = api(
        &server,
        Method::GET,
        &path,
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert!(
        view["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == run_id.as_str()),
        "the run history comes with the card"
    );

    let (_, notes) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.reviewer,
        None,
    )
    .await;
    assert_eq!(notes.as_array().unwrap().len(), 1);
    let (status, _) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_canary_in_notes_and_the_scorecard_never_reaches_the_candidate() {
    const CANARY: &str = "CANARY-notes-5e1d";
    let server = TestServer::start().await;
    let interview = create(&server, "ats-3").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let mine =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();
    let theirs =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.interviewer,
        Some(json!({"text": CANARY})),
    )
    .await;
    api(
        &server,
        Method::PUT,
        &format!("/api/interviews/{}/scorecard", interview.id),
        &interview.tokens.interviewer,
        Some(card(0, CANARY)),
    )
    .await;
    assert!(
        eventually(PATIENCE, || theirs
            .all()
            .iter()
            .any(|e| e["type"] == "scorecard"))
        .await
    );
    assert!(
        theirs.all().iter().any(|e| e.to_string().contains(CANARY)),
        "the interviewer's socket carries the note"
    );
    for path in [
        format!("/api/interviews/{}", interview.id),
        format!("/api/interviews/{}/runs", interview.id),
    ] {
        let (_, body) = api(
            &server,
            Method::GET,
            &path,
            &interview.tokens.candidate,
            None,
        )
        .await;
        assert!(!body.to_string().contains(CANARY), "{path}");
    }
    assert!(mine.all().iter().all(|e| !e.to_string().contains(CANARY)
        && e["type"] != "scorecard"
        && e["type"] != "note"));
    assert!(!candidate.text().contains(CANARY));
}

#[tokio::test]
async fn after_the_end_nobody_edits_or_runs_and_the_session_still_replays() {
    let server = TestServer::start().await;
    let interview = create(&server, "ats-4").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let interviewer =
        YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && !candidate.is_empty()).await);
    let (_, view) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}", interview.id),
        &interview.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(view["status"], "live");
    candidate.insert(0, "# final\n");
    assert!(eventually(PATIENCE, || interviewer.text().starts_with("# final\n")).await);
    let final_text = interviewer.text();

    let (status, _) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/end", interview.id),
        &interview.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 403, "only the interviewer ends it");
    let (status, ended) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/end", interview.id),
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{ended}");

    candidate.insert(0, "# after the end\n");
    interviewer.insert(0, "# me too\n");
    let (status, refused) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/runs", interview.id),
        &interview.tokens.interviewer,
        Some(json!({"kind": "run"})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended"));
    let late = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.reviewer))
        .await
        .unwrap();
    assert!(
        eventually(PATIENCE, || late.synced() && late.text() == final_text).await,
        "the document is as it was at the end: {:?}",
        late.text()
    );
    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    assert_eq!(
        duet_core::rebuild(None, log).unwrap().text(),
        final_text,
        "the session replays to its end"
    );
    let (status, view) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}", interview.id),
        &interview.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("ended")),
        "the candidate still reads the public view"
    );
}

#[tokio::test]
async fn a_deleted_interview_answers_nothing_and_leaves_no_trace_under_the_data_dir() {
    const CANARY: &str = "CANARY-erase-c0ffee";
    let server = TestServer::start().await;
    let interview = create(&server, "ats-5").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && !candidate.is_empty()).await);
    candidate.insert(0, &format!("# {CANARY}\n"));
    api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/notes", interview.id),
        &interview.tokens.interviewer,
        Some(json!({"text": CANARY})),
    )
    .await;
    api(
        &server,
        Method::PUT,
        &format!("/api/interviews/{}/scorecard", interview.id),
        &interview.tokens.interviewer,
        Some(card(0, CANARY)),
    )
    .await;
    let log_has = |needle: &str| {
        server
            .state
            .store
            .read_log(&interview.id, 0)
            .unwrap()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.data).contains(needle))
    };
    assert!(eventually(PATIENCE, || log_has(CANARY)).await);

    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/api/interviews/{}", interview.id),
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 403, "a role token cannot delete");
    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/api/interviews/{}", interview.id),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        eventually(PATIENCE, || candidate.closed().is_some()).await,
        "open connections are closed"
    );

    for (path, token) in [
        (
            format!("/api/interviews/{}", interview.id),
            &interview.tokens.interviewer,
        ),
        (
            format!("/api/interviews/{}/scorecard", interview.id),
            &interview.tokens.interviewer,
        ),
        (
            format!("/api/interviews/{}/runs", interview.id),
            &interview.tokens.candidate,
        ),
    ] {
        let (status, _) = api(&server, Method::GET, &path, token, None).await;
        assert_eq!(status, 401, "{path}: the tokens are gone");
    }
    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/api/interviews/{}", interview.id),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // No file under the data dir holds the text: not the database, not the WAL.
    let mut holding = Vec::new();
    let mut pending = vec![server.data_dir.path().to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .unwrap()
                .windows(CANARY.len())
                .any(|w| w == CANARY.as_bytes())
            {
                holding.push(path);
            }
        }
    }
    assert!(
        holding.is_empty(),
        "files still holding the interview's text: {holding:?}"
    );
}

#[tokio::test]
async fn the_debrief_stays_blind_until_ones_own_scorecard_is_submitted() {
    let server = TestServer::start().await;
    let first = create(&server, "cand-42").await;
    let second = create(&server, "cand-42").await;
    let _elsewhere = create(&server, "cand-99").await;

    // The first interviewer scores and submits.
    api(
        &server,
        Method::PUT,
        &format!("/api/interviews/{}/scorecard", first.id),
        &first.tokens.interviewer,
        Some(card(0, "strong on tests")),
    )
    .await;
    let (status, _) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/scorecard/submit", first.id),
        &first.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The second has not submitted: refused, with why.
    let (status, refused) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}/debrief", second.id),
        &second.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("submit your own scorecard first"));
    let (status, _) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}/debrief", second.id),
        &second.tokens.candidate,
        None,
    )
    .await;
    assert_eq!(status, 403);

    // After submitting, it sees both, side by side.
    api(
        &server,
        Method::PUT,
        &format!("/api/interviews/{}/scorecard", second.id),
        &second.tokens.interviewer,
        Some(card(0, "hesitant")),
    )
    .await;
    api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/scorecard/submit", second.id),
        &second.tokens.interviewer,
        None,
    )
    .await;
    let (status, debrief) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{}/debrief", second.id),
        &second.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{debrief}");
    assert_eq!(
        debrief["interviews"].as_array().unwrap().len(),
        2,
        "only this candidate's loop"
    );
    assert_eq!(debrief["ratings"][0]["ratings"], json!([3, 3]));

    // The admin's view of the loop.
    let (status, admin) = api(
        &server,
        Method::GET,
        "/api/candidates/cand-42/debrief",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(admin["recommendations"], json!(["yes", "yes"]));
    let (status, _) = api(
        &server,
        Method::GET,
        "/api/candidates/cand-42/debrief",
        &first.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn integrity_signals_reach_the_interviewer_only_and_cannot_flood_the_log() {
    let server = TestServer::start().await;
    let interview = create(&server, "ats-6").await;
    let mine =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();
    let theirs =
        EventsClient::connect(&server.events_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    let path = format!("/api/interviews/{}/signals", interview.id);
    let (status, body) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.candidate,
        Some(json!({"kind": "paste", "size": 812, "at": 1})),
    )
    .await;
    assert_eq!((status, &body["logged"]), (202, &json!(true)), "{body}");
    assert!(
        eventually(PATIENCE, || theirs
            .all()
            .iter()
            .any(|e| e["type"] == "signal" && e["size"] == 812))
        .await
    );
    let (status, _) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.interviewer,
        Some(json!({"kind": "blur"})),
    )
    .await;
    assert_eq!(status, 403, "signals come from the candidate's page");
    let (status, _) = api(
        &server,
        Method::POST,
        &path,
        &interview.tokens.candidate,
        Some(json!({"kind": "keylogger"})),
    )
    .await;
    assert_eq!(status, 400);
    for _ in 0..100 {
        api(
            &server,
            Method::POST,
            &path,
            &interview.tokens.candidate,
            Some(json!({"kind": "blur"})),
        )
        .await;
    }
    let logged = server
        .state
        .store
        .read_kinds(&interview.id, &[EventKind::Signal])
        .unwrap();
    assert_eq!(
        logged.len(),
        duet_core::MAX_SIGNALS_PER_MINUTE,
        "capped per minute"
    );
    assert!(
        mine.all().iter().all(|e| e["type"] != "signal"),
        "the candidate's socket carries none"
    );
}

#[tokio::test]
async fn notes_racing_a_delete_never_bring_the_interview_back() {
    // Issue 16, finding 2: a note whose request passed the token check just before the delete
    // started a new room for the deleted id and was stored after DELETE answered 204.
    let server = TestServer::start().await;
    for round in 0..5 {
        let created = create(&server, &format!("race-{round}")).await;
        let path = format!("/api/interviews/{}/notes", created.id);
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..4 {
            let (url, token) = (server.http(&path), created.tokens.interviewer.clone());
            writers.spawn(async move {
                let client = reqwest::Client::new();
                for n in 0..25 {
                    let _ = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": format!("note {writer}.{n}")}))
                        .send()
                        .await;
                }
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
        let (status, _) = api(
            &server,
            Method::DELETE,
            &format!("/api/interviews/{}", created.id),
            &server.admin_token,
            None,
        )
        .await;
        assert_eq!(status, 204);
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        // Everything in flight has settled: the interview stays deleted.
        let log = server.state.store.read_log(&created.id, 0).unwrap();
        assert!(
            log.is_empty(),
            "round {round}: {} records came back",
            log.len()
        );
        assert!(server
            .state
            .store
            .get_interview(&created.id)
            .unwrap()
            .is_none());
        let (status, _) = api(
            &server,
            Method::DELETE,
            &format!("/api/interviews/{}", created.id),
            &server.admin_token,
            None,
        )
        .await;
        assert_eq!(status, 404, "round {round}: deleted once, and for good");
    }
}
