//! A real engine outage: a second Docker daemon that this test starts itself (its own socket,
//! data root, exec root, pid file and managed containerd; no bridge, no iptables), the sandbox
//! image loaded into it, killed in the middle of a run and started again. Restarting it cannot
//! touch the containers of other tests, which run on the machine's own engine.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{collect, config, containers_at, image, program, run, sandbox};
use duet_sandbox::{RunEvent, RunStatus, Sandbox};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dockerd of the test's own, killed (with its containerd and container shims) and its
/// directories removed when dropped, however the test ends.
struct TestDaemon {
    dir: PathBuf,
    dockerd: Option<Child>,
}

impl TestDaemon {
    fn start() -> TestDaemon {
        let found = Command::new("dockerd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "\n\nTHE ENGINE RESTART TEST NEEDS dockerd (run `bash scripts/ensure-docker.sh` as root)\n"
        );
        // Short: the containerd socket under the exec root must fit a unix socket path.
        let dir = PathBuf::from(format!("/tmp/duet-dd-{}", std::process::id()));
        let mut daemon = TestDaemon { dir, dockerd: None };
        daemon.cleanup();
        std::fs::create_dir_all(&daemon.dir).expect("daemon dir");
        daemon.spawn();
        daemon
    }

    fn socket(&self) -> String {
        self.dir.join("docker.sock").to_string_lossy().into_owned()
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket())
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .expect("daemon log");
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.dockerd = Some(child);
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the test's dockerd did not answer within 60 s; its log ends:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn answers(&self) -> bool {
        Command::new("docker")
            .args([
                "-H",
                &self.host(),
                "version",
                "--format",
                "{{.Server.Version}}",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `docker save IMAGE | docker -H <ours> load`.
    fn load_image(&self, image: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let stdout = save.stdout.take().expect("pipe");
        let load = Command::new("docker")
            .args(["-H", &self.host(), "load", "--quiet"])
            .stdin(stdout)
            .stdout(Stdio::null())
            .status()
            .expect("docker load");
        let saved = save.wait().expect("docker save");
        assert!(
            saved.success() && load.success(),
            "loading {image} into the test's dockerd"
        );
    }

    /// SIGKILL, like a crash (its containerd dies with it; the containers' shims live on).
    /// The pid files stay behind as after a crash; they are removed, because a dead process
    /// nobody reaped yet still "exists" for dockerd's check and would stop the restart.
    fn kill(&mut self) {
        if let Some(mut child) = self.dockerd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let containerd_pid = self.dir.join("exec/containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(&containerd_pid) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let _ = std::fs::remove_file(containerd_pid);
        let _ = std::fs::remove_file(self.dir.join("dockerd.pid"));
    }

    /// Every process started for this daemon: its containerd and container shims name its
    /// directory on their command lines.
    fn leftover_pids(&self) -> Vec<i32> {
        let me = self.dir.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&me))
            })
            .collect()
    }

    fn cleanup(&mut self) {
        if let Some(mut child) = self.dockerd.take() {
            // A graceful stop first: dockerd stops its containers and its containerd.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.leftover_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Lazily unmounts whatever is still mounted below `dir` (overlays, the shm of containers).
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what} after 30 s");
}

#[tokio::test]
async fn a_real_engine_restart_ends_the_run_degrades_health_and_runs_recover_with_nothing_left() {
    let mut daemon = TestDaemon::start();
    daemon.load_image(&image());
    let socket = daemon.socket();

    let mut cfg = config("engine-restart");
    cfg.socket = PathBuf::from(&socket);
    cfg.health_interval = Duration::from_millis(300);
    cfg.pool_size = 1;
    // Far beyond the 60 s `collect` waits: a run that ends has ended because of the outage.
    cfg.limits.wall = Duration::from_secs(180);
    let instance = cfg.instance.clone();
    let sandbox = sandbox(cfg).await;
    wait_for("a warm container", || sandbox.health().warm == 1).await;

    // A run is in flight when the engine dies.
    let started = Instant::now();
    let mut handle = sandbox
        .start(program("import time\nprint('up')\ntime.sleep(600)\n"))
        .expect("queued");
    let mut seen = Vec::new();
    while !seen.ends_with(b"up\n") {
        match handle.events.recv().await {
            Some(RunEvent::Stdout(b)) => seen.extend(b),
            other => panic!("expected output, got {other:?}"),
        }
    }
    daemon.kill();
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");

    // Health says so, and what to run.
    wait_for("degraded health", || sandbox.health().status == "degraded").await;
    let detail = sandbox.health().detail.unwrap_or_default();
    assert!(
        detail.contains(&socket) && detail.contains("bash scripts/ensure-docker.sh"),
        "{detail}"
    );
    let ran = run(&sandbox, program("print(1)\n")).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");

    // The engine comes back: health recovers, runs work, the pool refills and what the outage
    // left (the cut run's container, the warm one) is reaped.
    daemon.spawn();
    wait_for("health back to ok", || sandbox.health().status == "ok").await;
    let ran = run(&sandbox, program("print('back')\n")).await;
    assert_eq!(
        (ran.status(), ran.out().as_str()),
        (RunStatus::Ok, "back\n"),
        "{ran:?}"
    );
    let mut left = Vec::new();
    for _ in 0..300 {
        left = containers_at(&socket, &instance).await;
        if left.len() == 1 && sandbox.health().warm == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (left.len(), sandbox.health().warm),
        (1, 1),
        "only the new warm container is left: {left:?}"
    );
    sandbox.shutdown().await;
    let left = containers_at(&socket, &instance).await;
    assert!(
        left.is_empty(),
        "containers left in the test's engine: {left:?}"
    );
}
