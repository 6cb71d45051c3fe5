//! What our own container spec takes away beyond Docker's defaults: socket families, io_uring,
//! ptrace (the seccomp profile in sandbox/seccomp.json), ptys, writes to /proc, and a host uid
//! shared between runs. Each is proven by the call failing inside the sandbox, never by
//! connecting anywhere.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{collect, config, hostile, program, sandbox};
use duet_sandbox::{RunEvent, RunStatus, Sandbox, Stdin};
use std::time::Instant;

#[tokio::test]
async fn socket_families_beyond_unix_inet_and_netlink_are_refused_by_our_profile() {
    // EPERM is our profile's answer. Docker's default profile lets these calls through to the
    // kernel, which either makes the socket or, on a machine without the family's module
    // (no vsock device), answers EAFNOSUPPORT: neither is EPERM.
    let code = r#"
import errno, socket
def make(name, family, kind, proto=0):
    try:
        socket.socket(family, kind, proto).close()
        print(name, "made")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
make("vsock", socket.AF_VSOCK, socket.SOCK_STREAM)
make("alg", 38, socket.SOCK_SEQPACKET)
make("unix", socket.AF_UNIX, socket.SOCK_STREAM)
make("inet", socket.AF_INET, socket.SOCK_STREAM)
make("inet6", socket.AF_INET6, socket.SOCK_DGRAM)
make("netlink", socket.AF_NETLINK, socket.SOCK_RAW)
a, b = socket.socketpair()
print("unix pair made")
try:
    socket.socketpair(socket.AF_INET)
except OSError as e:
    print("inet pair", errno.errorcode[e.errno])
"#;
    let ran = hostile("seccomp-sockets", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "vsock EPERM\nalg EPERM\nunix made\ninet made\ninet6 made\nnetlink made\n\
         unix pair made\ninet pair EPERM\n"
    );
}

#[tokio::test]
async fn io_uring_ptrace_and_process_vm_are_refused() {
    // 425 is io_uring_setup and 310 process_vm_readv on x86_64; pid 1 is docker-init, running
    // as the same uid (Docker's default profile lets a process attach to it).
    let code = r#"
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(*args)
    print(name, r, errno.errorcode.get(ctypes.get_errno()))
params = ctypes.create_string_buffer(120)
call("io_uring_setup", 425, 4, params)
call("ptrace_attach_init", 101, 16, 1, 0, 0)
call("ptrace_traceme", 101, 0, 0, 0, 0)
local = ctypes.create_string_buffer(8)
call("process_vm_readv", 310, 1, 0, 0, 0, 0, 0)
"#;
    let ran = hostile("seccomp-calls", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "io_uring_setup -1 EPERM\nptrace_attach_init -1 EPERM\nptrace_traceme -1 EPERM\n\
         process_vm_readv -1 EPERM\n"
    );
}

#[tokio::test]
async fn no_pty_can_be_opened() {
    let code = r#"
import os
for name, call in [("openpty", os.openpty), ("ptmx", lambda: os.open("/dev/ptmx", os.O_RDWR)),
                   ("pts/ptmx", lambda: os.open("/dev/pts/ptmx", os.O_RDWR))]:
    try:
        call()
        print(name, "OPENED")
    except OSError:
        print(name, "refused")
print(os.listdir("/dev/pts"))
"#;
    let ran = hostile("no-pty", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "openpty refused\nptmx refused\npts/ptmx refused\n[]\n"
    );
}

#[tokio::test]
async fn the_program_cannot_lower_its_oom_score_adj() {
    // The kernel lets an unprivileged process lower its own oom_score_adj down to 0; /proc is
    // read-only in the sandbox, so it stays at the 500 the server set.
    let code = r#"
import os
print(open("/proc/self/oom_score_adj").read().strip())
for path, value in [("/proc/self/oom_score_adj", "0"), ("/proc/self/oom_adj", "0")]:
    try:
        with open(path, "w") as f:
            f.write(value)
        print(path, "WRITTEN")
    except OSError as e:
        print(path, "refused")
print(open("/proc/self/oom_score_adj").read().strip())
"#;
    let ran = hostile("oom-score", code).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(
        ran.out(),
        "500\n/proc/self/oom_score_adj refused\n/proc/self/oom_adj refused\n500\n"
    );
}

#[tokio::test]
async fn a_run_holding_all_its_inotify_instances_leaves_another_run_its_own() {
    let config = config("inotify");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;
    // The hog takes inotify instances until the kernel's per-user limit refuses one, then
    // holds them until the test says so.
    let hog = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while True:
    fd = libc.inotify_init()
    if fd < 0:
        break
    fds.append(fd)
print("holding", len(fds) > 0, "errno", ctypes.get_errno(), flush=True)
sys.stdin.read()
"#;
    let mut request = program(hog);
    request.keep_stdin_open = true;
    let mut hog = sandbox.start(request).expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"\n") {
        match hog.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected the hog's report, got {other:?}"),
        }
    }
    // EMFILE (24): here the per-user fs.inotify.max_user_instances (128), below the 256 open
    // files a run may have. On today's tree every run shared one host uid, and this starved
    // the run below.
    assert_eq!(String::from_utf8_lossy(&seen), "holding True errno 24\n");

    let other = common::run(
        &sandbox,
        program("import ctypes\nprint(ctypes.CDLL(None).inotify_init() >= 0)\n"),
    )
    .await;
    assert_eq!(
        (other.status(), other.out().as_str()),
        (RunStatus::Ok, "True\n"),
        "{other:?}"
    );

    hog.stdin.send(Stdin::Eof).await.expect("stdin open");
    let hog = collect(hog.events, Instant::now()).await;
    assert_eq!(hog.status(), RunStatus::Ok, "{hog:?}");
    sandbox.shutdown().await;
    common::assert_no_containers(&instance).await;
}
