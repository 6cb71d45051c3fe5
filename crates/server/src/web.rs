//! Serving the browser app (built by `npm run build` in `web/` into `--web-dir`), and the
//! websocket `Origin` check.
//!
//! The app is a single page: `/`, `/admin`, `/interview/{id}`, `/replay/{id}` and
//! `/debrief/...` all answer `index.html`, whose script reads the path and the token from the
//! URL fragment. Only files under `assets/` are served besides it, and only those whose name
//! carries Vite's content hash are cached for long. Every page answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only, no inline script, network
//! only to this origin and its websockets) and `Referrer-Policy: no-referrer`.
//!
//! What does not belong here: API handlers (api.rs), the app itself (web/).

use crate::error::AppError;
use crate::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;

/// Where `index.html` wants the style nonce.
const NONCE_SLOT: &str = "__DUET_CSP_NONCE__";

/// Pages the app draws from `index.html`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let index = state.config.web_dir.join("index.html");
    match tokio::fs::read(&index).await {
        Ok(body) => {
            // A fresh nonce per answer for the editor's own <style> elements (CodeMirror
            // writes its theme into them and takes the nonce from a meta tag).
            let nonce = crate::auth::random_token(18);
            let body = String::from_utf8_lossy(&body).replace(NONCE_SLOT, &nonce);
            let mut response =
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
            page_headers(&mut response, &headers, Some(&nonce));
            response
        }
        Err(e) => {
            tracing::warn!(path = %index.display(), error = %e, "the browser app is not built");
            let message = format!(
                "Duet's browser app is not built (no {}).\n\n\
                 Build it with:  cd web && npm ci && npm run build\n\
                 (scripts/serve does this for you), or point --web-dir / DUET_WEB_DIR at a built copy.\n\n\
                 The API and the Yjs websocket work meanwhile: see docs/API.md.\n",
                index.display()
            );
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response();
            page_headers(&mut response, &headers, None);
            response
        }
    }
}

/// The built assets, `assets/<name>`, by tower-http's `ServeDir`: a `.br` or `.gz` copy the
/// web build made beside each file is sent to a browser that takes it (the editor's bundle goes
/// out a third of its size) and nothing outside the folder is reachable. [`asset_headers`]
/// wraps it.
pub fn assets(web_dir: &std::path::Path) -> tower_http::services::ServeDir {
    tower_http::services::ServeDir::new(web_dir.join("assets"))
        .precompressed_br()
        .precompressed_gzip()
}

/// Around [`assets`]: no hidden names or odd characters, and a missing file, are the API's 404;
/// files whose name carries Vite's content hash are cached for a year and others revalidated;
/// no referrer.
pub async fn asset_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().trim_start_matches('/').to_owned();
    if safe_relative(&path).is_none() {
        return AppError::NotFound("no such asset").into_response();
    }
    let mut response = next.run(request).await;
    if response.status() == axum::http::StatusCode::NOT_FOUND {
        return AppError::NotFound("no such asset").into_response();
    }
    if response.status().is_success() {
        let name = path.rsplit('/').next().unwrap_or_default();
        let cache = if is_hashed(name) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(name)),
        );
    }
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A relative path of plain segments: no `..`, no hidden names, no backslashes.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for segment in path.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return None;
        }
        out.push(segment);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Vite names built files `name-HASH.ext` with an 8-character hash (which may itself hold `-`
/// or `_`): those never change.
fn is_hashed(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().as_bytes();
    stem.len() > 9
        && stem[stem.len() - 9] == b'-'
        && stem[stem.len() - 8..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn page_headers(response: &mut Response, request: &HeaderMap, nonce: Option<&str>) {
    // 'self' covers same-origin ws:/wss: in CSP 3; the host is named too for browsers that
    // predate that rule. Only a host made of host characters is echoed back.
    let host = request
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    let sockets = host
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    // Style elements need this answer's nonce (CodeMirror's theme). Style attributes are
    // allowed (`style-src-attr`): the remote-cursor widgets of y-codemirror.next colour
    // themselves through them. Neither can run script, and every load they could trigger
    // (url()) is still held to this origin by img-src and font-src.
    let style_nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'{style_nonce}; style-src-attr 'unsafe-inline'; \
         img-src 'self' data:; \
         font-src 'self'; connect-src 'self'{sockets}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// Refuses a websocket whose `Origin` is not this server's. Browsers always send `Origin` on a
/// websocket; non-browser clients (the stock node `y-websocket`) send none and stay allowed,
/// since the token is what authenticates them. The allowed origin is `DUET_PUBLIC_URL`'s; when
/// that is unset, the origin of the `Host` the request came to (a same-origin page).
pub fn check_origin(state: &AppState, parts: &Parts) -> Result<(), AppError> {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin_is_ours(state, parts, origin.to_str().unwrap_or_default());
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "websocket Origin is not this server's (DUET_PUBLIC_URL); open the app from its own address",
        ))
    }
}

/// Whether `origin` is this server's: `DUET_PUBLIC_URL`'s, or when that is unset, the origin
/// of the `Host` the request came to.
pub fn origin_is_ours(state: &AppState, parts: &Parts, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    match &state.config.public_url {
        Some(public) => origin_of(public).is_some_and(|o| o.eq_ignore_ascii_case(origin)),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| {
                origin.eq_ignore_ascii_case(&format!("http://{host}"))
                    || origin.eq_ignore_ascii_case(&format!("https://{host}"))
            }),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_paths_cannot_leave_the_folder() {
        assert!(safe_relative("index-abc12345.js").is_some());
        assert!(safe_relative("../secret").is_none());
        assert!(safe_relative("a/../../b").is_none());
        assert!(safe_relative(".env").is_none());
        assert!(safe_relative("a\\b").is_none());
        assert!(safe_relative("").is_none());
    }

    #[test]
    fn only_hashed_names_are_cached_for_long() {
        assert!(is_hashed("index-B3x_9aQz.js"));
        assert!(is_hashed("room-Ab-cdEfg.js"));
        assert!(!is_hashed("logo.svg"));
        assert!(!is_hashed("my-app.js"));
    }

    #[test]
    fn origins_come_from_the_public_url() {
        assert_eq!(
            origin_of("https://duet.example.com/base").as_deref(),
            Some("https://duet.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("nonsense"), None);
    }
}
