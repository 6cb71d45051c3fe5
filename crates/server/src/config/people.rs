//! The flags of staff sign-in: sessions and their limits, and OpenID Connect.

use super::Secret;
use clap::Args;
use std::time::Duration;

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

/// `--oidc-client-secret`: any non-empty value the provider issued, kept out of `Debug`.
fn client_secret(s: &str) -> Result<Secret, String> {
    match s.trim() {
        "" => Err("the client secret is empty".into()),
        secret => Ok(Secret(secret.to_owned())),
    }
}
