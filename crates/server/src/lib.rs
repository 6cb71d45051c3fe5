//! The Duet server: HTTP routes, the Yjs websocket, room tasks and configuration.
//!
//! `main.rs` only parses flags and calls [`serve`]. Tests build an [`AppState`] and drive
//! [`router`] directly, or call [`serve`] with a listener bound to port 0.
//!
//! What does not belong here: protocol rules (duet-core), SQL (duet-store), wire types
//! (duet-protocol).

pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod database;
pub mod debrief_api;
pub mod environments;
pub mod error;
pub mod events;
pub mod greenhouse;
pub mod http;
pub mod jobs;
pub mod lifecycle_api;
pub mod mail;
pub mod metrics;
pub mod nodes;
pub mod oidc;
pub mod outbound;
pub mod people_api;
pub mod people_cli;
pub mod question_check;
pub mod questions;
pub mod replay;
pub mod replay_api;
pub mod rooms;
pub mod runs_api;
pub mod scorecard_api;
pub mod session;
pub mod sockets;
pub mod take_home_api;
pub mod web;
pub mod webhooks;
pub mod ws;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use config::ServeArgs;
use duet_sandbox::Sandbox;
use duet_store::{Store, TokenHash};
use metrics::Metrics;
use rooms::{Rooms, RoomsParts};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest REST request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest body of a run or stdin request: room for 64 KiB of stdin once JSON-escaped.
const RUN_BODY: usize = 512 * 1024;

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sandbox: Arc<dyn Sandbox>,
    pub run_rate: Arc<runs_api::RateLimiter>,
    pub rooms: Arc<Rooms>,
    pub metrics: Arc<Metrics>,
    pub admin_hash: TokenHash,
    pub config: Arc<ServeArgs>,
    /// Base of the links handed out for new interviews.
    pub public_url: String,
    pub next_conn: Arc<AtomicU64>,
    /// Websockets open per token.
    pub sockets: Arc<sockets::TokenSockets>,
    pub questions: Arc<questions::QuestionBank>,
    /// Recent replay states per interview, for scrubbing.
    pub replay: Arc<replay::ReplayCache>,
    /// Failed authentications per source address.
    pub auth_throttle: Arc<auth::AuthThrottle>,
    /// Exports in flight, per server and per token.
    pub exports: Arc<replay_api::ExportSlots>,
    /// Staff sign-in: throttles, password hashing, session settings.
    pub sessions: Arc<session::Sessions>,
    /// Sign-in through an OpenID Connect provider, when one is set up.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// This node among several on one PostgreSQL database (`None` on SQLite: one node).
    pub cluster: Option<Arc<nodes::Cluster>>,
}

/// What starting up produced besides the state.
pub struct Startup {
    pub state: AppState,
    /// Set when this start generated the admin token: show it to the operator once.
    pub new_admin_token: Option<(String, std::path::PathBuf)>,
}

