//! Command-line flags.

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "duet-loadgen",
    about = "Load generator for y-websocket servers (loopback only)"
)]
pub struct Args {
    /// Room URL base; the room name is appended as `/ROOM`. Loopback hosts only.
    #[arg(long)]
    pub url: String,
    /// Rooms (documents) to load.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Clients per room.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Edits per second per client; 0 means as fast as the connection takes them (burst).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Most edits one client has in flight (sent but not yet received by every other client of
    /// the room); the client waits beyond that. 0 = no limit (open loop).
    #[arg(long, default_value_t = 0)]
    pub window: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Fraction of edits that delete one character instead of inserting one.
    #[arg(long, default_value_t = 0.05)]
    pub delete_ratio: f64,
    /// Fraction of edits that first move the cursor to a random position.
    #[arg(long, default_value_t = 0.05)]
    pub jump_ratio: f64,
    /// Receivers decode and time updates but do not apply them to their own document. Keeps the
    /// load generator's CPU for the server in burst runs; each client then edits only its own text.
    #[arg(long)]
    pub no_apply: bool,
    /// Duet only: the admin token; rooms are then created through `POST /api/interviews`.
    #[arg(long, env = "DUET_ADMIN_TOKEN", hide_env_values = true)]
    pub duet_admin_token: Option<String>,
    /// Duet only: the HTTP base, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub duet_http: Option<String>,
    /// y-sweet only: its HTTP base, e.g. http://127.0.0.1:8080. Rooms are then y-sweet documents,
    /// and each client connects to the URL y-sweet's auth endpoint hands out (`--url` is only
    /// checked to be loopback).
    #[arg(long, conflicts_with = "duet_http")]
    pub ysweet_http: Option<String>,
    /// Duet only (mixed load): every client also opens its role's events socket and starts a
    /// program run (`{"kind": "run"}`) every this many seconds, at a random phase; the report adds
    /// run-to-first-byte latency. 0 = no runs, no events sockets.
    #[arg(long, default_value_t = 0.0)]
    pub run_every: f64,
    /// Sample this process's CPU and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Idle mode: open N rooms with one client each, one edit per room, report KB per room.
    #[arg(long)]
    pub idle_rooms: Option<usize>,
    /// Idle mode: seconds to wait after the edits before sampling RSS.
    #[arg(long, default_value_t = 5.0)]
    pub idle_settle: f64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 32)]
    pub connect_concurrency: usize,
    /// Seconds allowed for all clients to connect and sync.
    #[arg(long, default_value_t = 60.0)]
    pub connect_timeout: f64,
    /// Prefix of room names when no admin token is given (`bench-0`, `bench-1`, ...).
    #[arg(long, default_value = "bench")]
    pub room_prefix: String,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A label copied into the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Print one JSON object on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Seconds after which the whole process gives up.
    pub fn hard_limit_secs(&self) -> f64 {
        let setup =
            self.connect_timeout * 2.0 + 30.0 + 2.0 * crate::runs::FIRST_BYTE_TIMEOUT.as_secs_f64();
        setup + self.warmup + self.duration + self.idle_settle + 30.0
    }

    pub fn burst(&self) -> bool {
        self.rate <= 0.0
    }
}
