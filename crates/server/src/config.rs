//! `duet serve` settings: clap flags, each backed by a `DUET_...` environment variable, grouped
//! into small structs.

use clap::{Args, Parser, Subcommand};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "duet",
    version,
    about = "Duet: live pair-programming interviews for Python"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// ServeArgs is large and parsed once: boxing it would only add noise at every use.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Check a question bank before use: every file loads, every prompt renders as written,
    /// and (unless --no-run) every coding question fails on its starter and passes on its
    /// solution in the real sandbox. Exits non-zero on any problem.
    CheckQuestions(CheckArgs),
    /// Staff accounts: add a person, or give one a new link to set their password.
    User(UserArgs),
}

/// `duet user`: works on the data dir directly (the server may be running).
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// Folder of the database.
    #[arg(
        long,
        global = true,
        env = "DUET_DATA_DIR",
        default_value = "./duet-data"
    )]
    pub data_dir: PathBuf,
    /// Base URL of the server, for the set-password link. Defaults to http://<DUET_LISTEN>.
    #[arg(long, global = true, env = "DUET_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The server's listen address (only to form the link when no public URL is set).
    #[arg(
        long,
        global = true,
        env = "DUET_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Hours a set-password link works.
    #[arg(
        long,
        global = true,
        env = "DUET_PASSWORD_LINK_HOURS",
        default_value_t = 72
    )]
    pub password_link_hours: u64,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum UserAction {
    /// Adds a person. Prints a one-time link to set their password, or with --password-stdin
    /// reads the password from standard input (never from the command line, which other users
    /// of the machine can read).
    Add {
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: CliStaffRole,
        /// Read the password from standard input (one line) instead of printing a link.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Prints a new one-time link to set the person's password (their earlier links stop
    /// working).
    Link { email: String },
}

/// `--role`: the command line's name for [`duet_protocol::StaffRole`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliStaffRole {
    Admin,
    Interviewer,
    Reviewer,
}

impl From<CliStaffRole> for duet_protocol::StaffRole {
    fn from(role: CliStaffRole) -> Self {
        match role {
            CliStaffRole::Admin => duet_protocol::StaffRole::Admin,
            CliStaffRole::Interviewer => duet_protocol::StaffRole::Interviewer,
            CliStaffRole::Reviewer => duet_protocol::StaffRole::Reviewer,
        }
    }
}

/// `duet check-questions`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Folder of question files.
    #[arg(long, env = "DUET_QUESTIONS_DIR", default_value = "questions")]
    pub questions_dir: PathBuf,
    /// Only these question ids (default: every question in the folder).
    pub ids: Vec<String>,
    /// Check the files and prompts only; run nothing.
    #[arg(long)]
    pub no_run: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "DUET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the database and the generated admin token.
    #[arg(long, env = "DUET_DATA_DIR", default_value = "./duet-data")]
    pub data_dir: PathBuf,
    /// The admin token (16+ characters). If unset or empty, one is generated on first start,
    /// kept in the data dir and printed once.
    #[arg(long, env = "DUET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Base URL people reach this server at, used in the links of new interviews.
    /// Defaults to http://<listen address>.
    #[arg(long, env = "DUET_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Delete ended interviews older than this many days (checked hourly, logged). Off when
    /// unset.
    #[arg(long, env = "DUET_RETAIN_DAYS")]
    pub retain_days: Option<u64>,
    /// When a stored edit survives a power cut: `interval` (the WAL is fsynced every second, so
    /// a power cut loses at most about a second) or `every-commit` (each commit is fsynced
    /// before anyone sees its edits; costs an fsync per batch, see BENCHMARKS.md).
    #[arg(long, env = "DUET_STORE_SYNC", value_enum, default_value_t = StoreSync::Interval)]
    pub store_sync: StoreSync,
    /// Folder of question files (one TOML file per question; see questions/README.md).
    #[arg(long, env = "DUET_QUESTIONS_DIR", default_value = "questions")]
    pub questions_dir: PathBuf,
    /// Folder of the built browser app (`cd web && npm ci && npm run build` makes `web/dist`).
    #[arg(long, env = "DUET_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,
    /// MiB of replay indexes and rebuilt documents kept for scrubbing, across interviews
    /// (least recently used out first; one interview's text index may take a quarter of it).
    #[arg(long, env = "DUET_REPLAY_CACHE_MIB", default_value_t = 32)]
    pub replay_cache_mib: usize,
    #[command(flatten)]
    pub ws: WsLimits,
    #[command(flatten)]
    pub http: HttpLimits,
    #[command(flatten)]
    pub rooms: RoomSettings,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub sessions: SessionArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// Sign-in through the team's OpenID Connect provider (off unless an issuer and a client id are
