//! Tokens: minting, hashing, and finding out who a request speaks for.
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
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use duet_protocol::{InterviewId, Role};
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

/// Checks the admin token. A role token is known but lacks the capability: 403.
pub async fn require_admin(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    let token = admin_token_of(
        parts,
        "missing admin token: send Authorization: Bearer <token>",
    )?;
    let hashed = hash(&token);
    if hashes_equal(&hashed, &state.admin_hash) {
        return Ok(());
    }
    match lookup(state, hashed).await? {
        Some(_) => Err(AppError::Forbidden(
            "this needs the admin token, not an interview's role token",
        )),
        None => Err(AppError::AdminUnauthorized("invalid admin token")),
    }
}

/// The admin token, or any interview's interviewer token (the question bank is theirs to read).
pub async fn require_admin_or_interviewer(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    let token = admin_token_of(parts, "missing token: send Authorization: Bearer <token>")?;
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

/// Marks an answer as a failed guess at the admin token, for [`throttle_failures`].
#[derive(Debug, Clone, Copy)]
pub struct AdminGuessFailed;

/// Finds the role a request has in the interview `id` names.
/// No or unknown token: 401. A token of another interview: 404 (its existence is not revealed).
pub async fn role_in(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let token = token_of(parts).ok_or(AppError::Unauthorized(
        "missing token: send Authorization: Bearer <token> or ?token=<token>",
    ))?;
    let found = lookup(state, hash(&token)).await?;
    let (interview, role) = found.ok_or(AppError::Unauthorized("invalid token"))?;
    if interview.as_str() != id {
        return Err(AppError::NotFound("no such interview"));
    }
    Ok((interview, role))
}

/// Failed authentications allowed per source address: a burst of `per_minute`, refilled at
/// `per_minute` a minute. Addresses are remembered in a bounded map (IPv6 by /64, which one
/// host typically holds whole); past the bound, fully refilled entries are forgotten first and
/// new addresses then share one allowance, so a flood of addresses cannot grow memory.
pub struct AuthThrottle {
    per_minute: u32,
    max_addresses: usize,
    buckets: Mutex<HashMap<Option<Source>, Bucket>>,
}

/// Where failures are counted: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(Ipv4Addr),
    V6(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
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

impl AuthThrottle {
    /// Addresses remembered at most.
    pub const MAX_ADDRESSES: usize = 16_384;

    pub fn per_minute(per_minute: u32) -> AuthThrottle {
        AuthThrottle {
            per_minute: per_minute.max(1),
            max_addresses: Self::MAX_ADDRESSES,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.allowance + elapsed * self.rate_per_sec()).min(f64::from(self.per_minute))
    }

    /// `None` if `ip` may try a token now; otherwise the whole seconds until it may.
    pub fn blocked_for(&self, ip: Option<IpAddr>, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = ip.map(Source::of);
        let bucket = match buckets.get(&key) {
            Some(bucket) => *bucket,
            // Not remembered while the map is full: it shares the allowance of the rest.
            None if buckets.len() >= self.max_addresses => *buckets.get(&None)?,
            None => return None,
        };
        let allowance = self.refilled(bucket, now);
        (allowance < 1.0).then(|| ((1.0 - allowance) / self.rate_per_sec()).ceil().max(1.0) as u64)
    }

    /// Spends one failure of `ip`'s allowance. True when that used up the last of it.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = ip.map(Source::of);
        if !buckets.contains_key(&key) && buckets.len() >= self.max_addresses {
            let full = f64::from(self.per_minute);
            buckets.retain(|_, b| self.refilled(*b, now) < full);
            if buckets.len() >= self.max_addresses {
                key = None; // the shared allowance of everyone not remembered
            }
        }
        let fresh = Bucket {
            allowance: f64::from(self.per_minute),
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

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        throttle.max_addresses = 8;
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
