//! Staff sign-in: passwords, sessions, personal API tokens and who a staff request speaks for.
//!
//! - **Passwords** are hashed with argon2id (RFC 9106's memory-hard choice; the RustCrypto
//!   `argon2` crate with its default parameters: 19 MiB, 2 passes, 1 lane, as OWASP
//!   recommends), on blocking threads, at most [`HASHING_AT_ONCE`] at a time. A sign-in for an
//!   address nobody has, or a person with no password yet, is checked against a dummy hash, so
//!   it costs the same time and gets the same answer as a wrong password.
//! - **Sign-in failures** are throttled per source address and per account (the email tried,
//!   known or not, so the lockout reveals nothing either); a locked account is answered 429
//!   with a message that says so and when to retry, even with the right password.
//! - **Sessions** are 256-bit random cookies (`HttpOnly`, `SameSite=Lax`, `Path=/`, and
//!   `Secure` with the `__Host-` prefix when the public URL is https). Only their SHA-256 is
//!   stored. A session ends after [`SessionArgs::idle`] without a request and at
//!   [`SessionArgs::max_age`] whatever happens ([`ends_at`]); disabling a person or setting
//!   their password ends all of theirs. A websocket is a request when it opens, not while it
//!   stays open: [`crate::sockets::sweep`] closes it when its session ends.
//! - **CSRF**: a write (any method but GET, HEAD and OPTIONS) authenticated by the cookie must
//!   carry the header `X-Duet-Csrf: 1` (a custom header no cross-site form can send and no
//!   cross-site script may send without a CORS preflight this server never grants) and an
//!   `Origin` that is this server's. Bearer-token requests carry no ambient credential and
//!   need neither.
//! - **Personal API tokens** are `duet_pt_` and 256 random bits (the prefix lets secret
//!   scanners find a leaked one); only their SHA-256 is stored.
//!
//! Nothing here logs a password, a token or a cookie.

use crate::auth;
use crate::config::SessionArgs;
use crate::error::AppError;
use crate::rooms::now_ms;
use crate::AppState;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use duet_protocol::{Person, StaffRole};
use duet_store::{NewSession, SessionRecord, TokenHash};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Password hashes computed at once (each takes 19 MiB and a core for tens of milliseconds).
pub const HASHING_AT_ONCE: usize = 2;
/// The prefix of every personal API token.
pub const API_TOKEN_PREFIX: &str = "duet_pt_";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-duet-csrf";
/// Shortest and longest password accepted.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=256;
/// A session's last use is written at most this often (idle expiry is to the minute).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The sign-in machinery the server keeps: throttles, the hashing gate, the dummy hash.
pub struct Sessions {
    settings: SessionArgs,
    /// Whether cookies are `Secure` (the public URL is https).
    secure: bool,
    per_address: auth::KeyedThrottle<auth::Source>,
    per_account: auth::KeyedThrottle<String>,
    hashing: Semaphore,
    dummy: OnceLock<String>,
}

/// How a staff request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The session cookie (its hash).
    Session(TokenHash),
    /// A personal API token (its id).
    ApiToken(String),
}

/// A signed-in staff member and how they authenticated.
#[derive(Debug, Clone)]
pub struct Staff {
    pub person: Person,
    pub via: Via,
}

impl Sessions {
    pub fn new(settings: SessionArgs, public_url: &str) -> Arc<Sessions> {
        let window = Duration::from_secs(settings.sign_in_window_secs.max(1));
        let sessions = Arc::new(Sessions {
            secure: public_url.starts_with("https://"),
            per_address: auth::KeyedThrottle::new(settings.sign_in_failures_per_address, window),
            per_account: auth::KeyedThrottle::new(settings.sign_in_failures_per_account, window),
            settings,
            hashing: Semaphore::new(HASHING_AT_ONCE),
            dummy: OnceLock::new(),
        });
        // The dummy hash is made now, off the runtime, so the first sign-in for an unknown
        // email does not take longer than the others (making it then would tell).
        let warm = sessions.clone();
        let _ = std::thread::Builder::new()
            .name("duet-dummy-hash".into())
            .spawn(move || {
                warm.dummy_hash();
            });
        sessions
    }