/// set). Register `<public URL>/api/oidc/callback` as the client's redirect URI.
#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// The provider's issuer URL (its discovery document is at
    /// <issuer>/.well-known/openid-configuration).
    #[arg(long = "oidc-issuer", env = "DUET_OIDC_ISSUER")]
    pub issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long = "oidc-client-id", env = "DUET_OIDC_CLIENT_ID")]
    pub client_id: Option<String>,
    /// This server's client secret at the provider.
    #[arg(
        long = "oidc-client-secret",
        env = "DUET_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        value_parser = client_secret
    )]
    pub client_secret: Option<Secret>,
    /// Email domains whose people may sign in through the provider (default: any). Repeat it,
    /// or separate with commas.
    #[arg(
        long = "oidc-allowed-domains",
        env = "DUET_OIDC_ALLOWED_DOMAINS",
        value_delimiter = ','
    )]
    pub allowed_domains: Vec<String>,
    /// Create a person (as an interviewer) on their first sign-in through the provider;
    /// without it, only people an admin added may sign in.
    #[arg(long = "oidc-create-people", env = "DUET_OIDC_CREATE_PEOPLE")]
    pub create_people: bool,
}

/// Staff sign-in and sessions.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Minutes a session lasts without a request before it ends (idle expiry).
    #[arg(
        long = "session-idle-minutes",
        env = "DUET_SESSION_IDLE_MINUTES",
        default_value_t = 720
    )]
    pub idle_minutes: u64,
    /// Hours a session lasts at most, however active (absolute expiry).
    #[arg(
        long = "session-max-hours",
        env = "DUET_SESSION_MAX_HOURS",
        default_value_t = 168
    )]
    pub max_hours: u64,
    /// Failed sign-ins one account (the email tried) may have in a burst; they come back one
    /// by one over --sign-in-window-secs. Past it the account is locked (429) until one does.
    #[arg(
        long = "sign-in-failures-per-account",
        env = "DUET_SIGN_IN_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub sign_in_failures_per_account: u32,
    /// Failed sign-ins one address may have in a burst, refilled the same way.
    #[arg(
        long = "sign-in-failures-per-address",
        env = "DUET_SIGN_IN_FAILURES_PER_ADDRESS",
        default_value_t = 20
    )]
    pub sign_in_failures_per_address: u32,
    /// Seconds over which a spent allowance of failed sign-ins comes back in full.
    #[arg(
        long = "sign-in-window-secs",
        env = "DUET_SIGN_IN_WINDOW_SECS",
        default_value_t = 300
    )]
    pub sign_in_window_secs: u64,
    /// Hours a set-password link (an invitation) works.
    #[arg(
        long = "password-link-hours",
        env = "DUET_PASSWORD_LINK_HOURS",
        default_value_t = 72
    )]
    pub password_link_hours: u64,
}

impl Default for SessionArgs {
    fn default() -> Self {
        SessionArgs {
            idle_minutes: 720,
            max_hours: 168,
            sign_in_failures_per_account: 5,
            sign_in_failures_per_address: 20,
            sign_in_window_secs: 300,
            password_link_hours: 72,
        }
    }
}