impl AppState {
    /// Opens the store in the data dir and settles the admin token.
    pub fn open(
        config: ServeArgs,
        local_addr: SocketAddr,
        shutdown: CancellationToken,
        sandbox: Arc<dyn Sandbox>,
    ) -> anyhow::Result<Startup> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let database::Database { store, leases } = database::open_database(
            &config.data_dir,
            config.database_url.as_ref(),
            config.store_sync.into(),
        )?;
        // On Postgres this node holds rooms under leases named by its URL, and forwards the
        // requests of rooms another node holds (nodes.rs).
        let (cluster, node_leases) = match leases {
            Some(leases) => {
                let node = config
                    .nodes
                    .url(local_addr)
                    .map_err(|e| anyhow::anyhow!(e))?;
                tracing::info!(%node, "several nodes: rooms are held under leases as this node");
                let cluster = nodes::Cluster::new(node.clone(), leases.clone(), shutdown.clone())?;
                let node_leases = rooms::NodeLeases::new(leases, node, config.nodes.lease_ttl());
                (Some(Arc::new(cluster)), Some(node_leases))
            }
            None => (None, None),
        };
        let (admin_token, new_admin_token) = admin_token(&config)?;
        let metrics = Arc::new(Metrics::default());
        // The outbox's worker: deliveries go out beside the rooms, never in their way (on one
        // node at a time when several share the database).
        let deliverer = webhooks::Deliverer::new(&config.webhooks)?;
        let outbox = store.clone();
        once_across_nodes(cluster.as_deref(), &shutdown, "webhooks", move |stop| {
            tokio::spawn(webhooks::run(outbox.clone(), deliverer.clone(), stop));
        });
        if mail::Mailer::from_args(&config.mail)?.is_some() {
            let (args, retries, outbox) =
                (config.mail.clone(), config.webhooks.clone(), store.clone());
            once_across_nodes(cluster.as_deref(), &shutdown, "mail", move |stop| {
                // Made again each time this node starts leading (checked once above).
                if let Ok(Some(mailer)) = mail::Mailer::from_args(&args) {
                    tokio::spawn(mail::run(outbox.clone(), mailer, retries.clone(), stop));
                }
            });
        }
        let (bank, problems) = questions::QuestionBank::load(&config.questions_dir);
        for problem in &problems {
            tracing::warn!(%problem, "question bank: skipped");
        }
        tracing::info!(questions = bank.len(), dir = %config.questions_dir.display(), "question bank loaded");
        let questions = Arc::new(bank);
        let sockets = sockets::TokenSockets::new(config.ws.max_per_token);
        // One task closes the sockets of sessions that expire or end where this process
        // cannot see it (another process, another server on the same store).
        tokio::spawn(sockets::sweep(
            sockets.clone(),
            store.clone(),
            config.sessions.idle(),
            shutdown.clone(),
        ));
        let rooms = Rooms::new_on(
            RoomsParts {
                questions: questions.clone(),
                store: store.clone(),
                sandbox: sandbox.clone(),
                run_limits: config.sandbox.limits(),
                settings: config.rooms.clone(),
                metrics: metrics.clone(),
                shutdown,
            },
            node_leases,
        );
        let run_rate = Arc::new(runs_api::RateLimiter::per_minute(
            config.sandbox.runs_per_minute,
        ));
        let replay_budget = config.replay_cache_mib.saturating_mul(1 << 20);
        let config_http = config.http.clone();
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let sessions = session::Sessions::new(config.sessions.clone(), &public_url);
        let oidc = oidc::Oidc::from_args(&config.oidc, &public_url)?.map(Arc::new);
        let state = AppState {
            cluster,
            sessions,
            oidc,
            store,
            sandbox,
            run_rate,
            rooms,
            metrics,
            admin_hash: auth::hash(&admin_token),
            config: Arc::new(config),
            public_url,
            next_conn: Arc::new(AtomicU64::new(1)),
            sockets,
            questions,
            replay: Arc::new(replay::ReplayCache::new(replay_budget)),
            auth_throttle: Arc::new(auth::AuthThrottle::per_minute(
                config_http.auth_failures_per_minute,
            )),
            exports: Arc::new(replay_api::ExportSlots::new(
                config_http.max_exports,
                config_http.max_exports_per_token,
            )),
        };
        Ok(Startup {
            state,
            new_admin_token,
        })
    }
}

/// The Docker sandbox as the flags describe it. Its instance name is kept in the data dir, so
/// after a restart the server reaps the containers its previous life left behind, and two
/// servers sharing an engine never reap each other's.
pub fn docker_sandbox(config: &ServeArgs) -> anyhow::Result<duet_sandbox::DockerSandbox> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    let path = config.data_dir.join("sandbox-instance");
    let instance = match std::fs::read_to_string(&path) {
        Ok(saved) => saved.trim().to_owned(),
        Err(_) => {
            let minted = format!("duet-{}", auth::random_token(6).replace(['-', '_'], "x"));
            std::fs::write(&path, format!("{minted}\n"))
                .with_context(|| format!("saving {}", path.display()))?;
            minted
        }
    };
    let defaults = duet_sandbox::DockerConfig::default();
    let sandbox = &config.sandbox;
    let docker = duet_sandbox::DockerConfig {
        environments: sandbox.environments(),
        engines: sandbox.engines()?,
        pool_min: sandbox.pool,
        // --sandbox-pool 0 turns the pool off; a maximum under the minimum is the minimum.
        pool_max: if sandbox.pool == 0 {
            0
        } else {
            sandbox.pool_max.max(sandbox.pool)
        },
        concurrency: sandbox.concurrency.unwrap_or(defaults.concurrency).max(1),
        queue: sandbox.queue,
        limits: sandbox.limits(),
        instance,
        uid_base: sandbox.uid_base,
        ..defaults
    };
    Ok(duet_sandbox::DockerSandbox::new(docker)?)
}

