//! Several real `duet serve` processes on one PostgreSQL database behind a real HAProxy, all on
//! loopback (issue 23): [`Cluster`]. The database is one of its own on the test binary's shared
//! [`PgCluster`]; each node has its own port, data dir and log file, the same admin token, and
//! is told the URL other nodes reach it at (`DUET_NODE_URL`, `http://127.0.0.1:PORT`); the links
//! of new interviews point at the balancer (`DUET_PUBLIC_URL`). HAProxy (`haproxy -f FILE -db`)
//! balances round robin over the nodes, checks `GET /healthz` every 500 ms (two failures take a
//! node out, about 1 s after a kill and 3 s after a SIGSTOP), passes websockets through (`timeout
//! tunnel 1h`), and shows its view of the nodes on a stats page ([`Cluster::lb_status`]).
//!
//! Every process is stopped by its PID when the cluster is dropped, and a watchdog shell per
//! process SIGKILLs it once the test process is gone, however that ends. A missing HAProxy or
//! PostgreSQL fails the test with what to install; nothing is skipped.

use crate::{duet_bin, PATIENCE};
use duet_protocol::{CreatedInterview, InterviewId};
use duet_store::testing::PgCluster;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin token every node of a [`Cluster`] shares.
pub const CLUSTER_ADMIN_TOKEN: &str = "cluster-test-admin-token-0123456789";

/// How long a node may take to answer `/healthz` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`Cluster`] starts.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `duet serve` processes.
    pub nodes: usize,
    /// More `duet serve` flags for every node (after the harness's own: `--listen`,
    /// `--data-dir`, `--database-url`, `--questions-dir`, `--web-dir`). The harness turns the
    /// warm pool off through the environment (`DUET_SANDBOX_POOL=0`): `--sandbox-pool N` here
    /// overrides it. The nodes log at `DUET_LOG` (the test's own, else `info`).
    pub node_args: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 3,
            node_args: Vec::new(),
        }
    }
}

/// A process the harness started, with its watchdog.
struct Watched {
    child: Child,
}

impl Watched {
    /// Spawns `command` and a watchdog shell that SIGKILLs it once this test process is gone
    /// (it ends by itself once the process does). SIGCONT first, so a paused process dies too.
    fn spawn(command: &mut Command) -> Watched {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let script = "while kill -0 \"$1\" 2>/dev/null; do \
                          kill -0 \"$2\" 2>/dev/null || exit 0; sleep 0.5; \
                      done; kill -CONT \"$2\" 2>/dev/null; kill -9 \"$2\" 2>/dev/null; true";
        let mut watchdog = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the watchdog shell");
        // Reaped when it ends (when the process it watches does, or with the test process).
        std::thread::spawn(move || watchdog.wait());
        Watched { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {} failed", self.pid());
    }

    /// Whether it is still running (a paused process is).
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL (after SIGCONT, in case it is paused) and reap.
    fn kill(mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `duet serve` of the cluster.
struct Node {
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Watched>,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// PostgreSQL, N `duet serve` processes on one database, and HAProxy in front; see the module
/// documentation.
pub struct Cluster {
    pub admin_token: String,
    database_url: String,
    nodes: Vec<Node>,
    node_args: Vec<String>,
    lb_port: u16,
    stats_port: u16,
    lb: Option<Watched>,
    lb_log: PathBuf,
    /// Configs, logs and the nodes' data dirs.
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
}

/// HAProxy: `DUET_HAPROXY`, or `haproxy` on PATH or in /usr/sbin (Debian's package).
fn haproxy_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("DUET_HAPROXY") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "HAProxy is missing: the multi-node tests need a real load balancer. Install \
                 Debian's package (`apt-get install -y haproxy`; scripts/test does), or point \
                 DUET_HAPROXY at the binary"
            )
        })
}

/// The repository's root (for the question bank and the built browser app).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// HAProxy's configuration for nodes on loopback `ports`: the balancer on `lb_port`, its stats
/// page (CSV at `/stats;csv`) on `stats_port`.
pub fn haproxy_config(lb_port: u16, stats_port: u16, ports: &[u16]) -> String {
    let mut cfg = format!(
        "# Written by tests/src/cluster.rs (deploy/haproxy.cfg is the deployable one).
global
    log stderr format short local0 notice

defaults
    mode http
    log global
    option dontlognull
    option forwardfor
    # A request whose node refused the connection (killed, not yet marked down) goes to another.
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 15s
    # Websockets (the editor, events): idle up to an hour; Duet pings every 30 s.
    timeout tunnel 1h
    timeout client-fin 5s
    timeout check 1s

frontend duet
    bind 127.0.0.1:{lb_port}
    http-request del-header X-Duet-Proxied
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
"
    );
    for (i, port) in ports.iter().enumerate() {
        cfg.push_str(&format!("    server node{i} 127.0.0.1:{port} check\n"));
    }
    cfg.push_str(&format!(
        "
listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
    stats refresh 1s
"
    ));
    cfg
}

