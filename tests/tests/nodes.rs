//! One owner per room across nodes (issue 23): three real `duet serve` processes on one real
//! PostgreSQL, HAProxy in front ([`duet_tests::Cluster`]). A room lives on the node holding
//! its lease; the other nodes forward its websockets and REST calls there; a node killed with
//! SIGKILL hands its rooms over once their leases lapse, a node stopped gracefully at once,
//! and a paused node that wakes after another took its room cannot write into it.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::InterviewId;
use duet_store::testing::PgCluster;
use duet_tests::{eventually, Cluster, ClusterConfig, EventsClient, YClient, PATIENCE};
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact};

/// The lease row of a room: (node URL, epoch, lapsed by the database's clock), once there is one.
fn lease_of(cluster: &Cluster, id: &InterviewId) -> Option<(String, i64, bool)> {
    let row = PgCluster::shared().psql_on(
        cluster.database_url(),
        &format!(
            "SELECT node, epoch, expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::int8 \
             FROM room_leases WHERE interview_id = '{id}'"
        ),
    );
    let mut parts = row.split('|');
    let node = parts.next().filter(|n| !n.is_empty())?.to_owned();
    let epoch = parts.next()?.parse().ok()?;
    let lapsed = parts.next()? == "t";
    Some((node, epoch, lapsed))
}

/// Which node holds the room (its index), waiting for the lease to be taken.
async fn owner_of(cluster: &Cluster, id: &InterviewId) -> usize {
    let mut owner = None;
    let found = eventually(PATIENCE, || {
        owner = lease_of(cluster, id)
            .filter(|(_, _, lapsed)| !lapsed)
            .and_then(|(node, _, _)| (0..cluster.nodes()).find(|i| cluster.node_url(*i) == node));
        owner.is_some()
    })
    .await;
    assert!(
        found,
        "nobody took the room's lease: {:?}",
        lease_of(cluster, id)
    );
    owner.unwrap()
}

/// Every seq of the room's log, in order.
fn log_seqs(cluster: &Cluster, id: &InterviewId) -> Vec<u64> {
    PgCluster::shared()
        .psql_on(
            cluster.database_url(),
            &format!("SELECT seq FROM room_log WHERE interview_id = '{id}' ORDER BY seq"),
        )
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn assert_gapless(seqs: &[u64]) {
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "the room's log has a gap or a repeat");
}

/// Connects until a connection syncs (a node may be taking the room over meanwhile).
async fn connect_synced(url: &str) -> YClient {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(client) = YClient::connect(url).await {
            if eventually(Duration::from_secs(12), || {
                client.synced() || client.closed().is_some()
            })
            .await
                && client.synced()
            {
                return client;
            }
        }
        assert!(Instant::now() < deadline, "{url} never synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a y-websocket client does on reconnecting: it sends the server whatever its document
/// holds (the server keeps what it lacks), here from the old connection's document.
fn carry_over(old: &YClient, new: &YClient) {
    let state = old
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    new.doc
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&state).unwrap())
        .unwrap();
    new.send_raw(yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(state)).encode_v1_bytes());
}

trait EncodeV1 {
    fn encode_v1_bytes(&self) -> Vec<u8>;
}

impl EncodeV1 for yrs::sync::Message {
    fn encode_v1_bytes(&self) -> Vec<u8> {
        yrs::updates::encoder::Encode::encode_v1(self)
    }
}

async fn call(
    url: &str,
    method: reqwest::Method,
    token: &str,
    body: Option<serde_json::Value>,
    proxied: bool,
) -> (u16, serde_json::Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if proxied {
        request = request.header("X-Duet-Proxied", "1");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body, retry)
}