/// The admin token from the config, else from the data dir, else a new one saved there.
fn admin_token(
    config: &ServeArgs,
) -> anyhow::Result<(String, Option<(String, std::path::PathBuf)>)> {
    if let Some(secret) = config.admin_secret() {
        return Ok((secret.0.clone(), None));
    }
    let path = config.data_dir.join("admin-token");
    if let Ok(saved) = std::fs::read_to_string(&path) {
        let saved = saved.trim().to_owned();
        anyhow::ensure!(
            saved.len() >= 16,
            "{} holds no usable admin token; delete it to mint a new one",
            path.display()
        );
        return Ok((saved, None));
    }
    let token = auth::random_token(32);
    write_private(&path, &token)
        .with_context(|| format!("saving the admin token to {}", path.display()))?;
    Ok((token.clone(), Some((token, path))))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    // The routes the live room answers: served by the node holding the room (nodes.rs).
    let owner = axum::middleware::from_fn_with_state(state.clone(), nodes::at_owner);
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route(
            "/api/interviews",
            post(api::create_interview).get(api::list_interviews),
        )
        .route(
            "/api/interviews/{id}",
            get(api::get_interview)
                .delete(lifecycle_api::delete)
                .route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/question",
            post(api::switch_question).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/scorecard",
            get(scorecard_api::get)
                .put(scorecard_api::put)
                .route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/scorecard/submit",
            post(scorecard_api::submit).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/notes",
            post(scorecard_api::add_note)
                .get(scorecard_api::notes)
                .route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/end",
            post(lifecycle_api::end).route_layer(owner.clone()),
        )
        .route("/api/interviews/{id}/take-home", get(take_home_api::view))
        .route(
            "/api/interviews/{id}/start",
            post(take_home_api::start).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/submit",
            post(take_home_api::submit).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/take-home/check",
            post(take_home_api::check),
        )
        .route(
            "/api/interviews/{id}/signals",
            post(scorecard_api::signal).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/debrief",
            get(debrief_api::interview_debrief),
        )
        .route(
            "/api/candidates/{candidate_ref}/debrief",
            get(debrief_api::candidate_debrief),
        )
        .route(
            "/api/interviews/{id}/links",
            // On the room's holder: the sockets the old links opened are registered there.
            post(api::reissue_links).route_layer(owner.clone()),
        )
        .route("/api/environments", get(environments::list))
        .route("/api/questions", get(api::list_questions))
        .route("/api/questions/{id}", get(api::get_question))
        .route(
            "/api/interviews/{id}/runs",
            post(runs_api::start)
                .layer(DefaultBodyLimit::max(RUN_BODY))
                .get(runs_api::history)
                .route_layer(owner.clone()),
        )
        // Replay (interviewer, reviewer) and one run whole (any role that may see it).
        .route("/api/interviews/{id}/timeline", get(replay_api::timeline))
        .route("/api/interviews/{id}/snapshot", get(replay_api::snapshot))
        .route("/api/interviews/{id}/export", get(replay_api::export))
        .route("/api/interviews/{id}/runs/{run_id}", get(runs_api::detail))
        .route(
            "/api/interviews/{id}/runs/{run_id}/cast",
            get(runs_api::cast),
        )
        .route(
            "/api/interviews/{id}/runs/{run_id}/stdin",
            post(runs_api::stdin)
                .layer(DefaultBodyLimit::max(RUN_BODY))
                .route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/runs/{run_id}/cancel",
            post(runs_api::cancel).route_layer(owner.clone()),
        )
        .route(
            "/api/interviews/{id}/events",
            get(events::upgrade).route_layer(owner.clone()),
        )
        // People and sessions (people_api.rs).
        .route(
            "/api/session",
            post(people_api::sign_in)
                .get(people_api::whoami)
                .delete(people_api::sign_out),
        )
        .route(
            "/api/me/sessions",
            axum::routing::delete(people_api::sign_out_everywhere),
        )
        .route("/api/me/interviews", get(people_api::my_interviews))
        .route(
            "/api/me/tokens",
            get(people_api::list_tokens).post(people_api::create_token),
        )
        .route(
            "/api/me/tokens/{id}",
            axum::routing::delete(people_api::revoke_token),
        )
        .route(
            "/api/people",
            get(people_api::list_people).post(people_api::invite),
        )
        .route(
            "/api/people/{id}",
            axum::routing::patch(people_api::update_person),
        )
        .route(
            "/api/people/{id}/password-link",
            post(people_api::reissue_password_link),
        )
        .route(
            "/api/password-link",
            get(people_api::view_password_link).put(people_api::use_password_link),
        )
        .route(
            "/api/interviews/{id}/panel",
            get(people_api::get_panel).put(people_api::put_panel),
        )
        .route("/api/audit", get(people_api::audit_log))
        .route(
            "/api/webhooks",
            get(webhooks::api::list).post(webhooks::api::create),
        )
        .route(
            "/api/webhooks/{id}",
            axum::routing::delete(webhooks::api::remove),
        )
        .route(
            "/api/webhooks/{id}/deliveries",
            get(webhooks::api::deliveries),
        )
        .route(
            "/api/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::api::redeliver),
        )
        .route(
            "/api/integrations/keys",
            get(greenhouse::list_keys).post(greenhouse::create_key),
        )
        .route(
            "/api/integrations/keys/{id}",
            axum::routing::delete(greenhouse::revoke_key),
        )
        .route("/api/greenhouse/list_tests", get(greenhouse::list_tests))
        .route("/api/greenhouse/send_test", post(greenhouse::send_test))
        .route("/api/greenhouse/test_status", get(greenhouse::test_status))
        .route(
            "/api/greenhouse/response_error",
            post(greenhouse::response_error),
        )
        .route("/api/oidc", get(oidc::status))
        .route("/api/oidc/start", get(oidc::start))
        .route("/api/oidc/callback", get(oidc::callback))
        .route("/signin", get(web::page))
        .route("/password", get(web::page))
        .route("/me", get(web::page))
        .route("/yjs/{id}", get(ws::upgrade).route_layer(owner))
        .route("/", get(web::page))
        .route("/admin", get(web::page))
        .route("/interview/{id}", get(web::page))
        .route("/interview/{id}/{role}", get(web::page))
        .route("/replay/{id}", get(web::page))
        .route("/replay/{id}/{role}", get(web::page))
        .route("/debrief/{*rest}", get(web::page))
        .nest_service(
            "/assets",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn(web::asset_headers))
                .service(web::assets(&state.config.web_dir)),
        )
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.auth_throttle.clone(),
            auth::throttle_failures,
        ))
        .layer(axum::middleware::map_response(common_headers))
        .with_state(state)
}

