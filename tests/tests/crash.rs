//! `kill -9` of the real server process: every edit a participant had received is still there
//! after a restart on the same data dir.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_tests::{duet_bin, eventually, YClient, PATIENCE};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const ADMIN: &str = "crash-test-admin-token-0123456789";

/// Starts `duet serve` on a free port and returns it with its base address.
// The child is returned to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(duet_bin())
        // No warm pool: this server is killed with SIGKILL, and its temporary data dir (and so
        // its sandbox instance name) is gone after the test, so nothing could reap its containers.
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-pool",
            "0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("DUET_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("Duet listening on http://") {
            return (child, addr.trim().to_owned());
        }
    }
    panic!("the server exited before it listened");
}

/// Creates an interview through the real server's API; its JSON answer.
async fn create_interview(addr: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "crash", "candidate_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn kill_9_loses_no_edit_anyone_received() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path());
    let created = create_interview(&addr).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let url = |role: &str| {
        format!(
            "ws://{addr}/yjs/{id}?token={}",
            created["tokens"][role].as_str().unwrap()
        )
    };

    let candidate = YClient::connect(&url("candidate")).await.unwrap();
    let interviewer = YClient::connect(&url("interviewer")).await.unwrap();
    // A burst of keystrokes, as fast as the candidate can send them.
    for i in 0..500u32 {
        candidate.insert(i, if i % 40 == 39 { "\n" } else { "x" });
    }
    assert!(eventually(PATIENCE, || interviewer.text().len() == 500).await);
    let received = interviewer.text();

    server.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint, no flush
    server.wait().unwrap();
    candidate.abort();
    interviewer.abort();

    let (mut server, addr2) = start(dir.path());
    let url2 = format!(
        "ws://{addr2}/yjs/{id}?token={}",
        created["tokens"]["reviewer"].as_str().unwrap()
    );
    let after = YClient::connect(&url2).await.unwrap();
    assert!(eventually(PATIENCE, || after.synced()).await);
    assert_eq!(
        after.text(),
        received,
        "the document after kill -9 and restart"
    );
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_burst_keeps_what_the_watcher_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path());
    let created = create_interview(&addr).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let url = |addr: &str, role: &str| {
        format!(
            "ws://{addr}/yjs/{id}?token={}",
            created["tokens"][role].as_str().unwrap()
        )
    };

    let candidate = YClient::connect(&url(&addr, "candidate")).await.unwrap();
    let watcher = YClient::connect(&url(&addr, "reviewer")).await.unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && watcher.synced()).await);
    // Appends at the end, without waiting: the server is killed while edits are in flight.
    for i in 0..5_000u32 {
        candidate.insert(i, &char::from(b'a' + (i % 26) as u8).to_string());
    }
    assert!(eventually(PATIENCE, || watcher.text().len() >= 1_000).await);
    server.kill().unwrap();
    server.wait().unwrap();
    let seen = watcher.text();
    candidate.abort();
    watcher.abort();

    let (mut server, addr2) = start(dir.path());
    let after = YClient::connect(&url(&addr2, "reviewer")).await.unwrap();
    assert!(eventually(PATIENCE, || after.synced()).await);
    let restored = after.text();
    assert!(
        restored.starts_with(&seen),
        "lost edits: the watcher had {} characters, the restart has {}",
        seen.len(),
        restored.len()
    );
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test]
async fn sigterm_in_the_middle_of_a_burst_stores_everything_anyone_received() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path());
    let created = create_interview(&addr).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let url = |addr: &str, role: &str| {
        format!(
            "ws://{addr}/yjs/{id}?token={}",
            created["tokens"][role].as_str().unwrap()
        )
    };

    let candidate = YClient::connect(&url(&addr, "candidate")).await.unwrap();
    let watcher = YClient::connect(&url(&addr, "reviewer")).await.unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && watcher.synced()).await);
    for i in 0..5_000u32 {
        candidate.insert(i, &char::from(b'a' + (i % 26) as u8).to_string());
    }
    assert!(eventually(PATIENCE, || watcher.text().len() >= 1_000).await);
    // SIGTERM (what `docker stop` sends): a graceful stop while edits are still arriving.
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.success(), "a graceful stop exits 0: {stopped:?}");
    // Whatever the watcher received before its socket closed.
    assert!(eventually(PATIENCE, || watcher.closed().is_some()).await);
    let seen = watcher.text();
    candidate.abort();
    watcher.abort();

    let (mut server, addr2) = start(dir.path());
    let after = YClient::connect(&url(&addr2, "reviewer")).await.unwrap();
    assert!(eventually(PATIENCE, || after.synced()).await);
    let restored = after.text();
    assert!(
        restored.starts_with(&seen),
        "the watcher had {} characters, the restart has {}",
        seen.len(),
        restored.len()
    );
    server.kill().unwrap();
    let _ = server.wait();
}
