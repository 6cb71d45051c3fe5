//! Ordinary programs and pytest files against the real engine and image.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{assert_no_containers, collect, config, program, run, sandbox};
use duet_sandbox::{
    LintFinding, RunEvent, RunStatus, Sandbox, SandboxError, Stdin, Target, TestCase,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart_and_in_order() {
    let config = config("streams");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let code = r#"
import sys
for i in range(200):
    print("out", i)
    print("err", i, file=sys.stderr)
"#;
    let ran = run(&sandbox, program(code)).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    let want_out: String = (0..200).map(|i| format!("out {i}\n")).collect();
    let want_err: String = (0..200).map(|i| format!("err {i}\n")).collect();
    assert_eq!(ran.out(), want_out);
    assert_eq!(ran.err(), want_err);
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn exit_codes_and_exceptions_are_results_not_errors() {
    let sandbox = sandbox(config("exit-codes")).await;
    let cases = [
        ("print('bye')\n", RunStatus::Ok, 0),
        ("import sys\nsys.exit(3)\n", RunStatus::Error, 3),
        (
            "def f():\n    raise ValueError('nope')\nf()\n",
            RunStatus::Error,
            1,
        ),
        (
            "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
            RunStatus::Error,
            143,
        ),
    ];
    let runs = cases
        .iter()
        .map(|(code, _, _)| run(&sandbox, program(code)));
    let results = futures_util::future::join_all(runs).await;
    for ((code, status, exit), ran) in cases.iter().zip(results) {
        assert_eq!(
            (ran.status(), ran.outcome.exit_code),
            (*status, Some(*exit)),
            "{code}: {ran:?}"
        );
    }
    let ran = run(
        &sandbox,
        program("def f():\n    raise ValueError('nope')\nf()\n"),
    )
    .await;
    let err = ran.err();
    assert!(
        err.starts_with("Traceback (most recent call last):\n"),
        "{err}"
    );
    assert!(
        err.contains("File \"/work/main.py\", line 3, in <module>")
            || err.contains("File \"main.py\", line 3"),
        "{err}"
    );
    assert!(err.ends_with("ValueError: nope\n"), "{err}");
    assert!(
        !err.contains("duet-runner"),
        "no runner frames in the traceback: {err}"
    );
}

#[tokio::test]
async fn the_program_runs_as_main_with_its_own_argv_and_modules() {
    let sandbox = sandbox(config("main")).await;
    let mut request = program(
        "import sys, helper\nif __name__ == '__main__':\n    print(sys.argv, helper.twice(21))\n",
    );
    request.files.insert(
        "helper.py".into(),
        "def twice(x):\n    return 2 * x\n".into(),
    );
    let ran = run(&sandbox, request).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "['main.py'] 42\n");
}

#[tokio::test]
async fn input_is_answered_while_the_program_runs() {
    let sandbox = sandbox(config("input")).await;
    let code = "name = input('name? ')\nprint('hello', name)\nage = input('age? ')\nprint('in ten years', int(age) + 10)\n";
    let mut request = program(code);
    request.stdin = Some(b"Ada\n".to_vec());
    request.keep_stdin_open = true;
    let started = Instant::now();
    let mut handle = sandbox.start(request).expect("queued");
    // Wait for the second prompt, then answer it through the handle.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("age? ") {
        match tokio::time::timeout(Duration::from_secs(10), handle.events.recv()).await {
            Ok(Some(RunEvent::Stdout(b))) => seen.extend(b),
            other => panic!("expected the prompt, got {other:?}"),
        }
    }
    handle
        .stdin
        .send(Stdin::Data(b"32\n".to_vec()))
        .await
        .expect("stdin open");
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    let all = format!("{}{}", String::from_utf8_lossy(&seen), ran.out());
    assert_eq!(all, "name? hello Ada\nage? in ten years 42\n");
}

