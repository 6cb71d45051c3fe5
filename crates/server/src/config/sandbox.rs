//! The sandbox flags: the image, the engines, the warm pool and the limits of each run.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where and how candidates' code runs.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Docker image of the `python` environment, the default (built by sandbox/build-image.sh
    /// or sandbox/Dockerfile).
    #[arg(
        long = "sandbox-image",
        env = "DUET_SANDBOX_IMAGE",
        default_value = "duet-sandbox:latest"
    )]
    pub image: String,
    /// Docker image of the `python-data` environment: python plus numpy, pandas and scipy
    /// (built by `sandbox/build-image.sh python-data`). Empty: no such environment.
    #[arg(
        long = "sandbox-data-image",
        env = "DUET_SANDBOX_DATA_IMAGE",
        default_value = "duet-sandbox-data:latest"
    )]
    pub data_image: String,
    /// Wall-clock seconds a REPL session may last, whatever its input.
    #[arg(
        long = "repl-timeout-secs",
        env = "DUET_REPL_TIMEOUT_SECS",
        default_value_t = 1800
    )]
    pub repl_timeout_secs: u64,
    /// Seconds without input after which a REPL session is stopped.
    #[arg(
        long = "repl-idle-secs",
        env = "DUET_REPL_IDLE_SECS",
        default_value_t = 300
    )]
    pub repl_idle_secs: u64,
    /// A Docker engine runs go to: `unix:///PATH` or `tcp://HOST:PORT` (TLS with the client
    /// certificates of --sandbox-engine-certs). Repeat it (or separate with commas) for several
    /// engines: each has its own warm pool and slots, and a run goes to a healthy one with a
    /// free slot (a warm container first, then the most free slots). Default: the local engine,
    /// unix:///var/run/docker.sock.
    #[arg(
        long = "sandbox-engine",
        env = "DUET_SANDBOX_ENGINE",
        value_delimiter = ','
    )]
    pub engines: Vec<String>,
    /// Folder with ca.pem, cert.pem and key.pem (the layout of DOCKER_CERT_PATH) for the TCP
    /// engines: the CA their certificates are checked against, and this server's client
    /// certificate.
    #[arg(long = "sandbox-engine-certs", env = "DUET_SANDBOX_ENGINE_CERTS")]
    pub engine_certs: Option<PathBuf>,
    /// Containers started ahead of time on each engine, each used for one run, at the least
    /// (the pool grows with the rate of runs up to --sandbox-pool-max); 0 turns the warm pool
    /// off.
    #[arg(long = "sandbox-pool", env = "DUET_SANDBOX_POOL", default_value_t = 2)]
    pub pool: usize,
    /// Warm containers on each engine at the most, when runs come fast.
    #[arg(
        long = "sandbox-pool-max",
        env = "DUET_SANDBOX_POOL_MAX",
        default_value_t = 8
    )]
    pub pool_max: usize,
    /// Runs at once on each engine (default: the number of cores of this machine).
    #[arg(long = "sandbox-concurrency", env = "DUET_SANDBOX_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// The first host uid sandbox containers run as: each container gets a uid of its own from
    /// here (engines × (environments × --sandbox-pool-max + concurrency) of them), so no two
    /// runs share per-user kernel limits. Several Duet nodes sharing one Docker host need
    /// ranges that do not overlap (e.g. 10001, 11001, 12001).
    #[arg(
        long = "sandbox-uid-base",
        env = "DUET_SANDBOX_UID_BASE",
        default_value_t = duet_sandbox::MIN_UID
    )]
    pub uid_base: u32,
    /// Runs waiting for a slot on any engine before new ones are refused as busy. Interviews
    /// take turns in the queue.
    #[arg(
        id = "sandbox_queue",
        long = "sandbox-queue",
        env = "DUET_SANDBOX_QUEUE",
        default_value_t = 32
    )]
    pub queue: usize,
    /// Wall-clock seconds a run may take; also the CPU seconds an interactive run may use.
    #[arg(
        long = "run-timeout-secs",
        env = "DUET_RUN_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub timeout_secs: u64,
    /// Wall-clock seconds an interactive run (stdin kept open for the console) may take: time
    /// for a person to answer `input()`. Its CPU time is held to --run-timeout-secs.
    #[arg(
        long = "run-interactive-timeout-secs",
        env = "DUET_RUN_INTERACTIVE_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub interactive_timeout_secs: u64,
    /// Memory per run, in MiB (swap is set equal: no swapping).
    #[arg(
        long = "run-memory-mib",
        env = "DUET_RUN_MEMORY_MIB",
        default_value_t = 256
    )]
    pub memory_mib: i64,
    /// Processes and threads per run.
    #[arg(long = "run-pids", env = "DUET_RUN_PIDS", default_value_t = 64)]
    pub pids: i64,
    /// CPUs per run.
    #[arg(long = "run-cpus", env = "DUET_RUN_CPUS", default_value_t = 1.0)]
    pub cpus: f64,
    /// Bytes of output (stdout plus stderr) kept per run.
    #[arg(long = "run-output-bytes", env = "DUET_RUN_OUTPUT_BYTES", default_value_t = 1 << 20)]
    pub output_bytes: usize,
    /// Runs one interview may start per minute.
    #[arg(
        long = "runs-per-minute",
        env = "DUET_RUNS_PER_MINUTE",
        default_value_t = 30
    )]
    pub runs_per_minute: usize,
}

