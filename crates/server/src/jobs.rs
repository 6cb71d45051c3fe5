//! Background jobs, each in its own function with its schedule beside it: the retention job
//! deletes interviews that ended longer ago than `--retain-days`, and audit entries older than
//! that.

use crate::api::blocking;
use crate::lifecycle_api::erase;
use crate::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the retention job looks for interviews to delete.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes interviews that ended more than `days` ago: at once, then every
/// [`RETENTION_EVERY`], until `shutdown`.
pub async fn retention(state: AppState, days: u64, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let cutoff = crate::rooms::now_ms()
            - i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        sweep(&state, cutoff, days).await;
    }
}

/// One pass: deletes the audit entries from before `cutoff_ms` (unix ms), then every interview
/// that ended before it, logging each. Answers how many interviews were deleted.
pub async fn sweep(state: &AppState, cutoff_ms: i64, days: u64) -> usize {
    let cutoff = cutoff_ms;
    let mut deleted = 0;
    if let Err(e) = crate::api::written(state.store.prune_audit(cutoff)).await {
        tracing::warn!(error = %e, "retention: could not prune the audit log");
    }
    {
        let store = state.store.clone();
        let due = match blocking(move || store.ended_before(cutoff)).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "retention: could not list ended interviews");
                return 0;
            }
        };
        for interview in due {
            match erase(state, &interview).await {
                Ok(()) => {
                    deleted += 1;
                    tracing::info!(interview = %interview, days, "retention: deleted an interview ended more than the retention ago");
                    crate::people_api::audit(
                        state,
                        "retention".to_owned(),
                        duet_protocol::AuditAction::InterviewDeleted,
                        Some(interview.to_string()),
                        None,
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(interview = %interview, error = %e, "retention: delete failed")
                }
            }
        }
    }
    deleted
}
