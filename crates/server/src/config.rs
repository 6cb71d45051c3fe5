//! `duet serve` settings: clap flags, each backed by a `DUET_...` environment variable, grouped
//! into small structs.

use clap::{Args, Parser, Subcommand};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod integrations;
mod limits;
mod nodes;
mod people;
mod sandbox;

pub use integrations::{GreenhouseArgs, MailArgs, SmtpUrl, WebhookArgs};
pub use limits::{HttpLimits, WsLimits};
pub use nodes::NodeArgs;
pub use people::{OidcArgs, SessionArgs};
pub use sandbox::SandboxArgs;

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
    /// Copy a deployment's whole history from SQLite into an empty PostgreSQL database, and
    /// check the copy row by row.
    Migrate(crate::database::MigrateArgs),
}

/// `duet user`: works on the server's database directly (the server may be running).
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
    /// The server's PostgreSQL database, if it keeps its history there (as `duet serve`).
    #[arg(long, global = true, env = "DUET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<crate::database::DatabaseUrl>,
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
    /// Disables the person: their sessions end and they cannot sign in; a running server
    /// closes their open websockets within a few seconds.
    Disable { email: String },
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
    /// Keep the history in this PostgreSQL database (`postgres://user:password@host/db`)
    /// instead of SQLite in the data dir (the default, with no flag). See README, "Postgres".
    #[arg(long, env = "DUET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<crate::database::DatabaseUrl>,
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
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub greenhouse: GreenhouseArgs,
    #[command(flatten)]
    pub nodes: NodeArgs,
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
            database_url: None,
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
            webhooks: WebhookArgs::default(),
            mail: MailArgs::default(),
            greenhouse: GreenhouseArgs::default(),
            nodes: NodeArgs::default(),
        }
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