#[tokio::test]
async fn closed_stdin_is_an_eof_for_input() {
    let sandbox = sandbox(config("stdin-eof")).await;
    let ran = run(
        &sandbox,
        program("try:\n    input()\nexcept EOFError:\n    print('eof')\n"),
    )
    .await;
    assert_eq!(
        (ran.status(), ran.out().as_str()),
        (RunStatus::Ok, "eof\n"),
        "{ran:?}"
    );
}

#[tokio::test]
async fn unicode_survives_both_ways() {
    let sandbox = sandbox(config("unicode")).await;
    let mut request = program("s = input()\nprint('héllo → 世界 🎉', s[::-1])\nimport sys\nprint('ошибка', file=sys.stderr)\n");
    request.stdin = Some("ñandú 🐦\n".as_bytes().to_vec());
    let ran = run(&sandbox, request).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "héllo → 世界 🎉 🐦 údnañ\n");
    assert_eq!(ran.err(), "ошибка\n");
}

#[tokio::test]
async fn output_arrives_while_the_program_still_runs() {
    let sandbox = sandbox(config("streaming")).await;
    // The program cannot end before the test answers, and the test answers only once it saw
    // the first line: that line streamed while the program ran.
    let mut request = program("print('first')\nprint('second', input())\n");
    request.keep_stdin_open = true;
    let started = Instant::now();
    let mut handle = sandbox.start(request).expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"first\n") {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected the first line, got {other:?}"),
        }
    }
    handle
        .stdin
        .send(Stdin::Data(b"line\n".to_vec()))
        .await
        .expect("stdin open");
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "second line\n");
}

