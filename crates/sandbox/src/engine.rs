//! The connection to the Docker engine and its health: reconnects after the engine went away,
//! checks that each environment's image exists with the runner contract this code speaks
//! (reading the environment's facts from its labels), and says exactly what to run when
//! something is missing.

use crate::config::{EngineAddr, EnvironmentImage};
use crate::{Environment, EnvironmentPackage};
use bollard::{Docker, API_DEFAULT_VERSION};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// The runner protocol version; the image carries it as label `duet.sandbox.contract`.
pub const CONTRACT: &str = "5";
const CONTRACT_LABEL: &str = "duet.sandbox.contract";
/// The labels sandbox/build-image.sh and sandbox/Dockerfile write: the interpreter's version,
/// and every installed distribution as `name==version`, separated by spaces.
const PYTHON_LABEL: &str = "duet.environment.python";
const PACKAGES_LABEL: &str = "duet.environment.packages";
/// Bound on a health probe and on (re)connecting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// bollard's own per-request timeout, only a backstop: every call on a run's path has a
/// deadline of ours, and a run's wait for its container's exit may last its whole wall time
/// (`check_limits` refuses wall limits over [`crate::config::MAX_WALL`]).
const CLIENT_TIMEOUT_SECS: u64 = crate::config::MAX_WALL.as_secs() + 60;

/// The engine as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHealth {
    /// It answers and has at least one environment's image: it takes runs (in those).
    pub ok: bool,
    /// What is wrong and what to run, when anything is (the engine, or any image).
    pub detail: Option<String>,
    /// Per environment, in the config's order: its facts when the image is usable here, else
    /// what is wrong with it. Empty until the first check: a run then goes ahead (and fails
    /// as it would have, should its image be missing).
    pub environments: Vec<Result<Environment, String>>,
}

impl EngineHealth {
    /// Whether runs in environment number `index` can start here.
    pub fn has(&self, index: usize) -> bool {
        self.ok && matches!(self.environments.get(index), Some(Ok(_)))
    }
}

pub struct Engine {
    addr: EngineAddr,
    images: Vec<EnvironmentImage>,
    client: Mutex<Option<Docker>>,
    health: Mutex<EngineHealth>,
    /// Wakes the health loop early, after a run or the pool saw the engine fail.
    pub recheck: Notify,
}

impl Engine {
    pub fn new(addr: EngineAddr, images: Vec<EnvironmentImage>) -> Self {
        Engine {
            addr,
            health: Mutex::new(EngineHealth {
                ok: false,
                detail: Some("the Docker engine has not been checked yet".into()),
                environments: Vec::new(),
            }),
            images,
            client: Mutex::new(None),
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
            Ok(environments) => {
                let missing: Vec<&str> = environments
                    .iter()
                    .filter_map(|e| e.as_ref().err())
                    .map(String::as_str)
                    .collect();
                EngineHealth {
                    ok: missing.len() < environments.len(),
                    detail: (!missing.is_empty()).then(|| missing.join("; ")),
                    environments,
                }
            }
            Err(detail) => {
                *lock(&self.client) = None;
                EngineHealth {
                    ok: false,
                    environments: self.images.iter().map(|_| Err(detail.clone())).collect(),
                    detail: Some(detail),
                }
            }
        };
        let mut stored = lock(&self.health);
        if *stored != health {
            match &health.detail {
                None => tracing::info!(engine = %self.addr, "sandbox: Docker engine and images ok"),
                Some(d) => tracing::warn!("sandbox degraded: {d}"),
            }
        }
        *stored = health.clone();
        health
    }

    /// The engine answers: each image's facts or what is wrong with it. It does not: why.
    async fn probe(&self) -> Result<Vec<Result<Environment, String>>, String> {
        let docker = self.client().await?;
        docker
            .ping()
            .await
            .map_err(|e| self.unreachable(&e.to_string()))?;
        let mut environments = Vec::with_capacity(self.images.len());
        for wanted in &self.images {
            environments.push(self.image(&docker, wanted).await?);
        }
        Ok(environments)
    }

    /// One environment's image: its facts, or (inner `Err`) why it is unusable; the outer
    /// `Err` is the engine failing.
    async fn image(
        &self,
        docker: &Docker,
        wanted: &EnvironmentImage,
    ) -> Result<Result<Environment, String>, String> {
        let build = if wanted.name == "python" {
            "bash sandbox/build-image.sh".to_owned()
        } else {
            format!("bash sandbox/build-image.sh {}", wanted.name)
        };
        let image = match docker.inspect_image(&wanted.image).await {
            Ok(image) => image,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Ok(Err(format!(
                    "the sandbox image {image} (environment {name}) is missing on the engine at \
                     {addr}; build it with `{build}` (from Debian packages, no registry \
                     needed) or `docker build --target {name} -t {image} sandbox/` there, or \
                     copy it from an engine that has it: `docker save {image} | docker -H \
                     {addr} load`",
                    image = wanted.image,
                    name = wanted.name,
                    addr = self.addr,
                )))
            }
            Err(e) => return Err(self.unreachable(&e.to_string())),
        };
        let mut labels = image.config.and_then(|c| c.labels).unwrap_or_default();
        let contract = labels.remove(CONTRACT_LABEL);
        if contract.as_deref() != Some(CONTRACT) {
            return Ok(Err(format!(
                "the sandbox image {image} on the engine at {addr} carries runner contract \
                 {contract:?}, this server needs {CONTRACT:?}; rebuild it with `{build}`",
                image = wanted.image,
                addr = self.addr,
            )));
        }
        Ok(Ok(Environment {
            name: wanted.name.clone(),
            python: labels.remove(PYTHON_LABEL).unwrap_or_default(),
            packages: labels
                .get(PACKAGES_LABEL)
                .map(|l| parse_packages(l))
                .unwrap_or_default(),
        }))
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

/// `name==version` words; anything else is skipped (a label is the image builder's text).
fn parse_packages(label: &str) -> Vec<EnvironmentPackage> {
    label
        .split_whitespace()
        .filter_map(|word| word.split_once("=="))
        .filter(|(name, version)| !name.is_empty() && !version.is_empty())
        .map(|(name, version)| EnvironmentPackage {
            name: name.to_owned(),
            version: version.to_owned(),
        })
        .collect()
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{parse_packages, CONTRACT};

    #[test]
    fn the_packages_label_reads_as_names_and_versions_and_ignores_malformed_entries() {
        let read = parse_packages("numpy==1.24.2  pandas==1.5.3 junk ==1 x== scipy==1.10.1\n");
        let pairs: Vec<(&str, &str)> = read
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("numpy", "1.24.2"),
                ("pandas", "1.5.3"),
                ("scipy", "1.10.1")
            ]
        );
    }

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
