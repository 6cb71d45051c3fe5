//! People, not tokens (issue 21): staff sign in with a password, hold a session cookie, open
//! the interviews whose panel names them with no token in the URL, and lose every way in the
//! moment an admin disables them. Everything goes through a real server on port 0.
#![allow(clippy::unwrap_used)]

use duet_server::reexports::axum::http::HeaderValue;
use duet_tests::{api, TestServer, PATIENCE};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "a long enough password";

/// A person at a browser: their session cookie, sent with this server's `Origin` and the CSRF
/// header, as the web app sends them.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: Option<String>,
    origin: String,
    csrf: bool,
}

impl<'a> Browser<'a> {
    fn new(server: &'a TestServer) -> Browser<'a> {
        Browser {
            server,
            cookie: None,
            origin: format!("http://{}", server.addr),
            csrf: true,
        }
    }

    /// A request as the web app sends it: this server's `Origin`, the CSRF header (unless
    /// this browser leaves it out) and the cookie, if signed in.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = reqwest::Client::new()
            .request(method, self.server.http(path))
            .header("Origin", &self.origin);
        if self.csrf {
            request = request.header("X-Duet-Csrf", "1");
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        request
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The sign-in request itself (`POST /api/session`), for its headers.
    async fn sign_in_response(&self, email: &str, password: &str) -> reqwest::Response {
        self.request(Method::POST, "/api/session")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in; keeps the cookie. Answers the status, the body and the `Set-Cookie` header.
    async fn sign_in(&mut self, email: &str, password: &str) -> (u16, Value, Option<String>) {
        let response = self.sign_in_response(email, password).await;
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(set) = &set_cookie {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        (status, body, set_cookie)
    }
}

/// A call with the admin token (the break-glass credential), as a script would make it.
async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api(server, method, path, &server.admin_token, body).await
}

/// The admin token seats people on the interview's panel.
async fn seat(server: &TestServer, id: &str, interviewers: &[&str], reviewers: &[&str]) {
    let (status, panel) = admin(
        server,
        Method::PUT,
        &format!("/api/interviews/{id}/panel"),
        Some(json!({"interviewers": interviewers, "reviewers": reviewers})),
    )
    .await;
    assert_eq!(status, 200, "{panel}");
}

/// The token in a set-password link (`.../password#token=T`).
fn link_token(link: &Value) -> String {
    let link = link["link"].as_str().unwrap();
    link.split_once("#token=").unwrap().1.to_owned()
}

/// Sets a password through a one-time link's token.
async fn set_password(server: &TestServer, token: &str, password: &str) -> (u16, Value) {
    api(
        server,
        Method::PUT,
        "/api/password-link",
        token,
        Some(json!({"password": password})),
    )
    .await
}

/// The admin token invites a person; they set their password from the link.
async fn person(server: &TestServer, email: &str, role: &str) -> String {
    let (status, invited) = admin(
        server,
        Method::POST,
        "/api/people",
        Some(json!({"email": email, "name": email.split('@').next().unwrap(), "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let (status, _) = set_password(server, &link_token(&invited), PASSWORD).await;
    assert_eq!(status, 204);
    invited["person"]["id"].as_str().unwrap().to_owned()
}

/// How a websocket ended: the close frame's code and reason, if the server sent one.
type Ended = tokio::sync::oneshot::Receiver<Option<(u16, String)>>;

/// A websocket at `path` (`/yjs/{id}` or `/api/interviews/{id}/events`), opened with the
/// browser's cookie and origin; or the status of its refusal.
async fn socket_by_cookie(
    server: &TestServer,
    browser: &Browser<'_>,
    path: &str,
) -> Result<Ended, u16> {
    let url = format!("ws://{}{path}", server.addr);
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Origin", HeaderValue::from_str(&browser.origin).unwrap());
    if let Some(cookie) = &browser.cookie {
        headers.insert("Cookie", HeaderValue::from_str(cookie).unwrap());
    }
    let ws = match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            return Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket: {e}"),
    };
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (_sink, mut stream) = ws.split();
        let mut ended = None;
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Close(Some(frame)) = frame {
                ended = Some((u16::from(frame.code), frame.reason.to_string()));
            }
        }
        let _ = closed_tx.send(ended);
    });
    Ok(closed)
}

/// The interview's events socket, by cookie.
async fn events_by_cookie(
    server: &TestServer,
    browser: &Browser<'_>,
    id: &str,
) -> Result<Ended, u16> {
    socket_by_cookie(server, browser, &format!("/api/interviews/{id}/events")).await
}

/// The interview's editor (Yjs) socket, by cookie.
async fn yjs_by_cookie(server: &TestServer, browser: &Browser<'_>, id: &str) -> Result<Ended, u16> {
    socket_by_cookie(server, browser, &format!("/yjs/{id}")).await
}

/// How a socket ended, waiting at most [`PATIENCE`].
async fn ended(socket: Ended) -> Option<(u16, String)> {
    tokio::time::timeout(PATIENCE, socket)
        .await
        .expect("the socket closes in time")
        .expect("the socket's reader reports")
}

#[tokio::test]
async fn an_invited_interviewer_sets_a_password_signs_in_and_opens_their_interview_with_no_token() {
    let server = TestServer::start().await;
    // The admin token invites the first admin, who sets a password from the one-time link.
    let (status, invited) = admin(
        &server,
        Method::POST,
        "/api/people",
        Some(json!({"email": " Ada@Example.com ", "name": "Ada", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    assert_eq!(invited["person"]["email"], "ada@example.com");
    assert_eq!(invited["person"]["password_set"], false);
    let ada_link = link_token(&invited);
    let (status, view) = api(&server, Method::GET, "/api/password-link", &ada_link, None).await;
    assert_eq!(
        (status, view["email"].as_str()),
        (200, Some("ada@example.com"))
    );
    let (status, short) = set_password(&server, &ada_link, "short").await;
    assert_eq!(status, 400, "{short}");
    assert_eq!(set_password(&server, &ada_link, PASSWORD).await.0, 204);
    let (status, used) = set_password(&server, &ada_link, "another long password").await;
    assert_eq!(status, 404, "the link works once: {used}");

    // Ada signs in; the cookie is HttpOnly, SameSite=Lax, for the whole site, not Secure on
    // plain http.
    let mut ada = Browser::new(&server);
    let (status, me, set_cookie) = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{me}");
    let set_cookie = set_cookie.unwrap();
    for attribute in ["duet_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(me["person"]["role"], "admin");

    // By cookie, Ada invites Grace (an interviewer), creates an interview and seats Grace.
    let (status, invited) = ada
        .call(
            Method::POST,
            "/api/people",
            Some(json!({"email": "grace@example.com", "name": "Grace", "role": "interviewer"})),
        )
        .await;
    assert_eq!(status, 201, "{invited}");
    let grace_id = invited["person"]["id"].as_str().unwrap().to_owned();
    let (status, twin) = ada
        .call(
            Method::POST,
            "/api/people",
            Some(json!({"email": "GRACE@example.com", "name": "Grace 2", "role": "reviewer"})),
        )
        .await;
    assert_eq!(status, 409, "one address, one person: {twin}");
    assert_eq!(
        set_password(&server, &link_token(&invited), PASSWORD)
            .await
            .0,
        204
    );

    let (status, created) = ada
        .call(
            Method::POST,
            "/api/interviews",
            Some(json!({"title": "Pairing", "candidate_name": "Lin"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let other = server.create_interview("Someone else").await;

    let mut grace = Browser::new(&server);
    assert_eq!(grace.sign_in("grace@example.com", PASSWORD).await.0, 200);
    let (status, mine) = grace.call(Method::GET, "/api/me/interviews", None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["upcoming"], json!([]), "not on any panel yet");
    assert_eq!(
        grace
            .call(Method::GET, &format!("/api/interviews/{id}"), None)
            .await
            .0,
        404,
        "an interview whose panel does not name her is not hers to see"
    );

    let (status, panel) = ada
        .call(
            Method::PUT,
            &format!("/api/interviews/{id}/panel"),
            Some(json!({"interviewers": [grace_id], "reviewers": []})),
        )
        .await;
    assert_eq!(status, 200, "{panel}");

    // Grace lists her interviews and opens hers, with no token anywhere.
    let (_, mine) = grace.call(Method::GET, "/api/me/interviews", None).await;
    assert_eq!(mine["upcoming"][0]["id"], id.as_str());
    assert_eq!(mine["upcoming"][0]["role"], "interviewer");
    let (status, view) = grace
        .call(Method::GET, &format!("/api/interviews/{id}"), None)
        .await;
    assert_eq!((status, view["role"].as_str()), (200, Some("interviewer")));
    let (status, _) = grace
        .call(
            Method::GET,
            &format!("/api/interviews/{id}/scorecard"),
            None,
        )
        .await;
    assert_eq!(status, 200, "the interviewer's private scorecard is hers");
    assert!(events_by_cookie(&server, &grace, &id).await.is_ok());
    assert_eq!(
        grace
            .call(Method::GET, &format!("/api/interviews/{}", other.id), None)
            .await
            .0,
        404,
        "another interview stays hidden"
    );
    assert_eq!(
        events_by_cookie(&server, &grace, other.id.as_str())
            .await
            .err(),
        Some(404)
    );
    // An interviewer manages no people.
    assert_eq!(grace.call(Method::GET, "/api/people", None).await.0, 403);
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_with_a_clear_message_and_an_unknown_email_learns_nothing()
{
    let server = TestServer::start().await;
    person(&server, "grace@example.com", "interviewer").await;
    let mut browser = Browser::new(&server);

    let (status, wrong, cookie) = browser
        .sign_in("grace@example.com", "not her password")
        .await;
    assert_eq!((status, cookie), (401, None));
    let (status, unknown, _) = browser
        .sign_in("nobody@example.com", "not her password")
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        wrong, unknown,
        "an unknown email answers like a wrong password"
    );

    // Five failures in all lock the account; the right password is refused while it is.
    for _ in 0..4 {
        assert_eq!(browser.sign_in("grace@example.com", "guess").await.0, 401);
    }
    let response = browser
        .sign_in_response("grace@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sign_in_locked");
    assert_eq!(
        body["error"]["message"],
        format!("too many failed sign-ins for this account; try again in {retry_after} s")
    );
    // An unknown address locks the same way: the lockout tells nothing either.
    for _ in 0..5 {
        browser.sign_in("nobody@example.com", "guess").await;
    }
    assert_eq!(browser.sign_in("nobody@example.com", "guess").await.0, 429);
    // Another person is not held by Grace's lockout.
    person(&server, "lin@example.com", "reviewer").await;
    assert_eq!(browser.sign_in("lin@example.com", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn a_disabled_persons_cookie_is_refused_at_once_and_their_websockets_close() {
    let server = TestServer::start().await;
    let grace_id = person(&server, "grace@example.com", "interviewer").await;
    let interview = server.create_interview("Lin").await;
    seat(&server, interview.id.as_str(), &[&grace_id], &[]).await;
    let mut grace = Browser::new(&server);
    assert_eq!(grace.sign_in("grace@example.com", PASSWORD).await.0, 200);
    let events = events_by_cookie(&server, &grace, interview.id.as_str())
        .await
        .unwrap();
    let editor = yjs_by_cookie(&server, &grace, interview.id.as_str())
        .await
        .unwrap();

    let (status, disabled) = admin(
        &server,
        Method::PATCH,
        &format!("/api/people/{grace_id}"),
        Some(json!({"state": "disabled"})),
    )
    .await;
    assert_eq!(
        (status, disabled["state"].as_str()),
        (200, Some("disabled"))
    );
    assert_eq!(grace.call(Method::GET, "/api/session", None).await.0, 401);
    assert_eq!(
        grace
            .call(
                Method::GET,
                &format!("/api/interviews/{}", interview.id),
                None
            )
            .await
            .0,
        401
    );
    let disabled = Some((1008, "your account was disabled".to_owned()));
    assert_eq!(ended(events).await, disabled, "closed at once, saying why");
    assert_eq!(ended(editor).await, disabled);
    // Her password no longer signs her in (the same answer as any wrong one).
    assert_eq!(grace.sign_in("grace@example.com", PASSWORD).await.0, 401);
}

#[tokio::test]
async fn a_cookie_write_from_another_origin_or_without_the_csrf_header_is_refused() {
    let server = TestServer::start().await;
    person(&server, "ada@example.com", "admin").await;
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("ada@example.com", PASSWORD).await.0, 200);
    let invite = json!({"email": "x@example.com", "name": "X", "role": "reviewer"});

    let evil = Browser {
        origin: "http://evil.example".into(),
        cookie: ada.cookie.clone(),
        ..Browser::new(&server)
    };
    let (status, body) = evil
        .call(Method::POST, "/api/people", Some(invite.clone()))
        .await;
    assert_eq!(status, 403, "{body}");
    let bare = Browser {
        csrf: false,
        cookie: ada.cookie.clone(),
        ..Browser::new(&server)
    };
    let (status, body) = bare
        .call(Method::POST, "/api/people", Some(invite.clone()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("X-Duet-Csrf"));
    // A read needs neither; the same write from the app's own page goes through.
    assert_eq!(bare.call(Method::GET, "/api/people", None).await.0, 200);
    assert_eq!(
        ada.call(Method::POST, "/api/people", Some(invite)).await.0,
        201
    );
    // Nobody was added by the refused writes: one invitation, one person (and Ada).
    let (_, people) = ada.call(Method::GET, "/api/people", None).await;
    assert_eq!(people.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_personal_token_works_for_scripts_until_its_owner_revokes_it() {
    let server = TestServer::start().await;
    person(&server, "ada@example.com", "admin").await;
    let mut ada = Browser::new(&server);
    ada.sign_in("ada@example.com", PASSWORD).await;
    let (status, created) = ada
        .call(
            Method::POST,
            "/api/me/tokens",
            Some(json!({"name": "ATS sync"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("duet_pt_"));
    let (_, listed) = ada.call(Method::GET, "/api/me/tokens", None).await;
    assert_eq!(listed[0]["name"], "ATS sync");
    assert!(listed[0].get("token").is_none(), "shown once, never listed");

    // A script creates an interview with it, as it did with the shared admin token.
    let (status, made) = api(
        &server,
        Method::POST,
        "/api/interviews",
        &token,
        Some(json!({"title": "Pairing", "candidate_name": "Lin"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (status, _) = api(
        &server,
        Method::POST,
        "/api/me/tokens",
        &token,
        Some(json!({"name": "more"})),
    )
    .await;
    assert_eq!(status, 403, "a token mints no tokens");
    let in_query = reqwest::get(server.http(&format!("/api/me/interviews?token={token}")))
        .await
        .unwrap();
    assert_eq!(
        in_query.status(),
        401,
        "never in the query string (it ends up in logs)"
    );

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        ada.call(Method::DELETE, &format!("/api/me/tokens/{id}"), None)
            .await
            .0,
        204
    );
    let (status, _) = api(&server, Method::GET, "/api/interviews", &token, None).await;
    assert_eq!(status, 401, "revoked: refused at once");
    // The admin token keeps working beside people: the break-glass credential.
    let (status, _) = admin(&server, Method::GET, "/api/interviews", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sign_out_ends_one_session_and_its_sockets_and_sign_out_everywhere_ends_them_all() {
    let server = TestServer::start().await;
    let grace_id = person(&server, "grace@example.com", "interviewer").await;
    let interview = server.create_interview("Lin").await;
    let id = interview.id.as_str();
    seat(&server, id, &[&grace_id], &[]).await;
    let (mut laptop, mut phone) = (Browser::new(&server), Browser::new(&server));
    laptop.sign_in("grace@example.com", PASSWORD).await;
    phone.sign_in("grace@example.com", PASSWORD).await;
    let third = {
        let mut b = Browser::new(&server);
        b.sign_in("grace@example.com", PASSWORD).await;
        b
    };
    // Grace has the room open on her laptop and her phone: the editor and the events each.
    let laptop_editor = yjs_by_cookie(&server, &laptop, id).await.unwrap();
    let laptop_events = events_by_cookie(&server, &laptop, id).await.unwrap();
    let phone_editor = yjs_by_cookie(&server, &phone, id).await.unwrap();
    let phone_events = events_by_cookie(&server, &phone, id).await.unwrap();

    // She signs out on the laptop: its cookie is cleared and refused, its sockets close.
    let response = laptop
        .request(Method::DELETE, "/api/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(laptop.call(Method::GET, "/api/session", None).await.0, 401);
    let signed_out = Some((1008, "you signed out; sign in again".to_owned()));
    assert_eq!(ended(laptop_editor).await, signed_out);
    assert_eq!(ended(laptop_events).await, signed_out);
    assert_eq!(phone.call(Method::GET, "/api/session", None).await.0, 200);

    // Then everywhere, from the phone: every session ends, and the phone's sockets close for
    // that reason (so the laptop's sign-out had left them open).
    assert_eq!(
        phone.call(Method::DELETE, "/api/me/sessions", None).await.0,
        204
    );
    let everywhere = Some((1008, "you signed out everywhere; sign in again".to_owned()));
    assert_eq!(ended(phone_editor).await, everywhere);
    assert_eq!(ended(phone_events).await, everywhere);
    assert_eq!(phone.call(Method::GET, "/api/session", None).await.0, 401);
    assert_eq!(third.call(Method::GET, "/api/session", None).await.0, 401);
    assert_eq!(
        yjs_by_cookie(&server, &third, id).await.err(),
        Some(401),
        "no socket opens on an ended session"
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_too_long_and_at_its_absolute_end() {
    use duet_store::NewSession;
    let server = TestServer::start().await;
    let grace_id = person(&server, "grace@example.com", "interviewer").await;
    let now = duet_server::rooms::now_ms();
    let hour = 3_600_000;
    // Sessions as the store would hold them after time passed: their cookies are ours.
    let planted = |token: &str, created_at: i64, expires_at: i64| {
        let session = NewSession {
            hash: duet_server::auth::hash(token),
            person_id: grace_id.clone(),
            created_at,
            expires_at,
        };
        server.state.store.start_session(&session)
    };
    let fresh = "f".repeat(43);
    let idle = "i".repeat(43);
    let old = "o".repeat(43);
    planted(&fresh, now, now + hour).await.unwrap().unwrap();
    // Last seen 13 hours ago (the default idle limit is 12), yet not at its absolute end.
    planted(&idle, now - 13 * hour, now + hour)
        .await
        .unwrap()
        .unwrap();
    // Active a second ago, but past its absolute end.
    planted(&old, now - 1_000, now - 1).await.unwrap().unwrap();
    let with = |token: &str| Browser {
        cookie: Some(format!("duet_session={token}")),
        ..Browser::new(&server)
    };
    assert_eq!(
        with(&fresh).call(Method::GET, "/api/session", None).await.0,
        200
    );
    assert_eq!(
        with(&idle).call(Method::GET, "/api/session", None).await.0,
        401
    );
    assert_eq!(
        with(&old).call(Method::GET, "/api/session", None).await.0,
        401
    );
}

/// A session for Grace as the store would hold it once time passed (its cookie is ours): last
/// seen `seen_ms_ago`, ending for good `ends_in_ms` from now. Answers her browser.
async fn planted_session<'a>(
    server: &'a TestServer,
    grace_id: &str,
    seen_ms_ago: i64,
    ends_in_ms: i64,
) -> Browser<'a> {
    let now = duet_server::rooms::now_ms();
    let token = duet_server::auth::random_token(32);
    let session = duet_store::NewSession {
        hash: duet_server::auth::hash(&token),
        person_id: grace_id.to_owned(),
        created_at: now - seen_ms_ago,
        expires_at: now + ends_in_ms,
    };
    server
        .state
        .store
        .start_session(&session)
        .await
        .unwrap()
        .unwrap();
    Browser {
        cookie: Some(format!("duet_session={token}")),
        ..Browser::new(server)
    }
}

/// Grace, an interviewer on a new interview's panel: her person id and the interview's id.
async fn grace_on_a_panel(server: &TestServer) -> (String, String) {
    let grace_id = person(server, "grace@example.com", "interviewer").await;
    let interview = server.create_interview("Lin").await;
    seat(server, interview.id.as_str(), &[&grace_id], &[]).await;
    (grace_id, interview.id.to_string())
}

#[tokio::test]
async fn a_sessions_sockets_close_the_moment_it_reaches_its_absolute_end() {
    let server = TestServer::start().await;
    let (grace_id, id) = grace_on_a_panel(&server).await;
    // Signed in a while ago; the session's last moment is two seconds away.
    let grace = planted_session(&server, &grace_id, 0, 2_000).await;
    let events = events_by_cookie(&server, &grace, &id).await.unwrap();
    let editor = yjs_by_cookie(&server, &grace, &id).await.unwrap();

    // Nobody signs out and nothing is sent: the sockets close on their own, saying why.
    let expired = Some((1008, "your session expired; sign in again".to_owned()));
    assert_eq!(ended(events).await, expired);
    assert_eq!(ended(editor).await, expired);
    assert_eq!(grace.call(Method::GET, "/api/session", None).await.0, 401);
    assert_eq!(
        events_by_cookie(&server, &grace, &id).await.err(),
        Some(401),
        "and the cookie opens nothing more"
    );
}

#[tokio::test]
async fn a_socket_does_not_keep_its_session_alive_past_the_idle_limit() {
    // The shortest idle limit there is: a minute without a request.
    let server = TestServer::start_with(|args| args.sessions.idle_minutes = 1).await;
    let (grace_id, id) = grace_on_a_panel(&server).await;
    // Her last request was 57 s ago (recent enough that opening a socket, itself a request, is
    // not written down as one: last use is noted to the minute). The session is good for days.
    let grace = planted_session(&server, &grace_id, 57_000, 86_400_000).await;
    let events = events_by_cookie(&server, &grace, &id).await.unwrap();
    let editor = yjs_by_cookie(&server, &grace, &id).await.unwrap();

    // An open socket is not a request: once the minute is up, the sockets close.
    let expired = Some((1008, "your session expired; sign in again".to_owned()));
    assert_eq!(ended(editor).await, expired);
    assert_eq!(ended(events).await, expired);
    assert_eq!(grace.call(Method::GET, "/api/session", None).await.0, 401);
}

#[tokio::test]
async fn a_session_ended_in_the_shared_store_by_another_server_closes_its_sockets_here() {
    let server = TestServer::start().await;
    let (grace_id, id) = grace_on_a_panel(&server).await;
    let grace = planted_session(&server, &grace_id, 0, 86_400_000).await;
    let events = events_by_cookie(&server, &grace, &id).await.unwrap();

    // Another server on the same database signs her out: the row goes, this server hears
    // nothing of it.
    let cookie = grace.cookie.as_deref().unwrap();
    let token = cookie.trim_start_matches("duet_session=");
    server
        .state
        .store
        .end_session(&duet_server::auth::hash(token))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        ended(events).await,
        Some((1008, "your session ended; sign in again".to_owned()))
    );
}

#[tokio::test]
async fn disabling_a_person_from_the_command_line_closes_their_sockets_on_the_running_server() {
    let server = TestServer::start().await;
    let (_, id) = grace_on_a_panel(&server).await;
    let mut grace = Browser::new(&server);
    assert_eq!(grace.sign_in("grace@example.com", PASSWORD).await.0, 200);
    let events = events_by_cookie(&server, &grace, &id).await.unwrap();
    let editor = yjs_by_cookie(&server, &grace, &id).await.unwrap();

    // An operator disables her in another process, on the server's own database.
    let out = tokio::process::Command::new(duet_tests::duet_bin())
        .args(["user", "disable", "grace@example.com"])
        .env("DUET_DATA_DIR", server.data_dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Disabled grace@example.com"));

    // The running server never heard of it, yet her sockets close, saying why, and her
    // cookie and password are refused.
    let disabled = Some((1008, "your account was disabled".to_owned()));
    assert_eq!(ended(events).await, disabled);
    assert_eq!(ended(editor).await, disabled);
    assert_eq!(grace.call(Method::GET, "/api/session", None).await.0, 401);
    assert_eq!(grace.sign_in("grace@example.com", PASSWORD).await.0, 401);
    // Newest first: her refused sign-in, then the command line's disabling.
    let (_, audit) = admin(&server, Method::GET, "/api/audit?limit=2", None).await;
    let last = &audit["entries"][1];
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("person_disabled"), Some("cli")),
        "the command line's disabling is audited: {audit}"
    );
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_host_only() {
    let server = TestServer::start_with(|args| {
        args.public_url = Some("https://duet.example.com".into());
    })
    .await;
    person(&server, "ada@example.com", "admin").await;
    let mut ada = Browser::new(&server);
    ada.origin = "https://duet.example.com".into();
    let (status, _, set_cookie) = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let set_cookie = set_cookie.unwrap();
    assert!(
        set_cookie.starts_with("__Host-duet_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert_eq!(ada.call(Method::GET, "/api/session", None).await.0, 200);
}

#[tokio::test]
async fn the_audit_log_tells_admins_who_did_what_from_where() {
    let server = TestServer::start().await;
    let grace_id = person(&server, "grace@example.com", "interviewer").await;
    let mut grace = Browser::new(&server);
    grace.sign_in("grace@example.com", "wrong password!").await;
    grace.sign_in("grace@example.com", PASSWORD).await;
    let (status, _) = admin(
        &server,
        Method::PATCH,
        &format!("/api/people/{grace_id}"),
        Some(json!({"state": "disabled"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(grace.call(Method::GET, "/api/audit", None).await.0, 401);

    let (status, page) = admin(&server, Method::GET, "/api/audit?limit=3", None).await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["person_disabled", "signed_in", "sign_in_failed"]);
    assert_eq!(page["entries"][0]["actor"], "admin-token");
    assert_eq!(page["entries"][1]["actor"], "grace@example.com");
    assert_eq!(page["entries"][1]["from"], "127.0.0.1");
    let before = page["next_before"].as_i64().unwrap();
    let (_, rest) = admin(
        &server,
        Method::GET,
        &format!("/api/audit?before={before}"),
        None,
    )
    .await;
    let rest: Vec<&str> = rest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["password_set", "person_added"]);
}

#[tokio::test]
async fn the_command_line_adds_the_first_admin_with_a_link_or_a_password_from_stdin() {
    use std::io::Write;
    let server = TestServer::start().await;
    let duet = |args: &[&str]| {
        let mut command = std::process::Command::new(duet_tests::duet_bin());
        command
            .args(args)
            .env("DUET_DATA_DIR", server.data_dir.path())
            .env("DUET_PUBLIC_URL", server.http(""))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let out = duet(&[
        "user",
        "add",
        "ada@example.com",
        "--name",
        "Ada",
        "--role",
        "admin",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let link = printed
        .split_whitespace()
        .find(|w| w.contains("/password#token="))
        .unwrap_or_else(|| panic!("no link in {printed:?}"));
    let token = link.split_once("#token=").unwrap().1;
    assert_eq!(set_password(&server, token, PASSWORD).await.0, 204);
    assert_eq!(
        Browser::new(&server)
            .sign_in("ada@example.com", PASSWORD)
            .await
            .0,
        200
    );

    // A password from standard input, never from the command line.
    let mut child = duet(&[
        "user",
        "add",
        "grace@example.com",
        "--name",
        "Grace",
        "--role",
        "interviewer",
        "--password-stdin",
    ])
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Browser::new(&server)
            .sign_in("grace@example.com", "piped in password")
            .await
            .0,
        200
    );
    let again = duet(&[
        "user",
        "add",
        "ada@example.com",
        "--name",
        "Ada",
        "--role",
        "admin",
    ])
    .output()
    .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("someone has this email address already")
    );
}

#[tokio::test]
async fn interviews_created_re_linked_and_deleted_are_in_the_audit_log_with_who_did_it() {
    let server = TestServer::start().await;
    person(&server, "ada@example.com", "admin").await;
    let mut ada = Browser::new(&server);
    ada.sign_in("ada@example.com", PASSWORD).await;
    let (status, created) = ada
        .call(
            Method::POST,
            "/api/interviews",
            Some(json!({"title": "Pairing", "candidate_name": "Lin"})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, _) = admin(
        &server,
        Method::POST,
        &format!("/api/interviews/{id}/links"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ada.call(Method::DELETE, &format!("/api/interviews/{id}"), None)
            .await
            .0,
        204
    );
    let (_, page) = ada.call(Method::GET, "/api/audit?limit=3", None).await;
    let lines: Vec<(String, String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let line = |action: &str, actor: &str| (action.to_owned(), actor.to_owned(), id.to_owned());
    assert_eq!(
        lines,
        [
            line("interview_deleted", "ada@example.com"),
            line("links_rotated", "admin-token"),
            line("interview_created", "ada@example.com"),
        ]
    );
}

/// Everything the servers in this test binary log (at debug, duet's own crates at trace).
fn captured_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,duet_server=trace,duet_store=trace")
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        log
    })
    .clone()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_password_token_or_cookie_reaches_the_log() {
    let log = captured_log();
    let server = TestServer::start().await;
    let (_, invited) = admin(
        &server,
        Method::POST,
        "/api/people",
        Some(json!({"email": "ada@example.com", "name": "Ada", "role": "admin"})),
    )
    .await;
    let link = link_token(&invited);
    set_password(&server, &link, PASSWORD).await;
    set_password(&server, &link, "a second long password").await; // refused: used
    let mut ada = Browser::new(&server);
    ada.sign_in("ada@example.com", "a wrong but long password")
        .await;
    ada.sign_in("ada@example.com", PASSWORD).await;
    let cookie = ada.cookie.clone().unwrap();
    let session = cookie.split_once('=').unwrap().1.to_owned();
    let (_, created) = ada
        .call(Method::POST, "/api/me/tokens", Some(json!({"name": "CI"})))
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    api(&server, Method::GET, "/api/people", &token, None).await;
    let id = created["id"].as_str().unwrap();
    ada.call(Method::DELETE, &format!("/api/me/tokens/{id}"), None)
        .await;
    api(&server, Method::GET, "/api/people", &token, None).await; // refused: revoked
    ada.call(Method::DELETE, "/api/session", None).await;
    ada.call(Method::GET, "/api/session", None).await; // refused: signed out

    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        text.contains("authentication failed"),
        "the refusals are logged"
    );
    for secret in [
        PASSWORD,
        "a wrong but long password",
        "a second long password",
        link.as_str(),
        session.as_str(),
        token.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret:?} is in the log");
    }
}

#[tokio::test]
async fn the_retention_pass_prunes_audit_entries_older_than_the_retention() {
    use duet_store::NewAudit;
    let server = TestServer::start().await;
    const DAY: i64 = 86_400_000;
    let now = duet_server::rooms::now_ms();
    for (age, target) in [(8 * DAY, "old"), (DAY, "recent")] {
        let entry = NewAudit {
            at: now - age,
            actor: "cli".into(),
            action: duet_protocol::AuditAction::PersonAdded,
            target: Some(target.into()),
            from: None,
        };
        server.state.store.audit(&entry).await.unwrap().unwrap();
    }
    duet_server::jobs::sweep(&server.state, now - 7 * DAY, 7).await;
    let (_, page) = admin(&server, Method::GET, "/api/audit", None).await;
    let targets: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["recent"]);
}

#[tokio::test]
async fn the_retention_pass_audits_each_interview_it_deletes() {
    let server = TestServer::start().await;
    let ended = server.create_interview("Lin").await;
    let live = server.create_interview("Kim").await;
    let (status, _) = api(
        &server,
        Method::POST,
        &format!("/api/interviews/{}/end", ended.id),
        &ended.tokens.interviewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A retention of zero days, run a second from now: the ended interview is past it.
    let later = duet_server::rooms::now_ms() + 1_000;
    assert_eq!(duet_server::jobs::sweep(&server.state, later, 0).await, 1);
    let (_, page) = admin(&server, Method::GET, "/api/audit?limit=1", None).await;
    let entry = &page["entries"][0];
    assert_eq!(
        (&entry["action"], &entry["actor"], &entry["target"]),
        (
            &json!("interview_deleted"),
            &json!("retention"),
            &json!(ended.id.as_str())
        )
    );
    let (_, listed) = admin(&server, Method::GET, "/api/interviews", None).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [live.id.as_str()],
        "the ended one is gone, the live one stays"
    );
}

#[tokio::test]
async fn an_expired_or_replaced_password_link_is_refused_like_a_used_one() {
    let server = TestServer::start().await;
    let (status, invited) = admin(
        &server,
        Method::POST,
        "/api/people",
        Some(json!({"email": "grace@example.com", "name": "Grace", "role": "interviewer"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let grace_id = invited["person"]["id"].as_str().unwrap();
    // A link as the store holds it once its time is up (a minute ago).
    let stale = "s".repeat(43);
    let a_minute_ago = duet_server::rooms::now_ms() - 60_000;
    server
        .state
        .store
        .issue_password_link(grace_id, &duet_server::auth::hash(&stale), a_minute_ago)
        .await
        .unwrap()
        .unwrap();
    let (status, refused) = api(&server, Method::GET, "/api/password-link", &stale, None).await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "this link is unknown, used or expired; ask an admin for a new one"
    );
    assert_eq!(set_password(&server, &stale, PASSWORD).await.0, 404);
    // A person has one link at a time: the stale one replaced the invitation's, and a new one
    // from the admin replaces it in turn and works, once.
    assert_eq!(
        set_password(&server, &link_token(&invited), PASSWORD)
            .await
            .0,
        404
    );
    let (status, reissued) = admin(
        &server,
        Method::POST,
        &format!("/api/people/{grace_id}/password-link"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reissued}");
    let fresh = link_token(&reissued);
    assert_eq!(set_password(&server, &fresh, PASSWORD).await.0, 204);
    assert_eq!(set_password(&server, &fresh, PASSWORD).await.0, 404);
}
