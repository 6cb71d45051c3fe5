//! Limits on connections: each websocket, and HTTP before any token is checked.

use clap::Args;
use std::time::Duration;

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