impl Cluster {
    /// Three nodes, PostgreSQL and HAProxy.
    pub async fn start(nodes: usize) -> Cluster {
        Cluster::start_with(ClusterConfig {
            nodes,
            ..ClusterConfig::default()
        })
        .await
    }

    /// Starts the database, the nodes (all at once: they take turns migrating the empty
    /// database) and the balancer, and returns once every node answers `/healthz` directly and
    /// HAProxy counts every node up.
    pub async fn start_with(config: ClusterConfig) -> Cluster {
        assert!(config.nodes > 0, "a cluster needs a node");
        let haproxy = haproxy_bin();
        let database_url = PgCluster::shared().database();
        let dir = tempfile::Builder::new()
            .prefix("duet-cluster-")
            .tempdir()
            .expect("create the cluster's folder");
        let nodes = (0..config.nodes)
            .map(|i| {
                let data_dir = dir.path().join(format!("node{i}"));
                std::fs::create_dir_all(&data_dir).expect("create a node's data dir");
                Node {
                    port: 0,
                    log: dir.path().join(format!("node{i}.log")),
                    data_dir,
                    process: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            admin_token: CLUSTER_ADMIN_TOKEN.into(),
            database_url,
            nodes,
            node_args: config.node_args,
            lb_port: free_port(),
            stats_port: free_port(),
            lb: None,
            lb_log: dir.path().join("haproxy.log"),
            dir,
        };
        // A free port can be taken again before the node binds it (other tests run beside
        // this one): a node that could not listen is started again on another.
        for i in 0..cluster.nodes.len() {
            cluster.nodes[i].port = free_port();
            cluster.spawn_node(i);
        }
        for i in 0..cluster.nodes.len() {
            let mut attempts = 0;
            while !cluster.wait_healthy(i).await {
                attempts += 1;
                assert!(
                    attempts < 5 && cluster.log(i).contains("in use"),
                    "node {i} did not start:\n{}",
                    cluster.log(i)
                );
                cluster.nodes[i].port = free_port();
                cluster.spawn_node(i);
            }
        }
        cluster.start_haproxy(&haproxy);
        let all_up = cluster
            .lb_sees(PATIENCE, |status| status.iter().all(|s| s == "UP"))
            .await;
        assert!(
            all_up,
            "HAProxy did not count every node up: {:?}\n{}",
            cluster.lb_status().await,
            cluster.lb_log()
        );
        cluster
    }

    fn spawn_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let root = repo_root();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open a node's log");
        let mut command = Command::new(duet_bin());
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", node.port))
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--questions-dir")
            .arg(root.join("questions"))
            .arg("--web-dir")
            .arg(root.join("web/dist"))
            .args(&self.node_args)
            .env("DUET_ADMIN_TOKEN", &self.admin_token)
            .env("DUET_NODE_URL", node.url())
            // Each node its own sandbox uids: they share this machine's Docker engine.
            .env("DUET_SANDBOX_UID_BASE", (10001 + 1000 * i).to_string())
            .env("DUET_PUBLIC_URL", self.lb_url())
            .env("DUET_SANDBOX_POOL", "0")
            .env(
                "DUET_LOG",
                std::env::var("DUET_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("clone a log file handle"))
            .stderr(log);
        self.nodes[i].process = Some(Watched::spawn(&mut command));
    }

    /// Waits until node `i` answers `/healthz` with 200; false if it exited first.
    async fn wait_healthy(&mut self, i: usize) -> bool {
        let client = http_client();
        let url = format!("{}/healthz", self.nodes[i].url());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.nodes[i].process.as_mut().is_some_and(Watched::running) {
                return false;
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == 200 {
                    return true;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not answer /healthz in {START_TIMEOUT:?}:\n{}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn start_haproxy(&mut self, haproxy: &Path) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        let cfg = self.dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(self.lb_port, self.stats_port, &ports))
            .expect("write haproxy.cfg");
        let check = Command::new(haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .expect("run haproxy -c");
        assert!(
            check.status.success(),
            "haproxy rejected its configuration: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let log = File::create(&self.lb_log).expect("create haproxy's log");
        let mut command = Command::new(haproxy);
        command
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdout(log.try_clone().expect("clone a log file handle"))
            .stderr(log);
        self.lb = Some(Watched::spawn(&mut command));
    }

    /// The balancer's base URL, `http://127.0.0.1:PORT`: what people's links point at.
    pub fn lb_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb_port)
    }

    /// A path through the balancer.
    pub fn http(&self, path: &str) -> String {
        format!("{}{path}", self.lb_url())
    }

    /// Node `i`'s own base URL, `http://127.0.0.1:PORT` (its `DUET_NODE_URL`).
    pub fn node_url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// A path on node `i`, past the balancer.
    pub fn node_http(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.node_url(i))
    }

    /// The editor's websocket for a token, through the balancer.
    pub fn yjs_url(&self, id: &InterviewId, token: &str) -> String {
        format!("ws://127.0.0.1:{}/yjs/{id}?token={token}", self.lb_port)
    }

    /// The editor's websocket for a token, on node `i` itself.
    pub fn node_yjs_url(&self, i: usize, id: &InterviewId, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/yjs/{id}?token={token}",
            self.nodes[i].port
        )
    }

    /// The events websocket for a token, through the balancer.
    pub fn events_url(&self, id: &InterviewId, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/api/interviews/{id}/events?token={token}",
            self.lb_port
        )
    }

    /// The events websocket for a token, on node `i` itself.
    pub fn node_events_url(&self, i: usize, id: &InterviewId, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/api/interviews/{id}/events?token={token}",
            self.nodes[i].port
        )
    }