/// The candidate opens the room on node 0, which takes its lease; the interviewer reaches it
/// through node 1 and the reviewer's question switch through node 2: node 0 serves them all,
/// the text converges, and the lease never moves, however many times its 2 s run out (node 0
/// renews it). A request that was already forwarded once and reaches a node that does not hold
/// the room is answered 503, never sent on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_different_nodes_share_one_room_held_by_one_node() {
    let cluster = Cluster::start_with(ClusterConfig {
        nodes: 3,
        node_args: vec!["--room-lease-secs".into(), "2".into()],
    })
    .await;
    let created = cluster.create_interview("Ada").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());

    let candidate = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.candidate)).await;
    assert_eq!(
        owner_of(&cluster, &id).await,
        0,
        "the first node asked took the room"
    );
    let interviewer = connect_synced(&cluster.node_yjs_url(1, &id, &tokens.interviewer)).await;

    candidate.insert(0, "def add(a, b):\n");
    let end = candidate.len();
    assert!(eventually(PATIENCE, || interviewer.text() == candidate.text()).await);
    interviewer.insert(end, "    return a + b\n");
    let both = "def add(a, b):\n    return a + b\n";
    assert!(
        eventually(PATIENCE, || candidate.text() == both
            && interviewer.text() == both)
        .await,
        "candidate {:?}, interviewer {:?}",
        candidate.text(),
        interviewer.text()
    );

    // The reviewer listens on the events socket of node 2 (relayed from node 0).
    let events = EventsClient::connect(&cluster.node_events_url(2, &id, &tokens.reviewer))
        .await
        .unwrap();

    // The interviewer switches the question through node 2: node 0's room does it, and both
    // editors receive the question's starter.
    let (status, body, _) = call(
        &cluster.node_http(2, &format!("/api/interviews/{id}/question")),
        reqwest::Method::POST,
        &tokens.interviewer,
        Some(serde_json::json!({"question_id": "lru-cache"})),
        false,
    )
    .await;
    assert_eq!(status, 200, "question switch through node 2: {body}");
    assert!(
        eventually(PATIENCE, || candidate.text() != both
            && candidate.text() == interviewer.text())
        .await,
        "the switch did not reach both editors"
    );
    assert!(
        eventually(PATIENCE, || {
            events
                .all()
                .iter()
                .any(|e| e["type"] == "question" && e["question_id"] == "lru-cache")
        })
        .await,
        "the relayed events socket never told the switch: {:?}",
        events.all()
    );

    // A request marked as forwarded, reaching a node that does not hold the room: 503, retry.
    let (status, body, retry) = call(
        &cluster.node_http(1, &format!("/api/interviews/{id}/signals")),
        reqwest::Method::POST,
        &tokens.candidate,
        Some(serde_json::json!({"kind": "paste", "size": 10})),
        true,
    )
    .await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");

    // Three lease times later the room is still node 0's, and nobody was sent away.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(candidate.closed(), None);
    assert_eq!(interviewer.closed(), None);
    let (node, epoch, lapsed) = lease_of(&cluster, &id).unwrap();
    assert_eq!(
        (node, epoch, lapsed),
        (cluster.node_url(0), 1, false),
        "the room never changed hands"
    );
    assert_gapless(&log_seqs(&cluster, &id));
}

/// Through HAProxy: the candidate and the interviewer type; the node holding their room is
/// killed with SIGKILL mid-typing; both reconnect through the balancer and within 10 s of the
/// kill the candidate's next line reaches the interviewer through another node. Every line
/// the interviewer had seen before the kill (stored: nothing reaches anyone before it is) is
/// still there, and the log has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_mid_typing_moves_the_room_within_ten_seconds_losing_nothing_acknowledged(
) {
    let mut cluster = Cluster::start(3).await;
    let created = cluster.create_interview("Grace").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let candidate = connect_synced(&cluster.yjs_url(&id, &tokens.candidate)).await;
    let interviewer = connect_synced(&cluster.yjs_url(&id, &tokens.interviewer)).await;
    let owner = owner_of(&cluster, &id).await;

    // Typing, a line at a time, each seen by the interviewer before the next.
    for n in 0..20 {
        candidate.insert(candidate.len(), &format!("line {n}\n"));
        let typed = candidate.text();
        assert!(eventually(PATIENCE, || interviewer.text() == typed).await);
    }
    // Mid-typing: three more lines on their way as the owner dies.
    for n in 20..23 {
        candidate.insert(candidate.len(), &format!("line {n}\n"));
    }
    let acknowledged = interviewer.text();
    let killed_at = Instant::now();
    cluster.kill(owner);

    assert!(
        eventually(PATIENCE, || candidate.closed().is_some()
            && interviewer.closed().is_some())
        .await,
        "the clients never noticed the owner died"
    );
    let candidate2 = connect_synced(&cluster.yjs_url(&id, &tokens.candidate)).await;
    carry_over(&candidate, &candidate2);
    let interviewer2 = connect_synced(&cluster.yjs_url(&id, &tokens.interviewer)).await;
    candidate2.insert(candidate2.len(), "after the failover\n");
    let typed = candidate2.text();
    assert!(
        eventually(PATIENCE, || interviewer2.text() == typed).await,
        "the interviewer sees {:?}, the candidate typed {:?}",
        interviewer2.text(),
        typed
    );
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(10),
        "typing resumed {failover:?} after the kill"
    );
    eprintln!("failover: first edit acknowledged through another node {failover:?} after kill -9");

    let new_owner = owner_of(&cluster, &id).await;
    assert_ne!(new_owner, owner, "the dead node still holds the room");
    assert!(
        typed.starts_with(&acknowledged),
        "an acknowledged line was lost: {acknowledged:?} is not the start of {typed:?}"
    );
    assert!(
        typed.contains("line 22\n"),
        "the lines in flight came back with the candidate"
    );
    let (_, epoch, _) = lease_of(&cluster, &id).unwrap();
    assert_eq!(epoch, 2, "one takeover");
    assert_gapless(&log_seqs(&cluster, &id));
}