impl Default for SandboxArgs {
    fn default() -> Self {
        SandboxArgs {
            image: "duet-sandbox:latest".into(),
            data_image: "duet-sandbox-data:latest".into(),
            repl_timeout_secs: 1800,
            repl_idle_secs: 300,
            engines: Vec::new(),
            engine_certs: None,
            pool: 2,
            pool_max: 8,
            concurrency: None,
            uid_base: duet_sandbox::MIN_UID,
            queue: 32,
            timeout_secs: 10,
            interactive_timeout_secs: 300,
            memory_mib: 256,
            pids: 64,
            cpus: 1.0,
            output_bytes: 1 << 20,
            runs_per_minute: 30,
        }
    }
}

impl SandboxArgs {
    /// The engines the flags name; the local engine when they name none.
    pub fn engines(&self) -> Result<Vec<duet_sandbox::EngineAddr>, duet_sandbox::SandboxError> {
        if self.engines.is_empty() {
            return Ok(duet_sandbox::DockerConfig::default().engines);
        }
        self.engines
            .iter()
            .map(|e| duet_sandbox::EngineAddr::parse(e.trim(), self.engine_certs.as_deref()))
            .collect()
    }

    /// The environments and their images: `python`, then `python-data` unless its image is
    /// empty.
    pub fn environments(&self) -> Vec<duet_sandbox::EnvironmentImage> {
        let mut all = vec![duet_sandbox::EnvironmentImage::new("python", &self.image)];
        if !self.data_image.trim().is_empty() {
            all.push(duet_sandbox::EnvironmentImage::new(
                "python-data",
                &self.data_image,
            ));
        }
        all
    }

    /// The limits every run gets.
    pub fn limits(&self) -> duet_sandbox::Limits {
        let defaults = duet_sandbox::Limits::default();
        duet_sandbox::Limits {
            wall: Duration::from_secs(self.timeout_secs.max(1)),
            interactive_wall: Duration::from_secs(self.interactive_timeout_secs.max(1)),
            repl_wall: Duration::from_secs(self.repl_timeout_secs.max(1)),
            repl_idle: Duration::from_secs(self.repl_idle_secs.max(1)),
            cpu: Duration::from_secs(self.timeout_secs.max(1)),
            memory_bytes: self.memory_mib.max(16) << 20,
            pids: self.pids.max(8),
            nano_cpus: (self.cpus.max(0.1) * 1e9) as i64,
            cpu_secs: self.timeout_secs.max(1) + 5,
            output_bytes: self.output_bytes.max(1024),
            ..defaults
        }
    }
}
