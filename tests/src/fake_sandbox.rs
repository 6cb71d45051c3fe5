//! A scripted stand-in for the Docker sandbox, for API scenarios that are about the server
//! (roles, rate limits, cancelling, history) rather than about containers. Every behaviour it
//! stands in for is also tested against the real engine (tests/tests/runs_docker.rs and
//! crates/sandbox/tests).
//!
//! Its "program" prints `started <first line of main.py>`, then echoes each stdin chunk to
//! stdout; a chunk containing `exit` ends it with status ok, cancel ends it as cancelled.

use duet_sandbox::{
    Environment, Health, RunEvent, RunHandle, RunOutcome, RunRequest, RunStatus, Sandbox,
    SandboxError, Stdin,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct FakeSandbox {
    /// Every request started, in order.
    pub requests: Mutex<Vec<RunRequest>>,
    /// When set, `start` answers busy.
    pub busy: AtomicBool,
}

impl FakeSandbox {
    pub fn new() -> Arc<FakeSandbox> {
        Arc::new(FakeSandbox::default())
    }
}

impl Sandbox for FakeSandbox {
    fn start(&self, request: RunRequest) -> Result<RunHandle, SandboxError> {
        if self.busy.load(Ordering::SeqCst) {
            return Err(SandboxError::Busy {
                running: 2,
                queued: 32,
            });
        }
        let first_line = request
            .files
            .get("main.py")
            .and_then(|c| c.lines().next())
            .unwrap_or("")
            .to_owned();
        let initial_stdin = request.stdin.clone();
        self.requests.lock().unwrap().push(request);
        let (events_tx, events) = mpsc::channel(64);
        let (stdin, mut stdin_rx) = mpsc::channel::<Stdin>(8);
        let cancel = CancellationToken::new();
        let cancelled = cancel.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let finish = |status, exit_code| {
                RunEvent::Finished(RunOutcome {
                    status,
                    exit_code,
                    duration: began.elapsed(),
                    tests: None,
                    lint: None,
                    detail: None,
                    limit: None,
                })
            };
            let _ = events_tx
                .send(RunEvent::Stdout(
                    format!("started {first_line}\n").into_bytes(),
                ))
                .await;
            if let Some(bytes) = initial_stdin {
                let _ = events_tx.send(RunEvent::Stdout(bytes)).await;
            }
            let _ = events_tx
                .send(RunEvent::Stderr(b"a warning\n".to_vec()))
                .await;
            loop {
                tokio::select! {
                    _ = cancelled.cancelled() => {
                        let _ = events_tx.send(finish(RunStatus::Cancelled, None)).await;
                        return;
                    }
                    chunk = stdin_rx.recv() => match chunk {
                        Some(Stdin::Data(bytes)) => {
                            let exit = String::from_utf8_lossy(&bytes).contains("exit");
                            let _ = events_tx.send(RunEvent::Stdout(bytes)).await;
                            if exit {
                                let _ = events_tx.send(finish(RunStatus::Ok, Some(0))).await;
                                return;
                            }
                        }
                        Some(Stdin::Eof) | None => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                }
            }
        });
        Ok(RunHandle {
            events,
            stdin,
            cancel,
        })
    }

    fn health(&self) -> Health {
        Health {
            status: "ok",
            detail: None,
            running: 0,
            queued: 0,
            warm: 0,
            cold_starts: 0,
            waited: 0,
            waited_ms: 0,
            environments: Vec::new(),
            engines: Vec::new(),
        }
    }

    /// Both environments, as if both images were there (with no packages listed).
    fn environments(&self) -> Vec<Environment> {
        ["python", "python-data"]
            .into_iter()
            .map(|name| Environment {
                name: name.into(),
                python: "3.11.2".into(),
                packages: Vec::new(),
            })
            .collect()
    }
}
