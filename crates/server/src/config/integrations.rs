//! The flags of what Duet sends out: webhook deliveries and mail.

use clap::Args;
use std::time::Duration;

/// Outbound webhooks: how deliveries are made and retried.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Allow webhook URLs that resolve to loopback, private, link-local or unique-local
    /// addresses (refused by default: a webhook must not reach into the team's own network).
    #[arg(
        id = "webhook_allow_private",
        long = "webhook-allow-private-addresses",
        env = "DUET_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"
    )]
    pub allow_private: bool,
    /// Milliseconds before the first retry of a failed delivery; each later retry waits twice
    /// as long as the one before, up to --webhook-retry-max-secs.
    #[arg(
        id = "webhook_retry_base_ms",
        long = "webhook-retry-base-ms",
        env = "DUET_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 10_000
    )]
    pub retry_base_ms: u64,
    /// Longest wait between two attempts, in seconds.
    #[arg(
        id = "webhook_retry_max_secs",
        long = "webhook-retry-max-secs",
        env = "DUET_WEBHOOK_RETRY_MAX_SECS",
        default_value_t = 3_600
    )]
    pub retry_max_secs: u64,
    /// Hours a delivery (or a mail) is retried before it is marked failed (at least 24).
    #[arg(
        id = "webhook_give_up_hours",
        long = "webhook-give-up-hours",
        env = "DUET_WEBHOOK_GIVE_UP_HOURS",
        default_value_t = 72,
        value_parser = clap::value_parser!(u64).range(24..)
    )]
    pub give_up_hours: u64,
    /// Seconds one delivery may take (connecting, sending, the answer's headers and body).
    #[arg(
        id = "webhook_timeout_secs",
        long = "webhook-timeout-secs",
        env = "DUET_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub timeout_secs: u64,
    /// Deliveries in flight at once, across endpoints.
    #[arg(
        id = "webhook_concurrency",
        long = "webhook-concurrency",
        env = "DUET_WEBHOOK_CONCURRENCY",
        default_value_t = 8
    )]
    pub concurrency: usize,
    /// Milliseconds between two looks at the outbox for deliveries and mail that are due.
    #[arg(
        id = "outbox_poll_ms",
        long = "outbox-poll-ms",
        env = "DUET_OUTBOX_POLL_MS",
        default_value_t = 1_000
    )]
    pub poll_ms: u64,
}

impl Default for WebhookArgs {
    fn default() -> Self {
        WebhookArgs {
            allow_private: false,
            retry_base_ms: 10_000,
            retry_max_secs: 3_600,
            give_up_hours: 72,
            timeout_secs: 10,
            concurrency: 8,
            poll_ms: 1_000,
        }
    }
}

impl WebhookArgs {
    /// The wait after a delivery's `attempts`-th failed attempt (1 for the first).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self
            .retry_base_ms
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(40));
        Duration::from_millis(doubled.min(self.retry_max_secs.saturating_mul(1000)))
    }

    pub fn give_up_after(&self) -> Duration {
        Duration::from_secs(self.give_up_hours.max(24).saturating_mul(3_600))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(10))
    }
}

#[cfg(test)]
mod tests {
    use super::WebhookArgs;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_retries_outlast_a_day() {
        let args = WebhookArgs::default();
        assert_eq!(args.backoff(1), Duration::from_secs(10));
        assert_eq!(args.backoff(2), Duration::from_secs(20));
        assert_eq!(args.backoff(3), Duration::from_secs(40));
        assert_eq!(args.backoff(30), Duration::from_secs(3_600));
        assert_eq!(args.backoff(u32::MAX), Duration::from_secs(3_600));
        assert!(args.give_up_after() >= Duration::from_secs(24 * 3_600));
    }
}

/// Mail through the team's SMTP server: invitations and take-home links. Off without
/// `--smtp-url`.
#[derive(Debug, Clone, Default, Args)]
pub struct MailArgs {
    /// The SMTP server, with its credentials: `smtps://user:password@host:465` (TLS from the
    /// start), `smtp://user:password@host:587?tls=required` (STARTTLS), or plain
    /// `smtp://host:25` (no TLS: only for a relay on the same machine).
    #[arg(
        id = "smtp_url",
        long = "smtp-url",
        env = "DUET_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<SmtpUrl>,
    /// The From address of the mail Duet sends, e.g. `Duet <duet@example.com>` (needed with
    /// --smtp-url).
    #[arg(id = "mail_from", long = "mail-from", env = "DUET_MAIL_FROM")]
    pub from: Option<String>,
}

/// An SMTP URL, whose `Debug` hides it (it holds a password).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpUrl(<redacted>)")
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("smtp://") || s.starts_with("smtps://") {
            Ok(SmtpUrl(s.to_owned()))
        } else {
            Err("an SMTP URL starts with smtp:// or smtps://".into())
        }
    }
}

/// Greenhouse's assessment-partner endpoints (`/api/greenhouse/...`).
#[derive(Debug, Clone, Args)]
pub struct GreenhouseArgs {
    /// The time limit of the take-home tests `list_tests` offers, in minutes (30 to 240).
    #[arg(
        id = "greenhouse_take_home_minutes",
        long = "greenhouse-take-home-minutes",
        env = "DUET_GREENHOUSE_TAKE_HOME_MINUTES",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(30..=240)
    )]
    pub take_home_minutes: u32,
}

impl Default for GreenhouseArgs {
    fn default() -> Self {
        GreenhouseArgs {
            take_home_minutes: 90,
        }
    }
}