/// The node holding a room dies with nobody connected: a REST call the room answers (the end),
/// reaching another node, finds the holder gone, waits out its lease and is served there; a read
/// of what is stored never waits for the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_call_for_a_dead_owners_room_is_served_once_its_lease_lapses() {
    let mut cluster = Cluster::start(3).await;
    let created = cluster.create_interview("Frances").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let candidate = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.candidate)).await;
    assert_eq!(owner_of(&cluster, &id).await, 0);
    candidate.insert(0, "x = 1\n");
    let watcher = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.interviewer)).await;
    assert!(eventually(PATIENCE, || watcher.text() == "x = 1\n").await);
    cluster.kill(0);

    let (status, timeline, _) = call(
        &cluster.node_http(2, &format!("/api/interviews/{id}/timeline")),
        reqwest::Method::GET,
        &tokens.interviewer,
        None,
        false,
    )
    .await;
    assert_eq!(
        status, 200,
        "a read while the room's holder is dead: {timeline}"
    );
    assert_eq!(
        lease_of(&cluster, &id).map(|(node, _, lapsed)| (node, lapsed)),
        Some((cluster.node_url(0), false)),
        "the read took the room"
    );

    let (status, ended, _) = call(
        &cluster.node_http(1, &format!("/api/interviews/{id}/end")),
        reqwest::Method::POST,
        &tokens.interviewer,
        None,
        false,
    )
    .await;
    assert_eq!(status, 200, "the end through node 1: {ended}");
    assert_eq!(ended["status"], "ended", "{ended}");
    assert_eq!(
        owner_of(&cluster, &id).await,
        1,
        "node 1 took the room to end it"
    );
    let seqs = log_seqs(&cluster, &id);
    assert_gapless(&seqs);
    assert_eq!(
        ended["seq"],
        *seqs.last().unwrap(),
        "the end is the log's last record"
    );
}

/// The node holding a room is stopped gracefully (SIGTERM): it stores what it holds, gives the
/// lease back and closes its clients with 1001; they reconnect through another node, which
/// takes the room at once (no lease to wait out) with everything typed before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_the_room_over() {
    let mut cluster = Cluster::start(3).await;
    let created = cluster.create_interview("Alan").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let candidate = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.candidate)).await;
    let interviewer = connect_synced(&cluster.node_yjs_url(1, &id, &tokens.interviewer)).await;
    assert_eq!(owner_of(&cluster, &id).await, 0);
    candidate.insert(0, "before the stop\n");
    assert!(eventually(PATIENCE, || interviewer.text() == "before the stop\n").await);

    cluster.stop(0).await;
    let closed = candidate
        .closed()
        .expect("the stopped node closed its clients");
    assert_eq!(closed.code, 1001, "{closed:?}");
    assert!(
        eventually(PATIENCE, || interviewer.closed().is_some()).await,
        "the relayed client was not closed with the room"
    );
    let (node, epoch, lapsed) = lease_of(&cluster, &id).unwrap();
    assert!(
        lapsed && node == cluster.node_url(0) && epoch == 1,
        "the stopped node did not give its lease back: {node} epoch {epoch}, lapsed {lapsed}"
    );

    let candidate2 = connect_synced(&cluster.node_yjs_url(1, &id, &tokens.candidate)).await;
    assert_eq!(candidate2.text(), "before the stop\n");
    let interviewer2 = connect_synced(&cluster.node_yjs_url(2, &id, &tokens.interviewer)).await;
    candidate2.insert(candidate2.len(), "after the stop\n");
    assert!(
        eventually(PATIENCE, || interviewer2.text()
            == "before the stop\nafter the stop\n")
        .await
    );
    assert_eq!(owner_of(&cluster, &id).await, 1);
    assert_eq!(lease_of(&cluster, &id).unwrap().1, 2);
    assert_gapless(&log_seqs(&cluster, &id));
}