impl SessionArgs {
    /// At least a minute.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_minutes.max(1) * 60)
    }

    /// At least an hour, at most a year.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_hours.clamp(1, 24 * 366) * 3600)
    }

    /// At least an hour.
    pub fn password_link(&self) -> Duration {
        Duration::from_secs(self.password_link_hours.max(1) * 3600)
    }
}

/// Where and how candidates' code runs.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Docker image runs use (built by sandbox/build-image.sh or sandbox/Dockerfile).
    #[arg(
        long = "sandbox-image",
        env = "DUET_SANDBOX_IMAGE",
        default_value = "duet-sandbox:latest"
    )]
    pub image: String,
    /// A Docker engine runs go to: `unix:///PATH` or `tcp://HOST:PORT` (TLS with the client
    /// certificates of --sandbox-engine-certs). Repeat it (or separate with commas) for several
    /// engines: each has its own warm pool and slots, and a run goes to the healthy one with the
    /// most free slots. Default: the local engine, unix:///var/run/docker.sock.
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
            engines: Vec::new(),
            engine_certs: None,
            pool: 2,
            pool_max: 8,
            concurrency: None,
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

    /// The limits every run gets.
    pub fn limits(&self) -> duet_sandbox::Limits {
        let defaults = duet_sandbox::Limits::default();
        duet_sandbox::Limits {
            wall: Duration::from_secs(self.timeout_secs.max(1)),
            interactive_wall: Duration::from_secs(self.interactive_timeout_secs.max(1)),
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

/// Limits on each websocket connection.
#[derive(Debug, Clone, Args)]
pub struct WsLimits {
    /// Largest websocket message accepted, in bytes; larger ones close the connection (1009).
    #[arg(long = "ws-max-message-bytes", env = "DUET_WS_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Sustained messages per second one connection may send; bursts of twice this pass.
    /// Past it the connection is closed (1008).
    #[arg(
        long = "ws-max-messages-per-sec",
        env = "DUET_WS_MAX_MESSAGES_PER_SEC",
        default_value_t = 20_000
    )]
    pub max_messages_per_sec: u32,
    /// Sustained bytes per second one connection may send; bursts of twice this pass.
    #[arg(long = "ws-max-bytes-per-sec", env = "DUET_WS_MAX_BYTES_PER_SEC", default_value_t = 8 << 20)]
    pub max_bytes_per_sec: u64,
    /// Messages queued for one connection before it counts as too slow and is closed (1013);
    /// its client reconnects and resyncs, nothing is dropped silently.
    #[arg(
        long = "ws-outbound-queue",
        env = "DUET_WS_OUTBOUND_QUEUE",
        default_value_t = 4096
    )]
    pub outbound_queue: usize,
    /// Bytes queued for one connection before it counts as too slow and is closed (1013).
    #[arg(long = "ws-outbound-queue-bytes", env = "DUET_WS_OUTBOUND_QUEUE_BYTES", default_value_t = 4 << 20)]
    pub outbound_queue_bytes: usize,
    /// Open websockets (editor and events together) one token may hold; more are refused (429).
    #[arg(
        long = "ws-max-per-token",
        env = "DUET_WS_MAX_PER_TOKEN",
        default_value_t = 16
    )]
    pub max_per_token: usize,
    /// Seconds between the server's pings on every websocket.
    #[arg(long = "ws-ping-secs", env = "DUET_WS_PING_SECS", default_value_t = 30)]
    pub ping_secs: u64,
    /// Seconds without any frame from a peer (not even a pong) before the server gives it up
    /// (1001); a half-open connection is noticed this way. At least the ping interval and a
    /// second.
    #[arg(
        long = "ws-peer-deadline-secs",
        env = "DUET_WS_PEER_DEADLINE_SECS",
        default_value_t = 45
    )]
    pub peer_deadline_secs: u64,
}

impl WsLimits {
    /// Between 1 s and an hour.
    pub fn ping_every(&self) -> Duration {
        Duration::from_secs(self.ping_secs.clamp(1, 3600))
    }