#[tokio::test]
async fn cancel_kills_the_run_at_once() {
    let config = config("cancel");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let started = Instant::now();
    let mut handle = sandbox
        .start(program("import time\nprint('go')\ntime.sleep(60)\n"))
        .expect("queued");
    match handle.events.recv().await {
        Some(RunEvent::Stdout(b)) => assert!(b.starts_with(b"go"), "{b:?}"),
        other => panic!("expected output, got {other:?}"),
    }
    handle.cancel.cancel();
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::Cancelled, "{ran:?}");
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_full_queue_answers_busy() {
    let mut config = config("busy");
    config.concurrency = 1;
    config.queue = 1;
    let sandbox = sandbox(config).await;
    let sleeper = || program("import time\ntime.sleep(1)\n");
    let first = sandbox.start(sleeper()).expect("runs");
    let second = sandbox.start(sleeper()).expect("queued");
    match sandbox.start(sleeper()) {
        Err(SandboxError::Busy { running, queued }) => assert_eq!(running + queued, 2),
        Err(e) => panic!("expected busy, got {e}"),
        Ok(_) => panic!("expected busy, got a third run"),
    }
    let (a, b) = tokio::join!(
        collect(first.events, Instant::now()),
        collect(second.events, Instant::now())
    );
    assert_eq!((a.status(), b.status()), (RunStatus::Ok, RunStatus::Ok));
    assert!(
        sandbox.start(sleeper()).is_ok(),
        "room again once they finished"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_starts() {
    let sandbox = sandbox(config("invalid")).await;
    let mut bad_name = program("print(1)");
    bad_name.files.insert("../evil.py".into(), String::new());
    let mut missing_entry = program("print(1)");
    missing_entry.target = Target::Program {
        entry: "other.py".into(),
    };
    let mut no_files = program("print(1)");
    no_files.files.clear();
    for request in [bad_name, missing_entry, no_files] {
        assert!(matches!(
            sandbox.start(request),
            Err(SandboxError::Invalid(_))
        ));
    }
}

fn pytest_request(files: &[(&str, &str)], tests: &[&str]) -> duet_sandbox::RunRequest {
    let mut request = program("");
    request.files = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect::<BTreeMap<_, _>>();
    request.target = Target::Pytest {
        test_files: tests.iter().map(|t| t.to_string()).collect(),
    };
    request
}

const LRU: &str = "def evict(items):\n    return items[1:]\n";

#[tokio::test]
async fn pytest_reports_each_test() {
    let config = config("pytest");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let tests = r#"
import pytest
from main import evict

def test_keeps_the_newest():
    assert evict([1, 2, 3]) == [2, 3]

def test_eviction_order():
    assert evict([1, 2, 3]) == [1, 2]

@pytest.fixture
def cache():
    raise RuntimeError("cache server down")

def test_with_cache(cache):
    pass

def test_raises():
    {}["missing"]

@pytest.mark.skip(reason="later")
def test_later():
    pass
"#;
    let ran = run(
        &sandbox,
        pytest_request(
            &[("main.py", LRU), ("test_lru.py", tests)],
            &["test_lru.py"],
        ),
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    assert_eq!(ran.outcome.exit_code, Some(1));
    let report = ran.outcome.tests.clone().expect("a test report");
    let case = |name: &str, outcome: &str, message: Option<&str>| TestCase {
        name: format!("test_lru.py::{name}"),
        outcome: outcome.into(),
        message: message.map(str::to_string),
    };
    // pytest's own one-line crash message, with its diff lines when it has them.
    let mut cases = report.cases.clone();
    let diff = cases[1].message.take().unwrap_or_default();
    assert!(diff.starts_with("assert [2, 3] == [1, 2]\n"), "{diff}");
    assert_eq!(
        cases,
        vec![
            case("test_keeps_the_newest", "passed", None),
            case("test_eviction_order", "failed", None),
            case(
                "test_with_cache",
                "error",
                Some("RuntimeError: cache server down")
            ),
            case("test_raises", "failed", Some("KeyError: 'missing'")),
            case("test_later", "skipped", Some("later")),
        ]
    );
    assert_eq!(
        (report.passed, report.failed, report.errors, report.skipped),
        (1, 2, 1, 1)
    );
    assert!(
        ran.out().contains("2 failed, 1 passed, 1 skipped, 1 error"),
        "pytest's own output is shown: {}",
        ran.out()
    );
    assert!(
        !ran.out().contains("DUET-REPORT"),
        "the frame is not shown: {}",
        ran.out()
    );

    let ran = run(
        &sandbox,
        pytest_request(
            &[
                ("main.py", LRU),
                (
                    "test_ok.py",
                    "from main import evict\ndef test_a():\n    assert evict([1]) == []\n",
                ),
            ],
            &["test_ok.py"],
        ),
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.outcome.tests.map(|t| (t.passed, t.cases.len())),
        Some((1, 1))
    );

    let ran = run(
        &sandbox,
        pytest_request(&[("test_syntax.py", "def test_(:\n")], &["test_syntax.py"]),
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    let report = ran.outcome.tests.expect("a report for a collection error");
    assert_eq!(
        (report.errors, report.cases[0].name.as_str()),
        (1, "test_syntax.py")
    );
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_forged_test_report_is_ignored() {
    let sandbox = sandbox(config("forgery")).await;
    // The candidate's code prints a fake report (with a nonce it guessed), starts a daemon that
    // keeps sending fake reports into every socket it inherited, and tries to read the runner's
    // memory, environment and stdin for the nonce.
    let forger = r#"
import os, stat, sys, time
FAKE = '{"exit": 0, "tests": {"cases": [{"name": "test_x.py::test_truth", "outcome": "passed", "message": null}]}, "problem": null}'
def fake(nonce):
    return "\x1eDUET-REPORT " + nonce + " " + FAKE + "\n"

def peek():
    # The runner: the other process running duet-runner (pid 1 is docker-init; this one is
    # the pytest worker, forked from the runner before it read the nonce).
    runners = []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
        except OSError:
            continue
        if b"duet-runner" in cmdline and pid not in (1, os.getpid()):
            runners.append(pid)
    seen = ["runners=%d" % len(runners)]
    for part in ("mem", "environ", "fd/0", "maps"):
        try:
            with open("/proc/%d/%s" % (runners[0], part), "rb") as f:
                f.read(4096)
            seen.append(part + "=READ")
        except OSError:
            seen.append(part + "=denied")
    return " ".join(seen)

def evict(items):
    print("PEEK", peek(), file=sys.stderr)
    sys.stdout.write(fake("0" * 32))
    sys.stdout.flush()
    if os.fork() == 0:
        # A daemon that outlives the test, feeding fake reports into every socket it inherited
        # (the worker's report channel among them). It leaves pytest's capture files alone.
        os.setsid()
        while True:
            for fd in range(3, 64):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.write(fd, FAKE.encode() + b"\n")
                except OSError:
                    pass
            time.sleep(0.01)
    time.sleep(0.1)
    return items
"#;
    let tests = "from main import evict\ndef test_truth():\n    assert evict([1, 2]) == [2]\n";
    let ran = run(
        &sandbox,
        pytest_request(&[("main.py", forger), ("test_x.py", tests)], &["test_x.py"]),
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    let report = ran.outcome.tests.clone().expect("the real report");
    assert_eq!((report.passed, report.failed), (0, 1), "{report:?}");
    assert_eq!(report.cases[0].outcome, "failed");
    // The fakes are shown as ordinary output; the runner's process was closed to peeking.
    assert!(
        ran.out()
            .contains("DUET-REPORT 00000000000000000000000000000000"),
        "{}",
        ran.out()
    );
    let shown = ran.out();
    assert!(
        shown.contains("PEEK runners=1 mem=denied environ=denied fd/0=denied maps=denied"),
        "{shown}"
    );
}

#[tokio::test]
async fn stdin_given_at_start_ends_so_reading_all_of_it_returns() {
    let sandbox = sandbox(config("stdin-read")).await;
    let code = "import sys\ndata = sys.stdin.read()\nprint(len(data), data.split())\n";
    let mut request = program(code);
    request.stdin = Some(b"3 4\n5\n".to_vec());
    let handle = sandbox.start(request).expect("queued");
    // The handle's sender stays alive: the end of input comes from the request alone.
    let _stdin = handle.stdin;
    let ran = collect(handle.events, Instant::now()).await;
    assert_eq!(
        (ran.status(), ran.out().as_str()),
        (RunStatus::Ok, "6 ['3', '4', '5']\n"),
        "{ran:?}"
    );
}

#[tokio::test]
async fn stdin_kept_open_ends_when_the_handle_sends_eof() {
    let sandbox = sandbox(config("stdin-eof-msg")).await;
    let code = "import sys\nprint('ready', flush=True)\nprint(sys.stdin.read().split())\n";
    let mut request = program(code);
    request.stdin = Some(b"first\n".to_vec());
    request.keep_stdin_open = true;
    let mut handle = sandbox.start(request).expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"ready\n") {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected ready, got {other:?}"),
        }
    }
    handle
        .stdin
        .send(Stdin::Data(b"second\n".to_vec()))
        .await
        .expect("stdin open");
    handle.stdin.send(Stdin::Eof).await.expect("stdin open");
    // The sender is still held: Eof alone ended the input.
    let _stdin = handle.stdin;
    let ran = collect(handle.events, Instant::now()).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "['first', 'second']\n");
}

#[tokio::test]
async fn a_file_over_the_fsize_limit_is_refused_as_too_large_before_anything_starts() {
    let config = config("too-large");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let limit = program("").limits.fsize_bytes;
    let big = format!("x = 1\n{}", "#".repeat(limit as usize));
    let bytes = big.len() as u64;
    match sandbox.start(program(&big)) {
        Err(SandboxError::TooLarge {
            file: Some(file),
            bytes: b,
            limit: l,
        }) => assert_eq!((file.as_str(), b, l), ("main.py", bytes, limit)),
        Err(e) => panic!("expected TooLarge, got {e}"),
        Ok(_) => panic!("expected TooLarge, got a run"),
    }
    // Two files each within the fsize limit, together over the work dir.
    let mut both = program(&"#".repeat(limit as usize - 1));
    both.files
        .insert("b.py".into(), "#".repeat(limit as usize - 1));
    both.files
        .insert("c.py".into(), "#".repeat(limit as usize - 1));
    assert!(matches!(
        sandbox.start(both),
        Err(SandboxError::TooLarge { file: None, .. })
    ));
    assert_eq!(sandbox.health().running + sandbox.health().queued, 0);
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_program_claiming_to_be_the_runner_is_the_candidate_s_error_and_health_stays_ok() {
    let sandbox = sandbox(config("runner-forgery")).await;
    let code = "import sys\nsys.stderr.write('duet-runner: the engine is on fire\\x1b[2J\\r\\n')\nsys.exit(125)\n";
    let ran = run(&sandbox, program(code)).await;
    assert_eq!(
        (
            ran.status(),
            ran.outcome.exit_code,
            ran.outcome.detail.as_deref()
        ),
        (RunStatus::Error, Some(125), None),
        "{ran:?}"
    );
    assert!(ran.err().starts_with("duet-runner: "), "shown as it was");
    let health = sandbox.check_now().await;
    assert_eq!((health.status, health.detail), ("ok", None));
    // And one with a guessed nonce in a failure frame is ordinary output.
    let fake = "print('\\x1eDUET-REPORT ' + '0' * 32 + ' {\"exit\": 125, \"failure\": \"x\"}')\nraise SystemExit(125)\n";
    let ran = run(&sandbox, program(fake)).await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    assert!(ran.out().contains("DUET-REPORT"), "{}", ran.out());
    assert_eq!(sandbox.health().status, "ok");
}

#[tokio::test]
async fn lint_reports_pyflakes_and_pycodestyle_findings_in_every_file_without_running_them() {
    let config = config("lint");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let long = format!("x = '{}'\n", "y".repeat(100));
    let code = format!(
        "import os\nfrom shop.cart import total\n\n\ndef f():\n    return undefined_name\n\n\n{long}print('RAN', total([]))\n"
    );
    let mut request = program(&code);
    request.files.insert(
        "shop/cart.py".into(),
        "import sys\n\n\ndef total(items):\n    return sum(items) +\n".into(),
    );
    request.target = Target::Lint {
        files: vec!["main.py".into(), "shop/cart.py".into()],
    };
    let ran = run(&sandbox, request).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert!(
        !ran.out().contains("RAN"),
        "the file was not run: {}",
        ran.out()
    );
    let finding = |path: &str, line, col, code: &str, message: &str| LintFinding {
        path: path.into(),
        line,
        col,
        code: code.into(),
        message: message.into(),
    };
    let findings = ran.outcome.lint.expect("findings");
    assert_eq!(
        findings[..3],
        [
            finding("main.py", 1, 1, "F401", "'os' imported but unused"),
            finding("main.py", 6, 12, "F821", "undefined name 'undefined_name'"),
            finding(
                "main.py",
                9,
                101,
                "E501",
                "line too long (106 > 100 characters)"
            ),
        ]
    );
    // The module's syntax error is reported against the module, not main.py.
    let theirs: Vec<_> = findings[3..]
        .iter()
        .map(|f| (f.path.as_str(), f.line, f.code.as_str()))
        .collect();
    assert!(
        theirs.contains(&("shop/cart.py", 5, "E999")),
        "{findings:?}"
    );
    assert!(
        theirs.iter().all(|(path, ..)| *path == "shop/cart.py"),
        "{findings:?}"
    );
    let mut clean = program("print('clean')\n");
    clean.target = Target::Lint {
        files: vec!["main.py".into()],
    };
    let ran = run(&sandbox, clean).await;
    assert_eq!(
        (ran.status(), ran.outcome.lint),
        (RunStatus::Ok, Some(vec![])),
    );
    assert_no_containers(&instance).await;
}
