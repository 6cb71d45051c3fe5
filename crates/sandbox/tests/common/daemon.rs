//! A dockerd of a test's own: its own socket, data root, exec root, pid file and managed
//! containerd; no bridge, no iptables. Starting, killing and restarting it cannot touch the
//! containers of other tests, which run on the machine's own engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dockerd of the test's own, killed (with its containerd and container shims) and its
/// directories removed when dropped, however the test ends.
pub struct TestDaemon {
    dir: PathBuf,
    dockerd: Option<Child>,
    /// Where it also listens with TLS both ways, when started so.
    tls: Option<Tls>,
}

/// Docker's remote API on loopback TCP, TLS both ways: a CA of the test's own signed the
/// engine's certificate (for 127.0.0.1) and the client's.
pub struct Tls {
    pub port: u16,
    /// ca.pem, cert.pem, key.pem for the client (the layout of DOCKER_CERT_PATH).
    pub client: PathBuf,
    server: PathBuf,
}

impl TestDaemon {
    /// Starts one; `tag` tells apart the daemons of one test process (a letter or two: the
    /// containerd socket under the exec root must fit a unix socket path).
    pub fn start(tag: &str) -> TestDaemon {
        Self::start_with(tag, false)
    }

    /// Starts one that also serves the API on a loopback TCP port with TLS both ways.
    pub fn start_tls(tag: &str) -> TestDaemon {
        Self::start_with(tag, true)
    }

    fn start_with(tag: &str, tls: bool) -> TestDaemon {
        let found = Command::new("dockerd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "\n\nTHE ENGINE TESTS NEED dockerd (run `bash scripts/ensure-docker.sh` as root)\n"
        );
        // Short: the containerd socket under the exec root must fit a unix socket path.
        let dir = PathBuf::from(format!("/tmp/duet-dd-{}-{tag}", std::process::id()));
        let mut daemon = TestDaemon {
            dir,
            dockerd: None,
            tls: None,
        };
        daemon.cleanup();
        std::fs::create_dir_all(&daemon.dir).expect("daemon dir");
        if tls {
            daemon.tls = Some(make_certs(&daemon.dir));
        }
        daemon.spawn();
        daemon
    }

    pub fn socket(&self) -> String {
        self.dir.join("docker.sock").to_string_lossy().into_owned()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket())
    }

    /// The TLS listener, for a daemon started with [`TestDaemon::start_tls`].
    pub fn tls(&self) -> &Tls {
        self.tls.as_ref().expect("a daemon started with TLS")
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .expect("daemon log");
        let mut command = Command::new("dockerd");
        if let Some(tls) = &self.tls {
            command
                .arg("--host")
                .arg(format!("tcp://127.0.0.1:{}", tls.port))
                .arg("--tlsverify")
                .arg("--tlscacert")
                .arg(tls.server.join("ca.pem"))
                .arg("--tlscert")
                .arg(tls.server.join("cert.pem"))
                .arg("--tlskey")
                .arg(tls.server.join("key.pem"));
        }
        let child = command
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
    pub fn load_image(&self, image: &str) {
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
    pub fn kill(&mut self) {
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

    /// SIGSTOP: the engine stops answering without going away (its sockets stay open).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`TestDaemon::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.dockerd {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    fn cleanup(&mut self) {
        // A paused daemon would not act on TERM.
        self.resume();
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

/// A CA, the engine's certificate for 127.0.0.1 and a client certificate, in `dir/server`
/// and `dir/client`; a free loopback port.
fn make_certs(dir: &Path) -> Tls {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issue = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, to: &Path| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("certificate");
        std::fs::create_dir_all(to).expect("cert dir");
        std::fs::write(to.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
        std::fs::write(to.join("cert.pem"), cert.pem()).expect("cert.pem");
        std::fs::write(to.join("key.pem"), key.serialize_pem()).expect("key.pem");
    };
    let server = dir.join("server");
    let client = dir.join("client");
    issue(
        vec!["127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &server,
    );
    issue(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, &client);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    Tls {
        port,
        client,
        server,
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
