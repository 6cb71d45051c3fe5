//! Hostile programs against the real engine and image, one test each. Every test also checks
//! (in `common::hostile`) that a normal run started beside it succeeds promptly and that no
//! container is left behind.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{hostile, hostile_with, program, run, sandbox};
use duet_sandbox::{RunStatus, Sandbox};
use std::time::Duration;

#[tokio::test]
async fn infinite_loop_times_out() {
    let ran = hostile("infinite-loop", "while True:\n    pass\n").await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    let detail = ran.outcome.detail.as_deref();
    assert_eq!(detail, Some("stopped after 4 s of wall time"), "{ran:?}");
}

#[tokio::test]
async fn sleeping_forever_times_out() {
    let ran = hostile(
        "sleep-forever",
        "import time\nprint('zzz')\ntime.sleep(10**6)\n",
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(ran.out(), "zzz\n");
}

#[tokio::test]
async fn fork_loop_is_contained() {
    let code =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let ran = hostile("fork-loop", code).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
}

#[tokio::test]
async fn thread_bomb_is_contained() {
    let code = "import threading, time\nwhile True:\n    \
                threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n";
    let ran = hostile("thread-bomb", code).await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    assert!(
        ran.err().contains("can't start new thread"),
        "{}",
        ran.err()
    );
}

#[tokio::test]
async fn allocating_2_gib_hits_the_memory_limit() {
    let ran = hostile(
        "allocate-2g",
        "b = bytearray(2 << 30)\nprint('allocated')\n",
    )
    .await;
    assert_eq!(ran.status(), RunStatus::MemoryLimit, "{ran:?}");
    assert_eq!(ran.out(), "");
    let detail = ran.outcome.detail.as_deref();
    assert_eq!(
        detail,
        Some("stopped at the memory limit of 256 MiB"),
        "{ran:?}"
    );
}

#[tokio::test]
async fn writing_1_gib_to_the_work_dir_fails() {
    // One big file meets the fsize ulimit; many smaller ones fill the tmpfs.
    let code = r#"
chunk = b"x" * (1 << 20)
try:
    with open("/work/big", "wb") as f:
        for _ in range(1024):
            f.write(chunk)
except OSError as e:
    print("one file:", e.strerror)
import os
os.remove("/work/big")
for i in range(128):
    with open("/work/part%d" % i, "wb") as f:
        for _ in range(8):
            f.write(chunk)
"#;
    let ran = hostile("write-1g", code).await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    assert_eq!(ran.out(), "one file: File too large\n");
    assert!(
        ran.err().contains("No space left on device"),
        "{}",
        ran.err()
    );
}

#[tokio::test]
async fn printing_forever_hits_the_output_cap() {
    let ran = hostile("print-forever", "while True:\n    print('spam ' * 20)\n").await;
    assert_eq!(ran.status(), RunStatus::OutputLimit, "{ran:?}");
    assert_eq!(
        ran.stdout.len() + ran.stderr.len(),
        1 << 20,
        "exactly the cap is kept"
    );
}

#[tokio::test]
async fn one_giant_line_hits_the_output_cap() {
    let ran = hostile(
        "giant-line",
        "import sys\nsys.stdout.write('x' * (64 << 20))\n",
    )
    .await;
    assert_eq!(ran.status(), RunStatus::OutputLimit, "{:?}", ran.outcome);
    assert_eq!(ran.stdout.len(), 1 << 20, "exactly the cap is kept");
    assert!(ran.stdout.iter().all(|&b| b == b'x'));
}

#[tokio::test]
async fn shadow_and_the_docker_socket_are_out_of_reach() {
    let code = r#"
for path in ["/etc/shadow", "/var/run/docker.sock", "/run/docker.sock"]:
    try:
        open(path, "rb").read(1)
        print(path, "READ")
    except PermissionError:
        print(path, "denied")
    except FileNotFoundError:
        print(path, "missing")
"#;
    let ran = hostile("secrets", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "/etc/shadow denied\n/var/run/docker.sock missing\n/run/docker.sock missing\n"
    );
}

#[tokio::test]
async fn setuid_0_is_refused() {
    let code = r#"
import os
print("uid", os.getuid() == os.geteuid() >= 10001, "gid", os.getgid())
for name, call in [("setuid", lambda: os.setuid(0)), ("seteuid", lambda: os.seteuid(0)),
                   ("setgid", lambda: os.setgid(0))]:
    try:
        call()
        print(name, "WORKED")
    except PermissionError:
        print(name, "refused")
caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "NoNewPrivs"))]
print("".join(caps), end="")
"#;
    let ran = hostile("setuid", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    let out = ran.out();
    assert!(
        out.starts_with("uid True gid 10001\nsetuid refused\nseteuid refused\nsetgid refused\n"),
        "{out}"
    );
    assert!(out.contains("CapPrm:\t0000000000000000"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[tokio::test]
async fn raising_its_own_ulimits_is_refused() {
    let code = r#"
import resource
for name in ["RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_FSIZE"]:
    which = getattr(resource, name)
    soft, hard = resource.getrlimit(which)
    try:
        resource.setrlimit(which, (hard + 1, hard + 1))
        print(name, hard, "RAISED")
    except (ValueError, OSError):
        print(name, hard, "refused")
"#;
    let ran = hostile("ulimits", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "RLIMIT_NOFILE 256 refused\nRLIMIT_CPU 15 refused\nRLIMIT_FSIZE 16777216 refused\n"
    );
}

#[tokio::test]
async fn a_daemon_does_not_outlive_the_program() {
    let code = r#"
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            print("daemon still here", flush=True)
            time.sleep(0.1)
    os._exit(0)
print("main done")
"#;
    let ran = hostile("daemon", code).await;
    // Ok, not a timeout: the run ended with its main program, the daemon did not keep it.
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert!(ran.out().contains("main done"), "{}", ran.out());
}

#[tokio::test]
async fn the_network_is_loopback_only_and_names_do_not_resolve() {
    // Never dials anything: lists interfaces, and asks the resolver.
    let code = r#"
import os, socket
print(sorted(os.listdir("/sys/class/net")))
print(sorted(name for _, name in socket.if_nameindex()))
try:
    socket.getaddrinfo("pypi.org", 443)
    print("resolved")
except socket.gaierror:
    print("no resolution")
"#;
    let ran = hostile("network", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "['lo']\n['lo']\nno resolution\n");
}

#[tokio::test]
async fn the_root_filesystem_is_read_only_and_the_work_dir_noexec() {
    let code = r##"
import os
for path in ["/evil", "/usr/local/bin/duet-runner", "/etc/passwd"]:
    try:
        open(path, "a").write("x")
        print(path, "WRITTEN")
    except OSError as e:
        print(path, "refused")
with open("/work/x.sh", "w") as f:
    f.write("#!/bin/sh\necho ran\n")
os.chmod("/work/x.sh", 0o755)
try:
    os.execv("/work/x.sh", ["/work/x.sh"])
except PermissionError:
    print("noexec")
"##;
    let ran = hostile("read-only", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "/evil refused\n/usr/local/bin/duet-runner refused\n/etc/passwd refused\nnoexec\n"
    );
}

#[tokio::test]
async fn two_runs_cannot_see_each_other() {
    let config = common::config("two-runs");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    let writer = r#"
import time
open("/work/secret_a", "w").write("a")
open("/tmp/secret_a", "w").write("a")
print("written", flush=True)
time.sleep(2)
"#;
    let reader = r#"
import os
print(sorted(os.listdir("/work")), sorted(os.listdir("/tmp")))
procs = [p for p in os.listdir("/proc") if p.isdigit()]
cmds = [open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode() for p in procs]
print(any("secret" in c or "time.sleep" in c for c in cmds), len(procs))
"#;
    let a = run(&sandbox, program(writer));
    let b = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        run(&sandbox, program(reader)).await
    };
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.status(), RunStatus::Ok, "{a:?}");
    assert_eq!(b.status(), RunStatus::Ok, "{b:?}");
    let out = b.out();
    assert!(out.starts_with("['main.py'] []\nFalse "), "{out}");
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
    assert_eq!(sandbox.health().running, 0);
}

#[tokio::test]
async fn a_hostile_pytest_file_is_contained_too() {
    let mut request = program("");
    request.files = [(
        "test_bomb.py".to_string(),
        "def test_spin():\n    while True:\n        pass\n".to_string(),
    )]
    .into_iter()
    .collect();
    request.target = duet_sandbox::Target::Pytest {
        test_files: vec!["test_bomb.py".into()],
    };
    let ran = hostile_with("pytest-spin", request).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
}

/// Whether the instance's one container has exited (its program ended) but is not yet removed.
async fn exited(instance: &str) -> bool {
    let docker =
        bollard::Docker::connect_with_socket(common::SOCKET, 30, bollard::API_DEFAULT_VERSION)
            .expect("docker client")
            .negotiate_version()
            .await
            .expect("docker answers");
    let filters = std::collections::HashMap::from([
        (
            "label".to_string(),
            vec![format!("{}={instance}", duet_sandbox::INSTANCE_LABEL)],
        ),
        ("status".to_string(), vec!["exited".to_string()]),
    ]);
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    !docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .is_empty()
}

#[tokio::test]
async fn a_flood_written_a_byte_at_a_time_never_waits_for_a_consumer_that_is_behind() {
    // 3 MiB of NUL then 0xFF bytes, one write(2) each, under a 3 MiB cap: more than the engine
    // buffers. Nobody reads the run's events until the program has ended: it must end all the
    // same (the sandbox reads ahead), and the consumer then gets every byte in few events, then
    // the end.
    const N: usize = 3 << 20;
    let code = format!(
        "import os\nfor b in (b'\\0', b'\\xff'):\n    for _ in range({}):\n        os.write(1, b)\n",
        N / 2
    );
    let mut config = common::config("flood-unread");
    config.limits.wall = Duration::from_secs(60);
    config.limits.output_bytes = N;
    let instance = config.instance.clone();
    let mut request = program(&code);
    request.limits = config.limits.clone();
    let sandbox = sandbox(config).await;
    let started = std::time::Instant::now();
    let handle = sandbox.start(request).expect("queued");
    let mut ended = false;
    while !ended && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ended = exited(&instance).await;
    }
    assert!(
        ended,
        "the program was still blocked on its output after 30 s: the sandbox waited for a \
         consumer that was behind"
    );
    let ran = common::collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{:?}", ran.outcome);
    let mut expected = vec![0u8; N / 2];
    expected.resize(N, 0xff);
    assert!(ran.stdout == expected, "every byte, in order");
    // The event channel's 256 places, taken while nobody read, then merged events: each holds
    // nearly 32 KiB or more (the engine's chunks of up to 32 KiB merged up to 64 KiB) but the
    // last.
    assert!(
        ran.chunks.len() <= 256 + N / (30 << 10) + 1,
        "{} events for 3 MiB: the output was not merged while the consumer was behind",
        ran.chunks.len()
    );
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
}
