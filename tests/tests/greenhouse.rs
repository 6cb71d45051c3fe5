//! Greenhouse's assessment-partner round through the real server: the admin makes an
//! integration key; Greenhouse lists the tests, sends one (the candidate's mail arrives at a
//! real SMTP server with their link), sends it again (the same test answers), and polls
//! test_status as the candidate starts and submits, and after a live interview is scored. Wrong keys, unknown
//! tests and revoked keys are answered in Greenhouse's error shape. Greenhouse's reports of our
//! answers it could not validate (response_error) are taken with the key only. When a test is
//! complete Duet PATCHes the `url` Greenhouse gave (its "PATCH Completed Test"), once, even
//! when Greenhouse is unreachable until after a restart, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use duet_server::reexports::axum;
use duet_tests::{api, eventually, SmtpServer, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What Greenhouse's callback endpoint was sent: method, path, Authorization and body.
type Patched = (String, String, String, String);

/// Greenhouse's side of the completion callback, on loopback: keeps every request, answers 200.
struct GreenhouseCallbacks {
    got: Arc<Mutex<Vec<Patched>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl GreenhouseCallbacks {
    async fn start(addr: SocketAddr) -> GreenhouseCallbacks {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let got: Arc<Mutex<Vec<Patched>>> = Arc::default();
        let keep = got.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let keep = keep.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    keep.lock().unwrap().push((
                        method.to_string(),
                        uri.path().to_owned(),
                        auth,
                        body,
                    ));
                    ""
                }
            },
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .unwrap();
        });
        GreenhouseCallbacks { got, stop }
    }

    fn received(&self) -> Vec<Patched> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for GreenhouseCallbacks {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn basic(key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    format!("Basic {encoded}")
}

/// A Greenhouse request with `key` as its HTTP Basic username.
async fn partner(
    server: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.http(&format!("/api/greenhouse/{path}")))
        .header("Authorization", basic(key));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn candidate(email: &str, application: u64) -> Value {
    json!({
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": email,
        "resume_url": null,
        "phone_number": "123-456-7890",
        "greenhouse_profile_url": format!("https://app.greenhouse.io/people/17681532?application_id={application}"),
    })
}

/// Mail to `smtp`, fast polling and retries, loopback callbacks allowed (Greenhouse's side runs
/// on loopback here), and the store at `database` when given (else SQLite in the data dir).
fn settings(
    smtp: &SmtpServer,
    database: Option<&str>,
) -> impl FnOnce(&mut duet_server::config::ServeArgs) {
    let (url, database) = (smtp.url(), database.map(str::to_owned));
    move |args| {
        args.mail.smtp_url = Some(url.parse().unwrap());
        args.mail.from = Some("Duet <duet@example.com>".into());
        args.webhooks.poll_ms = 50;
        args.webhooks.allow_private = true;
        args.webhooks.retry_base_ms = 100;
        args.webhooks.retry_max_secs = 1;
        args.database_url = database.map(|d| d.parse().unwrap());
    }
}

async fn start(smtp: &SmtpServer) -> (TestServer, String) {
    let server = TestServer::start_with(settings(smtp, None)).await;
    let key = new_key(&server).await;
    (server, key)
}

async fn new_key(server: &TestServer) -> String {
    let (status, created) = api(
        server,
        Method::POST,
        "/api/integrations/keys",
        &server.admin_token,
        Some(json!({"name": "greenhouse"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn greenhouse_lists_sends_and_polls_a_test_and_the_candidate_gets_the_mail() {
    let smtp = SmtpServer::start().await;
    let (server, key) = start(&smtp).await;

    // Greenhouse lists the tests: every question as a take-home and as a live interview.
    let (status, tests) = partner(&server, Method::GET, "list_tests", &key, None).await;
    assert_eq!(status, 200, "{tests}");
    let tests = tests.as_array().unwrap().clone();
    let take_home = tests
        .iter()
        .find(|t| {
            t["partner_test_id"]
                .as_str()
                .unwrap()
                .starts_with("take_home:")
        })
        .unwrap();
    assert!(take_home["partner_test_name"]
        .as_str()
        .unwrap()
        .contains("take-home, 90 min"));
    let question = take_home["partner_test_id"].as_str().unwrap()["take_home:".len()..].to_owned();
    assert!(tests
        .iter()
        .any(|t| t["partner_test_id"] == format!("live:{question}")));

    // Greenhouse sends the take-home: the candidate's mail arrives with their link.
    let send = json!({
        "partner_test_id": take_home["partner_test_id"],
        "candidate": candidate("ada@example.com", 26234709),
        "url": "https://app.greenhouse.io/integrations/testing_partners/take_home_tests/12345",
    });
    let (status, sent) =
        partner(&server, Method::POST, "send_test", &key, Some(send.clone())).await;
    assert_eq!(status, 200, "{sent}");
    let pid = sent["partner_interview_id"].as_str().unwrap().to_owned();
    let mail = smtp.wait_for(1, 15).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["rcpt_tos"], json!(["ada@example.com"]));
    assert!(mail[0]["subject"]
        .as_str()
        .unwrap()
        .starts_with("Your take-home: "));
    let body = mail[0]["body"].as_str().unwrap();
    assert!(
        body.contains("90 minutes") && body.contains("Hello Ada Lovelace"),
        "{body}"
    );
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/candidate#token="))
        .unwrap()
        .to_owned();

    // The same application sent again answers the same test, and creates nothing more.
    let (status, again) = partner(&server, Method::POST, "send_test", &key, Some(send)).await;
    assert_eq!(
        (status, &again["partner_interview_id"]),
        (StatusCode::OK, &json!(pid))
    );
    let (_, listed) = api(
        &server,
        Method::GET,
        "/api/interviews",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let interview_id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(link.contains(&format!("/interview/{interview_id}/candidate#token=")));

    // Before the candidate opens it: sent, with the staff's replay link.
    let status_path = format!("test_status?partner_interview_id={pid}");
    let (status, before) = partner(&server, Method::GET, &status_path, &key, None).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["partner_status"], "sent");
    assert_eq!(before["partner_score"], Value::Null);
    assert_eq!(
        before["partner_profile_url"],
        server.http(&format!("/replay/{interview_id}"))
    );
    assert_eq!(before["metadata"]["Candidate"], "Ada Lovelace");

    // The candidate opens the mailed link and presses Start: in progress.
    let token = link.split("#token=").nth(1).unwrap();
    let round = format!("/api/interviews/{interview_id}");
    let (status, started) = api(
        &server,
        Method::POST,
        &format!("{round}/start"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let (_, during) = partner(&server, Method::GET, &status_path, &key, None).await;
    assert_eq!(during["partner_status"], "in_progress", "{during}");

    // The candidate submits: complete, and says how it was submitted.
    let (status, submitted) = api(
        &server,
        Method::POST,
        &format!("{round}/submit"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    let (_, after) = partner(&server, Method::GET, &status_path, &key, None).await;
    assert_eq!(after["partner_status"], "complete", "{after}");
    assert_eq!(after["metadata"]["Submitted"], "by the candidate");
    assert_eq!(after["partner_profile_url"], before["partner_profile_url"]);
}

#[tokio::test]
async fn a_live_test_is_complete_with_its_score_once_ended_and_scored() {
    let smtp = SmtpServer::start().await;
    let (server, key) = start(&smtp).await;
    let (_, tests) = partner(&server, Method::GET, "list_tests", &key, None).await;
    let live = tests
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["partner_test_id"].as_str().unwrap().starts_with("live:"))
        .unwrap()
        .clone();
    let addr = duet_tests::free_loopback_addr().await;
    let greenhouse = GreenhouseCallbacks::start(addr).await;
    let send = json!({"partner_test_id": live["partner_test_id"], "candidate": candidate("grace@example.com", 42), "url": format!("http://{addr}/done/42")});
    let (_, sent) = partner(&server, Method::POST, "send_test", &key, Some(send)).await;
    let pid = sent["partner_interview_id"].as_str().unwrap();
    let (_, listed) = api(
        &server,
        Method::GET,
        "/api/interviews",
        &server.admin_token,
        None,
    )
    .await;
    let interview_id = listed[0]["id"].as_str().unwrap();

    // The team gets its interviewer's link (the admin re-issues the links), scores and ends.
    let (status, links) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{interview_id}/links"),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{links}");
    let interviewer = links["tokens"]["interviewer"].as_str().unwrap();
    let path = format!("/api/interviews/{interview_id}/scorecard");
    let card = json!({"ratings": {"debugging": 4}, "notes": "clear", "recommendation": "strong_yes", "level": "senior", "evidence": {}, "version": 0});
    assert_eq!(
        api(&server, Method::PUT, &path, interviewer, Some(card))
            .await
            .0,
        200
    );
    assert_eq!(
        api(
            &server,
            Method::POST,
            &format!("{path}/submit"),
            interviewer,
            None
        )
        .await
        .0,
        200
    );
    let status_path = format!("test_status?partner_interview_id={pid}");
    let (_, scored) = partner(&server, Method::GET, &status_path, &key, None).await;
    assert_ne!(
        scored["partner_status"], "complete",
        "not before it ends: {scored}"
    );
    assert!(
        greenhouse.received().is_empty()
            && server
                .state
                .store
                .due_callbacks(i64::MAX, 10, &[])
                .unwrap()
                .is_empty(),
        "no completion callback before it ends"
    );
    let end = format!("/api/interviews/{interview_id}/end");
    assert_eq!(
        api(&server, Method::POST, &end, interviewer, None).await.0,
        200
    );

    let (status, done) = partner(&server, Method::GET, &status_path, &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(done["partner_status"], "complete", "{done}");
    assert_eq!(done["partner_score"], 100);
    assert_eq!(done["metadata"]["Recommendations"], "strong yes");
    // Ended with a submitted card: Greenhouse is told, once.
    let told = eventually(Duration::from_secs(20), || {
        !greenhouse.received().is_empty()
    })
    .await;
    assert!(told, "no completion callback after the end");
    let received = greenhouse.received();
    assert_eq!(
        (
            received.len(),
            received[0].0.as_str(),
            received[0].1.as_str()
        ),
        (1, "PATCH", "/done/42")
    );
}

#[tokio::test]
async fn bad_partner_requests_are_answered_in_greenhouses_error_shape() {
    let smtp = SmtpServer::start().await;
    let (server, key) = start(&smtp).await;
    let errors = |body: &Value| body["errors"].as_array().map(|e| e.len()).unwrap_or(0);

    // A wrong key, no key: 401 with errors.
    let (status, body) = partner(&server, Method::GET, "list_tests", "not-a-key", None).await;
    assert_eq!(status, 401);
    assert_eq!(errors(&body), 1, "{body}");
    let bare = reqwest::get(server.http("/api/greenhouse/list_tests"))
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert!(bare.headers().contains_key("www-authenticate"));
    // The admin token is not an integration key.
    let (status, _) = partner(
        &server,
        Method::GET,
        "list_tests",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 401);

    // A test that does not exist, a body that is not a request, an unknown interview.
    let send = json!({"partner_test_id": "take_home:no-such-question", "candidate": candidate("ada@example.com", 1)});
    let (status, body) = partner(&server, Method::POST, "send_test", &key, Some(send)).await;
    assert_eq!(status, 404);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("no-such-question"),
        "{body}"
    );
    let (status, body) = partner(
        &server,
        Method::POST,
        "send_test",
        &key,
        Some(json!({"candidate": 3})),
    )
    .await;
    assert_eq!(
        (status, errors(&body)),
        (StatusCode::BAD_REQUEST, 1),
        "{body}"
    );
    let (status, body) = partner(
        &server,
        Method::GET,
        "test_status?partner_interview_id=duet_nope",
        &key,
        None,
    )
    .await;
    assert_eq!(
        (status, errors(&body)),
        (StatusCode::NOT_FOUND, 1),
        "{body}"
    );
    let (status, _) = partner(&server, Method::GET, "test_status", &key, None).await;
    assert_eq!(status, 400);

    // Revoked: refused at once; the audit log names the key's creation and revocation.
    let (_, keys) = api(
        &server,
        Method::GET,
        "/api/integrations/keys",
        &server.admin_token,
        None,
    )
    .await;
    assert!(!keys.to_string().contains(&key), "the key is never listed");
    let id = keys[0]["id"].as_str().unwrap();
    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/api/integrations/keys/{id}"),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = partner(&server, Method::GET, "list_tests", &key, None).await;
    assert_eq!(status, 401);
    let (_, audit) = api(
        &server,
        Method::GET,
        "/api/audit",
        &server.admin_token,
        None,
    )
    .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"integration_key_created")
            && actions.contains(&"integration_key_revoked"),
        "{actions:?}"
    );
    assert!(smtp.messages().is_empty(), "no mail for refused requests");
}

#[tokio::test]
async fn greenhouse_reports_an_answer_it_could_not_validate_and_only_with_the_key() {
    let smtp = SmtpServer::start().await;
    let (server, key) = start(&smtp).await;
    // The report as Greenhouse's documentation shows it: ids as numbers, the candidate's email.
    let report = json!({
        "api_call": "test_status",
        "errors": ["partner_status is 'complete' but partner_profile url is missing"],
        "partner_test_id": 12345,
        "partner_test_name": "LRU cache",
        "partner_interview_id": "duet_abc",
        "candidate_email": "ada@example.com",
    });

    // Without the integration key it is refused, in Greenhouse's error shape.
    let (status, body) = partner(
        &server,
        Method::POST,
        "response_error",
        "not-a-key",
        Some(report.clone()),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");

    // With it, taken: 200 and the body Greenhouse expects.
    let (status, body) = partner(&server, Method::POST, "response_error", &key, Some(report)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": 200}));

    // Only api_call and errors are required; a body without them is a 400 that says so.
    let (status, body) = partner(
        &server,
        Method::POST,
        "response_error",
        &key,
        Some(json!({"api_call": "list_tests"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0].as_str().unwrap().contains("errors"),
        "{body}"
    );
    let (status, body) = partner(
        &server,
        Method::POST,
        "response_error",
        &key,
        Some(json!({"api_call": "list_tests", "errors": []})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": 200})));
}

/// Greenhouse sends a take-home (of a data question: the interview gets its environment) whose
/// completion callback goes to `greenhouse`; the candidate
/// opens the mailed link, starts and submits while Greenhouse is unreachable; Duet tries, fails
/// and retries. The server restarts, Greenhouse comes back, and the PATCH arrives once: no
/// body, the integration key as HTTP Basic username, as Greenhouse's partner docs ask.
async fn the_completion_patch_arrives_once_after_a_restart(database: Option<String>) {
    let smtp = SmtpServer::start().await;
    let greenhouse = duet_tests::free_loopback_addr().await;
    let server = TestServer::start_with(settings(&smtp, database.as_deref())).await;
    let key = new_key(&server).await;
    // A data question: the interview runs in its environment.
    let test = json!("take_home:clean-messy-records");
    let callback =
        format!("http://{greenhouse}/integrations/testing_partners/take_home_tests/12345");
    let send = json!({"partner_test_id": test, "candidate": candidate("ada@example.com", 7), "url": callback});
    let (status, sent) = partner(&server, Method::POST, "send_test", &key, Some(send)).await;
    assert_eq!(status, 200, "{sent}");
    let pid = sent["partner_interview_id"].as_str().unwrap().to_owned();
    let mail = smtp.wait_for(1, 15).await;
    let link = mail[0]["body"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find(|w| w.contains("/candidate#token="))
        .unwrap()
        .to_owned();
    let token = link.split("#token=").nth(1).unwrap();
    let interview = link
        .split("/interview/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let stored = server
        .state
        .store
        .get_interview(&duet_protocol::InterviewId::parse(interview).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.environment, "python-data",
        "the question's environment"
    );
    let round = format!("/api/interviews/{interview}");
    for step in ["start", "submit"] {
        let (status, body) = api(
            &server,
            Method::POST,
            &format!("{round}/{step}"),
            token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{step}: {body}");
    }

    // Greenhouse is down: the callback is tried, fails, and waits for its retry.
    let store = server.state.store.clone();
    let tried = eventually(Duration::from_secs(20), || {
        store
            .due_callbacks(i64::MAX, 10, &[])
            .unwrap()
            .iter()
            .any(|c| c.attempts >= 1)
    })
    .await;
    assert!(
        tried,
        "the callback was attempted while Greenhouse was down"
    );
    let dir = server.stop().await;

    // The server restarts; then Greenhouse comes back. The PATCH arrives, once.
    let server = TestServer::start_in(dir, settings(&smtp, database.as_deref())).await;
    let greenhouse = GreenhouseCallbacks::start(greenhouse).await;
    let arrived = eventually(Duration::from_secs(20), || {
        !greenhouse.received().is_empty()
    })
    .await;
    assert!(arrived, "no PATCH arrived after the restart");
    let store = server.state.store.clone();
    let settled = eventually(Duration::from_secs(10), || {
        store.due_callbacks(i64::MAX, 10, &[]).unwrap().is_empty()
    })
    .await;
    assert!(settled, "the delivered callback is still pending");
    // Several polls later, still the one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        greenhouse.received(),
        [(
            "PATCH".to_owned(),
            "/integrations/testing_partners/take_home_tests/12345".to_owned(),
            basic(&key),
            String::new()
        )]
    );
    // The key was kept only for the callback.
    let kept = store.partner_test(&pid).unwrap().unwrap();
    assert_eq!(kept.callback.map(|c| c.key), Some(String::new()));
    // What Greenhouse then asks: complete.
    let (_, status) = partner(
        &server,
        Method::GET,
        &format!("test_status?partner_interview_id={pid}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status["partner_status"], "complete", "{status}");
}

#[tokio::test]
async fn the_completion_patch_arrives_once_after_a_restart_on_sqlite() {
    the_completion_patch_arrives_once_after_a_restart(None).await;
}

#[tokio::test]
async fn the_completion_patch_arrives_once_after_a_restart_on_postgres() {
    let url = duet_store::testing::PgCluster::shared().database();
    the_completion_patch_arrives_once_after_a_restart(Some(url)).await;
}

/// Greenhouse sends a take-home; the admin revokes the integration key before the candidate
/// submits. The completion callback is not sent with the revoked key: it is given up, and the
/// key is no longer kept.
#[tokio::test]
async fn a_callback_whose_key_was_revoked_is_given_up_and_never_sent() {
    let smtp = SmtpServer::start().await;
    let addr = duet_tests::free_loopback_addr().await;
    let greenhouse = GreenhouseCallbacks::start(addr).await;
    let (server, key) = start(&smtp).await;
    let send = json!({"partner_test_id": "take_home:lru-cache", "candidate": candidate("ada@example.com", 9), "url": format!("http://{addr}/done/9")});
    let (status, sent) = partner(&server, Method::POST, "send_test", &key, Some(send)).await;
    assert_eq!(status, 200, "{sent}");
    let pid = sent["partner_interview_id"].as_str().unwrap().to_owned();
    let mail = smtp.wait_for(1, 15).await;
    let link = mail[0]["body"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find(|w| w.contains("/candidate#token="))
        .unwrap()
        .to_owned();
    let token = link.split("#token=").nth(1).unwrap();
    let interview = link
        .split("/interview/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();

    let (_, keys) = api(
        &server,
        Method::GET,
        "/api/integrations/keys",
        &server.admin_token,
        None,
    )
    .await;
    let key_id = keys[0]["id"].as_str().unwrap();
    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/api/integrations/keys/{key_id}"),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    for step in ["start", "submit"] {
        let path = format!("/api/interviews/{interview}/{step}");
        let (status, body) = api(&server, Method::POST, &path, token, None).await;
        assert_eq!(status, 200, "{step}: {body}");
    }

    let store = server.state.store.clone();
    let given_up = eventually(Duration::from_secs(20), || {
        store.due_callbacks(i64::MAX, 10, &[]).unwrap().is_empty()
            && store
                .partner_test(&pid)
                .unwrap()
                .unwrap()
                .callback
                .map(|c| c.key)
                == Some(String::new())
    })
    .await;
    assert!(given_up, "the callback is given up and its key dropped");
    assert!(
        greenhouse.received().is_empty(),
        "nothing was sent with the revoked key"
    );
}
