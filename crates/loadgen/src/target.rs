//! Where the clients go: loopback checks, and the rooms (with Duet, interviews made over HTTP;
//! with y-sweet, documents and their websocket URLs from its HTTP API).

use crate::cli::Args;
use crate::http;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One room: the websocket URL without a token, and the tokens its clients take in turn.
#[derive(Debug, Clone)]
pub struct Room {
    pub url: String,
    pub tokens: Vec<String>,
    /// Duet only: the interview this room is, for runs and events sockets.
    pub interview: Option<String>,
}

impl Room {
    /// The token client `i` of this room uses, if the server wants one.
    pub fn token(&self, i: usize) -> Option<&str> {
        (!self.tokens.is_empty()).then(|| self.tokens[i % self.tokens.len()].as_str())
    }

    /// The URL client `i` of this room connects to.
    pub fn client_url(&self, i: usize) -> String {
        match self.tokens.is_empty() {
            true => self.url.clone(),
            false => format!("{}?token={}", self.url, self.tokens[i % self.tokens.len()]),
        }
    }
}

/// Splits `scheme://host:port/...` into the host:port part, after checking the scheme.
fn authority<'a>(url: &'a str, schemes: &[&str]) -> anyhow::Result<&'a str> {
    let rest = schemes
        .iter()
        .find_map(|s| url.strip_prefix(s).and_then(|r| r.strip_prefix("://")))
        .with_context(|| {
            format!(
                "{url}: expected a URL starting with {}://",
                schemes.join("|")
            )
        })?;
    Ok(rest.split(['/', '?']).next().unwrap_or(rest))
}

/// Resolves `host:port` and refuses anything that is not loopback.
pub async fn loopback(url: &str, schemes: &[&str]) -> anyhow::Result<SocketAddr> {
    let auth = authority(url, schemes)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(auth)
        .await
        .with_context(|| format!("resolving {auth}"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        bail!("{url}: refusing a non-loopback target ({addrs:?}); this tool only talks to 127.0.0.0/8 or ::1");
    }
    Ok(addrs[0])
}

/// The rooms to use: `bench-N` names, fresh Duet interviews when an admin token is given, or
/// y-sweet documents when its HTTP base is given.
pub async fn prepare(args: &Args, count: usize) -> anyhow::Result<Vec<Room>> {
    loopback(&args.url, &["ws"]).await?;
    let base = args.url.trim_end_matches('/');
    if let Some(ysweet) = &args.ysweet_http {
        return ysweet_rooms(args, ysweet, count).await;
    }
    let Some(admin) = args.duet_admin_token.clone().filter(|t| !t.is_empty()) else {
        return Ok((0..count)
            .map(|i| Room {
                url: format!("{base}/{}-{i}", args.room_prefix),
                tokens: Vec::new(),
                interview: None,
            })
            .collect());
    };
    let http_base = args
        .duet_http
        .clone()
        .context("--duet-admin-token needs --duet-http")?;
    let addr = loopback(&http_base, &["http"]).await?;
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let (admin, limit) = (admin.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let body = serde_json::json!({"title": format!("bench {i}"), "candidate_name": format!("Load {i}")});
            http::post_json(addr, "/api/interviews", Some(&admin), &body).await
        }));
    }
    let mut rooms = Vec::with_capacity(count);
    for task in tasks {
        let created = task.await??;
        let field = |k: &str| {
            created
                .pointer(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let id = field("/id").context("POST /api/interviews: no id in the answer")?;
        let candidate = field("/tokens/candidate").context("no tokens.candidate")?;
        let interviewer = field("/tokens/interviewer").context("no tokens.interviewer")?;
        rooms.push(Room {
            url: format!("{base}/{id}"),
            tokens: vec![candidate, interviewer],
            interview: Some(id),
        });
    }
    Ok(rooms)
}

/// y-sweet (0.9): `POST /doc/new {"docId"}` creates the document, `POST /doc/{id}/auth` answers
/// `{"url", "token"?}`; a y-websocket client then appends `/{id}` to `url` and passes the token
/// (absent when the server runs without `--auth`) as `?token=`. Every client of a room gets its
/// own token, as a browser would.
async fn ysweet_rooms(args: &Args, http_base: &str, count: usize) -> anyhow::Result<Vec<Room>> {
    let addr = loopback(http_base, &["http"]).await?;
    let limit = Arc::new(Semaphore::new(8));
    let clients = args.clients.max(1);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let limit = limit.clone();
        let doc = format!("{}-{i}", args.room_prefix);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let body = serde_json::json!({ "docId": doc });
            http::post_json(addr, "/doc/new", None, &body).await?;
            let mut url = None;
            let mut tokens = Vec::new();
            for _ in 0..clients {
                let auth = http::post_json(
                    addr,
                    &format!("/doc/{doc}/auth"),
                    None,
                    &serde_json::json!({}),
                )
                .await?;
                let got = auth
                    .get("url")
                    .and_then(|v| v.as_str())
                    .context("y-sweet auth: no url")?;
                url = Some(format!("{}/{doc}", got.trim_end_matches('/')));
                if let Some(token) = auth.get("token").and_then(|v| v.as_str()) {
                    tokens.push(token.to_owned());
                }
            }
            let url = url.context("y-sweet auth: no answer")?;
            anyhow::Ok(Room {
                url,
                tokens,
                interview: None,
            })
        }));
    }
    let mut rooms = Vec::with_capacity(count);
    for task in tasks {
        let room = task.await??;
        loopback(&room.url, &["ws"]).await?;
        rooms.push(room);
    }
    Ok(rooms)
}
