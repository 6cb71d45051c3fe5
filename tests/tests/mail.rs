//! Mail through a real SMTP server (aiosmtpd on loopback): an invitation carries its one-time
//! link, a take-home's link reaches its candidate, and a mail queued while the SMTP server is
//! down arrives once it is up.
#![allow(clippy::unwrap_used)]

use duet_tests::{api, free_loopback_addr, SmtpServer, TestServer};
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;

fn mailing(smtp: SocketAddr) -> impl FnOnce(&mut duet_server::config::ServeArgs) {
    move |args| {
        args.mail.smtp_url = Some(format!("smtp://{smtp}").parse().unwrap());
        args.mail.from = Some("Duet <duet@example.com>".into());
        args.webhooks.retry_base_ms = 100;
        args.webhooks.retry_max_secs = 1;
        args.webhooks.poll_ms = 50;
    }
}

#[tokio::test]
async fn an_invited_person_gets_their_set_password_link_by_mail() {
    let smtp = SmtpServer::start().await;
    let server = TestServer::start_with(mailing(smtp.addr)).await;
    let (status, invited) = api(
        &server,
        Method::POST,
        "/api/people",
        &server.admin_token,
        Some(json!({"email": "Grace@Example.com", "name": "Grace Hopper", "role": "interviewer"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let link = invited["link"].as_str().unwrap();

    let mail = smtp.wait_for(1, 15).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let mail = &mail[0];
    assert_eq!(mail["rcpt_tos"], json!(["grace@example.com"]));
    assert_eq!(mail["mail_from"], "duet@example.com");
    assert_eq!(mail["subject"], "Your Duet account");
    assert!(mail["body"].as_str().unwrap().contains(link), "{mail}");
    assert!(mail["body"].as_str().unwrap().contains("Grace Hopper"));
}

#[tokio::test]
async fn a_take_home_link_is_mailed_to_its_candidate() {
    let smtp = SmtpServer::start().await;
    let server = TestServer::start_with(mailing(smtp.addr)).await;
    let (status, created) = api(
        &server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({
            "title": "Rate limiter",
            "candidate_name": "Ada Lovelace",
            "candidate_email": "ada@example.com",
            "mode": "take_home",
            "time_limit_minutes": 90,
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let candidate_url = created["urls"]["candidate"].as_str().unwrap();

    let mail = smtp.wait_for(1, 15).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["rcpt_tos"], json!(["ada@example.com"]));
    assert_eq!(mail[0]["subject"], "Your take-home: Rate limiter");
    let body = mail[0]["body"].as_str().unwrap();
    assert!(body.contains(candidate_url), "{body}");
    assert!(body.contains("90 minutes"), "{body}");
    assert!(
        !body.contains(created["tokens"]["interviewer"].as_str().unwrap()),
        "only the candidate's link goes to the candidate"
    );
}

#[tokio::test]
async fn a_mail_queued_while_the_smtp_server_is_down_arrives_once_it_is_up() {
    let addr = free_loopback_addr().await;
    let server = TestServer::start_with(mailing(addr)).await;
    let (status, invited) = api(
        &server,
        Method::POST,
        "/api/people",
        &server.admin_token,
        Some(json!({"email": "linus@example.com", "name": "Linus", "role": "reviewer"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    // Nobody listens yet: the first attempts fail and are retried.
    let mut tried = false;
    for _ in 0..200 {
        let attempts: i64 = server
            .state
            .store
            .due_mail(i64::MAX, 10, &[])
            .unwrap()
            .first()
            .map_or(0, |m| i64::from(m.attempts));
        if attempts >= 2 {
            tried = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(tried, "the mail was tried (and failed) at least twice");

    let smtp = SmtpServer::start_on(addr).await;
    let mail = smtp.wait_for(1, 15).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["rcpt_tos"], json!(["linus@example.com"]));
    assert!(mail[0]["body"]
        .as_str()
        .unwrap()
        .contains(invited["link"].as_str().unwrap()));
}

#[tokio::test]
async fn a_candidate_email_is_refused_clearly_where_no_mail_is_sent_or_it_is_no_address() {
    let server = TestServer::start().await;
    let (status, body) = api(
        &server,
        Method::POST,
        "/api/interviews",
        &server.admin_token,
        Some(json!({"title": "T", "candidate_name": "Ada", "candidate_email": "ada@example.com"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--smtp-url"));

    let smtp = SmtpServer::start().await;
    let mailing = TestServer::start_with(mailing(smtp.addr)).await;
    let (status, body) = api(
        &mailing,
        Method::POST,
        "/api/interviews",
        &mailing.admin_token,
        Some(json!({"title": "T", "candidate_name": "Ada", "candidate_email": "not an address"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an email address"));
}
