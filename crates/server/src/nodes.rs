//! Several nodes on one PostgreSQL database: any node answers any request. Each room lives on
//! the one node holding its lease (`rooms/lease.rs`); a request that needs the live room (the
//! Yjs and events websockets, and the REST calls the room answers: runs, the question switch,
//! scorecard saves, notes, signals, the end, a take-home's start and submit, a delete) and
//! reaches another node is forwarded to the holder's URL ([`at_owner`], `nodes/proxy.rs`):
//! websockets relayed frame by frame, REST calls replayed and their answers handed back.
//! Reads of what is stored (replay, scorecards, export) are answered by any node from the
//! shared database, without a hop.
//!
//! Forwarding rather than redirecting: a browser's websocket cannot follow a redirect, and the
//! load balancer in front need not know who owns what. A forwarded request carries
//! `X-Duet-Proxied: 1`; a node that receives one for a room it does not hold answers 503 with
//! `Retry-After` rather than forwarding it again (no loops while a room changes hands). When
//! the holder does not answer (a refused connection: its process died; or no answer in time:
//! it is paused or cut off), the node waits for its lease to lapse (at most the lease's time,
//! 10 s at most) and takes the room itself; a holder that is alive keeps renewing its lease,
//! and the request is answered 503 instead.
//!
//! The background jobs that must run once across the nodes (the webhook and mail outboxes,
//! the take-home clocks, retention) run on one node at a time, the one holding the jobs'
//! advisory lock in PostgreSQL ([`Cluster::run_while_leading`]); when it goes, another starts
//! them within a few seconds. (A delivery in flight on a leader that dies is sent again by the
//! next: deliveries are at least once, with the event's id for receivers to drop repeats.)
//!
//! SQLite is one node: no [`Cluster`], and nothing here runs.

pub mod proxy;

use crate::api::blocking;
use crate::error::AppError;
use crate::AppState;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use duet_protocol::InterviewId;
use duet_store::{RoomLeases, MAX_LEASE_TTL};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The advisory lock key of the background jobs' leader ("duetjobs").
const JOBS_KEY: i64 = 0x6475_6574_6a6f_6273;

/// The header a forwarded request carries.
pub const PROXIED: &str = "x-duet-proxied";

/// This node among the others sharing its database.
pub struct Cluster {
    /// This node's URL (its name in the leases).
    pub node: String,
    leases: Arc<dyn RoomLeases>,
    http: reqwest::Client,
    /// Fires at shutdown: relayed websockets close (1001) so their clients reconnect elsewhere.
    shutdown: CancellationToken,
    /// Whether this node leads the background jobs now.
    leading: watch::Receiver<bool>,
}

/// Where a room's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Nobody else holds the room: this node serves it (and takes its lease).
    Here,
    /// The node at this URL holds it.
    Owner(String),
}