/// A partition, as a SIGSTOP: the owner stops answering while keeping its sockets and its
/// lease; the lease lapses and node 1 takes the room; the candidate's edit sent to the paused
/// node meanwhile waits in its socket. Resumed, the old owner's room is fenced out: its next
/// append fails (the edit is never stored) and it closes its clients with 1001 so they
/// reconnect. The log stays gapless, written by one node at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_cannot_write_after_it_resumes() {
    let cluster = Cluster::start(3).await;
    let created = cluster.create_interview("Barbara").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let stale = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.candidate)).await;
    assert_eq!(owner_of(&cluster, &id).await, 0);
    stale.insert(0, "before the pause\n");
    let watcher = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.interviewer)).await;
    assert!(eventually(PATIENCE, || watcher.text() == "before the pause\n").await);
    let seqs_before = log_seqs(&cluster, &id);

    cluster.pause(0);
    // Typed into the paused node's socket: it waits in the kernel's buffers.
    stale.insert(stale.len(), "typed into the paused node\n");

    // Node 1 finds node 0 silent, waits out its lease and takes the room.
    let candidate = connect_synced(&cluster.node_yjs_url(1, &id, &tokens.candidate)).await;
    assert_eq!(candidate.text(), "before the pause\n");
    assert_eq!(owner_of(&cluster, &id).await, 1);
    candidate.insert(candidate.len(), "typed on node 1\n");
    let interviewer = connect_synced(&cluster.node_yjs_url(2, &id, &tokens.interviewer)).await;
    let expected = "before the pause\ntyped on node 1\n";
    assert!(eventually(PATIENCE, || interviewer.text() == expected).await);

    cluster.resume(0);
    assert!(
        eventually(PATIENCE, || stale.closed().is_some()).await,
        "the resumed node kept serving a room it no longer holds"
    );
    let closed = stale.closed().unwrap();
    assert_eq!(closed.code, 1001, "{closed:?}");
    assert!(closed.reason.contains("moved"), "{closed:?}");
    // Give the resumed node every chance to write what it held.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = cluster.log(0);
    assert!(
        log.contains("lease was lost") || log.contains("fenced out"),
        "node 0 never noticed it lost the room:\n{log}"
    );

    let seqs = log_seqs(&cluster, &id);
    assert_gapless(&seqs);
    assert!(
        seqs.len() > seqs_before.len(),
        "node 1 wrote after the takeover"
    );
    let fresh = connect_synced(&cluster.node_yjs_url(2, &id, &tokens.reviewer)).await;
    assert_eq!(
        fresh.text(),
        expected,
        "the paused node's edit reached the log after the takeover"
    );
    assert_eq!(lease_of(&cluster, &id).unwrap().1, 2, "one takeover");
}

