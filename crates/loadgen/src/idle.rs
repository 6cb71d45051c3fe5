//! Idle mode: many rooms with one quiet client each, to see what an open room costs the server.

use crate::cli::Args;
use crate::client::{self, Session};
use crate::proc;
use crate::stats::{IdleReport, Report};
use crate::target::Room;
use futures_util::SinkExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as Ws;

pub async fn run(args: &Args, rooms: Vec<Room>) -> anyhow::Result<Report> {
    let before = proc::sample(args.server_pid);
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let mut tasks = Vec::with_capacity(rooms.len());
    for room in &rooms {
        let (url, limit, args) = (room.client_url(0), limit.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut session: Session = tokio::time::timeout(timeout, client::connect(&url))
                .await
                .map_err(|_| anyhow::anyhow!("connect timed out"))??;
            let edit = session.editor.edit(0.0, args.jump_ratio);
            session.sink.send(Ws::Binary(edit.message.into())).await?;
            anyhow::Ok(session)
        }));
    }
    let mut sessions = Vec::with_capacity(rooms.len());
    let mut errors = BTreeMap::new();
    for task in tasks {
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(session))) => sessions.push(session),
            Ok(Ok(Err(e))) => *errors.entry(format!("{e:#}")).or_insert(0) += 1,
            Ok(Err(e)) => *errors.entry(format!("task: {e}")).or_insert(0) += 1,
            Err(_) => *errors.entry("timed out".to_owned()).or_insert(0) += 1,
        }
    }
    let settle_from = proc::sample(args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.idle_settle)).await;
    let after = proc::sample(args.server_pid);
    let kb_per_room = match (&before, &after) {
        (Some(b), Some(a)) if !sessions.is_empty() => {
            Some((a.rss_kb as f64 - b.rss_kb as f64) / sessions.len() as f64)
        }
        _ => None,
    };
    let server_cpu_percent = match (&settle_from, &after) {
        (Some(a), Some(b)) => Some(proc::cpu_percent(a, b)),
        _ => None,
    };
    let report = IdleReport {
        label: args.label.clone(),
        rooms: rooms.len(),
        connected: sessions.len(),
        errors,
        rss_kb_before: before.map(|s| s.rss_kb),
        rss_kb_after: after.map(|s| s.rss_kb),
        kb_per_room,
        server_cpu_percent,
    };
    for mut session in sessions {
        let _ = tokio::time::timeout(Duration::from_millis(200), session.sink.close()).await;
    }
    Ok(Report::Idle(report))
}
