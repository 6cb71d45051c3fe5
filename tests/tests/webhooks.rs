//! Outbound webhooks through the real server: a receiver on loopback (a small axum server)
//! gets every event exactly as signed, in order per interview; a receiver that is down while
//! the server restarts twice still gets everything once it is back; internal addresses are
//! refused without the server's allow flag, at registration and at delivery.
#![allow(clippy::unwrap_used)]

use duet_protocol::CreatedInterview;
use duet_server::reexports::axum;
use duet_server::webhooks::sign;
use duet_tests::{api, eventually, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver was sent: the signature header and the body, byte for byte.
#[derive(Clone, Debug)]
struct Received {
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver on `addr`: keeps what it is sent and answers 200.
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Receiver {
    async fn start(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let keep = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let keep = keep.clone();
                async move {
                    let signature = headers
                        .get("x-duet-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    keep.lock().unwrap().push(Received { signature, body });
                    "ok"
                }
            }),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .unwrap();
        });
        Receiver { got, stop }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Event types received for `interview`, in arrival order.
    fn types_for(&self, interview: &str) -> Vec<String> {
        self.received()
            .iter()
            .map(Received::json)
            .filter(|e| e["data"]["interview"]["id"] == interview)
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A loopback address with a port nobody listens on (yet).
async fn free_addr() -> SocketAddr {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    probe.local_addr().unwrap()
}

/// Fast retries and polling for real-time tests, and loopback receivers allowed.
fn quick(args: &mut duet_server::config::ServeArgs) {
    args.webhooks.allow_private = true;
    args.webhooks.retry_base_ms = 100;
    args.webhooks.retry_max_secs = 1;
    args.webhooks.poll_ms = 50;
}

async fn register(server: &TestServer, url: &str, events: Value) -> (String, String) {
    let (status, created) = api(
        server,
        Method::POST,
        "/api/webhooks",
        &server.admin_token,
        Some(json!({"url": url, "events": events})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn end(server: &TestServer, interview: &CreatedInterview) {
    let (status, body) = api(
        server,
        Method::POST,
        &format!("/api/interviews/{}/end", interview.id),
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn submit_scorecard(server: &TestServer, interview: &CreatedInterview) {
    let path = format!("/api/interviews/{}/scorecard", interview.id);
    let card = json!({"ratings": {"debugging": 4}, "notes": "clear tests", "recommendation": "yes", "level": "senior", "evidence": {}, "version": 0});
    let (status, body) = api(
        server,
        Method::PUT,
        &path,
        &interview.tokens.interviewer,
        Some(card),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(
        server,
        Method::POST,
        &format!("{path}/submit"),
        &interview.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn deliveries(server: &TestServer, webhook: &str) -> Vec<Value> {
    let (status, page) = api(
        server,
        Method::GET,
        &format!("/api/webhooks/{webhook}/deliveries"),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["deliveries"].as_array().unwrap().clone()
}

/// Polls the delivery log every 50 ms (up to 15 s) until `holds`; the log at the end.
async fn log_until(
    server: &TestServer,
    webhook: &str,
    holds: impl Fn(&[Value]) -> bool,
) -> (bool, Vec<Value>) {
    for _ in 0..300 {
        let log = deliveries(server, webhook).await;
        if holds(&log) {
            return (true, log);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (false, deliveries(server, webhook).await)
}

fn retried_after_failing(d: &Value, error: &str) -> bool {
    d["state"] == "pending"
        && d["attempts"].as_u64() >= Some(2)
        && d["last_error"].as_str().is_some_and(|e| e.contains(error))
}

#[tokio::test]
async fn a_receiver_gets_every_event_exactly_as_signed_and_in_order_per_interview() {
    let addr = free_addr().await;
    let receiver = Receiver::start(addr).await;
    let server = TestServer::start_with(quick).await;
    let url = format!("http://{addr}/hook");
    let (webhook, secret) = register(&server, &url, json!(duet_protocol::WebhookEvent::ALL)).await;

    // Two interviews, interleaved: each is created, its candidate joins, it ends, its
    // scorecard is submitted.
    let first = server.create_interview("Ada").await;
    let second = server.create_interview("Grace").await;
    let ada = YClient::connect(&server.yjs_url(&first.id, &first.tokens.candidate))
        .await
        .unwrap();
    let grace = YClient::connect(&server.yjs_url(&second.id, &second.tokens.candidate))
        .await
        .unwrap();
    end(&server, &second).await;
    end(&server, &first).await;
    submit_scorecard(&server, &first).await;
    submit_scorecard(&server, &second).await;
    // A take-home: created, its candidate presses Start, then Submit.
    let (status, take_home) = api(
        &server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({"title": "Take-home", "candidate_name": "Linus", "mode": "take_home", "time_limit_minutes": 30})),
    )
    .await;
    assert_eq!(status, 201, "{take_home}");
    let (th_id, th_token) = (
        take_home["id"].as_str().unwrap().to_owned(),
        take_home["tokens"]["candidate"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for step in ["start", "submit"] {
        let path = format!("/api/interviews/{th_id}/{step}");
        let (status, body) = api(&server, Method::POST, &path, &th_token, None).await;
        assert_eq!(status, 200, "{step}: {body}");
    }

    let everything = [
        "interview.created",
        "interview.started",
        "interview.ended",
        "scorecard.submitted",
    ];
    let all_in = eventually(Duration::from_secs(20), || {
        receiver.received().len() >= 2 * everything.len() + 4
    })
    .await;
    assert!(all_in, "received: {:?}", receiver.received());
    assert_eq!(receiver.types_for(first.id.as_str()), everything);
    assert_eq!(receiver.types_for(second.id.as_str()), everything);
    assert_eq!(
        receiver.types_for(&th_id),
        [
            "interview.created",
            "interview.started",
            "take_home.submitted",
            "interview.ended"
        ]
    );

    // Each body verifies against its signature with the endpoint's secret, as docs/API.md
    // tells a receiver to check it; each event has its own id.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let received = receiver.received();
    let mut ids = std::collections::HashSet::new();
    for event in &received {
        assert_eq!(
            sign::verify(&secret, &event.signature, &event.body, now, 300),
            Ok(()),
            "{event:?}"
        );
        assert!(ids.insert(event.json()["id"].as_str().unwrap().to_owned()));
    }
    // A receiver that checks refuses a tampered body, a replay from long ago, another secret.
    let one = &received[0];
    let tampered = one.body.replace("Ada", "Eve").replace("Grace", "Eve");
    assert_eq!(
        sign::verify(&secret, &one.signature, &tampered, now, 300),
        Err(sign::Refused::Mismatch)
    );
    assert_eq!(
        sign::verify(&secret, &one.signature, &one.body, now + 3_600, 300),
        Err(sign::Refused::Stale)
    );
    assert!(sign::verify("not-the-secret-at-all", &one.signature, &one.body, now, 300).is_err());

    // The scorecard event says what was decided; the created one who the candidate is.
    let scored = received
        .iter()
        .map(Received::json)
        .find(|e| e["type"] == "scorecard.submitted")
        .unwrap();
    assert_eq!(scored["data"]["scorecard"]["recommendation"], "yes");
    let created = received
        .iter()
        .map(Received::json)
        .find(|e| {
            e["type"] == "interview.created" && e["data"]["interview"]["id"] == first.id.as_str()
        })
        .unwrap();
    assert_eq!(created["data"]["interview"]["candidate_name"], "Ada");
    let submitted = received
        .iter()
        .map(Received::json)
        .find(|e| e["type"] == "take_home.submitted")
        .unwrap();
    assert_eq!(submitted["data"]["take_home"]["reason"], "submitted");

    // The delivery log says each was delivered on the first attempt; a redeliver sends the
    // same event (same id, same body) once more.
    let log = deliveries(&server, &webhook).await;
    assert_eq!(log.len(), 12);
    assert!(log
        .iter()
        .all(|d| d["state"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 200));
    let again = &log[0];
    let (status, _) = api(
        &server,
        Method::POST,
        &format!(
            "/api/webhooks/{webhook}/deliveries/{}/redeliver",
            again["id"]
        ),
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 202);
    assert!(eventually(Duration::from_secs(10), || receiver.received().len() == 13).await);
    let last = receiver.received().last().unwrap().json();
    assert_eq!(last["id"], again["event_id"]);

    // The endpoint is listed without its secret; the candidate's token cannot list it.
    let (status, listed) = api(
        &server,
        Method::GET,
        "/api/webhooks",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["url"], url.as_str());
    assert!(!listed.to_string().contains(&secret));
    let (status, _) = api(
        &server,
        Method::GET,
        "/api/webhooks",
        &first.tokens.candidate,
        None,
    )
    .await;
    assert!(status == 401 || status == 403, "{status}");
    ada.close().await;
    grace.close().await;
}

#[tokio::test]
async fn every_event_arrives_after_the_receiver_was_down_through_two_server_restarts() {
    let addr = free_addr().await;
    let url = format!("http://{addr}/hook");

    // The receiver is down. The first life of the server registers the endpoint and creates
    // an interview; its deliveries fail and are retried.
    let server = TestServer::start_with(quick).await;
    let (webhook, _secret) = register(
        &server,
        &url,
        json!(["interview.created", "interview.ended"]),
    )
    .await;
    let first = server.create_interview("Ada").await;
    end(&server, &first).await;
    let (retried, log) = log_until(&server, &webhook, |log| {
        log.iter()
            .any(|d| retried_after_failing(d, "could not connect"))
    })
    .await;
    assert!(retried, "failed attempts are retried and logged: {log:?}");
    let dir = server.stop().await;

    // Second life: another interview, still nobody listening.
    let server = TestServer::start_in(dir, quick).await;
    let second = server.create_interview("Grace").await;
    end(&server, &second).await;
    // Each interview's created event is retried; its ended event waits behind it, in order.
    let (retried, log) = log_until(&server, &webhook, |log| {
        log.len() == 4
            && log.iter().all(|d| match d["event"].as_str() {
                Some("interview.created") => retried_after_failing(d, "could not connect"),
                _ => d["attempts"] == 0 && d["state"] == "pending",
            })
    })
    .await;
    assert!(retried, "the heads were retried, the rest waits: {log:?}");
    let dir = server.stop().await;

    // Third life: the receiver comes back; everything arrives, in order per interview.
    let server = TestServer::start_in(dir, quick).await;
    let receiver = Receiver::start(addr).await;
    let all_in = eventually(Duration::from_secs(20), || receiver.received().len() >= 4).await;
    assert!(all_in, "received: {:?}", receiver.received());
    for interview in [&first, &second] {
        assert_eq!(
            receiver.types_for(interview.id.as_str()),
            ["interview.created", "interview.ended"]
        );
    }
    let log = deliveries(&server, &webhook).await;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|d| d["state"] == "delivered"), "{log:?}");
}

#[tokio::test]
async fn an_internal_address_is_refused_at_registration_and_at_delivery_without_the_flag() {
    let addr = free_addr().await;
    let receiver = Receiver::start(addr).await;

    // Without the flag, loopback, a name for it, private and metadata addresses are refused.
    let strict = TestServer::start().await;
    for url in [
        format!("http://{addr}/hook"),
        format!("http://localhost:{}/hook", addr.port()),
        "http://10.0.0.8/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]/hook".to_owned(),
    ] {
        let (status, body) = api(
            &strict,
            Method::POST,
            "/api/webhooks",
            &strict.admin_token,
            Some(json!({"url": url, "events": ["interview.created"]})),
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--webhook-allow-private-addresses"),
            "{body}"
        );
    }
    drop(strict);

    // Registered while the flag was on; the server restarts without it: deliveries to the
    // loopback receiver are refused (and logged), not sent.
    let allowed = TestServer::start_with(quick).await;
    let (webhook, _) = register(
        &allowed,
        &format!("http://{addr}/hook"),
        json!(["interview.created"]),
    )
    .await;
    let dir = allowed.stop().await;
    let strict = TestServer::start_in(dir, |args| {
        quick(args);
        args.webhooks.allow_private = false;
    })
    .await;
    strict.create_interview("Ada").await;
    let (refused, log) = log_until(&strict, &webhook, |log| {
        log.iter()
            .any(|d| retried_after_failing(d, "--webhook-allow-private-addresses"))
    })
    .await;
    assert!(refused, "{log:?}");
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn bad_webhook_requests_are_answered_clearly() {
    let server = TestServer::start_with(quick).await;
    let cases = [
        (
            json!({"url": "ftp://example.com/x", "events": ["interview.created"]}),
            "http",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["interview.deleted"]}),
            "expected",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["interview.created"], "secret": "short"}),
            "secret",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = api(
            &server,
            Method::POST,
            "/api/webhooks",
            &server.admin_token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (status, _) = api(
        &server,
        Method::DELETE,
        "/api/webhooks/wh_nope",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        Method::GET,
        "/api/webhooks/wh_nope/deliveries",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        Method::POST,
        "/api/webhooks/wh_nope/deliveries/1/redeliver",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_receiver_that_never_answers_holds_a_delivery_slot_never_a_room_or_another_endpoint() {
    // One receiver accepts connections and never answers; another answers at once.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    let fast_addr = free_addr().await;
    let fast = Receiver::start(fast_addr).await;
    let server = TestServer::start_with(|args| {
        quick(args);
        args.webhooks.timeout_secs = 1;
        args.webhooks.concurrency = 2;
    })
    .await;
    let all = json!(duet_protocol::WebhookEvent::ALL);
    let (slow_hook, _) =
        register(&server, &format!("http://{silent_addr}/hook"), all.clone()).await;
    register(&server, &format!("http://{fast_addr}/hook"), all).await;

    // Five interviews are created and ended while the silent receiver holds its deliveries.
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        let interview = server.create_interview(name).await;
        end(&server, &interview).await;
        ids.push(interview.id.to_string());
    }
    let api_time = started.elapsed();
    assert!(
        eventually(Duration::from_secs(20), || fast.received().len() >= 10).await,
        "the answering receiver got every event: {:?}",
        fast.received().len()
    );
    for id in &ids {
        assert_eq!(fast.types_for(id), ["interview.created", "interview.ended"]);
    }
    let (timed_out, log) = log_until(&server, &slow_hook, |log| {
        log.iter().any(|d| retried_after_failing(d, "timed out"))
    })
    .await;
    assert!(
        timed_out,
        "the silent receiver's deliveries time out and retry: {log:?}"
    );
    println!(
        "5 interviews created and ended in {api_time:?} while one receiver never answered; \
         the other got all 10 events"
    );
}