    /// The reader's deadline: at least a ping interval and a second (a peer must have the
    /// chance to answer a ping), at most a day.
    pub fn peer_deadline(&self) -> Duration {
        let floor = self.ping_every().as_secs() + 1;
        Duration::from_secs(self.peer_deadline_secs.clamp(floor, 86_400.max(floor)))
    }

    /// The close reason for a peer given up on.
    pub fn silent_peer_reason(&self) -> String {
        format!(
            "no frame or pong for {} s; reconnect",
            self.peer_deadline().as_secs()
        )
    }
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_message_bytes: 1 << 20,
            max_messages_per_sec: 20_000,
            max_bytes_per_sec: 8 << 20,
            outbound_queue: 4096,
            outbound_queue_bytes: 4 << 20,
            max_per_token: 16,
            ping_secs: 30,
            peer_deadline_secs: 45,
        }
    }
}

/// Limits on HTTP connections, before any token is checked.
#[derive(Debug, Clone, Args)]
pub struct HttpLimits {
    /// Seconds a connection may take to send a request's headers, and may stay idle between
    /// requests; then it is closed.
    #[arg(
        long = "http-header-timeout-secs",
        env = "DUET_HTTP_HEADER_TIMEOUT_SECS",
        default_value_t = 15
    )]
    pub header_timeout_secs: u64,
    /// Open connections at once (websockets included); further ones wait to be accepted.
    #[arg(
        long = "max-connections",
        env = "DUET_MAX_CONNECTIONS",
        default_value_t = 4096
    )]
    pub max_connections: usize,
    /// Wrong admin tokens one address may send a minute, in a burst or spread out; past it, its
    /// requests with a token are answered 429 until the allowance refills. (Wrong role tokens
    /// are not counted: they are beyond guessing.) Only
    /// wrong admin tokens count (role tokens are beyond guessing).
    #[arg(
        long = "auth-failures-per-minute",
        env = "DUET_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 30
    )]
    pub auth_failures_per_minute: u32,
    /// Exports being built and sent at once, across the server; more are answered 503.
    #[arg(long = "max-exports", env = "DUET_MAX_EXPORTS", default_value_t = 2)]
    pub max_exports: usize,
    /// Exports one token may have in flight at once; more are answered 429.
    #[arg(
        long = "max-exports-per-token",
        env = "DUET_MAX_EXPORTS_PER_TOKEN",
        default_value_t = 1
    )]
    pub max_exports_per_token: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout_secs: 15,
            max_connections: 4096,
            auth_failures_per_minute: 30,
            max_exports: 2,
            max_exports_per_token: 1,
        }
    }
}

/// How rooms live and die.
#[derive(Debug, Clone, Args)]
pub struct RoomSettings {
    /// Seconds a room stays loaded with nobody connected.
    #[arg(
        long = "room-idle-secs",
        env = "DUET_ROOM_IDLE_SECS",
        default_value_t = 30
    )]
    pub idle_secs: u64,
    /// Edits between checkpoints (the whole document stored beside the log, for fast loading).
    #[arg(
        long = "checkpoint-every",
        env = "DUET_CHECKPOINT_EVERY",
        default_value_t = 1000
    )]
    pub checkpoint_every: u64,
    /// Commands queued for one room before senders wait.
    #[arg(
        id = "room_queue",
        long = "room-queue",
        env = "DUET_ROOM_QUEUE",
        default_value_t = 1024
    )]
    pub queue: usize,
    /// Largest `main.py`, in bytes; an edit past it closes its sender (1008).
    #[arg(long = "max-doc-bytes", env = "DUET_MAX_DOC_BYTES", default_value_t = 1 << 20)]
    pub max_doc_bytes: usize,
    /// MiB of log one interview may hold; past it, edits are refused (1008).
    #[arg(long = "max-log-mib", env = "DUET_MAX_LOG_MIB", default_value_t = 256)]
    pub max_log_mib: u64,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            idle_secs: 30,
            checkpoint_every: 1000,
            queue: 1024,
            max_doc_bytes: 1 << 20,
            max_log_mib: 256,
        }
    }
}

