//! The Docker sandbox's settings; the server maps its flags onto [`DockerConfig`].

use crate::{Limits, SandboxError};
use std::path::PathBuf;
use std::time::Duration;

/// Everything the Docker sandbox needs to know. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The sandbox image (sandbox/README.md has its contract).
    pub image: String,
    /// The engine's unix socket.
    pub socket: PathBuf,
    /// Containers kept created, started and waiting for a run; 0 turns the pool off.
    pub pool_size: usize,
    /// Runs at once.
    pub concurrency: usize,
    /// Runs waiting for a slot before `start` answers `Busy`.
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
    /// `uid_base .. uid_base + pool_size + concurrency`, so per-user kernel limits (inotify
    /// instances, signals) are never shared by two runs. Servers sharing a host need ranges
    /// that do not overlap; no other process of the host should run as these uids.
    pub uid_base: u32,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            image: "duet-sandbox:latest".into(),
            socket: PathBuf::from("/var/run/docker.sock"),
            pool_size: 2,
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
    /// How many host uids the sandbox uses: one per warm container and per run slot.
    pub fn uid_count(&self) -> u32 {
        u32::try_from(self.pool_size.saturating_add(self.concurrency)).unwrap_or(u32::MAX)
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |why: String| Err(SandboxError::Invalid(why));
        if self.image.trim().is_empty() {
            return bad("the sandbox image name is empty".into());
        }
        if self.concurrency == 0 {
            return bad("sandbox concurrency must be at least 1".into());
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
        let last = u64::from(self.uid_base) + u64::from(self.uid_count());
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
    let problem = if l.wall.is_zero() || l.interactive_wall.is_zero() {
        Some("a wall-time limit is zero")
    } else if l.wall > MAX_WALL || l.interactive_wall > MAX_WALL {
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
