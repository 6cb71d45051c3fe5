//! The multi-node harness itself (issue 23): three real `duet serve` processes on one PostgreSQL
//! database, a real HAProxy in front, all on loopback ([`duet_tests::Cluster`]). These stories
//! hold for one node per request as much as for rooms owned across nodes: the scenarios of
//! rooms owned by one node build on them.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_store::testing::PgCluster;
use duet_tests::{eventually, Cluster, YClient, PATIENCE};

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The admin creates an interview through the balancer; its links point at the balancer and
/// open there; the candidate types through it; the edit lands in the one database, and every
/// node, asked directly, knows the interview and replays the candidate's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_serve_an_interview_made_through_the_balancer() {
    // Three nodes start at once on one empty database; HAProxy counts all three up.
    let cluster = Cluster::start(3).await;

    // Each node answers its own /healthz, its store (the shared database) usable.
    for i in 0..3 {
        let (status, body) = get(&cluster.node_http(i, "/healthz"), None).await;
        assert_eq!(status, 200, "node {i}'s /healthz: {body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["store"], "ok", "node {i}'s store: {body}");
    }

    // The admin creates an interview through the balancer; the three links point at it, and
    // each page opens through it.
    let created = cluster.create_interview("Ada").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    for link in [
        &created.urls.candidate,
        &created.urls.interviewer,
        &created.urls.reviewer,
    ] {
        assert!(
            link.starts_with(&format!("{}/", cluster.lb_url())),
            "{link} does not point at the balancer {}",
            cluster.lb_url()
        );
        let page = link.split('#').next().unwrap();
        let (status, body) = get(page, None).await;
        assert_eq!(status, 200, "{page} through the balancer");
        assert!(
            body.contains("<html"),
            "{page} is not the app's page: {body}"
        );
    }

    // The candidate opens the editor through the balancer and types.
    let candidate = YClient::connect(&cluster.yjs_url(&id, &tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    let text = "print('typed through the balancer')\n";
    candidate.insert(0, text);

    // The edit is in the one database the nodes share.
    let db = cluster.database_url().to_owned();
    let stored = eventually(PATIENCE, || {
        let count = PgCluster::shared().psql_on(
            &db,
            &format!("SELECT count(*) FROM room_log WHERE interview_id = '{id}' AND kind = 'edit'"),
        );
        count != "0"
    })
    .await;
    assert!(stored, "no edit of the interview in the shared database");

    // Each node, reached directly, knows the interview, and its replay (read from the shared
    // database) ends with the candidate's text.
    for i in 0..3 {
        let (status, body) = get(
            &cluster.node_http(i, &format!("/api/interviews/{id}")),
            Some(&tokens.interviewer),
        )
        .await;
        assert_eq!(status, 200, "node {i}: GET /api/interviews/{id}: {body}");
        assert!(body.contains("Ada"), "node {i}'s interview: {body}");

        let (status, body) = get(
            &cluster.node_http(
                i,
                &format!("/api/interviews/{id}/snapshot?at=99999999999999"),
            ),
            Some(&tokens.reviewer),
        )
        .await;
        assert_eq!(status, 200, "node {i}: the replay's last snapshot: {body}");
        let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            snapshot["files"]["main.py"], text,
            "node {i}'s replay ends elsewhere: {body}"
        );
    }
    candidate.close().await;
}

/// What the multi-node scenarios do to nodes, seen from the balancer: a node killed with
/// SIGKILL is taken out within a few seconds while the others go on answering through the
/// balancer; started again, it is counted up again; a node paused with SIGSTOP is taken out
/// (its checks time out) and back once it resumes; a node stopped with SIGTERM exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_takes_killed_and_paused_nodes_out_and_back() {
    let mut cluster = Cluster::start(3).await;
    let up = |s: &[String]| s.iter().all(|s| s == "UP");

    // Node 1 crashes: HAProxy marks it down; the balancer still answers every request.
    cluster.kill(1);
    assert!(
        cluster
            .lb_sees(PATIENCE, |s| s[1] == "DOWN" && s[0] == "UP" && s[2] == "UP")
            .await,
        "HAProxy still counts the killed node: {:?}",
        cluster.lb_status().await
    );
    for _ in 0..6 {
        let (status, body) = get(&cluster.http("/healthz"), None).await;
        assert_eq!(status, 200, "through the balancer with a node down: {body}");
    }
    cluster.create_interview("Grace").await;

    // Started again on its port and data dir, it is counted up again.
    cluster.restart(1).await;
    assert!(
        cluster.lb_sees(PATIENCE, up).await,
        "HAProxy did not count the restarted node up: {:?}",
        cluster.lb_status().await
    );

    // Node 2 is paused: its checks time out and HAProxy takes it out; resumed, it is back.
    cluster.pause(2);
    assert!(
        cluster.lb_sees(PATIENCE, |s| s[2] == "DOWN").await,
        "HAProxy still counts the paused node: {:?}",
        cluster.lb_status().await
    );
    let (status, _) = get(&cluster.http("/healthz"), None).await;
    assert_eq!(status, 200, "through the balancer with a node paused");
    cluster.resume(2);
    assert!(
        cluster.lb_sees(PATIENCE, up).await,
        "HAProxy did not count the resumed node up: {:?}",
        cluster.lb_status().await
    );

    // Node 0 stops gracefully: it exits, and HAProxy takes it out.
    cluster.stop(0).await;
    assert!(cluster.pid(0).is_none());
    assert!(
        cluster.lb_sees(PATIENCE, |s| s[0] == "DOWN").await,
        "HAProxy still counts the stopped node: {:?}",
        cluster.lb_status().await
    );
}

