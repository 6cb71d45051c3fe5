//! The connection to the Docker engine and its health: reconnects after the engine went away,
//! checks that the image exists with the runner contract this code speaks, and says exactly
//! what to run when something is missing.

use crate::config::EngineAddr;
use bollard::{Docker, API_DEFAULT_VERSION};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// The runner protocol version; the image carries it as label `duet.sandbox.contract`.
pub const CONTRACT: &str = "4";
const CONTRACT_LABEL: &str = "duet.sandbox.contract";
/// Bound on a health probe and on (re)connecting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// bollard's own per-request timeout, only a backstop: every call on a run's path has a
/// deadline of ours, and a run's wait for its container's exit may last its whole wall time
/// (`check_limits` refuses wall limits over [`crate::config::MAX_WALL`]).
const CLIENT_TIMEOUT_SECS: u64 = crate::config::MAX_WALL.as_secs() + 60;

/// The engine as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHealth {
    pub ok: bool,
    /// What is wrong and what to run, when not ok.
    pub detail: Option<String>,
}

pub struct Engine {
    addr: EngineAddr,
    image: String,
    client: Mutex<Option<Docker>>,
    health: Mutex<EngineHealth>,
    /// Wakes the health loop early, after a run or the pool saw the engine fail.
    pub recheck: Notify,
}

impl Engine {
    pub fn new(addr: EngineAddr, image: String) -> Self {
        Engine {
            addr,
            image,
            client: Mutex::new(None),
            health: Mutex::new(EngineHealth {
                ok: false,
                detail: Some("the Docker engine has not been checked yet".into()),
            }),
            recheck: Notify::new(),
        }
    }

    /// A client speaking an API version the engine supports; connects if needed.
    pub async fn client(&self) -> Result<Docker, String> {
        if let Some(c) = lock(&self.client).clone() {
            return Ok(c);
        }
        let docker = match &self.addr {
            EngineAddr::Unix(path) => Docker::connect_with_socket(
                &path.to_string_lossy(),
                CLIENT_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
            EngineAddr::Tls { addr, certs } => Docker::connect_with_ssl(
                addr,
                &certs.join("key.pem"),
                &certs.join("cert.pem"),
                &certs.join("ca.pem"),
                CLIENT_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| self.unreachable(&e.to_string()))?;
        // bollard speaks a newer API than older engines accept (20.10 stops at 1.41).
        let docker = tokio::time::timeout(PROBE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| self.unreachable("no answer within 3 s"))?
            .map_err(|e| self.unreachable(&e.to_string()))?;
        *lock(&self.client) = Some(docker.clone());
        Ok(docker)
    }

    /// After an engine failure: reconnect next time, and check health now.
    pub fn failed(&self) {
        *lock(&self.client) = None;
        self.recheck.notify_one();
    }

    pub fn health(&self) -> EngineHealth {
        lock(&self.health).clone()
    }

    /// Probes the engine and the image; stores and returns the result.
    pub async fn check(&self) -> EngineHealth {
        let result = match tokio::time::timeout(PROBE_TIMEOUT * 2, self.probe()).await {
            Ok(r) => r,
            Err(_) => Err(self.unreachable("no answer within 6 s")),
        };
        let health = match result {
            Ok(()) => EngineHealth {
                ok: true,
                detail: None,
            },
            Err(detail) => {
                *lock(&self.client) = None;
                EngineHealth {
                    ok: false,
                    detail: Some(detail),
                }
            }
        };
        let mut stored = lock(&self.health);
        if *stored != health {
            match &health.detail {
                None => tracing::info!(image = %self.image, "sandbox: Docker engine and image ok"),
                Some(d) => tracing::warn!("sandbox degraded: {d}"),
            }
        }
        *stored = health.clone();
        health
    }

    async fn probe(&self) -> Result<(), String> {
        let docker = self.client().await?;
        docker
            .ping()
            .await
            .map_err(|e| self.unreachable(&e.to_string()))?;
        let image = match docker.inspect_image(&self.image).await {
            Ok(image) => image,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(format!(
                    "the sandbox image {image} is missing on the engine at {addr}; build it with \
                     `bash sandbox/build-image.sh` (from Debian packages, no registry needed) or \
                     `docker build -t {image} sandbox/` there, or copy it from an engine that has \
                     it: `docker save {image} | docker -H {addr} load`",
                    image = self.image,
                    addr = self.addr,
                ))
            }
            Err(e) => return Err(self.unreachable(&e.to_string())),
        };
        let contract = image
            .config
            .and_then(|c| c.labels)
            .and_then(|mut l| l.remove(CONTRACT_LABEL));
        if contract.as_deref() != Some(CONTRACT) {
            return Err(format!(
                "the sandbox image {image} on the engine at {addr} carries runner contract \
                 {contract:?}, this server needs {CONTRACT:?}; rebuild it with \
                 `bash sandbox/build-image.sh`",
                image = self.image,
                addr = self.addr,
            ));
        }
        Ok(())
    }

    /// Where this engine answers, as the operator wrote it.
    pub fn addr(&self) -> &EngineAddr {
        &self.addr
    }

    fn unreachable(&self, why: &str) -> String {
        match &self.addr {
            EngineAddr::Unix(path) => format!(
                "the Docker engine does not answer at {} ({why}); start it with \
                 `bash scripts/ensure-docker.sh` (installs docker.io if missing, starts dockerd, \
                 builds the sandbox image)",
                path.display()
            ),
            EngineAddr::Tls { addr, certs } => format!(
                "the Docker engine does not answer at tcp://{addr} ({why}); on that host, check \
                 `systemctl status docker` (dockerd must listen with --tlsverify on {addr}), and \
                 from here `docker --tlsverify -H tcp://{addr} --tlscacert {ca} --tlscert {cert} \
                 --tlskey {key} info`",
                ca = certs.join("ca.pem").display(),
                cert = certs.join("cert.pem").display(),
                key = certs.join("key.pem").display(),
            ),
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::CONTRACT;

    #[test]
    fn both_image_builds_carry_this_runner_contract() {
        let script = include_str!("../../../sandbox/build-image.sh");
        assert!(
            script.lines().any(|l| l == format!("CONTRACT={CONTRACT}")),
            "sandbox/build-image.sh must build contract {CONTRACT}"
        );
        let dockerfile = include_str!("../../../sandbox/Dockerfile");
        assert!(
            dockerfile.contains(&format!("LABEL duet.sandbox.contract=\"{CONTRACT}\"")),
            "sandbox/Dockerfile must label contract {CONTRACT}"
        );
    }
}
