//! Tokens: minting, hashing, and finding out who a request speaks for: a role token, the admin
//! token (the break-glass credential), or a staff member signed in by session or personal
//! token ([`crate::session`]).
//!
//! A token is 256 bits from the operating system's CSPRNG, base64url-encoded. Only its SHA-256
//! is stored. Per-interview endpoints take a role token as `Authorization: Bearer T` or
//! `?token=T` (browsers cannot set headers on websockets); the admin token is taken only from
//! the header (a query string ends up in proxy logs and browser history).
//!
//! Guessing the admin token (the one token a person may choose) is throttled per source address
//! ([`AuthThrottle`], applied to every route by [`throttle_failures`]): each wrong admin token
//! spends one of the address's allowance, which refills steadily; an address with none left is
//! answered 429 with `Retry-After` before any token it sends is even looked at, so guessing
//! cannot go faster than the refill. Every failed authentication is logged.

use crate::error::AppError;
use crate::session;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use duet_protocol::{InterviewId, Person, Role, StaffRole};
use duet_store::TokenHash;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time whatever the contents.
pub fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of a request: the bearer header first, then the `token` query parameter.
pub fn token_of(parts: &Parts) -> Option<String> {
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return bearer_of(parts);
    }
    let query = parts.uri.query()?;
    url_query_value(query, "token")
}

/// The token in the `Authorization: Bearer` header only (the admin token's one way in).
fn bearer_of(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The token of an admin endpoint: from the header only. A token in the query string is
/// refused with a message that says where it belongs (and counts as a failed attempt).
fn admin_token_of(parts: &Parts, missing: &'static str) -> Result<String, AppError> {
    if let Some(token) = bearer_of(parts) {
        return Ok(token);
    }
    let in_query = parts
        .uri
        .query()
        .and_then(|q| url_query_value(q, "token"))
        .is_some();
    match in_query {
        true => Err(AppError::AdminUnauthorized(
            "this endpoint takes its token only as Authorization: Bearer <token>, never in the query string",
        )),
        false => Err(AppError::Unauthorized(missing)),
    }
}

fn url_query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        // Tokens are base64url: no percent-escapes to undo.
        (k == key && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Which interview and role a token hash belongs to, looked up on a blocking thread.
async fn lookup(
    state: &AppState,
    hashed: TokenHash,
) -> Result<Option<(InterviewId, Role)>, AppError> {
    let store = state.store.clone();
    crate::api::blocking(move || store.find_token(&hashed)).await
}

/// Who an admin request speaks for.
#[derive(Debug, Clone)]
pub enum AdminActor {
    /// The admin token: the break-glass credential.
    Token,
    /// A signed-in admin (a session or their personal token).
    Person(Person),
}

impl AdminActor {
    /// How the audit log names it.
    pub fn name(&self) -> String {
        match self {
            AdminActor::Token => "admin-token".to_owned(),
            AdminActor::Person(p) => p.email.clone(),
        }
    }
}

/// The staff member a request's personal token or session names. A personal token that is
/// unknown or revoked is 401 here (not a guess at the admin token: it is 256 random bits).
async fn staff(state: &AppState, parts: &Parts) -> Result<Option<session::Staff>, AppError> {
    let presented = token_of(parts);
    if presented
        .as_deref()
        .is_some_and(|t| !t.starts_with(session::API_TOKEN_PREFIX))
    {
        return Ok(None);
    }
    match session::staff_of(state, parts).await? {
        Some(staff) => Ok(Some(staff)),
        None if presented.is_some() => {
            Err(AppError::Unauthorized("unknown or revoked personal token"))
        }
        None => Ok(None),
    }
}

/// Checks for an admin: the admin token, or a signed-in admin (session or personal token). A
/// role token, or a person who is not an admin, lacks the capability: 403.
pub async fn require_admin(state: &AppState, parts: &Parts) -> Result<AdminActor, AppError> {
    if let Some(staff) = staff(state, parts).await? {
        return match staff.person.role {
            StaffRole::Admin => Ok(AdminActor::Person(staff.person)),
            _ => Err(AppError::Forbidden("this needs an admin")),
        };
    }
    let token = admin_token_of(
        parts,
        "missing admin token: send Authorization: Bearer <token>, or sign in",
    )?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) {
        return Ok(AdminActor::Token);
    }
    match lookup(state, hashed).await? {
        Some(_) => Err(AppError::Forbidden(
            "this needs the admin token, not an interview's role token",
        )),
        None => Err(AppError::AdminUnauthorized("invalid admin token")),
    }
}

/// The admin token, any interview's interviewer token, or a signed-in admin or interviewer
/// (the question bank is theirs to read).
pub async fn require_admin_or_interviewer(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    if let Some(staff) = staff(state, parts).await? {
        return match session::leads(staff.person.role) {
            true => Ok(()),
            false => Err(AppError::Forbidden(
                "the question bank is for the admin and interviewers",
            )),
        };
    }
    let token = admin_token_of(
        parts,
        "missing token: send Authorization: Bearer <token>, or sign in",
    )?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) {
        return Ok(());
    }
    match lookup(state, hashed).await? {
        Some((_, Role::Interviewer)) => Ok(()),
        Some(_) => Err(AppError::Forbidden(
            "the question bank is for the admin and interviewers",
        )),
        None => Err(AppError::AdminUnauthorized("invalid token")),
    }
}

