//! A real SMTP server on loopback for the mail scenarios: aiosmtpd (from PyPI, installed by
//! scripts/test into .cache/smtp-venv), run by a small handler that keeps each message it
//! receives as JSON (envelope, headers, decoded text) in a folder the test reads.

use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::io::AsyncBufReadExt;

const HANDLER: &str = r#"
import email, email.policy, json, os, sys, threading
from aiosmtpd.controller import Controller
out, port = sys.argv[1], int(sys.argv[2])
class Keep:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "body": body.get_content() if body is not None else "",
        }
        Keep.count += 1
        tmp = os.path.join(out, ".incoming")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out, "%04d.json" % Keep.count))
        return "250 Message accepted"
controller = Controller(Keep(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// The Python that has aiosmtpd: $DUET_SMTP_PYTHON, else the venv scripts/test makes.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("DUET_SMTP_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.cache/smtp-venv/bin/python"
    ));
    assert!(
        venv.exists(),
        "{} is missing: the mail tests need aiosmtpd (`python3 -m venv .cache/smtp-venv && \
         .cache/smtp-venv/bin/pip install aiosmtpd`; scripts/test does this)",
        venv.display()
    );
    venv
}

/// aiosmtpd listening on a loopback port, killed on drop.
pub struct SmtpServer {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    /// Starts one on `addr` (a port chosen by the test) and waits until it listens.
    pub async fn start_on(addr: SocketAddr) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(python())
            .arg("-c")
            .arg(HANDLER)
            .arg(dir.path())
            .arg(addr.port().to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting aiosmtpd");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("aiosmtpd did not start within 20 s");
        assert_eq!(
            ready.unwrap().as_deref(),
            Some("ready"),
            "aiosmtpd failed to start"
        );
        SmtpServer {
            addr,
            dir,
            _child: child,
        }
    }

    /// Starts one on a free loopback port.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on(free_loopback_addr().await).await
    }

    /// `smtp://` URL for `--smtp-url` (no TLS: loopback only).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message received so far, in order: `{mail_from, rcpt_tos, from, to, subject, body}`.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to `secs` seconds) for at least `n` messages.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<serde_json::Value> {
        for _ in 0..secs * 20 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.messages()
    }
}

/// A loopback address with a port nobody listens on (yet).
pub async fn free_loopback_addr() -> SocketAddr {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    probe.local_addr().unwrap()
}
