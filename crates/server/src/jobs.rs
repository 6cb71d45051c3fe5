//! Background jobs, each in its own function with its schedule beside it: the retention job
//! deletes interviews that ended longer ago than `--retain-days`, and audit entries older than
//! that; the take-home clock job loads the rooms of running take-homes (after a restart), so
//! their deadlines fire with nobody connected.

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

/// How often the take-home clock job looks for a running take-home whose room is not loaded.
pub const TAKE_HOME_EVERY: Duration = Duration::from_secs(60);

/// Keeps every running take-home's clock: at once (so a server that was down at a deadline
/// submits on its return, and one still running gets its timer back), then every
/// [`TAKE_HOME_EVERY`] (a room that unloaded after a failure), until `shutdown`. A room holds
/// its own deadline's timer while it is loaded and stays loaded while its clock runs; this
/// job only loads the rooms of started, unsubmitted take-homes that are not.
pub async fn take_home_clocks(state: AppState, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(TAKE_HOME_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let loaded = load_running_take_homes(&state).await;
        if loaded > 0 {
            tracing::info!(loaded, "take-home clocks: loaded running take-homes");
        }
    }
}

/// One pass: loads the room of every take-home that started and was not submitted, if it is
/// not loaded (its room then submits it at once if its deadline has passed), and of every one
/// whose hidden tests the submit still owes. Answers how many it loaded. Only the take-homes
/// the store says are in progress (a query on their rare records) have their round read.
pub async fn load_running_take_homes(state: &AppState) -> usize {
    let store = state.store.clone();
    let running = blocking(move || {
        let mut running = Vec::new();
        for id in store.take_homes_in_progress()? {
            let Some(interview) = store.get_interview(&id)? else {
                continue;
            };
            let round = crate::take_home_api::read_round(&*store, &interview)?;
            // A clock to keep (unless an interviewer's End stopped it), or hidden tests the
            // submit still owes.
            let clock = round.due().is_some()
                && store.status(&interview.id)? != duet_protocol::InterviewStatus::Ended;
            if clock || round.tests_owed {
                running.push(interview.id);
            }
        }
        Ok(running)
    })
    .await;
    let running = match running {
        Ok(running) => running,
        Err(e) => {
            tracing::warn!(error = %e, "take-home clocks: could not list running take-homes");
            return 0;
        }
    };
    let mut loaded = 0;
    for id in running {
        if state.rooms.loaded_handle(&id).is_none() {
            state.rooms.get(&id);
            loaded += 1;
        }
    }
    loaded
}
