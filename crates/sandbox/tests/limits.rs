//! What each limit stops, what it keeps and how the outcome names it, against the real engine
//! and image: interactive runs get a person's time while the CPU limit keeps a busy loop short
//! (issue 18), and the output cap keeps exactly its bytes at both edges (issue 16).
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{assert_no_containers, collect, config, program, run, sandbox, Ran};
use duet_sandbox::{DockerConfig, RunLimit, RunStatus, Sandbox, Stdin};
use std::time::{Duration, Instant};

/// A config whose interactive runs may last `interactive_wall` and use `cpu` of CPU time
/// (runs with stdin closed keep the tests' 4 s wall limit).
fn interactive(test: &str, interactive_wall: Duration, cpu: Duration) -> DockerConfig {
    let mut config = config(test);
    config.limits.interactive_wall = interactive_wall;
    config.limits.cpu = cpu;
    config
}

type StdinTx = tokio::sync::mpsc::Sender<Stdin>;

/// Runs `code` with stdin kept open; `typist` gets the stdin sender (a person at the console)
/// while the events are collected, and hands it back: stdin stays open until the run ends.
async fn interactive_run<F, Fut>(config: DockerConfig, code: &str, typist: F) -> Ran
where
    F: FnOnce(StdinTx) -> Fut,
    Fut: std::future::Future<Output = StdinTx>,
{
    let instance = config.instance.clone();
    let limits = config.limits.clone();
    let sandbox = sandbox(config).await;
    let mut request = program(code);
    request.limits = limits;
    request.keep_stdin_open = true;
    let started = Instant::now();
    let handle = sandbox.start(request).expect("queued");
    let typing = async {
        let _open = typist(handle.stdin).await;
        std::future::pending::<()>().await
    };
    let ran = tokio::select! {
        ran = collect(handle.events, started) => ran,
        () = typing => unreachable!(),
    };
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
    ran
}

#[tokio::test]
async fn input_answered_after_12_s_of_thinking_is_not_a_timeout() {
    // The wall limit of runs with closed stdin is 4 s here; a person takes longer to answer.
    let config = interactive(
        "think-12s",
        Duration::from_secs(40),
        Duration::from_secs(10),
    );
    assert!(config.limits.wall < Duration::from_secs(12));
    let code = "name = input('name? ')\nprint('hello', name)\n";
    let ran = interactive_run(config, code, |stdin| async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        stdin.send(Stdin::Data(b"Ada\n".to_vec())).await.unwrap();
        // Stdin stays open: the program ends by itself after its one line.
        stdin
    })
    .await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "name? hello Ada\n");
    assert_eq!(ran.outcome.detail, None);
}

#[tokio::test]
async fn busy_loop_with_stdin_open_stops_at_the_cpu_limit() {
    let config = interactive(
        "busy-stdin-open",
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    let ran = interactive_run(
        config,
        "while True:\n    pass\n",
        |stdin| async move { stdin },
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 3 s of CPU time"),
        "{ran:?}"
    );
    assert_eq!(ran.outcome.limit, Some(RunLimit::Cpu { ms: 3_000 }));
}

#[tokio::test]
async fn cpu_limit_counts_every_process() {
    // Three busy children, their parent waiting on input(): the CPU time is the container's.
    let code = r#"
import os
for _ in range(3):
    if os.fork() == 0:
        while True:
            pass
input()
"#;
    let config = interactive(
        "busy-children",
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    let ran = interactive_run(config, code, |stdin| async move { stdin }).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 3 s of CPU time"),
        "{ran:?}"
    );
}

#[tokio::test]
async fn idle_interactive_run_stops_at_the_interactive_wall_limit() {
    let config = interactive(
        "idle-stdin-open",
        Duration::from_secs(6),
        Duration::from_secs(10),
    );
    let ran = interactive_run(config, "input()\n", |stdin| async move { stdin }).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 6 s of wall time"),
        "{ran:?}"
    );
    assert_eq!(ran.outcome.limit, Some(RunLimit::Wall { ms: 6_000 }));
}

