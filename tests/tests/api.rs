//! The REST API's token and role matrix, and its error bodies.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(server.http(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn creating_an_interview_needs_the_admin_token() {
    let server = TestServer::start().await;
    let body = serde_json::json!({"title": "t", "candidate_name": "Ada"});
    let client = reqwest::Client::new();
    let none = client
        .post(server.http("/api/interviews"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = client
        .post(server.http("/api/interviews"))
        .bearer_auth("nope-nope-nope-nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(error_code(&body), "unauthorized");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    let interview = server.create_interview("Ada").await;
    let role_token = client
        .post(server.http("/api/interviews"))
        .bearer_auth(&interview.tokens.interviewer)
        .json(&serde_json::json!({"title": "t", "candidate_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        role_token.status(),
        403,
        "a role token is known but is not the admin's"
    );
}

#[tokio::test]
async fn a_new_interview_has_three_distinct_strong_tokens_and_links() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let t = &interview.tokens;
    for token in [&t.interviewer, &t.candidate, &t.reviewer] {
        assert!(token.len() >= 22, "at least 128 bits, base64url");
    }
    assert!(
        t.interviewer != t.candidate && t.candidate != t.reviewer && t.interviewer != t.reviewer
    );
    assert!(interview.urls.candidate.contains(interview.id.as_str()));
    assert!(
        interview
            .urls
            .candidate
            .ends_with(&format!("#token={}", t.candidate)),
        "the token rides in the fragment"
    );

    // Tokens are stored only as hashes.
    let db = std::fs::read(server.data_dir.path().join("duet.db")).unwrap();
    let wal = std::fs::read(server.data_dir.path().join("duet.db-wal")).unwrap_or_default();
    for token in [&t.interviewer, &t.candidate, &t.reviewer] {
        let needle = token.as_bytes();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle)
                && !wal.windows(needle.len()).any(|w| w == needle)
        );
    }
}

#[tokio::test]
async fn each_role_sees_the_interview_with_its_own_role() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada Lovelace").await;
    let path = format!("/api/interviews/{}", interview.id);
    for (token, role) in [
        (&interview.tokens.interviewer, "interviewer"),
        (&interview.tokens.candidate, "candidate"),
        (&interview.tokens.reviewer, "reviewer"),
    ] {
        let (status, body) = get(&server, &path, Some(token)).await;
        assert_eq!(status, 200);
        assert_eq!(body["role"], role);
        assert_eq!(body["id"], interview.id.as_str());
        assert_eq!(body["title"], "Python pairing");
        assert_eq!(body["candidate_name"], "Ada Lovelace");
        assert!(body["created_at"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000));
        let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "candidate_name",
                "created_at",
                "environment",
                "id",
                "mode",
                "question",
                "role",
                "status",
                "title"
            ],
            "no more than the view"
        );
        assert_eq!(body["mode"], "live");
        assert_eq!(body["environment"], "python");
        assert_eq!(body["status"], "scheduled", "nobody has joined yet");
        assert!(
            body["question"].is_null(),
            "an interview made without a question has none"
        );
    }
    // The query parameter works as the header does (browsers cannot set headers on websockets).
    let (status, body) = get(
        &server,
        &format!("{path}?token={}", interview.tokens.candidate),
        None,
    )
    .await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("candidate"))
    );
}