/// Anyone known: the admin token, any interview's role token, or anyone signed in (a session
/// or a personal token). What it guards is not secret, only not public.
pub async fn require_anyone(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    if staff(state, parts).await?.is_some() {
        return Ok(());
    }
    let token = admin_token_of(
        parts,
        "missing token: send Authorization: Bearer <token>, or sign in",
    )?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) || lookup(state, hashed).await?.is_some() {
        return Ok(());
    }
    Err(AppError::AdminUnauthorized("invalid token"))
}

/// The role a staff member has in the interview `id` names: an admin's is the interviewer's
/// in every interview; anyone else's is their seat on its panel. No such interview, or no
/// seat on it: 404 (whether it exists is not revealed).
pub async fn seat_in(
    state: &AppState,
    person: &Person,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let interview = InterviewId::parse(id).ok_or(AppError::NotFound("no such interview"))?;
    let store = state.store.clone();
    let (lookup, person_id, admin) = (
        interview.clone(),
        person.id.clone(),
        person.role == StaffRole::Admin,
    );
    let role = crate::api::blocking(move || {
        if admin {
            let exists = store.get_interview(&lookup)?.is_some();
            return Ok(exists.then_some(Role::Interviewer));
        }
        store.seat(&lookup, &person_id)
    })
    .await?;
    let role = role.ok_or(AppError::NotFound("no such interview"))?;
    Ok((interview, role))
}

/// Marks an answer as a failed guess at the admin token, for [`throttle_failures`].
#[derive(Debug, Clone, Copy)]
pub struct AdminGuessFailed;

/// Finds the role a request has in the interview `id` names: by its role token, or for staff
/// (a personal token, or the session cookie when no token is sent) by [`seat_in`].
/// No or unknown token: 401. A token of another interview: 404 (its existence is not revealed).
pub async fn role_in(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let (interview, role, _) = access_in(state, parts, id).await?;
    Ok((interview, role))
}

/// [`role_in`], with the id of the staff member the request speaks for (none for a role
/// token).
pub async fn access_in(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role, Option<String>), AppError> {
    let (interview, role, staff) = access_as(state, parts, id).await?;
    Ok((interview, role, staff.map(|s| s.person.id)))
}

/// [`role_in`], with the staff member the request speaks for and how they signed in (none for
/// a role token): a websocket they open closes when they are disabled or sign out.
pub async fn access_as(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role, Option<session::Staff>), AppError> {
    if let Some(staff) = staff(state, parts).await? {
        let (interview, role) = seat_in(state, &staff.person, id).await?;
        return Ok((interview, role, Some(staff)));
    }
    let token = token_of(parts).ok_or(AppError::Unauthorized(
        "missing token: send Authorization: Bearer <token> or ?token=<token>, or sign in",
    ))?;
    let found = lookup(state, hash(&token)).await?;
    let (interview, role) = found.ok_or(AppError::Unauthorized("invalid token"))?;
    if interview.as_str() != id {
        return Err(AppError::NotFound("no such interview"));
    }
    Ok((interview, role, None))
}

/// Failures allowed per key: a burst of `burst`, refilled steadily at `burst` per `window`.
/// Keys are remembered in a bounded map; past the bound, fully refilled entries are forgotten
/// first and new keys then share one allowance (the `None` key's), so a flood of keys cannot
/// grow memory. Used per source address for admin-token guesses ([`AuthThrottle`]) and, in
/// [`crate::session`], per address and per account for sign-ins.
pub struct KeyedThrottle<K> {
    burst: u32,
    window: std::time::Duration,
    max_keys: usize,
    buckets: Mutex<HashMap<Option<K>, Bucket>>,
}

/// Failed admin-token guesses per source address, a burst of `per_minute` refilled at
/// `per_minute` a minute. Addresses are remembered in a bounded map (IPv6 by /64, which one
/// host typically holds whole).
pub struct AuthThrottle {
    inner: KeyedThrottle<Source>,
}

/// Where failures are counted: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(Ipv4Addr),
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, as of `at`.
    allowance: f64,
    at: Instant,
}

impl<K: std::hash::Hash + Eq + Clone> KeyedThrottle<K> {
    /// Keys remembered at most.
    pub const MAX_KEYS: usize = 16_384;

