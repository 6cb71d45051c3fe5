//! Forwarding a request to the node that holds its room: a REST call is sent again with reqwest
//! (method, path, query, body, and the headers that carry who asks) and its answer handed back;
//! a websocket is opened to the same path on the holder with tokio-tungstenite first (so its
//! refusal, a 401 or a 404, reaches the client as it is), then the client's upgrade is accepted
//! and frames are relayed both ways until either side closes, and the close (its code and
//! reason) goes on to the other side.
//!
//! A holder that cannot be reached (connection refused, or no answer in time: its process died
//! or is paused) gives the request back untouched, for this node to serve once the holder's
//! lease lapses; a holder that is alive keeps its lease, and the request is answered 503.

use super::{Cluster, PROXIED};
use crate::AppState;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, protocol::WebSocketConfig};

/// Largest REST body forwarded (a run with its stdin; the route's own limit is checked again
/// by the holder).
const MAX_FORWARDED_BODY: usize = 512 * 1024;

/// How long the holder gets to accept a websocket.
const CONNECT: Duration = Duration::from_secs(2);

/// What came of forwarding.
pub enum Forwarded {
    /// The holder's answer (or this node's, if forwarding failed past the connection).
    Answered(Response),
    /// The holder could not be reached: the request, untouched, to serve here.
    OwnerDown(Request),
}

/// Whether the request asks for a websocket.
pub fn is_websocket(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Headers that describe one hop only and never travel on (RFC 9110 7.6.1), and the ones the
/// client library sets itself.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-extensions"
            | "sec-websocket-accept"
    )
}

/// The client's end-to-end headers (its token, cookie, Origin and Host go on as they are, so
/// the holder checks them as if it were asked directly), marked as forwarded.
fn forwarded_headers(from: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in from {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(PROXIED, HeaderValue::from_static("1"));
    headers
}

/// Forwards `request` to the room's holder at `owner`.
pub async fn forward(
    cluster: &Cluster,
    state: &AppState,
    owner: &str,
    request: Request,
) -> Forwarded {
    if is_websocket(&request) {
        websocket(cluster, state, owner, request).await
    } else {
        rest(cluster, owner, request).await
    }
}

async fn rest(cluster: &Cluster, owner: &str, request: Request) -> Forwarded {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Forwarded::Answered(
                crate::error::AppError::TooLarge(
                    "the request body is larger than this endpoint accepts".into(),
                )
                .into_response(),
            )
        }
    };
    let url = format!("{owner}{}", path_and_query_of(&parts.uri));
    let sent = cluster
        .http
        .request(parts.method.clone(), &url)
        .headers(forwarded_headers(&parts.headers))
        .body(bytes.clone())
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        // Not connected (its process died, or it is paused or cut off): the lease decides
        // whether it is gone; a holder alive but slow keeps renewing it and this ends in a 503.
        // A request that was sent and timed out is not sent again elsewhere: the holder may
        // have carried it out (a run started, a note added); the caller gets a 503 and decides.
        Err(e) if e.is_connect() => {
            return Forwarded::OwnerDown(Request::from_parts(parts, Body::from(bytes)))
        }
        Err(e) => {
            tracing::warn!(%owner, error = %e, "nodes: forwarding a request failed");
            return Forwarded::Answered(super::retry_soon(super::moving().into_response()));
        }
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    match answer.bytes().await {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Forwarded::Answered(response)
        }
        Err(e) => {
            tracing::warn!(%owner, error = %e, "nodes: reading a forwarded answer failed");
            Forwarded::Answered(super::retry_soon(super::moving().into_response()))
        }
    }
}

fn path_and_query_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

async fn websocket(
    cluster: &Cluster,
    state: &AppState,
    owner: &str,
    request: Request,
) -> Forwarded {
    let ws_owner = owner.replacen("http://", "ws://", 1);
    let url = format!("{ws_owner}{}", path_and_query_of(request.uri()));
    let mut upstream_request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%owner, error = %e, "nodes: the holder's websocket URL is unusable");
            return Forwarded::Answered(super::retry_soon(super::moving().into_response()));
        }
    };
    for (name, value) in forwarded_headers(request.headers()) {
        if let Some(name) = name {
            upstream_request.headers_mut().insert(name, value);
        }
    }
    let limit = state.config.ws.max_message_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let connected = tokio::time::timeout(
        CONNECT,
        tokio_tungstenite::connect_async_with_config(upstream_request, Some(config), true),
    )
    .await;
    let upstream = match connected {
        Ok(Ok((upstream, _))) => upstream,
        Ok(Err(tungstenite::Error::Http(answer))) => {
            // The holder refused (a bad token, no such interview, too many sockets): the same
            // answer, here.
            let (parts, body) = answer.into_parts();
            let mut response = Response::new(Body::from(body.unwrap_or_default()));
            *response.status_mut() = parts.status;
            for (name, value) in &parts.headers {
                if !hop_by_hop(name) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            return Forwarded::Answered(response);
        }
        Ok(Err(tungstenite::Error::Io(_))) | Err(_) => return Forwarded::OwnerDown(request),
        Ok(Err(e)) => {
            tracing::warn!(%owner, error = %e, "nodes: opening the holder's websocket failed");
            return Forwarded::Answered(super::retry_soon(super::moving().into_response()));
        }
    };
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Forwarded::Answered(rejection.into_response()),
    };
    let shutdown = cluster.shutdown.clone();
    let silent = state.config.ws.peer_deadline();
    let response = upgrade
        .read_buffer_size(crate::ws::READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |client| relay(client, upstream, shutdown, silent));
    Forwarded::Answered(response)
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Relays frames both ways until either side closes or goes; then both are closed. The
/// holder's pings reach the client through the relay, but this node's own websocket client
/// answers them too, so the holder cannot tell a client that vanished: the relay gives the
/// client up itself when no frame at all (not even a pong) came from it within `silent` (the
/// holder's own deadline for its direct peers).
async fn relay(
    client: WebSocket,
    upstream: Upstream,
    shutdown: tokio_util::sync::CancellationToken,
    silent: std::time::Duration,
) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let up = async {
        while let Ok(Some(Ok(message))) = tokio::time::timeout(silent, client_rx.next()).await {
            let closing = matches!(message, Message::Close(_));
            if upstream_tx.send(to_upstream(message)).await.is_err() || closing {
                break;
            }
        }
    };
    let down = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let Some(message) = from_upstream(message) else {
                continue;
            };
            let closing = matches!(message, Message::Close(_));
            if client_tx.send(message).await.is_err() || closing {
                break;
            }
        }
    };
    let mut stopping = false;
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = shutdown.cancelled() => stopping = true,
    }
    if stopping {
        let _ = client_tx
            .send(Message::Close(Some(CloseFrame {
                code: duet_protocol::close::GOING_AWAY,
                reason: "server shutting down".into(),
            })))
            .await;
    }
    // Whichever side ended, the other is closed too (a close already sent makes this a no-op).
    let _ = client_tx.close().await;
    let _ = upstream_tx.close().await;
}

fn to_upstream(message: Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::text(text.as_str()),
        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
        Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|f| tungstenite::protocol::CloseFrame {
                code: f.code.into(),
                reason: f.reason.as_str().into(),
            }))
        }
    }
}

fn from_upstream(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(text) => Message::Text(text.as_str().into()),
        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
        tungstenite::Message::Close(frame) => Message::Close(frame.map(|f| CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}