impl RoomSettings {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs)
    }

    /// The room's protocol settings these flags give.
    pub fn room_config(&self) -> duet_core::RoomConfig {
        duet_core::RoomConfig {
            max_doc_bytes: self.max_doc_bytes,
            max_log_bytes: self.max_log_mib.saturating_mul(1 << 20),
            ..duet_core::RoomConfig::default()
        }
    }
}

impl ServeArgs {
    /// Settings for a server in a test: a data dir, everything else default.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> ServeArgs {
        ServeArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            admin_token: None,
            public_url: None,
            retain_days: None,
            store_sync: StoreSync::Interval,
            questions_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../questions")),
            web_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist")),
            replay_cache_mib: 32,
            ws: WsLimits::default(),
            http: HttpLimits::default(),
            rooms: RoomSettings::default(),
            sandbox: SandboxArgs::default(),
            sessions: SessionArgs::default(),
            oidc: OidcArgs::default(),
        }
    }
}

/// `--oidc-client-secret`: any non-empty value the provider issued, kept out of `Debug`.
fn client_secret(s: &str) -> Result<Secret, String> {
    match s.trim() {
        "" => Err("the client secret is empty".into()),
        secret => Ok(Secret(secret.to_owned())),
    }
}

/// `--store-sync`: the command line's name for [`duet_store::Durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreSync {
    Interval,
    EveryCommit,
}

impl From<StoreSync> for duet_store::Durability {
    fn from(sync: StoreSync) -> Self {
        match sync {
            StoreSync::Interval => duet_store::Durability::Interval,
            StoreSync::EveryCommit => duet_store::Durability::EveryCommit,
        }
    }
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(Secret(String::new())); // "not set", as `DUET_ADMIN_TOKEN=` in a compose file
        }
        if s.trim().len() < 16 {
            return Err("the admin token must be at least 16 characters".into());
        }
        Ok(Secret(s.trim().to_owned()))
    }
}

impl ServeArgs {
    /// The admin token, if one was given.
    pub fn admin_secret(&self) -> Option<&Secret> {
        self.admin_token.as_ref().filter(|s| !s.0.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_well_formed_and_unique() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_parse_and_match_the_documented_values() {
        let Command::Serve(args) = Cli::parse_from(["duet", "serve"]).command else {
            panic!("serve parses as serve");
        };
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.ws.max_message_bytes, 1 << 20);
        assert_eq!(args.sandbox.image, "duet-sandbox:latest");
        assert_eq!(args.sandbox.limits(), duet_sandbox::Limits::default());
    }

    #[test]
    fn sandbox_engines_repeat_and_default_to_the_local_socket() {
        let serve = |args: &[&str]| {
            let all = ["duet", "serve"].iter().chain(args).copied();
            match Cli::parse_from(all).command {
                Command::Serve(args) => args.sandbox,
                _ => panic!("serve parses as serve"),
            }
        };
        let local = serve(&[]).engines().map(|e| e.len());
        assert_eq!(local.ok(), Some(1));
        let two = serve(&[
            "--sandbox-engine",
            "unix:///var/run/docker.sock",
            "--sandbox-engine",
            "tcp://build-2:2376",
            "--sandbox-engine-certs",
            "/etc/duet/certs",
        ]);
        let names: Vec<String> = two
            .engines()
            .map(|e| e.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["unix:///var/run/docker.sock", "tcp://build-2:2376"]);
        let no_certs = serve(&["--sandbox-engine", "tcp://build-2:2376"]);
        assert!(
            no_certs.engines().is_err(),
            "plain TCP would give away the engine"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret: Secret = "a-very-secret-admin-token"
            .parse()
            .unwrap_or(Secret(String::new()));
        assert!(!format!("{secret:?}").contains("very-secret"));
    }
}
