//! A panel scores (issue 21): each interviewer on an interview's panel signs in and keeps a
//! scorecard and notes of their own; the debrief stays blind to each until they submit, then
//! shows every card with the name of who scored it. The interviewer link keeps its own card,
//! and a card stored before panels reads as the link's. Everything goes through a real server
//! on port 0.
#![allow(clippy::unwrap_used)]

use duet_protocol::{Actor, EventKind, LogRecord};
use duet_tests::{api, eventually, EventsClient, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "a long enough password";
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A signed-in person at a browser: their session cookie, the origin and the CSRF header.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: String,
}

impl<'a> Browser<'a> {
    async fn sign_in(server: &'a TestServer, email: &str) -> Browser<'a> {
        let response = reqwest::Client::new()
            .post(server.http("/api/session"))
            .header("Origin", format!("http://{}", server.addr))
            .header("X-Duet-Csrf", "1")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{email} signs in");
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        Browser { server, cookie }
    }

    /// Listens on the interview's events socket as this person (their cookie, no token).
    async fn events(&self, id: &str) -> EventsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/api/interviews/{id}/events", self.server.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("Cookie", self.cookie.parse().unwrap());
        headers.insert(
            "Origin",
            format!("http://{}", self.server.addr).parse().unwrap(),
        );
        EventsClient::connect_with(request).await.unwrap()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, self.server.http(path))
            .header("Origin", format!("http://{}", self.server.addr))
            .header("X-Duet-Csrf", "1")
            .header("Cookie", &self.cookie);
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
}