#[tokio::test]
async fn a_run_with_stdin_closed_keeps_the_short_wall_limit() {
    let config = interactive(
        "sleep-stdin-closed",
        Duration::from_secs(120),
        Duration::from_secs(10),
    );
    let sandbox = sandbox(config).await;
    let ran = run(&sandbox, program("import time\ntime.sleep(100)\n")).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 4 s of wall time"),
        "{ran:?}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn tests_with_stdin_open_keep_the_short_wall_limit() {
    // The server keeps stdin open for every run it was given no stdin for; nobody types into
    // pytest, so a hanging test still ends at the short limit.
    let config = interactive(
        "pytest-stdin-open",
        Duration::from_secs(120),
        Duration::from_secs(10),
    );
    let instance = config.instance.clone();
    let limits = config.limits.clone();
    let sandbox = sandbox(config).await;
    let mut request = program("x = 1\n");
    request.files.insert(
        "test_hang.py".into(),
        "import time\n\ndef test_hangs():\n    time.sleep(100)\n".into(),
    );
    request.target = duet_sandbox::Target::Pytest {
        test_files: vec!["test_hang.py".into()],
    };
    request.limits = limits;
    request.keep_stdin_open = true;
    let started = Instant::now();
    let handle = sandbox.start(request).expect("queued");
    let ran = collect(handle.events, started).await;
    drop(handle.stdin);
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 4 s of wall time"),
        "{ran:?}"
    );
    sandbox.shutdown().await;
    assert_no_containers(&instance).await;
}

/// Writes `n` bytes (every byte value, NUL, 0x1e and 0xFF among them) on one stream.
fn write_bytes(stream: &str, n: usize) -> String {
    format!(
        "import sys\ndata = bytes(range(256)) * ({n} // 256 + 1)\n\
         out = sys.{stream}.buffer\nout.write(data[:{n}])\nout.flush()\n"
    )
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

const MIB: usize = 1 << 20;

async fn cap_edge(test: &str, stream: &str, n: usize) -> Ran {
    let config = config(test);
    assert_eq!(config.limits.output_bytes, MIB, "the documented cap");
    let sandbox = sandbox(config).await;
    let ran = run(&sandbox, program(&write_bytes(stream, n))).await;
    sandbox.shutdown().await;
    ran
}

#[tokio::test]
async fn exactly_1_mib_on_stdout_is_ok_and_kept_whole() {
    let ran = cap_edge("cap-stdout-exact", "stdout", MIB).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{:?}", ran.outcome);
    assert_eq!(ran.stdout.len(), MIB);
    assert!(ran.stdout == pattern(MIB), "the bytes are kept as written");
    assert!(ran.stderr.is_empty());
}

#[tokio::test]
async fn one_byte_over_1_mib_on_stdout_keeps_exactly_1_mib() {
    let ran = cap_edge("cap-stdout-over", "stdout", MIB + 1).await;
    assert_eq!(ran.status(), RunStatus::OutputLimit, "{:?}", ran.outcome);
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("output over 1 MiB: the rest was dropped")
    );
    assert_eq!(
        ran.outcome.limit,
        Some(RunLimit::Output { bytes: MIB as u64 })
    );
    assert_eq!(ran.stdout.len(), MIB);
    assert!(
        ran.stdout == pattern(MIB),
        "the first 1 MiB is kept as written"
    );
}

#[tokio::test]
async fn exactly_1_mib_on_stderr_is_ok_and_kept_whole() {
    let ran = cap_edge("cap-stderr-exact", "stderr", MIB).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{:?}", ran.outcome);
    assert_eq!(ran.stderr.len(), MIB);
    assert!(ran.stderr == pattern(MIB), "the bytes are kept as written");
}

#[tokio::test]
async fn one_byte_over_1_mib_on_stderr_keeps_exactly_1_mib() {
    let ran = cap_edge("cap-stderr-over", "stderr", MIB + 1).await;
    assert_eq!(ran.status(), RunStatus::OutputLimit, "{:?}", ran.outcome);
    assert_eq!(ran.stderr.len(), MIB);
    assert!(ran.stderr == pattern(MIB));
}

#[tokio::test]
async fn one_and_a_half_mib_on_stderr_keeps_exactly_1_mib() {
    let ran = cap_edge("cap-stderr-1.5", "stderr", MIB + MIB / 2).await;
    assert_eq!(ran.status(), RunStatus::OutputLimit, "{:?}", ran.outcome);
    assert_eq!(ran.stderr.len(), MIB);
    assert!(ran.stderr == pattern(MIB));
}

#[tokio::test]
async fn exactly_1_mib_across_both_streams_is_ok() {
    // Half on each stream, interleaved in 4 KiB writes: the cap counts them together.
    let code = "import sys\nout, err = sys.stdout.buffer, sys.stderr.buffer\n\
                for i in range(128):\n    out.write(b'o' * 4096); out.flush()\n    \
                err.write(b'e' * 4096); err.flush()\n";
    let config = config("cap-both-exact");
    let sandbox = sandbox(config).await;
    let ran = run(&sandbox, program(code)).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{:?}", ran.outcome);
    assert_eq!((ran.stdout.len(), ran.stderr.len()), (MIB / 2, MIB / 2));
    let over = run(&sandbox, program(&format!("{code}print()\n"))).await;
    assert_eq!(over.status(), RunStatus::OutputLimit, "{:?}", over.outcome);
    assert_eq!(over.stdout.len() + over.stderr.len(), MIB);
    sandbox.shutdown().await;
}
