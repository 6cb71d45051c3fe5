//! For tests only (the `testing` feature): a real PostgreSQL server on loopback, started from
//! Debian's `postgresql` package. [`PgCluster::shared`] initdb's one throwaway cluster per test
//! binary, the first time a test asks, and each test takes a database of its own from it
//! ([`PgCluster::database`]); a test that stops and starts the server has a cluster of its own
//! ([`PgCluster::start`]). A missing PostgreSQL fails the test with what to install: nothing is
//! skipped.
//!
//! The server runs as the `postgres` user when the tests run as root (initdb and postgres
//! refuse root), listens on 127.0.0.1 only, on a free port, with its socket in its own folder.
//! A small watchdog shell stops it (and removes the shared cluster's folder) once the test
//! process is gone, however that process ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A PostgreSQL server the tests started.
pub struct PgCluster {
    /// The data folder (and the socket's): removed on drop, or by the watchdog for the shared one.
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    owned: bool,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The folder with `initdb` and `postgres`: `DUET_PG_BIN`, or the newest under
/// /usr/lib/postgresql (Debian's layout).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUET_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is missing: these tests need a real server. Install Debian's package \
             (`apt-get install -y postgresql`; scripts/test does), or point DUET_PG_BIN at the \
             folder holding initdb and postgres"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `program` from the PostgreSQL folder, as the `postgres` user when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--reset-env",
        ]);
        c.arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
}

impl PgCluster {
    /// The test binary's cluster, started on first use and stopped when the binary exits.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| PgCluster::init(false))
    }

    /// A cluster of the test's own, stopped and removed on drop.
    pub fn start() -> PgCluster {
        PgCluster::init(true)
    }

    fn init(owned: bool) -> PgCluster {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "duet-pg-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's folder");
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", dir.display());
        }
        let data = dir.join("data");
        let out = pg_command(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = PgCluster {
            dir,
            port: free_port(),
            bin,
            owned,
        };
        cluster.run();
        cluster
    }

    /// Starts the server (again) on its folder and port, and waits until it answers.
    pub fn run(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("postgres.log");
        let mut postgres = pg_command(&self.bin, "postgres");
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ]);
        // The watchdog: the server in the background; once the test process is gone, a fast
        // shutdown (and, for the shared cluster, its folder removed).
        let script = format!(
            "{} >>\"$3\" 2>&1 & pg=$!; \
             while kill -0 \"$1\" 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
             kill -INT $pg 2>/dev/null; wait $pg; [ \"$4\" = remove ] && rm -rf \"$2\"; true",
            shell_line(&postgres)
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .arg(&log)
            .arg(if self.owned { "keep" } else { "remove" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        // Reaped when it ends (when the server stops, or with the test process).
        std::thread::spawn(move || watchdog.wait());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start in 30 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (a fast shutdown: sessions are ended, nothing committed is lost) and
    /// waits until it is gone.
    pub fn stop(&self) {
        let pidfile = self.dir.join("data").join("postmaster.pid");
        let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
        else {
            return;
        };
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the maintenance database (`postgres`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database of the test's own: its URL.
    pub fn database(&self) -> String {
        self.database_in("pg_default")
    }

    /// A new, empty database whose tables go to `tablespace`.
    pub fn database_in(&self, tablespace: &str) -> String {
        let name = format!("duet_test_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name} TABLESPACE {tablespace}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL with `psql` on the maintenance database (or `database`, given as a URL), and
    /// returns what it printed (unaligned, tuples only).
    pub fn psql_on(&self, url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn psql(&self, sql: &str) -> String {
        self.psql_on(&self.admin_url(), sql)
    }
}

/// A command as one line for `sh`, each part single-quoted.
fn shell_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| format!("'{}'", part.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
