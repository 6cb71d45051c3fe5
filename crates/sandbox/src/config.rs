//! The Docker sandbox's settings; the server maps its flags onto [`DockerConfig`].

use crate::{Limits, SandboxError};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a Docker engine answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineAddr {
    /// A unix socket on this machine.
    Unix(PathBuf),
    /// Docker's remote API over TCP with TLS both ways, as `dockerd --tlsverify` serves it:
    /// `certs` holds `ca.pem` (the CA the engine's certificate is checked against), `cert.pem`
    /// and `key.pem` (this server's client certificate), the layout of `DOCKER_CERT_PATH`.
    Tls { addr: String, certs: PathBuf },
}

impl EngineAddr {
    /// `unix:///path`, a bare `/path`, or `tcp://host:port` (which needs `certs`: plain TCP
    /// would hand root on the engine's host to anyone on the network, so it is refused).
    pub fn parse(spec: &str, certs: Option<&Path>) -> Result<Self, SandboxError> {
        let bad = |why: &str| {
            Err(SandboxError::Invalid(format!(
                "sandbox engine {spec:?}: {why}"
            )))
        };
        if let Some(path) = spec.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return bad("a unix socket needs an absolute path (unix:///var/run/docker.sock)");
            }
            return Ok(EngineAddr::Unix(PathBuf::from(path)));
        }
        if spec.starts_with('/') {
            return Ok(EngineAddr::Unix(PathBuf::from(spec)));
        }
        if let Some(addr) = spec.strip_prefix("tcp://") {
            let host_port = addr.trim_end_matches('/');
            let port_ok = host_port
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok || host_port.contains('/') {
                return bad("expected tcp://HOST:PORT");
            }
            let Some(certs) = certs else {
                return bad(
                    "a TCP engine needs TLS client certificates: pass --sandbox-engine-certs DIR                      (ca.pem, cert.pem, key.pem, as DOCKER_CERT_PATH holds them)",
                );
            };
            return Ok(EngineAddr::Tls {
                addr: host_port.to_owned(),
                certs: certs.to_owned(),
            });
        }
        bad("expected unix:///PATH or tcp://HOST:PORT")
    }
}

impl fmt::Display for EngineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            EngineAddr::Tls { addr, .. } => write!(f, "tcp://{addr}"),
        }
    }
}

/// One environment: a name runs ask for and the image their containers are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentImage {
    /// `python`, `python-data`: 1 to 40 of `a-z0-9-`.
    pub name: String,
    /// The image (sandbox/README.md has its contract and its labels).
    pub image: String,
}

impl EnvironmentImage {
    pub fn new(name: &str, image: &str) -> Self {
        EnvironmentImage {
            name: name.to_owned(),
            image: image.to_owned(),
        }
    }
}

