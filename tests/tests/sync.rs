//! The shared editor over a real websocket: participants converge, late joiners catch up,
//! reviewers only watch, and presence carries the names the server stamps.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{Actor, CreatedInterview, EventKind};
use duet_tests::{eventually, TestServer, YClient, PATIENCE};

/// A server, an interview, and its candidate and interviewer connected to the document.
async fn pair(candidate_name: &str) -> (TestServer, CreatedInterview, YClient, YClient) {
    let server = TestServer::start().await;
    let interview = server.create_interview(candidate_name).await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let interviewer =
        YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    (server, interview, candidate, interviewer)
}

#[tokio::test]
async fn two_participants_converge() {
    let (_server, _interview, candidate, interviewer) = pair("Ada").await;
    assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);

    candidate.insert(0, "def lru(capacity):\n");
    assert!(eventually(PATIENCE, || interviewer.text() == "def lru(capacity):\n").await);
    interviewer.insert(0, "# Implement an LRU cache\n");
    candidate.insert(candidate.len(), "    pass\n");
    let expected = "# Implement an LRU cache\ndef lru(capacity):\n    pass\n";
    assert!(
        eventually(PATIENCE, || candidate.text() == expected
            && interviewer.text() == expected)
        .await,
        "candidate {:?} interviewer {:?}",
        candidate.text(),
        interviewer.text()
    );
}

#[tokio::test]
async fn a_late_joiner_receives_the_whole_document() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    for (i, line) in [
        "import heapq\n",
        "def top_k(xs, k):\n",
        "    return heapq.nlargest(k, xs)\n",
    ]
    .iter()
    .enumerate()
    {
        candidate.insert(if i == 0 { 0 } else { candidate.len() }, line);
    }
    candidate.delete(0, 7); // "import " gone: "heapq\n..."
    let expected = candidate.text();

    let late = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.reviewer))
        .await
        .unwrap();
    assert!(
        eventually(PATIENCE, || late.text() == expected).await,
        "late joiner has {:?}",
        late.text()
    );
}

#[tokio::test]
async fn a_reviewer_watches_but_its_edits_do_not_apply() {
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let reviewer = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.reviewer))
        .await
        .unwrap();
    candidate.insert(0, "print('hi')\n");
    assert!(eventually(PATIENCE, || reviewer.text() == "print('hi')\n").await);

    reviewer.insert(0, "import os; os.system('rm -rf /')\n");
    // A later candidate edit arrives at the reviewer, so the server has handled the reviewer's
    // message by then; the candidate never sees the reviewer's text.
    candidate.insert(candidate.len(), "# done\n");
    assert!(eventually(PATIENCE, || reviewer.text().contains("# done")).await);
    assert_eq!(candidate.text(), "print('hi')\n# done\n");
    assert!(reviewer.closed().is_none(), "the reviewer stays connected");

    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    assert!(log
        .iter()
        .filter(|r| r.kind == EventKind::Edit)
        .all(|r| r.by != Actor::Reviewer));
}

#[tokio::test]
async fn presence_shows_the_names_the_server_stamps() {
    let (server, interview, candidate, interviewer) = pair("Grace Hopper").await;
    assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);

    candidate.set_awareness(
        1001,
        1,
        r#"{"user":{"name":"The Interviewer","role":"interviewer"},"cursor":{"index":4}}"#,
    );
    interviewer.set_awareness(2002, 1, r#"{"cursor":{"index":0}}"#);
    assert!(
        eventually(PATIENCE, || interviewer.awareness().contains_key(&1001)
            && candidate.awareness().contains_key(&2002))
        .await
    );

    let seen_by_interviewer: serde_json::Value =
        serde_json::from_str(&interviewer.awareness()[&1001]).unwrap();
    assert_eq!(seen_by_interviewer["user"]["name"], "Grace Hopper");
    assert_eq!(seen_by_interviewer["user"]["role"], "candidate");
    assert_eq!(seen_by_interviewer["cursor"]["index"], 4);
    let seen_by_candidate: serde_json::Value =
        serde_json::from_str(&candidate.awareness()[&2002]).unwrap();
    assert_eq!(seen_by_candidate["user"]["name"], "Interviewer");

    // Someone joining later gets everyone's presence at once.
    let reviewer = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.reviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || reviewer.awareness().len() == 2).await);

    // Leaving clears the presence for the others.
    candidate.close().await;
    assert!(
        eventually(PATIENCE, || interviewer
            .awareness()
            .get(&1001)
            .map(String::as_str)
            == Some("null"))
        .await
    );
}

#[tokio::test]
async fn every_received_edit_is_already_in_the_log() {
    let (server, interview, candidate, interviewer) = pair("Ada").await;
    // After the handshake, every keystroke is news to the server. (Typed before it, they would
    // arrive folded into the client's sync step 2, and their repeats would rightly not be stored.)
    assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);
    for i in 0..50 {
        candidate.insert(i, "x");
    }
    assert!(eventually(PATIENCE, || interviewer.text().len() == 50).await);
    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    let edits: Vec<_> = log.iter().filter(|r| r.kind == EventKind::Edit).collect();
    assert_eq!(edits.len(), 50);
    assert!(edits
        .iter()
        .all(|r| r.by == Actor::Candidate && r.at_ms > 0));
    let seqs: Vec<u64> = log.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "gapless per-room sequence"
    );
    let rebuilt = duet_core::rebuild(None, log).unwrap();
    assert_eq!(rebuilt.text(), interviewer.text());
}
