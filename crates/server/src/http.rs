//! The HTTP connection loop: axum's router on hyper's HTTP/1 connections, with what
//! `axum::serve` does not offer: a deadline for a request's headers that also closes idle
//! keep-alive connections (so silent connections cannot pile up), and a cap on open connections
//! (websockets included: a connection's slot travels with its socket through an upgrade).
//!
//! The cap is the smaller of `--max-connections` and what the open-file limit leaves once a
//! reserve is set aside for the store, the Docker engine and the listener
//! ([`effective_connection_cap`]), so connections can never take the descriptors the rest of
//! the server needs. At the cap a new connection is still accepted: it takes the place of the
//! oldest connection that has not sent a single request yet (a silent one), or, when every
//! connection is in use, is answered a fixed 503 and closed (a few such answers at a time, each
//! bounded in time; past that, closed without a word). So a pile of silent connections never
//! keeps `/healthz` or a person out, and refusing costs next to nothing.

use crate::config::HttpLimits;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long, after shutdown begins, open HTTP requests get to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Descriptors kept back from connections: the store (the database, its WAL and shared-memory
/// files, for the writer and each reader), the Docker engine's socket (its connection pool and
/// one attach stream per run), the listener, stdio, the runtime's epoll and wakers, logs, and
/// the connections being refused (at most [`REFUSING`]).
pub const FD_RESERVE: u64 = 128;

/// How long the accept loop waits for an evicted silent connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Connections past the cap being told so at once; more are closed without a word.
const REFUSING: usize = 16;

/// How long a refused connection gets to send its request and read the answer.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// What a connection past the cap is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 89\r\n\r\n{\"error\":{\"code\":\"unavailable\",\"message\":\"too many open connections; retry in a moment\"}}";

/// The connection cap in force: `configured`, lowered to what an open-file limit of `nofile`
/// leaves after [`FD_RESERVE`] (at least a quarter of the limit, and at least one).
pub fn effective_connection_cap(configured: usize, nofile: Option<u64>) -> usize {
    let cap = match nofile {
        Some(limit) => {
            let room = limit.saturating_sub(FD_RESERVE).max(limit / 4);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    };
    cap.max(1)
}

/// The soft open-file limit of this process, if it can be read.
pub fn open_file_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Connections that have not sent a request yet, oldest first: the ones a new connection may
/// replace at the cap.
#[derive(Default)]
struct Silent {
    next: u64,
    waiting: BTreeMap<u64, CancellationToken>,
}

impl Silent {
    fn add(&mut self) -> (u64, CancellationToken) {
        self.next += 1;
        let token = CancellationToken::new();
        self.waiting.insert(self.next, token.clone());
        (self.next, token)
    }

    fn evict_oldest(&mut self) -> Option<CancellationToken> {
        self.waiting.pop_first().map(|(_, token)| token)
    }
}

/// Takes a connection out of the silent set when it drops or speaks.
struct SilentGuard {
    silent: Arc<Mutex<Silent>>,
    id: u64,
}

impl SilentGuard {
    fn spoke(&self) {
        let mut silent = self.silent.lock().unwrap_or_else(|p| p.into_inner());
        silent.waiting.remove(&self.id);
    }
}

impl Drop for SilentGuard {
    fn drop(&mut self) {
        self.spoke();
    }
}

/// A connection's socket holding its slot under the cap: the slot is given back when the
/// socket closes, after an upgrade too (the websocket owns this then).
struct Slotted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Slotted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` fires, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) {
    let nofile = open_file_limit();
    let cap = effective_connection_cap(limits.max_connections.max(1), nofile);
    match nofile {
        Some(limit) if cap < limits.max_connections => tracing::warn!(
            cap,
            max_connections = limits.max_connections,
            open_file_limit = limit,
            reserve = FD_RESERVE,
            "connections capped below --max-connections by the open-file limit; raise `ulimit -n` to allow more"
        ),
        Some(limit) => tracing::info!(cap, open_file_limit = limit, "connection cap"),
        None => tracing::warn!(
            cap,
            "could not read the open-file limit; the connection cap is --max-connections alone"
        ),
    }
    let permits = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSING));
    let silent = Arc::new(Mutex::new(Silent::default()));
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
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
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let victim = silent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .evict_oldest();
                let freed = match victim {
                    Some(victim) => {
                        victim.cancel();
                        tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned())
                            .await
                            .ok()
                            .and_then(Result::ok)
                    }
                    None => None,
                };
                match freed {
                    Some(permit) => permit,
                    None => {
                        // Every slot is in use: say so, and close.
                        tracing::debug!(%peer, cap, "connection refused at the cap");
                        if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                            tokio::spawn(async move {
                                let _refusing = refusing;
                                refuse(tcp).await;
                            });
                        }
                        continue;
                    }
                }
            }
        };
        // Keystrokes are tiny writes: without TCP_NODELAY, Nagle's algorithm holds them for the
        // peer's delayed ACK (tens of milliseconds).
        let _ = tcp.set_nodelay(true);
        let (id, evicted) = silent.lock().unwrap_or_else(|p| p.into_inner()).add();
        let guard = Arc::new(SilentGuard {
            silent: silent.clone(),
            id,
        });
        let speaking = guard.clone();
        let service =
            TowerToHyperService::new(app.clone().map_request(move |mut req: Request<Incoming>| {
                speaking.spoke();
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            }));
        let stop = shutdown.clone();
        let io = Slotted {
            tcp,
            _permit: permit,
        };
        connections.spawn(async move {
            let _guard = guard;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Replaced by a newer connection at the cap before it said anything.
                _ = evicted.cancelled() => {}
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

/// Answers a connection past the cap with [`REFUSAL`] once its request has come (an HTTP
/// client takes an answer before its request for a broken connection), then closes it after
/// reading what it sent (closing with unread input would reset the connection and could lose
/// the answer). Each step is bounded by [`REFUSAL_WAIT`].
async fn refuse(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_WAIT, tcp.read(&mut buf)).await;
    let answered = async {
        tcp.write_all(REFUSAL).await?;
        tcp.shutdown().await?;
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match tcp.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_WAIT, answered).await;
}

/// Raises the soft limit on open files to the hard one, so the connection cap, not the file
/// limit, is what bounds connections. Returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_free_under_a_low_open_file_limit() {
        assert_eq!(effective_connection_cap(4096, Some(1024)), 1024 - 128);
        assert_eq!(effective_connection_cap(4096, Some(1 << 20)), 4096);
        assert_eq!(effective_connection_cap(4096, None), 4096);
        assert_eq!(
            effective_connection_cap(4096, Some(100)),
            25,
            "a quarter at least"
        );
        assert_eq!(effective_connection_cap(0, Some(1024)), 1);
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
