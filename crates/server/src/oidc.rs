//! Sign-in with the team's identity provider: OpenID Connect, authorization code with PKCE, by
//! the `openidconnect` crate (discovery, the token exchange, and the ID token's checks:
//! signature against the provider's published keys, issuer, audience, expiry, nonce).
//!
//! `GET /api/oidc/start` keeps a pending sign-in (its PKCE verifier, nonce and where to go
//! after) under a random `state`, binds it to the browser with a short-lived HttpOnly cookie
//! holding that state, and redirects to the provider. `GET /api/oidc/callback` takes the pending
//! sign-in out (so a state works once), checks the cookie names the same state (a state forged,
//! replayed, or carried to another browser is refused), exchanges the code, verifies the ID
//! token and signs the person in with a session as a password sign-in would. The person is
//! found by the ID token's `email` (refused when the provider says it is not verified); an
//! unknown address is created as an interviewer only with `--oidc-create-people` and only in
//! `--oidc-allowed-domains` (when set). Failures go back to `/signin?oidc_error=<code>`.

use crate::config::OidcArgs;
use crate::error::AppError;
use crate::people_api::audit;
use crate::rooms::now_ms;
use crate::{auth, session, AppState};
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_protocol::{AuditAction, Person, PersonState, StaffRole};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a started sign-in may take at the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Sign-ins pending at once at most (the oldest are dropped past it).
const MAX_PENDING: usize = 10_000;
/// The cookie that binds a pending sign-in to the browser that started it.
const STATE_COOKIE: &str = "duet_oidc_state";

/// The provider, once discovered, and the sign-ins under way.
pub struct Oidc {
    args: OidcArgs,
    redirect: String,
    metadata: tokio::sync::OnceCell<CoreProviderMetadata>,
    http: openidconnect::reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
}

struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: String,
    at: Instant,
}

/// Why a sign-in through the provider failed, as `/signin?oidc_error=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No pending sign-in for this state in this browser: forged, replayed, or expired.
    State,
    /// The provider answered an error, or the code exchange failed.
    Provider,
    /// The provider's ID token was refused (and why: expired, for another audience, for
    /// another sign-in's nonce, wrongly signed, or another check).
    IdToken(TokenFault),
    /// The ID token names no verified email.
    NoEmail,
    /// The address is outside the allowed domains.
    Domain,
    /// Nobody here has the address, and people are not created on first sign-in.
    Unknown,
    /// The person is disabled.
    Disabled,
}

/// What was wrong with a refused ID token (for the audit log and the server's log; the
/// browser is told only that the token was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// Past its expiry.
    Expired,
    /// Issued for another client.
    Audience,
    /// Not issued for this sign-in (its nonce is another's, or missing).
    Nonce,
    /// Its signature does not verify against the provider's published keys.
    Signature,
    /// Another of the checks (issuer, subject, algorithm) failed.
    Other,
}

impl TokenFault {
    fn of(e: &openidconnect::ClaimsVerificationError) -> TokenFault {
        use openidconnect::ClaimsVerificationError as E;
        match e {
            E::Expired(_) => TokenFault::Expired,
            E::InvalidAudience(_) => TokenFault::Audience,
            E::InvalidNonce(_) => TokenFault::Nonce,
            E::SignatureVerification(_) => TokenFault::Signature,
            _ => TokenFault::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenFault::Expired => "expired",
            TokenFault::Audience => "for another audience",
            TokenFault::Nonce => "for another sign-in (nonce)",
            TokenFault::Signature => "wrongly signed",
            TokenFault::Other => "failed a check",
        }
    }
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::State => "state",
            Refusal::Provider => "provider",
            Refusal::IdToken(_) => "id_token",
            Refusal::NoEmail => "no_email",
            Refusal::Domain => "domain",
            Refusal::Unknown => "unknown",
            Refusal::Disabled => "disabled",
        }
    }
}

impl Oidc {
    /// The provider of the flags, if they name one (issuer and client id both set).
    pub fn from_args(args: &OidcArgs, public_url: &str) -> anyhow::Result<Option<Oidc>> {
        if args.issuer.is_none() || args.client_id.is_none() {
            return Ok(None);
        }
        // The provider's answers are read, never followed elsewhere (no SSRF through redirects).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Some(Oidc {
            args: args.clone(),
            redirect: format!("{}/api/oidc/callback", public_url.trim_end_matches('/')),
            metadata: tokio::sync::OnceCell::new(),
            http,
            pending: Mutex::new(HashMap::new()),
        }))
    }

    async fn metadata(&self) -> Result<&CoreProviderMetadata, AppError> {
        self.metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.args.issuer.clone().unwrap_or_default())
                    .map_err(|e| failed("reading --oidc-issuer", e))?;
                CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| failed("discovering the OpenID provider", e))
            })
            .await
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn failed(doing: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Failed {
        doing,
        source: Box::new(e),
    }
}

fn oidc(state: &AppState) -> Result<&Oidc, AppError> {
    state.oidc.as_deref().ok_or(AppError::NotFound(
        "sign-in with an identity provider is not set up here",
    ))
}

