//! Seeded randomised convergence over real websockets: several participants make random edits,
//! drop and rejoin at random; everyone converges, and the text rebuilt from the stored log
//! equals the live text.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use rand::{rngs::StdRng, Rng, SeedableRng};

const SEEDS: [u64; 5] = [1, 7, 2024, 0xD0E7, 0xBEEF];

#[tokio::test]
async fn random_edits_and_reconnects_converge_and_replay_from_the_log() {
    for seed in SEEDS {
        run(seed).await;
    }
}

async fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    let interview = server.create_interview("Ada").await;
    let tokens = [
        interview.tokens.candidate.clone(),
        interview.tokens.interviewer.clone(),
    ];
    let url = |i: usize| server.yjs_url(&interview.id, &tokens[i % 2]);

    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(Some(YClient::connect(&url(i)).await.unwrap()));
    }
    for step in 0..1500 {
        let i = rng.gen_range(0..clients.len());
        match (&clients[i], rng.gen_range(0..100)) {
            (None, _) => {
                clients[i] = Some(YClient::connect(&url(i)).await.unwrap());
            }
            (Some(_), 0..=4) => {
                // Drop without a close frame, or close cleanly: both happen in real life.
                let client = clients[i].take().unwrap();
                if rng.gen_bool(0.5) {
                    client.abort()
                } else {
                    client.close().await
                }
            }
            (Some(client), 5..=74) => {
                let text = client.text();
                let at = rng.gen_range(0..=text.chars().count());
                let offset: u32 = text.chars().take(at).map(|c| c.len_utf16() as u32).sum();
                let chunk = ["a", "bc", "\n", "    ", "é", "🐍", "def f():"][rng.gen_range(0..7)];
                client.insert(offset, chunk);
            }
            (Some(client), _) => {
                let text = client.text();
                let chars: Vec<char> = text.chars().collect();
                if !chars.is_empty() {
                    let at = rng.gen_range(0..chars.len());
                    let n = rng.gen_range(1..=(chars.len() - at).min(3));
                    let offset: u32 = chars[..at].iter().map(|c| c.len_utf16() as u32).sum();
                    let len: u32 = chars[at..at + n].iter().map(|c| c.len_utf16() as u32).sum();
                    client.delete(offset, len);
                }
            }
        }
        if step % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for (i, slot) in clients.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(YClient::connect(&url(i)).await.unwrap());
        }
    }
    let clients: Vec<YClient> = clients.into_iter().flatten().collect();
    let converged = eventually(PATIENCE, || {
        let first = clients[0].text();
        clients.iter().all(|c| c.synced() && c.text() == first)
    })
    .await;
    let texts: Vec<String> = clients.iter().map(YClient::text).collect();
    assert!(converged, "seed {seed}: clients diverged: {texts:#?}");

    let log = server.state.store.read_log(&interview.id, 0).unwrap();
    let rebuilt = duet_core::rebuild(None, log).unwrap();
    assert_eq!(
        rebuilt.text(),
        texts[0],
        "seed {seed}: the stored log replays to the live text"
    );
}