/// The admin adds a person; they set their password from the one-time link. Their id.
async fn add_person(server: &TestServer, email: &str, name: &str, role: &str) -> String {
    let (status, invited) = api(
        server,
        Method::POST,
        "/api/people",
        &server.admin_token,
        Some(json!({"email": email, "name": name, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let link = invited["link"].as_str().unwrap();
    let token = link.split_once("#token=").unwrap().1;
    let (status, _) = api(
        server,
        Method::PUT,
        "/api/password-link",
        token,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 204);
    invited["person"]["id"].as_str().unwrap().to_owned()
}

/// An interview of candidate `cand-7`'s loop; its id and interviewer link token.
async fn interview_of_loop(server: &TestServer) -> (String, String) {
    let (status, created) = api(
        server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({"title": "Pairing", "candidate_name": "Lin", "candidate_ref": "cand-7"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["tokens"]["interviewer"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// Two interviewers, Ada Lovelace and Ben Okri, added by the admin, seated on the panel of one
/// interview of candidate `cand-7`'s loop, and signed in, each at their own browser.
struct SeatedPanel<'a> {
    id: String,
    /// The interviewer link's token.
    link: String,
    ben_id: String,
    ada: Browser<'a>,
    ben: Browser<'a>,
}

async fn seated_panel(server: &TestServer) -> SeatedPanel<'_> {
    let ada_id = add_person(server, "ada@example.com", "Ada Lovelace", "interviewer").await;
    let ben_id = add_person(server, "ben@example.com", "Ben Okri", "interviewer").await;
    let (id, link) = interview_of_loop(server).await;
    let (status, panel) = api(
        server,
        Method::PUT,
        &format!("/api/interviews/{id}/panel"),
        &server.admin_token,
        Some(json!({"interviewers": [ada_id, ben_id], "reviewers": []})),
    )
    .await;
    assert_eq!(status, 200, "{panel}");
    SeatedPanel {
        ada: Browser::sign_in(server, "ada@example.com").await,
        ben: Browser::sign_in(server, "ben@example.com").await,
        id,
        link,
        ben_id,
    }
}

fn card(rating: u8, recommendation: &str, notes: &str, version: u64) -> Value {
    json!({
        "ratings": {"debugging": rating},
        "recommendation": recommendation,
        "notes": notes,
        "version": version,
    })
}

#[tokio::test]
async fn two_interviewers_on_a_panel_score_privately_and_the_debrief_names_both_once_each_submits()
{
    let server = TestServer::start().await;
    // The admin adds two interviewers and seats both on one interview's panel; each signs in.
    let SeatedPanel {
        id,
        link,
        ben_id,
        ada,
        ben,
        ..
    } = seated_panel(&server).await;
    let scorecard = format!("/api/interviews/{id}/scorecard");
    let debrief = format!("/api/interviews/{id}/debrief");
    let notes = format!("/api/interviews/{id}/notes");

    // Ada scores and writes a note; Ben's card is still his own empty one, at version 0.
    let (status, saved) = ada
        .call(
            Method::PUT,
            &scorecard,
            Some(card(4, "strong_yes", "Ada's", 0)),
        )
        .await;
    assert_eq!(
        (status, saved["version"].as_u64()),
        (200, Some(1)),
        "{saved}"
    );
    let (status, _) = ada
        .call(
            Method::POST,
            &notes,
            Some(json!({"text": "Ada: asks good questions"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, bens) = ben.call(Method::GET, &scorecard, None).await;
    assert_eq!(
        bens["scorecard"]["version"], 0,
        "Ada's save is not Ben's card"
    );
    assert_eq!(bens["scorecard"]["notes"], "");
    assert_eq!(bens["author"], json!({"id": ben_id, "name": "Ben Okri"}));
    let (_, bens_notes) = ben.call(Method::GET, &notes, None).await;
    assert_eq!(bens_notes, json!([]), "Ada's notes are hers");

    // Ben scores from version 0 (not Ada's 1): the versions are per card.
    let (status, saved) = ben
        .call(Method::PUT, &scorecard, Some(card(2, "no", "Ben's", 0)))
        .await;
    assert_eq!(
        (status, saved["version"].as_u64()),
        (200, Some(1)),
        "{saved}"
    );

    // Ada submits. Ben has not, so the debrief stays closed to him, and Ada sees only her card.
    let (status, submitted) = ada
        .call(Method::POST, &format!("{scorecard}/submit"), None)
        .await;
    assert_eq!(status, 200, "{submitted}");
    let (status, refused) = ben.call(Method::GET, &debrief, None).await;
    assert_eq!(status, 403, "Ben has not submitted: {refused}");
    let (status, seen) = ada.call(Method::GET, &debrief, None).await;
    assert_eq!(status, 200, "{seen}");
    let cards = &seen["interviews"][0]["cards"];
    assert_eq!(
        cards.as_array().unwrap().len(),
        1,
        "Ben's draft stays hidden: {seen}"
    );
    assert_eq!(cards[0]["author"]["name"], "Ada Lovelace");
    assert_eq!(cards[0]["scorecard"]["notes"], "Ada's");
    // Her card is locked; Ben's is not.
    let (status, _) = ada
        .call(Method::PUT, &scorecard, Some(card(1, "no", "changed", 2)))
        .await;
    assert_eq!(status, 409, "a submitted card is locked");

    // Ben submits: the debrief shows both cards, each with who scored it.
    let (status, _) = ben
        .call(Method::POST, &format!("{scorecard}/submit"), None)
        .await;
    assert_eq!(status, 200);
    let (status, seen) = ben.call(Method::GET, &debrief, None).await;
    assert_eq!(status, 200, "{seen}");
    let names: Vec<&str> = seen["interviews"][0]["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{seen}");
    assert!(
        names.contains(&"Ada Lovelace") && names.contains(&"Ben Okri"),
        "{names:?}"
    );
    assert_eq!(seen["columns"].as_array().unwrap().len(), 2);
    // Each submission is in the audit log, with who submitted and the interview.
    let (_, audit) = api(
        &server,
        Method::GET,
        "/api/audit?limit=2",
        &server.admin_token,
        None,
    )
    .await;
    let submitted: Vec<(&str, &str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        submitted,
        [
            ("scorecard_submitted", "ben@example.com", id.as_str()),
            ("scorecard_submitted", "ada@example.com", id.as_str()),
        ]
    );
    let debugging = seen["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["area"] == "debugging")
        .unwrap();
    let mut ratings: Vec<u64> = debugging["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    ratings.sort();
    assert_eq!(ratings, [2, 4]);
    assert_eq!(
        seen["interviews"][0]["scorecard"],
        Value::Null,
        "the link never scored"
    );

    // The interviewer link keeps a card of its own: it starts empty, and once it submits, the
    // debrief names it "Interviewer link" beside the two.
    let (_, links) = api(&server, Method::GET, &scorecard, &link, None).await;
    assert_eq!(links["scorecard"]["version"], 0);
    assert_eq!(
        links["author"],
        json!({"id": null, "name": "Interviewer link"})
    );
    let (status, refused) = api(&server, Method::GET, &debrief, &link, None).await;
    assert_eq!(status, 403, "the link has not submitted its own: {refused}");
    let (status, _) = api(
        &server,
        Method::PUT,
        &scorecard,
        &link,
        Some(card(3, "yes", "link's", 0)),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = api(
        &server,
        Method::POST,
        &format!("{scorecard}/submit"),
        &link,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, seen) = api(
        &server,
        Method::GET,
        "/api/candidates/cand-7/debrief",
        &server.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let cards = seen["interviews"][0]["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 3, "{seen}");
    assert_eq!(
        cards[0]["author"],
        json!({"id": null, "name": "Interviewer link"})
    );
    assert_eq!(seen["interviews"][0]["scorecard"]["notes"], "link's");
    assert_eq!(seen["recommendations"].as_array().unwrap().len(), 3);

    // The timeline names who wrote each note and scorecard change, not their ids.
    let (status, timeline) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{id}/timeline"),
        &link,
        None,
    )
    .await;
    assert_eq!(status, 200, "{timeline}");
    let by = |kind: &str| -> Vec<String> {
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["name"].as_str().unwrap_or("(no name)").to_owned())
            .collect()
    };
    assert_eq!(by("note"), ["Ada Lovelace"]);
    assert_eq!(
        by("scorecard"),
        [
            "Ada Lovelace",
            "Ben Okri",
            "Ada Lovelace",
            "Ben Okri",
            "Interviewer link",
            "Interviewer link"
        ]
    );
}

#[tokio::test]
async fn a_scorecard_stored_before_panels_reads_as_the_interviewer_links() {
    let server = TestServer::start().await;
    let (id, link) = interview_of_loop(&server).await;
    // A submitted card as the server wrote it before panels: no `person` in it.
    let old = br#"{"action":"submitted","scorecard":{"ratings":{"debugging":3},"notes":"from an old log","recommendation":"yes","level":null,"evidence":{},"version":2,"updated_at":1,"submitted_at":2}}"#;
    let interview = duet_protocol::InterviewId::parse(&id).unwrap();
    server
        .state
        .store
        .append(
            &interview,
            LogRecord {
                seq: 1,
                at_ms: 2,
                kind: EventKind::Scorecard,
                by: Actor::Interviewer,
                data: old.to_vec(),
            },
        )
        .await
        .unwrap()
        .unwrap();

    let (status, read) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{id}/scorecard"),
        &link,
        None,
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["scorecard"]["notes"], "from an old log");
    assert_eq!(read["scorecard"]["submitted_at"], 2, "still locked");
    let (status, seen) = api(
        &server,
        Method::GET,
        &format!("/api/interviews/{id}/debrief"),
        &link,
        None,
    )
    .await;
    assert_eq!(status, 200, "the link's own card was submitted: {seen}");
    assert_eq!(
        seen["interviews"][0]["cards"][0]["author"],
        json!({"id": null, "name": "Interviewer link"})
    );
}

#[tokio::test]
async fn a_panel_members_notes_and_saves_reach_only_their_own_connections_live() {
    let server = TestServer::start().await;
    let SeatedPanel {
        id, link, ada, ben, ..
    } = seated_panel(&server).await;
    // Both have the room open, and so does the interviewer link.
    let ada_hears = ada.events(&id).await;
    let ben_hears = ben.events(&id).await;
    let link_hears = EventsClient::connect(&format!(
        "ws://{}/api/interviews/{id}/events?token={link}",
        server.addr
    ))
    .await
    .unwrap();

    // Ada writes a note and saves her card; Ben writes a note of his own.
    let notes = format!("/api/interviews/{id}/notes");
    let (status, _) = ada
        .call(
            Method::POST,
            &notes,
            Some(json!({"text": "Ada: strong on tests"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = ada
        .call(
            Method::PUT,
            &format!("/api/interviews/{id}/scorecard"),
            Some(card(4, "strong_yes", "", 0)),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = ben
        .call(
            Method::POST,
            &notes,
            Some(json!({"text": "Ben: slow start"})),
        )
        .await;
    assert_eq!(status, 201);

    // Each hears their own, as it happens; nobody hears another's.
    let texts = |client: &EventsClient| -> Vec<String> {
        client
            .all()
            .into_iter()
            .filter(|e| e["type"] == "note")
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        eventually(WAIT, || texts(&ben_hears) == ["Ben: slow start"]).await,
        "Ben hears his note: {:?}",
        ben_hears.all()
    );
    assert!(
        eventually(WAIT, || {
            texts(&ada_hears) == ["Ada: strong on tests"]
                && ada_hears.all().iter().any(|e| e["type"] == "scorecard")
        })
        .await,
        "Ada hears her note and her save: {:?}",
        ada_hears.all()
    );
    // A note through the link reaches the link, and still nobody else.
    let (status, _) = api(
        &server,
        Method::POST,
        &notes,
        &link,
        Some(json!({"text": "link note"})),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        eventually(WAIT, || texts(&link_hears) == ["link note"]).await,
        "the link hears its note: {:?}",
        link_hears.all()
    );
    assert_eq!(texts(&ada_hears), ["Ada: strong on tests"]);
    assert_eq!(texts(&ben_hears), ["Ben: slow start"]);
    assert!(
        !ben_hears.all().iter().any(|e| e["type"] == "scorecard"),
        "Ben is not told Ada saved her card: {:?}",
        ben_hears.all()
    );
    assert!(!link_hears.all().iter().any(|e| e["type"] == "scorecard"));
}
