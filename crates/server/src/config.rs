//! `duet serve` settings: clap flags, each backed by a `DUET_...` environment variable, grouped
//! into small structs.

use clap::{Args, Parser, Subcommand};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "duet", version, about = "Duet: live pair-programming interviews for Python")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
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
    #[command(flatten)]
    pub ws: WsLimits,
    #[command(flatten)]
    pub rooms: RoomSettings,
}

/// Limits on each websocket connection.
#[derive(Debug, Clone, Args)]
pub struct WsLimits {
    /// Largest websocket message accepted, in bytes; larger ones close the connection (1009).
    #[arg(long = "ws-max-message-bytes", env = "DUET_WS_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Sustained messages per second one connection may send; bursts of twice this pass.
    /// Past it the connection is closed (1008).
    #[arg(long = "ws-max-messages-per-sec", env = "DUET_WS_MAX_MESSAGES_PER_SEC", default_value_t = 20_000)]
    pub max_messages_per_sec: u32,
    /// Sustained bytes per second one connection may send; bursts of twice this pass.
    #[arg(long = "ws-max-bytes-per-sec", env = "DUET_WS_MAX_BYTES_PER_SEC", default_value_t = 8 << 20)]
    pub max_bytes_per_sec: u64,
    /// Messages queued for one connection before it counts as too slow and is closed (1013);
    /// its client reconnects and resyncs, nothing is dropped silently.
    #[arg(long = "ws-outbound-queue", env = "DUET_WS_OUTBOUND_QUEUE", default_value_t = 4096)]
    pub outbound_queue: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits { max_message_bytes: 1 << 20, max_messages_per_sec: 20_000, max_bytes_per_sec: 8 << 20, outbound_queue: 4096 }
    }
}

/// How rooms live and die.
#[derive(Debug, Clone, Args)]
pub struct RoomSettings {
    /// Seconds a room stays loaded with nobody connected.
    #[arg(long = "room-idle-secs", env = "DUET_ROOM_IDLE_SECS", default_value_t = 30)]
    pub idle_secs: u64,
    /// Edits between checkpoints (the whole document stored beside the log, for fast loading).
    #[arg(long = "checkpoint-every", env = "DUET_CHECKPOINT_EVERY", default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Commands queued for one room before senders wait.
    #[arg(long = "room-queue", env = "DUET_ROOM_QUEUE", default_value_t = 1024)]
    pub queue: usize,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings { idle_secs: 30, checkpoint_every: 1000, queue: 1024 }
    }
}

impl RoomSettings {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs)
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
            ws: WsLimits::default(),
            rooms: RoomSettings::default(),
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