/// `deploy/run-local.sh`, as a new user runs it, with the script's own PIDs stopped on drop.
struct RunLocal {
    script: std::process::Child,
}

impl Drop for RunLocal {
    fn drop(&mut self) {
        // SIGTERM, as Ctrl-C: the script stops what it started.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.script.id().to_string()])
            .status();
        let _ = self.script.wait();
    }
}

fn refuses(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// deploy/run-local.sh brings up PostgreSQL, three nodes and HAProxy on one machine and prints
/// the URL and the admin token; an interview created at that URL with that token opens through
/// the balancer, each node answers on its port, HAProxy's stats page counts three nodes up;
/// SIGTERM (what Ctrl-C sends) stops every process the script started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_run_local_brings_up_three_nodes_behind_haproxy_and_stops_them() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // As root, the script runs PostgreSQL as the postgres user, who must reach the folder.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut ports = Vec::new();
    for _ in 0..6 {
        ports.push(duet_tests::free_loopback_addr().await.port());
    }
    let (lb, nodes, pg, stats) = (ports[0], &ports[1..4], ports[4], ports[5]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/run-local.sh");
    let mut child = std::process::Command::new("bash")
        .arg(&script)
        .env("DUET_DEPLOY_DIR", dir.path().join("deploy"))
        .env("DUET_BIN", duet_tests::duet_bin())
        .env("DUET_LB_PORT", lb.to_string())
        .env(
            "DUET_NODE_PORTS",
            format!("{} {} {}", nodes[0], nodes[1], nodes[2]),
        )
        .env("DUET_PG_PORT", pg.to_string())
        .env("DUET_LB_STATS_PORT", stats.to_string())
        .env_remove("DUET_ADMIN_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut run = RunLocal { script: child };

    // What it prints once everything is up: the URL to open and the admin token.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut open, mut token) = (None, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while open.is_none() || token.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("run-local.sh printed no URL and token within 120 s");
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Open"), Some(url)) => open = Some(url.to_owned()),
            (Some("Admin"), Some("token")) => token = words.next().map(str::to_owned),
            _ => {}
        }
    }
    let (open, token) = (open.unwrap(), token.unwrap());
    assert_eq!(open, format!("http://127.0.0.1:{lb}/admin"));

    // The admin creates an interview at that URL; its candidate link opens there.
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{lb}/api/interviews"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "Pairing", "candidate_name": "Ada"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = created["urls"]["candidate"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{lb}/interview/")),
        "{link}"
    );
    let (status, _) = get(link.split('#').next().unwrap(), None).await;
    assert_eq!(status, 200, "the candidate's page through the balancer");

    // Each node answers on its own port; HAProxy counts the three up.
    for port in nodes {
        let (status, body) = get(&format!("http://127.0.0.1:{port}/healthz"), None).await;
        assert_eq!(status, 200, "node on {port}: {body}");
    }
    let (_, csv) = get(&format!("http://127.0.0.1:{stats}/stats;csv"), None).await;
    let up = csv
        .lines()
        .filter(|l| l.starts_with("nodes,node") && l.split(',').nth(17) == Some("UP"))
        .count();
    assert_eq!(up, 3, "HAProxy's view: {csv}");

    // Ctrl-C (SIGTERM here): the script stops the balancer, the nodes and PostgreSQL, and exits.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &run.script.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let stopped = eventually(std::time::Duration::from_secs(60), || {
        matches!(run.script.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(stopped, "run-local.sh did not exit within 60 s of SIGTERM");
    for port in [lb, nodes[0], nodes[1], nodes[2], pg, stats] {
        assert!(
            refuses(port),
            "port {port} still answers after the script stopped"
        );
    }
}