    pub fn settings(&self) -> &SessionArgs {
        &self.settings
    }

    /// The session cookie's name: `__Host-` prefixed when it is `Secure` (the browser then
    /// refuses it from anything but this exact https origin).
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-duet_session"
        } else {
            "duet_session"
        }
    }

    /// A `Set-Cookie` value starting a session (`Some(token)`) or ending it (`None`).
    pub fn cookie(&self, token: Option<&str>) -> HeaderValue {
        let max_age = match token {
            Some(_) => self.settings.max_age().as_secs(),
            None => 0,
        };
        let secure = if self.secure { "; Secure" } else { "" };
        let value = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.cookie_name(),
            token.unwrap_or_default()
        );
        // A token is base64url: always a valid header value.
        HeaderValue::from_str(&value)
            .unwrap_or(HeaderValue::from_static("duet_session=; Max-Age=0"))
    }

    /// `Some(seconds)` while sign-ins from `ip` or for `email` are locked out.
    pub fn locked_for(&self, ip: Option<IpAddr>, email: &str) -> Option<(u64, &'static str)> {
        let now = Instant::now();
        if let Some(secs) = self.per_account.blocked_for(Some(email.to_owned()), now) {
            return Some((secs, "account"));
        }
        self.per_address
            .blocked_for(ip.map(auth::Source::of), now)
            .map(|secs| (secs, "address"))
    }

    /// Counts a failed sign-in against the address and the account.
    pub fn failed(&self, ip: Option<IpAddr>, email: &str) {
        let now = Instant::now();
        self.per_account.failed(Some(email.to_owned()), now);
        self.per_address.failed(ip.map(auth::Source::of), now);
    }

    /// Hashes a password with argon2id (on a blocking thread, behind the hashing gate).
    pub async fn hash_password(self: &Arc<Self>, password: String) -> Result<String, AppError> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await?
            .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))
    }

    /// Whether `password` matches `stored` (a PHC string). With no stored hash, the password
    /// is checked against a dummy one (for the time it takes) and the answer is no.
    pub async fn verify(
        self: &Arc<Self>,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, AppError> {
        let _permit = self.permit().await?;
        let this = self.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let (hash, real) = match stored {
                Some(hash) => (hash, true),
                None => (this.dummy_hash().to_owned(), false),
            };
            verify_password(&password, &hash) && real
        })
        .await?)
    }

    fn dummy_hash(&self) -> &str {
        self.dummy
            .get_or_init(|| hash_password(&auth::random_token(24)).unwrap_or_default())
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        let busy =
            || AppError::Unavailable("the server is busy checking passwords; try again".into());
        tokio::time::timeout(Duration::from_secs(10), self.hashing.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }
}

/// An argon2id PHC string for `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the PHC string `hash` (any parameters the string names).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A password's problem, if it has one.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return Some(format!(
            "a password has {} to {} characters",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        ));
    }
    None
}

/// An email address as kept: trimmed, lower case, one `@` with text either side, no spaces
/// or control characters, at most 254 characters.
pub fn normalized_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plain = email.chars().count() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    plain.then_some(email)
}

/// The address a request came from.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The session cookie's value, if the request carries one.
fn cookie_token(state: &AppState, parts: &Parts) -> Option<String> {
    let name = state.sessions.cookie_name();
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
}

/// Refuses a cookie-authenticated write that lacks the CSRF header or comes from another
/// origin (403). Reads pass.
pub fn check_csrf(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header_ok = parts
        .headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !header_ok {
        return Err(AppError::Forbidden(
            "a write signed in by cookie must carry the header X-Duet-Csrf: 1",
        ));
    }
    let origin_ok = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| crate::web::origin_is_ours(state, parts, origin));
    if !origin_ok {
        return Err(AppError::Forbidden(
            "a write signed in by cookie must come from this server's own pages (Origin)",
        ));
    }
    Ok(())
}