/// Everything the Docker sandbox needs to know. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The environments runs may ask for, each an image (at least one; names distinct). Every
    /// engine is checked for each image; an engine that lacks one takes no runs in it.
    pub environments: Vec<EnvironmentImage>,
    /// The engines runs go to (at least one). Each has its own image checks, warm pools (one
    /// per environment), run slots, reaper and health.
    pub engines: Vec<EngineAddr>,
    /// Containers kept created, started and waiting for a run, per engine, at the least, in
    /// the first environment; the others keep at most one at the least (an environment
    /// nobody uses costs one idle container per engine)...
    pub pool_min: usize,
    /// ...and at the most, per environment, as the rate of its runs asks (see `pool.rs`); 0
    /// turns the pools off. Each environment has its own pool, demand and uids: a busy
    /// environment cannot take another's warm containers.
    pub pool_max: usize,
    /// How far back the rate of runs is measured for the pool's size.
    pub pool_window: Duration,
    /// Runs at once, per engine.
    pub concurrency: usize,
    /// Runs waiting for a slot (on any engine) before `start` answers `Busy`.
    pub queue: usize,
    /// The limits runs get by default; warm containers are made with these.
    pub limits: Limits,
    /// Names this server's containers (label `duet.sandbox.instance`, and the names): the reaper
    /// removes only containers of its own instance. Servers sharing an engine need distinct
    /// instances; the same server after a restart keeps its instance to reap what it left.
    pub instance: String,
    /// How often the reaper looks for containers that no live run owns.
    pub reap_interval: Duration,
    /// How often the engine and the image are checked for `/healthz`.
    pub health_interval: Duration,
    /// Bound on creating, attaching and starting a container (a cold start takes ~0.3 s).
    pub setup_timeout: Duration,
    /// The first of the host uids containers run as: each container has one of its own among
    /// `uid_base .. uid_base + engines × (pool_max + concurrency)` (each engine its own part,
    /// so engines sharing a host share no uid either), so per-user kernel limits (inotify
    /// instances, signals) are never shared by two runs. Servers sharing a host need ranges
    /// that do not overlap; no other process of the host should run as these uids.
    pub uid_base: u32,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            environments: vec![
                EnvironmentImage::new("python", "duet-sandbox:latest"),
                EnvironmentImage::new("python-data", "duet-sandbox-data:latest"),
            ],
            engines: vec![EngineAddr::Unix(PathBuf::from("/var/run/docker.sock"))],
            pool_min: 2,
            pool_max: 8,
            pool_window: Duration::from_secs(60),
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            queue: 64,
            limits: Limits::default(),
            instance: "duet".into(),
            reap_interval: Duration::from_secs(60),
            health_interval: Duration::from_secs(5),
            setup_timeout: Duration::from_secs(10),
            uid_base: 10001,
        }
    }
}

/// The lowest uid a sandbox may run as (the image's `sandbox` user): far from system users.
pub const MIN_UID: u32 = 10001;

impl DockerConfig {
    /// How many host uids one engine's containers use: one per warm container of every
    /// environment's pool and per run slot.
    pub fn uid_count(&self) -> u32 {
        let pools = self.pool_max.saturating_mul(self.environments.len());
        u32::try_from(pools.saturating_add(self.concurrency)).unwrap_or(u32::MAX)
    }

    /// The least warm containers environment number `index` keeps per engine.
    pub fn pool_min_of(&self, index: usize) -> usize {
        if index == 0 {
            self.pool_min
        } else {
            self.pool_min.min(1)
        }
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |why: String| Err(SandboxError::Invalid(why));
        if self.environments.is_empty() {
            return bad("no sandbox environment: give at least one".into());
        }
        for (i, e) in self.environments.iter().enumerate() {
            let name_ok = !e.name.is_empty()
                && e.name.len() <= 40
                && e.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return bad(format!(
                    "sandbox environment {:?}: 1 to 40 of a-z, 0-9 and '-'",
                    e.name
                ));
            }
            if e.image.trim().is_empty() {
                return bad(format!("the image of environment {} is empty", e.name));
            }
            if self.environments[..i].iter().any(|o| o.name == e.name) {
                return bad(format!("sandbox environment {} is given twice", e.name));
            }
        }
        if self.concurrency == 0 {
            return bad("sandbox concurrency must be at least 1".into());
        }
        if self.pool_min > self.pool_max {
            return bad(format!(
                "the warm pool's minimum ({}) is over its maximum ({})",
                self.pool_min, self.pool_max
            ));
        }
        if self.pool_window < Duration::from_secs(6) {
            return bad("the warm pool's rate window is under 6 s".into());
        }
        if self.engines.is_empty() {
            return bad("no sandbox engine: give at least one".into());
        }
        for (i, e) in self.engines.iter().enumerate() {
            if self.engines[..i].contains(e) {
                return bad(format!("sandbox engine {e} is given twice"));
            }
        }
        let instance_ok = !self.instance.is_empty()
            && self.instance.len() <= 40
            && self
                .instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !instance_ok {
            return bad(format!(
                "sandbox instance {:?}: 1 to 40 letters, digits, '_', '.' or '-'",
                self.instance
            ));
        }
        let engines = u64::try_from(self.engines.len()).unwrap_or(u64::MAX);
        let last = u64::from(self.uid_base)
            .saturating_add(u64::from(self.uid_count()).saturating_mul(engines));
        if self.uid_base < MIN_UID || last > 1 << 31 {
            return bad(format!(
                "sandbox uids {}..{last}: they must lie between {MIN_UID} and 2^31",
                self.uid_base
            ));
        }
        check_limits(&self.limits)
    }
}