    /// The database every node uses (`postgres://...`), for a test that looks at its rows.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.as_ref().map(Watched::pid)
    }

    /// Creates an interview through the balancer, as the admin.
    pub async fn create_interview(&self, candidate_name: &str) -> CreatedInterview {
        let response = http_client()
            .post(self.http("/api/interviews"))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"title": "Python pairing", "candidate_name": candidate_name}))
            .send()
            .await
            .expect("POST /api/interviews through the balancer");
        assert_eq!(response.status(), 201, "create an interview");
        response.json().await.expect("the created interview")
    }

    /// Node `i`'s output so far (its log), for a failure message.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// HAProxy's output so far.
    pub fn lb_log(&self) -> String {
        std::fs::read_to_string(&self.lb_log).unwrap_or_default()
    }

    /// SIGKILL node `i` (a crash: nothing is handed over) and reap it.
    pub fn kill(&mut self, i: usize) {
        let process = self.nodes[i]
            .process
            .take()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        process.kill();
    }

    /// SIGTERM node `i` (a graceful stop) and wait until it has exited.
    pub async fn stop(&mut self, i: usize) {
        let mut process = self.nodes[i]
            .process
            .take()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        process.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.running() {
            if Instant::now() >= deadline {
                let log = self.log(i);
                process.kill();
                panic!("node {i} did not exit within 30 s of SIGTERM:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGSTOP node `i`: it keeps its sockets and its lease but does nothing (a partition, or
    /// a long pause) until [`Cluster::resume`].
    pub fn pause(&self, i: usize) {
        self.process(i).signal("-STOP");
    }

    /// SIGCONT node `i` after [`Cluster::pause`].
    pub fn resume(&self, i: usize) {
        self.process(i).signal("-CONT");
    }

    fn process(&self, i: usize) -> &Watched {
        self.nodes[i]
            .process
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is not running"))
    }

    /// Starts node `i` again (after [`Cluster::kill`] or [`Cluster::stop`]; a running one is
    /// killed first) on its port and data dir, and waits until it answers `/healthz`. HAProxy
    /// counts it up again within about a second; [`Cluster::lb_sees`] waits for that.
    pub async fn restart(&mut self, i: usize) {
        if let Some(process) = self.nodes[i].process.take() {
            process.kill();
        }
        self.spawn_node(i);
        assert!(
            self.wait_healthy(i).await,
            "node {i} did not start again:\n{}",
            self.log(i)
        );
    }

    /// HAProxy's view of each node, in order: `UP`, `DOWN`, or a transition such as `UP 1/2`
    /// (one failed check of the two that take it down).
    pub async fn lb_status(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}/stats;csv", self.stats_port);
        let csv = match http_client().get(&url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => return Vec::new(),
        };
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(status)) = (col("pxname"), col("svname"), col("status"))
        else {
            return Vec::new();
        };
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        (0..self.nodes.len())
            .map(|i| {
                let name = format!("node{i}");
                rows.iter()
                    .find(|r| r.get(px) == Some(&"nodes") && r.get(sv) == Some(&name.as_str()))
                    .and_then(|r| r.get(status))
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Waits up to `timeout` until HAProxy's view of the nodes satisfies `cond`.
    pub async fn lb_sees(&self, timeout: Duration, cond: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.lb_status().await;
            if status.len() == self.nodes.len() && cond(&status) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed test shows what each process said (the folder goes with the cluster).
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                eprintln!("--- node {i} ({}) ---\n{}", self.node_url(i), self.log(i));
            }
            eprintln!("--- haproxy ---\n{}", self.lb_log());
        }
        if let Some(lb) = self.lb.take() {
            lb.kill();
        }
        for node in &mut self.nodes {
            if let Some(process) = node.process.take() {
                process.kill();
            }
        }
    }
}