/// The staff member a request speaks for, if any: a personal API token in the bearer header,
/// else the session cookie (whose writes must pass [`check_csrf`]). An unknown or expired
/// credential is `None`; a disabled person's is unknown.
pub async fn staff_of(state: &AppState, parts: &Parts) -> Result<Option<Staff>, AppError> {
    if let Some(token) = auth::token_of(parts) {
        if !token.starts_with(API_TOKEN_PREFIX) {
            return Ok(None);
        }
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            // A query string ends up in proxy logs and browser history.
            return Err(AppError::Unauthorized(
                "a personal token goes only in the header Authorization: Bearer <token>",
            ));
        }
        let hashed = auth::hash(&token);
        let store = state.store.clone();
        let Some((person, info)) = crate::api::blocking(move || store.api_token(&hashed)).await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        if info
            .last_used_at
            .is_none_or(|at| now - at >= TOUCH_EVERY_MS)
        {
            // Best effort: the request does not wait for the note of its use.
            drop(state.store.touch_api_token(&info.id, now));
        }
        return Ok(Some(Staff {
            person,
            via: Via::ApiToken(info.id),
        }));
    }
    let Some(token) = cookie_token(state, parts) else {
        return Ok(None);
    };
    let hashed = auth::hash(&token);
    let store = state.store.clone();
    let Some(session) = crate::api::blocking(move || store.session(&hashed)).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if now >= ends_at(&session, state.sessions.settings.idle()) {
        drop(state.store.end_session(&hashed));
        return Ok(None);
    }
    check_csrf(state, parts)?;
    if now - session.last_seen_at >= TOUCH_EVERY_MS {
        drop(state.store.touch_session(&hashed, now));
    }
    Ok(Some(Staff {
        person: session.person,
        via: Via::Session(hashed),
    }))
}

/// When a session ends (unix ms): `idle` after the last request it authenticated, or at its
/// absolute end, whichever comes first. From then on it is refused, and its sockets closed.
pub fn ends_at(session: &SessionRecord, idle: Duration) -> i64 {
    let idle = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    session
        .expires_at
        .min(session.last_seen_at.saturating_add(idle))
}

/// [`staff_of`], or 401.
pub async fn require_staff(state: &AppState, parts: &Parts) -> Result<Staff, AppError> {
    staff_of(state, parts)
        .await?
        .ok_or(AppError::Unauthorized("sign in first (POST /api/session)"))
}

/// Starts a session for `person`: stored (hashed), then the cookie to set.
pub async fn start(state: &AppState, person: &Person) -> Result<(HeaderValue, i64), AppError> {
    let token = auth::random_token(32);
    let now = now_ms();
    let expires_at = now + state.sessions.settings.max_age().as_millis() as i64;
    let session = NewSession {
        hash: auth::hash(&token),
        person_id: person.id.clone(),
        created_at: now,
        expires_at,
    };
    crate::api::written(state.store.start_session(&session)).await?;
    Ok((state.sessions.cookie(Some(&token)), expires_at))
}

/// 429 for a locked-out sign-in, saying what is locked and when to retry.
pub fn locked_out(retry_after_secs: u64, what: &str) -> Response {
    let body = duet_protocol::ErrorBody {
        error: duet_protocol::ErrorDetail {
            code: "sign_in_locked".to_owned(),
            message: format!(
                "too many failed sign-ins for this {what}; try again in {retry_after_secs} s"
            ),
        },
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after_secs.into());
    response
}

/// Whether a staff role may do what the admin-or-interviewer paths allow.
pub fn leads(role: StaffRole) -> bool {
    matches!(role, StaffRole::Admin | StaffRole::Interviewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn emails_are_kept_in_one_form_and_nonsense_is_refused() {
        assert_eq!(
            normalized_email("  Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert_eq!(normalized_email(bad), None, "{bad:?}");
        }
    }
}