/// The longest wall limit a run may have (interactive runs included): an hour.
pub const MAX_WALL: Duration = Duration::from_secs(60 * 60);

/// Refuses limits Docker or the runner cannot work with.
pub fn check_limits(l: &Limits) -> Result<(), SandboxError> {
    let walls = [l.wall, l.interactive_wall, l.repl_wall, l.repl_idle];
    let problem = if walls.iter().any(Duration::is_zero) {
        Some("a wall-time limit is zero")
    } else if walls.iter().any(|w| *w > MAX_WALL) {
        Some("a wall-time limit is over an hour")
    } else if l.cpu.is_zero() {
        Some("the CPU-time limit is zero")
    } else if l.memory_bytes < 32 << 20 {
        Some("the memory limit is below 32 MiB (Python alone needs ~10 MiB)")
    } else if l.pids < 4 {
        Some("the pids limit is below 4 (init, runner, program)")
    } else if l.nano_cpus < 10_000_000 {
        Some("the CPU limit is below 0.01 CPU")
    } else if l.cpu_secs == 0 || l.nofile < 16 || l.fsize_bytes == 0 {
        Some("the cpu, nofile or fsize ulimit is too small")
    } else if l.work_dir_bytes < 1 << 20 {
        Some("the work dir is below 1 MiB")
    } else if l.output_bytes == 0 {
        Some("the output cap is zero")
    } else {
        None
    };
    match problem {
        Some(p) => Err(SandboxError::Invalid(p.into())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_unix_sockets_or_tcp_with_client_certificates() {
        let certs = Path::new("/etc/duet/docker-certs");
        assert_eq!(
            EngineAddr::parse("unix:///var/run/docker.sock", None).ok(),
            Some(EngineAddr::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            EngineAddr::parse("/run/d2.sock", None).ok(),
            Some(EngineAddr::Unix("/run/d2.sock".into()))
        );
        let tls = EngineAddr::parse("tcp://build-2:2376", Some(certs)).expect("tls");
        assert_eq!(tls.to_string(), "tcp://build-2:2376");
        assert!(
            matches!(tls, EngineAddr::Tls { ref certs, .. } if certs == Path::new("/etc/duet/docker-certs"))
        );
        for bad in [
            "tcp://build-2:2376",
            "unix://relative",
            "http://x:1",
            "tcp://x",
            "tcp://:1",
        ] {
            let with = if bad == "tcp://build-2:2376" {
                None
            } else {
                Some(certs)
            };
            assert!(EngineAddr::parse(bad, with).is_err(), "{bad}");
        }
        let err = EngineAddr::parse("tcp://build-2:2376", None).expect_err("no certs");
        assert!(err.to_string().contains("--sandbox-engine-certs"), "{err}");
    }

    #[test]
    fn each_engine_has_uids_of_its_own_within_the_range() {
        // Per engine: each of the two environments' pools (4) and the run slots (4).
        let two = DockerConfig {
            engines: vec![EngineAddr::Unix("/a".into()), EngineAddr::Unix("/b".into())],
            uid_base: (1 << 31) - 2 * (2 * 4 + 4),
            pool_min: 4,
            pool_max: 4,
            concurrency: 4,
            ..DockerConfig::default()
        };
        assert!(two.validate().is_ok());
        let three = DockerConfig {
            engines: vec![
                EngineAddr::Unix("/a".into()),
                EngineAddr::Unix("/b".into()),
                EngineAddr::Unix("/c".into()),
            ],
            ..two.clone()
        };
        assert!(three.validate().is_err());
        let twice = DockerConfig {
            engines: vec![EngineAddr::Unix("/a".into()), EngineAddr::Unix("/a".into())],
            ..DockerConfig::default()
        };
        assert!(twice.validate().is_err());
    }
}