/// What is stored is read by any node, and what the room does is done by its owner whoever is
/// asked: the interviewer saves a scorecard through node 2 and reads it on node 1; a run
/// started through node 2 runs on the owner (node 0) in the real Docker sandbox and its output
/// is read on node 1; the replay's timeline, read on node 2, has the candidate's edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_scorecard_and_runs_work_from_any_node() {
    let cluster = Cluster::start(3).await;
    let created = cluster.create_interview("Edsger").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let candidate = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.candidate)).await;
    assert_eq!(owner_of(&cluster, &id).await, 0);
    candidate.insert(0, "print('hello from the owner')\n");
    let interviewer = connect_synced(&cluster.node_yjs_url(1, &id, &tokens.interviewer)).await;
    assert!(eventually(PATIENCE, || interviewer.text() == candidate.text()).await);

    let (status, card, _) = call(
        &cluster.node_http(2, &format!("/api/interviews/{id}/scorecard")),
        reqwest::Method::PUT,
        &tokens.interviewer,
        Some(serde_json::json!({"ratings": {"coding_quality": 3}, "notes": "clear", "version": 0})),
        false,
    )
    .await;
    assert_eq!(status, 200, "scorecard save through node 2: {card}");
    let (status, read, _) = call(
        &cluster.node_http(1, &format!("/api/interviews/{id}/scorecard")),
        reqwest::Method::GET,
        &tokens.interviewer,
        None,
        false,
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["scorecard"]["notes"], "clear", "{read}");

    let (status, started, _) = call(
        &cluster.node_http(2, &format!("/api/interviews/{id}/runs")),
        reqwest::Method::POST,
        &tokens.candidate,
        Some(serde_json::json!({"kind": "run"})),
        false,
    )
    .await;
    assert!(
        status == 200 || status == 201 || status == 202,
        "run through node 2: {status} {started}"
    );
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (run, finished) = loop {
        let (status, run, _) = call(
            &cluster.node_http(1, &format!("/api/interviews/{id}/runs/{run_id}")),
            reqwest::Method::GET,
            &tokens.interviewer,
            None,
            false,
        )
        .await;
        assert_eq!(status, 200, "{run}");
        let over = !matches!(run["status"].as_str(), None | Some("running" | "queued"));
        if over || Instant::now() > deadline {
            break (run, over);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(finished, "the run never finished: {run}");
    assert_eq!(run["stdout"], "hello from the owner\n", "{run}");
    // The owner's sandbox ran it; the node asked only forwarded the request.
    assert_eq!(
        sandbox_runs(&cluster, 0).await,
        1,
        "the owner did not run it"
    );
    assert_eq!(
        sandbox_runs(&cluster, 2).await,
        0,
        "the node asked ran it itself"
    );

    let (status, timeline, _) = call(
        &cluster.node_http(2, &format!("/api/interviews/{id}/timeline")),
        reqwest::Method::GET,
        &tokens.interviewer,
        None,
        false,
    )
    .await;
    assert_eq!(status, 200, "{timeline}");
    let events = timeline["events"].as_array().unwrap();
    let has = |kind: &str| events.iter().any(|e| e["type"] == kind);
    assert!(
        has("edit") && has("run.finished"),
        "the timeline read on node 2 lacks the room's edit or run: {timeline}"
    );
}

/// Runs node `i`'s sandbox gave a slot (its `/metrics`).
async fn sandbox_runs(cluster: &Cluster, i: usize) -> u64 {
    let text = reqwest::Client::new()
        .get(cluster.node_http(i, "/metrics"))
        .bearer_auth(&cluster.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("duet_sandbox_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A candidate reaches the room through node 1 and then goes silent (its machine slept, its
/// network dropped: no frame, no pong). The holder's pings reach it through the relay, but the
/// relaying node's own client would answer them, so only the relay can tell: it gives the
/// client up after the peer deadline, and the holder, its upstream closed, logs the leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_silent_behind_a_relay_is_given_up_and_its_leave_logged() {
    let cluster = Cluster::start_with(ClusterConfig {
        nodes: 2,
        node_args: vec![
            "--ws-ping-secs".into(),
            "1".into(),
            "--ws-peer-deadline-secs".into(),
            "2".into(),
        ],
    })
    .await;
    let created = cluster.create_interview("Ada").await;
    let (id, tokens) = (created.id.clone(), created.tokens.clone());
    let interviewer = connect_synced(&cluster.node_yjs_url(0, &id, &tokens.interviewer)).await;
    assert_eq!(owner_of(&cluster, &id).await, 0);

    // A raw websocket client that is never read again after the handshake: it answers no ping.
    let (silent, _) =
        tokio_tungstenite::connect_async(cluster.node_yjs_url(1, &id, &tokens.candidate))
            .await
            .expect("the candidate's socket through node 1");
    let leaves = || {
        PgCluster::shared()
            .psql_on(
                cluster.database_url(),
                &format!(
                    "SELECT count(*) FROM room_log WHERE interview_id = '{id}' \
                     AND kind = 'leave' AND role = 'candidate'"
                ),
            )
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let joined = eventually(PATIENCE, || {
        PgCluster::shared()
            .psql_on(
                cluster.database_url(),
                &format!(
                    "SELECT count(*) FROM room_log WHERE interview_id = '{id}' \
                     AND kind = 'join' AND role = 'candidate'"
                ),
            )
            .trim()
            == "1"
    })
    .await;
    assert!(
        joined,
        "the candidate's join through node 1 was logged on the holder"
    );
    assert_eq!(leaves(), 0);
    assert!(
        eventually(PATIENCE, || leaves() == 1).await,
        "the silent candidate was never given up"
    );
    drop(silent);
    assert!(
        interviewer.closed().is_none(),
        "the interviewer stays connected"
    );
}
