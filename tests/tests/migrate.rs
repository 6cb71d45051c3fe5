//! A team moves its deployment from SQLite to PostgreSQL with the real binary: a server on
//! SQLite holds an interview the candidate typed into and a staff account; `duet migrate`
//! copies it into an empty Postgres database (on a real server the test starts on loopback)
//! and checks it row by row; a second run is refused; a server started with `--database-url`
//! serves the same interview to the same links, stores what is typed next, and the same person
//! signs in.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_store::testing::PgCluster;
use duet_tests::{duet_bin, eventually, YClient, PATIENCE};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

const ADMIN: &str = "migrate-test-admin-token-0123456789";

/// `duet serve` on a free port, with more arguments; the child and its address.
#[allow(clippy::zombie_processes)] // the caller kills and waits for it
fn serve(data_dir: &std::path::Path, more: &[&str]) -> (Child, String) {
    let mut child = Command::new(duet_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--sandbox-pool", "0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(more)
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

fn duet(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(duet_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn sign_in(addr: &str, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/session"))
        .header("Origin", format!("http://{addr}"))
        .header("X-Duet-Csrf", "1")
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_sqlite_deployment_moves_to_postgres_whole_and_its_links_keep_working() {
    // The deployment as it ran on SQLite: an interview the candidate typed into (with a
    // checkpoint every 5 edits), a staff account with a password.
    let old = tempfile::tempdir().unwrap();
    let (mut server, addr) = serve(old.path(), &["--checkpoint-every", "5"]);
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "Before the move", "candidate_name": "Ada"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let token = |role: &str| created["tokens"][role].as_str().unwrap().to_owned();
    let candidate = YClient::connect(&format!(
        "ws://{addr}/yjs/{id}?token={}",
        token("candidate")
    ))
    .await
    .unwrap();
    let typed = "def answer():\n    return 42\n";
    for (i, c) in typed.chars().enumerate() {
        candidate.insert(i as u32, &c.to_string());
    }
    let interviewer = YClient::connect(&format!(
        "ws://{addr}/yjs/{id}?token={}",
        token("interviewer")
    ))
    .await
    .unwrap();
    assert!(eventually(PATIENCE, || interviewer.text() == typed).await);
    candidate.close().await;
    interviewer.close().await;
    let data_dir = old.path().to_str().unwrap();
    let added = duet(
        &[
            "user",
            "add",
            "grace@example.com",
            "--name",
            "Grace",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            data_dir,
        ],
        "moved along with everything\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // The move.
    let cluster = PgCluster::shared();
    let url = cluster.database();
    let from = format!("sqlite:{}", old.path().join("duet.db").display());
    let moved = duet(&["migrate", "--from", &from, "--to", &url], "");
    let printed = String::from_utf8_lossy(&moved.stdout).into_owned();
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(printed.contains("interviews: 1 rows"), "{printed}");
    assert!(printed.contains("people: 1 rows"), "{printed}");
    assert!(printed.contains("checked row by row"), "{printed}");
    let edits: usize = cluster
        .psql_on(&url, "SELECT count(*) FROM room_log WHERE kind = 'edit'")
        .parse()
        .unwrap();
    assert!(edits >= 1, "no edit copied");
    assert_ne!(
        cluster.psql_on(&url, "SELECT count(*) FROM checkpoints"),
        "0"
    );

    // Twice is refused: the target holds a deployment now.
    let again = duet(&["migrate", "--from", &from, "--to", &url], "");
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("not empty"), "{said}");

    // The server on Postgres (a new, empty data dir: nothing is read from the old one).
    let fresh = tempfile::tempdir().unwrap();
    let (mut server, addr) = serve(fresh.path(), &["--database-url", &url]);
    let reader = YClient::connect(&format!(
        "ws://{addr}/yjs/{id}?token={}",
        token("interviewer")
    ))
    .await
    .unwrap();
    assert!(
        eventually(PATIENCE, || reader.text() == typed).await,
        "the document after the move: {:?}",
        reader.text()
    );
    // And goes on: what is typed now is stored in Postgres before anyone else sees it.
    let more = "# reviewed after the move\n";
    for (i, c) in more.chars().enumerate() {
        reader.insert(i as u32, &c.to_string());
    }
    let later = YClient::connect(&format!(
        "ws://{addr}/yjs/{id}?token={}",
        token("candidate")
    ))
    .await
    .unwrap();
    let whole = format!("{more}{typed}");
    assert!(eventually(PATIENCE, || later.text() == whole).await);
    later.close().await;
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/interviews"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains("Before the move"), "{listed}");
    assert_eq!(
        sign_in(&addr, "grace@example.com", "moved along with everything").await,
        200
    );
    assert!(
        !fresh.path().join("duet.db").exists(),
        "a server on Postgres keeps no SQLite database"
    );
    reader.close().await;
    server.kill().unwrap();
    server.wait().unwrap();
    // Every keystroke of both servers is in the log, each once, numbered without a gap.
    let seqs = cluster.psql_on(
        &url,
        &format!(
            "SELECT count(*) = max(seq) AND min(seq) = 1 FROM room_log WHERE interview_id = '{id}'"
        ),
    );
    assert_eq!(seqs, "t");
}