/// Headers every answer carries: no content sniffing, and no caching of answers that may hold
/// tokens or private material (a handler that means to be cached sets its own Cache-Control).
async fn common_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Serves on `listener` until `shutdown` fires, then lets every room checkpoint and close.
pub async fn serve(
    config: ServeArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
    sandbox: Arc<dyn Sandbox>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let Startup {
        state,
        new_admin_token,
    } = AppState::open(config, addr, shutdown.clone(), sandbox)?;
    if let Some((token, path)) = new_admin_token {
        println!(
            "Generated the admin token (shown once; kept in {}):\n  {token}",
            path.display()
        );
    }
    println!("Duet listening on http://{addr}");
    let rooms = state.rooms.clone();
    let limits = state.config.http.clone();
    if let Some(days) = state.config.retain_days {
        tracing::info!(
            days,
            "retention: ended interviews older than this are deleted hourly"
        );
        let retained = state.clone();
        once_across_nodes(
            state.cluster.as_deref(),
            &shutdown,
            "retention",
            move |stop| {
                tokio::spawn(jobs::retention(retained.clone(), days, stop));
            },
        );
    }
    let clocks = state.clone();
    once_across_nodes(
        state.cluster.as_deref(),
        &shutdown,
        "take-home clocks",
        move |stop| {
            tokio::spawn(jobs::take_home_clocks(clocks.clone(), stop));
        },
    );
    let app = router(state);
    http::serve(listener, app, &limits, shutdown.clone()).await;
    shutdown.cancel();
    rooms.wait_closed().await;
    Ok(())
}

/// Starts a background job that must run once across the nodes: here until `shutdown` on one
/// node (SQLite), or while this node leads the jobs when several share the database.
fn once_across_nodes(
    cluster: Option<&nodes::Cluster>,
    shutdown: &CancellationToken,
    job: &'static str,
    start: impl Fn(CancellationToken) + Send + 'static,
) {
    match cluster {
        Some(cluster) => cluster.run_while_leading(job, start),
        None => start(shutdown.clone()),
    }
}

/// Crates the tests need at the same version the server uses.
pub mod reexports {
    pub use axum;
}