/// `GET /api/oidc`: whether sign-in through an identity provider is on.
pub async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "enabled": state.oidc.is_some() }))
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /api/oidc/start?next=/me`: off to the provider.
pub async fn start(
    State(state): State<AppState>,
    Query(query): Query<StartQuery>,
) -> Result<Response, AppError> {
    let oidc = oidc(&state)?;
    let metadata = oidc.metadata().await?.clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(oidc.args.client_id.clone().unwrap_or_default()),
        oidc.args
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.0.clone())),
    )
    .set_redirect_uri(
        RedirectUrl::new(oidc.redirect.clone()).map_err(|e| failed("the redirect URL", e))?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let next = query
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"))
        .unwrap_or_else(|| "/me".to_owned());
    {
        let mut pending = oidc.pending();
        let now = Instant::now();
        pending.retain(|_, p| now.duration_since(p.at) < PENDING_FOR);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            csrf.secret().clone(),
            Pending {
                verifier,
                nonce,
                next,
                at: now,
            },
        );
    }
    let cookie = format!(
        "{STATE_COOKIE}={}; Path=/api/oidc; HttpOnly; SameSite=Lax; Max-Age={}{}",
        csrf.secret(),
        PENDING_FOR.as_secs(),
        if state.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        }
    );
    Ok(redirect(url.as_str(), Some(cookie)))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    for cookie in cookie.into_iter() {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /api/oidc/callback`: back from the provider.
pub async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let oidc = oidc(&state)?;
    let clear = format!("{STATE_COOKIE}=; Path=/api/oidc; HttpOnly; SameSite=Lax; Max-Age=0");
    match signed_in(&state, oidc, &parts, query).await {
        Ok((person, next)) => {
            let (cookie, _) = session::start(&state, &person).await?;
            audit(
                &state,
                person.email.clone(),
                AuditAction::SignedIn,
                Some("identity provider".into()),
                Some(&parts),
            )
            .await;
            let mut response = redirect(&next, Some(clear));
            response.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Err((refusal, who)) => {
            tracing::warn!(
                refusal = refusal.code(),
                "identity provider sign-in refused"
            );
            let target = Some(match refusal {
                Refusal::IdToken(fault) => {
                    format!("identity provider: ID token {}", fault.name())
                }
                _ => format!("identity provider: {}", refusal.code()),
            });
            audit(
                &state,
                who.unwrap_or_else(|| "unknown".into()),
                AuditAction::SignInFailed,
                target,
                Some(&parts),
            )
            .await;
            Ok(redirect(
                &format!("/signin?oidc_error={}", refusal.code()),
                Some(clear),
            ))
        }
    }
}

type Refused = (Refusal, Option<String>);

async fn signed_in(
    state: &AppState,
    oidc: &Oidc,
    parts: &Parts,
    query: CallbackQuery,
) -> Result<(Person, String), Refused> {
    let Some(csrf) = query.state else {
        return Err((Refusal::State, None));
    };
    // The pending sign-in goes whatever happens next: a state works once.
    let pending = oidc.pending().remove(&csrf);
    let bound = cookie(parts, STATE_COOKIE)
        .is_some_and(|c| auth::hashes_equal(&auth::hash(&c), &auth::hash(&csrf)));
    let Some(pending) = pending.filter(|p| bound && p.at.elapsed() < PENDING_FOR) else {
        return Err((Refusal::State, None));
    };
    if query.error.is_some() {
        return Err((Refusal::Provider, None));
    }
    let code = query.code.ok_or((Refusal::Provider, None))?;
    let metadata = oidc
        .metadata()
        .await
        .map_err(|_| (Refusal::Provider, None))?
        .clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(oidc.args.client_id.clone().unwrap_or_default()),
        oidc.args
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.0.clone())),
    )
    .set_redirect_uri(
        RedirectUrl::new(oidc.redirect.clone()).map_err(|_| (Refusal::Provider, None))?,
    );
    let exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| (Refusal::Provider, None))?
        .set_pkce_verifier(pending.verifier)
        .request_async(&oidc.http)
        .await;
    let tokens = exchange.map_err(|e| {
        tracing::warn!(error = %e, "identity provider: the code exchange failed");
        (Refusal::Provider, None)
    })?;
    let id_token = tokens.id_token().ok_or((Refusal::Provider, None))?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &pending.nonce).map_err(|e| {
        tracing::warn!(error = %e, "identity provider: the ID token was refused");
        (Refusal::IdToken(TokenFault::of(&e)), None)
    })?;
    let email = claims
        .email()
        .filter(|_| claims.email_verified() != Some(false))
        .and_then(|e| session::normalized_email(e.as_str()))
        .ok_or((Refusal::NoEmail, None))?;
    let who = Some(email.clone());
    let domain = email.rsplit('@').next().unwrap_or_default().to_owned();
    let allowed = oidc.args.allowed_domains.is_empty()
        || oidc.args.allowed_domains.iter().any(|d| {
            d.trim()
                .trim_start_matches('@')
                .eq_ignore_ascii_case(&domain)
        });
    if !allowed {
        return Err((Refusal::Domain, who));
    }
    let store = state.store.clone();
    let lookup = email.clone();
    let found = crate::api::blocking(move || store.person_by_email(&lookup))
        .await
        .map_err(|_| (Refusal::Provider, who.clone()))?;
    let person = match found {
        Some((person, _)) if person.state == PersonState::Active => person,
        Some(_) => return Err((Refusal::Disabled, who)),
        None if oidc.args.create_people => {
            let name = claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().trim().chars().take(100).collect::<String>())
                .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
                .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let person = Person {
                id: auth::random_token(12),
                email: email.clone(),
                name,
                role: StaffRole::Interviewer,
                state: PersonState::Active,
                created_at: now_ms(),
                password_set: false,
            };
            crate::api::written(state.store.add_person(&person))
                .await
                .map_err(|_| (Refusal::Provider, who.clone()))?;
            let target = Some(format!("{} (interviewer, first sign-in)", person.email));
            audit(
                state,
                "identity provider".into(),
                AuditAction::PersonAdded,
                target,
                Some(parts),
            )
            .await;
            person
        }
        None => return Err((Refusal::Unknown, who)),
    };
    Ok((person, pending.next))
}

/// A cookie's value by name.
fn cookie(parts: &Parts, name: &str) -> Option<String> {
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
