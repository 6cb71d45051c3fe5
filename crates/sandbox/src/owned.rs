//! Ownership of containers until they are gone, and of the host uids they run as.
//!
//! Every container this instance makes is an [`Owned`] from before it is created until after
//! it is removed: the reaper spares the names of live guards, and a guard dropped without
//! [`Owned::remove`] removes its container in a tracked background task (shutdown waits for
//! those). Each guard also holds a host uid of its own from the instance's range, so per-user
//! kernel limits (inotify instances, pending signals...) are per container, never shared by two
//! runs; the uid goes back to the range only after the container was removed.

use crate::container::remove;
use crate::engine::lock;
use bollard::Docker;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

/// Time allowed for removing a container (killing it if it still runs).
pub const TEARDOWN: Duration = Duration::from_secs(5);

/// The containers and uids this instance holds.
pub struct Registry {
    live: Mutex<HashSet<String>>,
    free_uids: Mutex<Vec<u32>>,
    uid_freed: Notify,
    /// Background removals; [`crate::DockerSandbox::shutdown`] waits for them.
    pub tracker: TaskTracker,
}

impl Registry {
    /// A registry handing out the uids `first..first + count`.
    pub fn new(first: u32, count: u32) -> Self {
        Registry {
            live: Mutex::new(HashSet::new()),
            // Popped from the end: the lowest uid first.
            free_uids: Mutex::new((first..first.saturating_add(count)).rev().collect()),
            uid_freed: Notify::new(),
            tracker: TaskTracker::new(),
        }
    }

    pub fn owns(&self, name: &str) -> bool {
        lock(&self.live).contains(name)
    }

    /// Claims `name` (before the container is created) and a free uid, waiting for one to be
    /// given back if all are taken. Cancel-safe: dropping the future claims nothing.
    pub async fn claim(self: &Arc<Self>, docker: Docker, name: String) -> Owned {
        loop {
            let freed = self.uid_freed.notified();
            if let Some(uid) = lock(&self.free_uids).pop() {
                lock(&self.live).insert(name.clone());
                return Owned {
                    lease: Some(Lease {
                        registry: self.clone(),
                        name,
                        uid,
                    }),
                    docker,
                };
            }
            freed.await;
        }
    }
}

/// A claimed name and uid; dropping it gives both back.
struct Lease {
    registry: Arc<Registry>,
    name: String,
    uid: u32,
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.registry.live).remove(&self.name);
        lock(&self.registry.free_uids).push(self.uid);
        self.registry.uid_freed.notify_one();
    }
}

/// A container of this instance (to be created, or created), owned until it is removed.
pub struct Owned {
    /// Some until removed or handed to the background removal.
    lease: Option<Lease>,
    docker: Docker,
}

impl Owned {
    pub fn name(&self) -> &str {
        self.lease.as_ref().map_or("", |l| l.name.as_str())
    }

    /// The host uid (and owner of the work dir) of this container.
    pub fn uid(&self) -> u32 {
        self.lease.as_ref().map_or(0, |l| l.uid)
    }

    /// Kills and removes the container, bounded by [`TEARDOWN`], then gives back its name and
    /// uid. When the engine does not answer, the reaper removes it once the engine is back.
    pub async fn remove(mut self) -> Result<(), String> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        remove_now(&self.docker, &lease.name).await
    }
}

async fn remove_now(docker: &Docker, name: &str) -> Result<(), String> {
    match tokio::time::timeout(TEARDOWN, remove(docker, name)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("removing container {name}: {e}")),
        Err(_) => Err(format!(
            "removing container {name}: no answer within {TEARDOWN:?}"
        )),
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        // Not removed by its holder (a run task ended early, a warm container died): remove
        // it in the background, still owned until it is gone. Without a runtime (the process
        // is ending) the reaper of the next start removes it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        let tracker = lease.registry.tracker.clone();
        tracker.spawn_on(
            async move {
                if let Err(e) = remove_now(&docker, &lease.name).await {
                    tracing::debug!("sandbox: {e}; the reaper will retry");
                }
                drop(lease);
            },
            &runtime,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_uid_is_given_back_only_when_its_guard_is_gone() {
        let registry = Arc::new(Registry::new(20000, 1));
        // A path that exists but is no engine: every request to it fails.
        let not_an_engine =
            std::env::temp_dir().join(format!("duet-not-an-engine-{}", std::process::id()));
        std::fs::write(&not_an_engine, b"").expect("temp file");
        let docker = Docker::connect_with_socket(
            &not_an_engine.to_string_lossy(),
            1,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a client needs no connection yet");
        let first = registry.claim(docker.clone(), "a".into()).await;
        assert_eq!((first.uid(), registry.owns("a")), (20000, true));
        let mut second = Box::pin(registry.claim(docker.clone(), "b".into()));
        assert!(
            futures_util::FutureExt::now_or_never(&mut second).is_none(),
            "one uid, and it is taken"
        );
        // Removing against a missing engine fails, and still gives the uid back.
        assert!(first.remove().await.is_err());
        assert!(!registry.owns("a"));
        let second = second.await;
        assert_eq!((second.name(), second.uid()), ("b", 20000));
        let _ = std::fs::remove_file(not_an_engine);
    }
}