impl Cluster {
    pub fn new(
        node: String,
        leases: Arc<dyn RoomLeases>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Cluster> {
        let http = reqwest::Client::builder()
            // Node to node, on the nodes' own network: never through a proxy from the
            // environment, never following a redirect.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            // What the room answers waits for the store at most; no answer in this long counts
            // as a holder gone (see proxy.rs).
            .timeout(Duration::from_secs(10))
            .build()?;
        let leading = leases.leader(JOBS_KEY);
        Ok(Cluster {
            node,
            leases,
            http,
            shutdown,
            leading,
        })
    }

    /// Runs a background job only while this node leads the jobs: `start` is called with a
    /// token each time this node becomes the leader, and the token is cancelled when it stops
    /// being it (its connection to the database lost) or at shutdown.
    pub fn run_while_leading(
        &self,
        job: &'static str,
        start: impl Fn(CancellationToken) + Send + 'static,
    ) {
        let (mut leading, shutdown) = (self.leading.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    led = leading.wait_for(|l| *l) => if led.is_err() { return },
                    _ = shutdown.cancelled() => return,
                }
                tracing::info!(job, "nodes: this node leads the job now");
                let term = shutdown.child_token();
                start(term.clone());
                tokio::select! {
                    lost = leading.wait_for(|l| !*l) => {
                        term.cancel();
                        tracing::warn!(job, "nodes: this node no longer leads the job");
                        if lost.is_err() { return }
                    }
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Where the room's requests go now.
    pub async fn route(&self, room: &InterviewId) -> Result<Route, AppError> {
        let (leases, id) = (self.leases.clone(), room.clone());
        let holder = blocking(move || leases.holder(&id)).await?;
        Ok(match holder {
            Some(h) if h.is_live() && h.node != self.node => Route::Owner(h.node),
            _ => Route::Here,
        })
    }

    /// Waits until the room's holder `gone` (which stopped answering) no longer holds it: at
    /// most the longest lease, and a little. Answers where the room's requests go then: here
    /// when nobody holds it, or the node that took it over meanwhile (another node a client
    /// reached first), which is not waited out.
    pub async fn await_lapse(&self, room: &InterviewId, gone: &str) -> Result<Route, AppError> {
        let deadline = tokio::time::Instant::now() + MAX_LEASE_TTL + Duration::from_secs(1);
        loop {
            let (leases, id) = (self.leases.clone(), room.clone());
            let holder = blocking(move || leases.holder(&id)).await?;
            let wait = match holder {
                Some(h) if h.is_live() && h.node != self.node && h.node != gone => {
                    return Ok(Route::Owner(h.node))
                }
                Some(h) if h.is_live() && h.node != self.node => h.live_for,
                _ => return Ok(Route::Here),
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(moving());
            }
            // Just past the lapse by the database's clock (polled again: it may be renewed).
            let nap = (wait + Duration::from_millis(20)).min(deadline - now);
            tokio::time::sleep(nap).await;
        }
    }
}

/// The answer while a room changes hands: try again in a second.
fn moving() -> AppError {
    AppError::Unavailable("the interview's room is moving between nodes; retry in a moment".into())
}

/// Whether the request needs the live room: a websocket, or anything but a read (the reads
/// on these routes are answered from the database by any node).
fn needs_room(request: &Request) -> bool {
    proxy::is_websocket(request) || !matches!(*request.method(), Method::GET | Method::HEAD)
}

/// Middleware on the routes the room answers: serves the request here when this node holds
/// the room (or nobody does), else forwards it to the node that does.
pub async fn at_owner(
    State(state): State<AppState>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(request).await;
    };
    let room = params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, id)| InterviewId::parse(id));
    let Some(room) = room else {
        return next.run(request).await;
    };
    if !needs_room(&request) || state.rooms.loaded_handle(&room).is_some() {
        return next.run(request).await;
    }
    let owner = match cluster.route(&room).await {
        Ok(Route::Here) => return next.run(request).await,
        Ok(Route::Owner(owner)) => owner,
        Err(e) => return e.into_response(),
    };
    if request.headers().contains_key(PROXIED) {
        // Sent here by a node that thought this one held the room: no second hop.
        tracing::info!(interview = %room, %owner, "nodes: a forwarded request for a room held elsewhere; answered 503");
        return retry_soon(moving().into_response());
    }
    let (mut owner, mut request) = (owner, request);
    // A holder that died, then possibly the node that took its rooms over and died too: a
    // few hops, never a loop.
    for _ in 0..MAX_TAKEOVER_HOPS {
        request = match proxy::forward(&cluster, &state, &owner, request).await {
            proxy::Forwarded::Answered(response) => return response,
            proxy::Forwarded::OwnerDown(request) => request,
        };
        tracing::warn!(interview = %room, %owner, "nodes: the room's holder does not answer; taking the room over once its lease lapses");
        match cluster.await_lapse(&room, &owner).await {
            Ok(Route::Here) => return next.run(request).await,
            Ok(Route::Owner(next_owner)) => owner = next_owner,
            Err(e) => return retry_soon(e.into_response()),
        }
    }
    retry_soon(moving().into_response())
}

/// Holders a request tries in turn when each it reaches has died.
const MAX_TAKEOVER_HOPS: usize = 3;

/// Adds `Retry-After: 1`.
fn retry_soon(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
