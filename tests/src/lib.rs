//! Helpers for Duet's end-to-end scenarios: a real server on port 0 ([`TestServer`]) and a Yjs
//! client speaking the y-websocket protocol over a real websocket ([`YClient`]).
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod client;
mod cluster;
mod events;
mod fake_sandbox;
mod server;
mod smtp;

pub use client::{Closed, YClient};
pub use cluster::{haproxy_config, Cluster, ClusterConfig, CLUSTER_ADMIN_TOKEN};
pub use events::EventsClient;
pub use fake_sandbox::FakeSandbox;
pub use server::TestServer;
pub use smtp::{free_loopback_addr, SmtpServer};

use std::time::Duration;

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `duet` binary, for scenarios that run the real process: $DUET_BIN, or
/// target/<profile>/duet next to the running test's own binary.
pub fn duet_bin() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("DUET_BIN") {
        return std::path::PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in target/<profile>/deps")
        .join("duet");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --bin duet` (scripts/test does)",
        path.display()
    );
    path
}

/// For tests on a paused clock: waits up to 10 s of real time for `cond` (the store's writer
/// thread commits in real time) without letting the paused clock move: the waiting task sleeps
/// on its thread and yields, so the runtime is never idle and never advances its clock itself.
pub async fn soon(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
        tokio::task::yield_now().await;
    }
    false
}

/// Calls the REST API with a bearer token and an optional JSON body; the status and the JSON
/// answer (or the text, as a JSON string, if it is not JSON).
pub async fn api(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.http(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// How long a scenario waits for something that normally takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(10);
