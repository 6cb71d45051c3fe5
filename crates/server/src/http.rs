//! The HTTP connection loop: axum's router on hyper's HTTP/1 connections, with what
//! `axum::serve` does not offer: a deadline for a request's headers that also closes idle
//! keep-alive connections (so silent connections cannot pile up), and a cap on open connections
//! (further ones wait in the kernel's accept queue). Websocket upgrades leave this loop's
//! deadlines behind; their own ping and pong deadline keep them honest.

use crate::config::HttpLimits;
use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long, after shutdown begins, open HTTP requests get to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` fires, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            _ = shutdown.cancelled() => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // moment rather than spin (as axum::serve does).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Keystrokes are tiny writes: without TCP_NODELAY, Nagle's algorithm holds them for the
        // peer's delayed ACK (tens of milliseconds).
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: Request<Incoming>| req.map(Body::new)),
        );
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    connections.close();
    let _ = tokio::time::timeout(DRAIN, connections.wait()).await;
}

/// Raises the soft limit on open files to the hard one, so the connection cap, not the file
/// limit, is what bounds connections. Returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}