#[tokio::test]
async fn tokens_do_not_cross_interviews() {
    let server = TestServer::start().await;
    let first = server.create_interview("Ada").await;
    let second = server.create_interview("Alan").await;
    let path = format!("/api/interviews/{}", first.id);
    let (status, body) = get(&server, &path, Some(&second.tokens.interviewer)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = get(&server, &path, None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _) = get(&server, &path, Some("made-up-token-made-up-token")).await;
    assert_eq!(status, 401);
    let (status, _) = get(&server, &path, Some(&server.admin_token)).await;
    assert_eq!(
        status, 401,
        "the admin token is not a role in any interview"
    );

    // The same rules guard the websocket, before the upgrade.
    for (token, expected) in [
        (second.tokens.candidate.as_str(), "404"),
        ("made-up-token-made-up-token", "401"),
    ] {
        let err = duet_tests::YClient::connect(&server.yjs_url(&first.id, token))
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[tokio::test]
async fn the_admin_lists_interviews_and_roles_cannot() {
    let server = TestServer::start().await;
    let a = server.create_interview("Ada").await;
    let b = server.create_interview("Alan").await;
    let (status, body) = get(&server, "/api/interviews", Some(&server.admin_token)).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(ids.contains(&a.id.as_str()) && ids.contains(&b.id.as_str()));
    let first = body.as_array().unwrap()[0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "candidate_name",
            "candidate_ref",
            "created_at",
            "environment",
            "id",
            "mode",
            "question_id",
            "status",
            "time_limit_minutes",
            "title"
        ],
        "one flat object per interview, as docs/API.md shows it"
    );
    assert_eq!(first["status"], "scheduled");
    assert!(
        body.to_string().find(&a.tokens.candidate).is_none(),
        "tokens are never listed"
    );
    let (status, _) = get(&server, "/api/interviews", Some(&a.tokens.interviewer)).await;
    assert_eq!(status, 403);
    let (status, _) = get(&server, "/api/interviews", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_take_home_keeps_its_time_limit_and_the_rules_for_modes_are_enforced() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(server.http("/api/interviews"))
            .bearer_auth(&server.admin_token)
            .json(&body)
            .send()
    };
    let base = json!({"title": "Screen", "candidate_name": "Ada"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, says) in [
        (
            json!({"mode": "take_home"}),
            "time_limit_minutes from 30 to 240",
        ),
        (
            json!({"mode": "take_home", "time_limit_minutes": 29}),
            "from 30 to 240",
        ),
        (
            json!({"mode": "take_home", "time_limit_minutes": 241}),
            "from 30 to 240",
        ),
        (json!({"time_limit_minutes": 60}), "take-home interviews"),
        (json!({"mode": "solo"}), "mode"),
        (
            json!({"environment": "cobol"}),
            "unknown environment \"cobol\"",
        ),
    ] {
        let response = post(with(extra.clone())).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra}");
        let json: Value = response.json().await.unwrap();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{extra}: {message}");
    }
    let (status, listed) = get(&server, "/api/interviews", Some(&server.admin_token)).await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([]), "a refused interview is not stored");

    let created = post(with(json!({"mode": "take_home", "time_limit_minutes": 90})))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let live = post(base.clone()).await.unwrap();
    assert_eq!(live.status(), StatusCode::CREATED);
    let (_, listed) = get(&server, "/api/interviews", Some(&server.admin_token)).await;
    let mut kept: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["mode"].clone(),
                i["time_limit_minutes"].clone(),
                i["environment"].clone(),
            )
        })
        .collect();
    kept.sort_by_key(|k| k.0.to_string());
    assert_eq!(
        kept,
        vec![
            (json!("live"), Value::Null, json!("python")),
            (json!("take_home"), json!(90), json!("python")),
        ]
    );
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(server.http("/api/interviews"))
            .bearer_auth(&server.admin_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, expected) in [
        ("{".to_owned(), StatusCode::BAD_REQUEST),
        (r#"{"title": "t"}"#.to_owned(), StatusCode::BAD_REQUEST),
        (
            r#"{"title": "", "candidate_name": "Ada"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"title": "t", "candidate_name": "Ada", "extra": 1}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                r#"{{"title": "{}", "candidate_name": "Ada"}}"#,
                "x".repeat(300)
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                r#"{{"title": "{}", "candidate_name": "Ada"}}"#,
                "x".repeat(100_000)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(
            response.status(),
            expected,
            "{}",
            &body[..body.len().min(60)]
        );
        let json: Value = response.json().await.unwrap();
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    let (status, body) = get(&server, "/api/nowhere", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let server = TestServer::start().await;
    let (status, body) = get(&server, "/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["store"], "ok");
    let interview = server.create_interview("Ada").await;
    let client =
        duet_tests::YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
            .await
            .unwrap();
    client.insert(0, "x");
    let metrics_has = |text: &str, line: &str| text.lines().any(|l| l == line);
    let http = reqwest::Client::new();
    let without_token = http.get(server.http("/metrics")).send().await.unwrap();
    assert_eq!(
        without_token.status(),
        401,
        "metrics are the operator's, behind the admin token"
    );
    let with_role_token = http
        .get(server.http("/metrics"))
        .bearer_auth(&interview.tokens.interviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(with_role_token.status(), 403);
    let mut text = String::new();
    for _ in 0..500 {
        text = http
            .get(server.http("/metrics"))
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics_has(&text, "duet_updates_persisted_total 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for line in [
        "duet_rooms_open 1",
        "duet_connections 1",
        "duet_updates_persisted_total 1",
    ] {
        assert!(metrics_has(&text, line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("duet_persist_latency_seconds_count"));
}

#[tokio::test]
async fn links_name_their_role_and_can_be_had_again_and_old_ones_stop_at_once() {
    // Issue 18, item 3: links were shown once, and the candidate's and the interviewer's looked
    // the same for their first 45 characters.
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let id = interview.id.clone();
    let urls = &interview.urls;
    assert!(urls
        .candidate
        .contains(&format!("/interview/{id}/candidate#token=")));
    assert!(urls
        .interviewer
        .contains(&format!("/interview/{id}/interviewer#token=")));
    assert!(urls
        .reviewer
        .contains(&format!("/replay/{id}/reviewer#token=")));
    for url in [&urls.candidate, &urls.interviewer, &urls.reviewer] {
        let path = url.split('#').next().unwrap();
        let page = reqwest::get(path).await.unwrap();
        assert_ne!(page.status(), StatusCode::NOT_FOUND, "{path} is a page");
    }

    // The candidate is in the room, watching events, when the admin re-issues the links.
    let old = interview.tokens.clone();
    let candidate = duet_tests::YClient::connect(&server.yjs_url(&id, &old.candidate))
        .await
        .unwrap();
    let events = duet_tests::EventsClient::connect(&server.events_url(&id, &old.interviewer))
        .await
        .unwrap();
    assert!(duet_tests::eventually(duet_tests::PATIENCE, || candidate.synced()).await);

    let path = format!("/api/interviews/{id}/links");
    let client = reqwest::Client::new();
    let refused = client
        .post(server.http(&path))
        .bearer_auth(&old.interviewer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "only the admin re-issues"
    );
    let missing = client
        .post(server.http("/api/interviews/nosuchinterview/links"))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let answer = client
        .post(server.http(&path))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let fresh: duet_protocol::CreatedInterview = answer.json().await.unwrap();
    assert_eq!(fresh.id, id);
    assert!(fresh
        .urls
        .candidate
        .ends_with(&format!("#token={}", fresh.tokens.candidate)));

    // The old tokens stop at once, open sockets included; the new ones work.
    for token in [&old.interviewer, &old.candidate, &old.reviewer] {
        let (status, _) = get(&server, &format!("/api/interviews/{id}"), Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let new = [
            &fresh.tokens.interviewer,
            &fresh.tokens.candidate,
            &fresh.tokens.reviewer,
        ];
        assert!(!new.contains(&token), "every token is new");
    }
    assert!(
        duet_tests::eventually(duet_tests::PATIENCE, || candidate.closed().is_some()).await,
        "the candidate's open socket on the old link is closed"
    );
    let closed = candidate.closed().unwrap();
    assert_eq!(closed.code, duet_protocol::close::POLICY);
    assert!(closed.reason.contains("replaced"), "{}", closed.reason);
    assert!(
        duet_tests::eventually(duet_tests::PATIENCE, || events.closed()).await,
        "the events socket on the old link is closed"
    );
    for (token, role) in [
        (&fresh.tokens.interviewer, "interviewer"),
        (&fresh.tokens.candidate, "candidate"),
        (&fresh.tokens.reviewer, "reviewer"),
    ] {
        let (status, body) = get(&server, &format!("/api/interviews/{id}"), Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["role"], role);
    }
}