    pub fn new(burst: u32, window: std::time::Duration) -> KeyedThrottle<K> {
        KeyedThrottle {
            burst: burst.max(1),
            window: window.max(std::time::Duration::from_millis(1)),
            max_keys: Self::MAX_KEYS,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.burst) / self.window.as_secs_f64()
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.allowance + elapsed * self.rate_per_sec()).min(f64::from(self.burst))
    }

    /// `None` if `key` may try now; otherwise the whole seconds until it may. The `None` key
    /// is the allowance shared by everyone not remembered.
    pub fn blocked_for(&self, key: Option<K>, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = match buckets.get(&key) {
            Some(bucket) => *bucket,
            // Not remembered while the map is full: it shares the allowance of the rest.
            None if buckets.len() >= self.max_keys => *buckets.get(&None)?,
            None => return None,
        };
        let allowance = self.refilled(bucket, now);
        (allowance < 1.0).then(|| ((1.0 - allowance) / self.rate_per_sec()).ceil().max(1.0) as u64)
    }

    /// Spends one failure of `key`'s allowance. True when that used up the last of it.
    pub fn failed(&self, mut key: Option<K>, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_keys {
            let full = f64::from(self.burst);
            buckets.retain(|_, b| self.refilled(*b, now) < full);
            if buckets.len() >= self.max_keys {
                key = None; // the shared allowance of everyone not remembered
            }
        }
        let fresh = Bucket {
            allowance: f64::from(self.burst),
            at: now,
        };
        let bucket = buckets.entry(key).or_insert(fresh);
        let allowance = self.refilled(*bucket, now) - 1.0;
        *bucket = Bucket {
            allowance: allowance.max(-1.0),
            at: now,
        };
        allowance < 1.0
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AuthThrottle {
    /// Addresses remembered at most.
    pub const MAX_ADDRESSES: usize = KeyedThrottle::<Source>::MAX_KEYS;

    pub fn per_minute(per_minute: u32) -> AuthThrottle {
        AuthThrottle {
            inner: KeyedThrottle::new(per_minute, std::time::Duration::from_secs(60)),
        }
    }

    /// `None` if `ip` may try a token now; otherwise the whole seconds until it may.
    pub fn blocked_for(&self, ip: Option<IpAddr>, now: Instant) -> Option<u64> {
        self.inner.blocked_for(ip.map(Source::of), now)
    }

    /// Spends one failure of `ip`'s allowance. True when that used up the last of it.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) -> bool {
        self.inner.failed(ip.map(Source::of), now)
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Whether a request presents a token at all (a header or `?token=`).
fn carries_token(request: &Request) -> bool {
    request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        || request
            .uri()
            .query()
            .is_some_and(|q| url_query_value(q, "token").is_some())
}

/// Middleware: refuses a request that presents a token from an address out of allowance (429,
/// `Retry-After`), logs each 401 (the path, never the token or the query), and counts the
/// failed guesses at the admin token. A wrong role token is not counted: role tokens are 256
/// random bits, beyond guessing, and a page left open on a replaced or deleted link retries
/// with its dead token, which must not lock out everyone behind the same address.
pub async fn throttle_failures(
    State(throttle): State<Arc<AuthThrottle>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if carries_token(&request) {
        if let Some(retry_after_secs) = throttle.blocked_for(ip, Instant::now()) {
            return too_many_failures(retry_after_secs);
        }
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        let guess = response.extensions().get::<AdminGuessFailed>().is_some();
        let exhausted = guess && throttle.failed(ip, Instant::now());
        let peer = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        tracing::warn!(%peer, %method, %path, admin = guess, exhausted, "authentication failed");
    }
    response
}

fn too_many_failures(retry_after_secs: u64) -> Response {
    let body = duet_protocol::ErrorBody {
        error: duet_protocol::ErrorDetail {
            code: "too_many_auth_failures".to_owned(),
            message: format!(
                "too many failed authentications from this address; retry in {retry_after_secs} s"
            ),
        },
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_address_is_held_to_its_allowance_and_refills_steadily() {
        let throttle = AuthThrottle::per_minute(6); // one every 10 s
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        for n in 0..5 {
            assert!(
                !throttle.failed(ip, t0),
                "failure {n} leaves some allowance"
            );
            assert_eq!(throttle.blocked_for(ip, t0), None);
        }
        assert!(throttle.failed(ip, t0), "the sixth uses it up");
        assert_eq!(throttle.blocked_for(ip, t0), Some(10));
        assert_eq!(
            throttle.blocked_for(Some(IpAddr::from([10, 0, 0, 2])), t0),
            None,
            "another address is not held"
        );
        assert_eq!(throttle.blocked_for(ip, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn the_map_of_addresses_stays_bounded() {
        let mut throttle = AuthThrottle::per_minute(2);
        throttle.inner.max_keys = 8;
        let t0 = Instant::now();
        for n in 0..100u32 {
            throttle.failed(Some(IpAddr::from(n.to_be_bytes())), t0);
        }
        assert!(throttle.len() <= 9, "{} remembered", throttle.len());
        // Those past the bound share one allowance, which is now spent.
        assert!(throttle
            .blocked_for(Some(IpAddr::from([9, 9, 9, 9])), t0)
            .is_some());
    }

    #[test]
    fn one_ipv6_host_is_one_source() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0; 16]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 16]));
        assert_eq!(Source::of(a), Source::of(b));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap_or(IpAddr::from([0; 16]));
        assert_eq!(Source::of(mapped), Source::V4(Ipv4Addr::LOCALHOST));
    }
}
