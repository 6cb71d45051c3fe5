//! The reaper: removes this instance's containers that no live run or warm slot owns, left
//! behind by a `kill -9` of the server, a restart of dockerd, or a removal that failed while
//! the engine was away. It runs at start, periodically, and when the engine comes back.

use crate::container::{remove, INSTANCE_LABEL};
use crate::docker::Inner;
use bollard::query_parameters::ListContainersOptions;
use std::collections::HashMap;
use std::sync::Arc;

/// One sweep; returns how many containers it removed.
pub async fn reap_once(inner: &Arc<Inner>) -> Result<usize, String> {
    let docker = inner.engine.client().await?;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{INSTANCE_LABEL}={}", inner.config.instance)],
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| e.to_string())?;
    let mut removed = 0;
    for c in list {
        // Names come as "/name".
        let Some(name) = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/'))
        else {
            continue;
        };
        if inner.registry.owns(name) {
            continue;
        }
        match remove(&docker, name).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(
                container = %name,
                "sandbox reaper: {}",
                crate::escape::escape(&e.to_string())
            ),
        }
    }
    if removed > 0 {
        tracing::info!(removed, "sandbox reaper: removed containers no run owned");
    }
    Ok(removed)
}

/// Sweeps every `reap_interval` until shutdown.
pub async fn reap_loop(inner: Arc<Inner>) {
    loop {
        if let Err(e) = reap_once(&inner).await {
            tracing::debug!("sandbox reaper: engine unavailable: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(inner.config.reap_interval) => {}
            _ = inner.reap_now.notified() => {}
            _ = inner.shutdown.cancelled() => return,
        }
    }
}
