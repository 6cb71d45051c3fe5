//! The run endpoints: start a run of the room's code, feed its stdin, cancel it, and list the
//! interview's run history. Live output goes out on the events socket (see `events.rs`).

use crate::auth;
use crate::body::JsonBody;
use crate::error::AppError;
use crate::replay_api::{blocking, number, query};
use crate::rooms::RoomCmd;
use crate::rooms::RunError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use duet_core::RunOutputs;
use duet_protocol::{
    sees_log_seq, EventKind, InterviewId, Role, RunDetail, RunPage, RunStdin, RunSummary, StartRun,
    WireOutput,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Largest stdin one request may carry.
pub const MAX_STDIN: usize = 64 * 1024;

/// `POST /api/interviews/{id}/runs` (candidate, interviewer): runs `main.py` as it stands.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<StartRun>,
) -> Result<Response, AppError> {
    let (interview, role) = runner(&state, &parts, &id).await?;
    let request = body.read()?;
    if request.stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
        return Err(AppError::TooLarge(format!(
            "stdin is over {MAX_STDIN} bytes"
        )));
    }
    // Each role has its own budget, and only runs that start count against it: the
    // candidate's refused requests cannot use up the interviewer's runs.
    state.run_rate.check(&interview, role)?;
    let run_id = ask(&state, &interview, |reply| RoomCmd::StartRun {
        by: role,
        kind: request.kind,
        stdin: request.stdin,
        reply,
    })
    .await?;
    state.run_rate.record(&interview, role);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "run_id": run_id })),
    )
        .into_response())
}

/// `POST /api/interviews/{id}/runs/{run_id}/stdin` (candidate, interviewer).
pub async fn stdin(
    State(state): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    parts: Parts,
    body: JsonBody<RunStdin>,
) -> Result<StatusCode, AppError> {
    let (interview, role) = runner(&state, &parts, &id).await?;
    let request = body.read()?;
    if request.data.len() > MAX_STDIN {
        return Err(AppError::TooLarge(format!(
            "stdin is over {MAX_STDIN} bytes"
        )));
    }
    ask(&state, &interview, |reply| RoomCmd::RunStdin {
        run_id,
        by: role,
        data: request.data,
        eof: request.eof,
        reply,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/interviews/{id}/runs/{run_id}/cancel` (candidate, interviewer).
pub async fn cancel(
    State(state): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    parts: Parts,
) -> Result<StatusCode, AppError> {
    let (interview, role) = runner(&state, &parts, &id).await?;
    ask(&state, &interview, |reply| RoomCmd::CancelRun {
        run_id,
        by: role,
        reply,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Most runs one page of `GET /runs` holds, and how many it holds by default.
const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 50;

/// `GET /api/interviews/{id}/runs?after=<run_id>&limit=<n>` (any role): a page of the runs
/// this role may see, oldest first, light (no code, no output). The cursor is a run id; the
/// interviewer and reviewers may also give a log seq. The candidate is given and may give no
/// seq: nothing it reads tells how many private records the log holds.
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<RunPage>, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    blocking(move || {
        let params = query(&parts, &["after", "limit"])?;
        let limit: usize =
            number(&params, "limit", "a whole number from 1 to 500")?.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::BadRequest(format!(
                "limit must be from 1 to {MAX_PAGE}"
            )));
        }
        let runs = duet_core::run_index(&state.store.read_runs(&interview)?, role);
        let after = match params.get("after") {
            None => 0,
            Some(cursor) => match runs.iter().find(|r| r.summary.run_id == *cursor) {
                Some(run) => run.seq,
                None if sees_log_seq(role) => cursor.parse::<u64>().map_err(|_| {
                    AppError::BadRequest(format!(
                        "after must be the id of a run you can see or a seq, not {cursor:?}"
                    ))
                })?,
                None => {
                    return Err(AppError::BadRequest(format!(
                        "after must be the id of a run you can see, not {cursor:?}"
                    )))
                }
            },
        };
        let mut page: Vec<RunSummary> = runs
            .into_iter()
            .filter(|r| r.seq > after)
            .take(limit + 1)
            .map(|r| r.summary.seen_by(role))
            .collect();
        let next = (page.len() > limit)
            .then(|| {
                page.truncate(limit);
                page.last().map(|r| r.run_id.clone())
            })
            .flatten();
        Ok(Json(RunPage { runs: page, next }))
    })
    .await
}

/// A run this role may see, with its output records. A run hidden from the role is 404, as
/// is one that does not exist.
fn visible_run(
    state: &AppState,
    interview: InterviewId,
    role: Role,
    run_id: &str,
) -> Result<(InterviewId, duet_core::RunEntry, RunOutputs), AppError> {
    let run = duet_core::run_index(&state.store.read_runs(&interview)?, role)
        .into_iter()
        .find(|r| r.summary.run_id == run_id)
        .ok_or(AppError::NotFound("no such run"))?;
    let records = state.store.read_kinds_in(
        &interview,
        &[EventKind::RunOutput],
        run.seq,
        run.finished_seq.unwrap_or(u64::MAX),
    )?;
    let output = duet_core::collect_output(&records, run_id);
    Ok((interview, run, output))
}

/// `GET /api/interviews/{id}/runs/{run_id}` (any role that may see the run): the run whole.
pub async fn detail(
    State(state): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    parts: Parts,
) -> Result<Json<RunDetail>, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    blocking(move || {
        query(&parts, &[])?;
        let (interview, run, output) = visible_run(&state, interview, role, &run_id)?;
        let code = match run.legacy_code {
            Some(code) => code,
            None => {
                let moments = state.replay.moments(&*state.store, &interview)?;
                state
                    .replay
                    .text_at(&state.store, &interview, &moments, run.code_seq)?
            }
        };
        // Served as it travels live (text or base64, never decoded here), so a reader decodes
        // live and stored output the same way.
        let cap = state.config.sandbox.output_bytes;
        let shown = |bytes: &[u8]| {
            (
                WireOutput::of(&bytes[..bytes.len().min(cap)]),
                bytes.len() > cap,
            )
        };
        let (stdout, stdout_truncated) = shown(&output.stdout);
        let (stderr, stderr_truncated) = shown(&output.stderr);
        Ok(Json(
            RunDetail {
                // The detail's own `tests` has the cases: the summary's counts are left out.
                summary: RunSummary {
                    tests: None,
                    ..run.summary
                },
                code,
                stdout: stdout.text,
                stdout_base64: stdout.base64,
                stderr: stderr.text,
                stderr_base64: stderr.base64,
                stdout_truncated,
                stderr_truncated,
                stdout_bytes: output.stdout.len() as u64,
                stderr_bytes: output.stderr.len() as u64,
                through_seq: Some(output.through_seq),
                tests: run.tests,
                lint: run.lint,
            }
            .seen_by(role),
        ))
    })
    .await
}

/// `GET /api/interviews/{id}/runs/{run_id}/cast` (any role that may see the run): its output
/// as an asciicast v2 recording.
pub async fn cast(
    State(state): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    parts: Parts,
) -> Result<Response, AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    let cast = blocking(move || {
        query(&parts, &[])?;
        let (_, run, output) = visible_run(&state, interview, role, &run_id)?;
        Ok(duet_core::asciicast(&run.summary, &output))
    })
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/x-asciicast; charset=utf-8",
        )],
        cast,
    )
        .into_response())
}

async fn runner(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<(InterviewId, Role), AppError> {
    let (interview, role) = auth::role_in(state, parts, id).await?;
    if !role.can_run() {
        return Err(AppError::Forbidden("this role cannot run code"));
    }
    Ok((interview, role))
}

/// Asks the room and turns its refusal into the HTTP answer.
async fn ask<T>(
    state: &AppState,
    interview: &InterviewId,
    make: impl FnOnce(oneshot::Sender<Result<T, RunError>>) -> RoomCmd,
) -> Result<T, AppError> {
    crate::api::ask_room(state, interview, make)
        .await?
        .map_err(AppError::from)
}

impl From<RunError> for AppError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::EmptyProgram | RunError::Unsupported(_) => {
                AppError::BadRequest(e.to_string())
            }
            RunError::Busy(_) | RunError::RoomUnavailable(_) => {
                AppError::Unavailable(e.to_string())
            }
            RunError::NotRunning | RunError::StdinFull => AppError::Conflict(e.to_string()),
            RunError::NoSuchRun => AppError::NotFound("no such run"),
            RunError::Forbidden(why) => AppError::Forbidden(why),
            RunError::TooLarge(why) => AppError::TooLarge(why),
            RunError::Ended => AppError::Conflict(e.to_string()),
            RunError::Refused(_) => AppError::Failed {
                doing: "starting a run",
                source: Box::new(e),
            },
        }
    }
}

/// Runs per interview in a sliding window.
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    starts: Mutex<HashMap<(InterviewId, Role), VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn per_minute(limit: usize) -> RateLimiter {
        RateLimiter {
            limit: limit.max(1),
            window: Duration::from_secs(60),
            starts: Mutex::new(HashMap::new()),
        }
    }

    fn starts(
        &self,
        now: Instant,
    ) -> std::sync::MutexGuard<'_, HashMap<(InterviewId, Role), VecDeque<Instant>>> {
        let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
        starts.retain(|_, q| {
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                q.pop_front();
            }
            !q.is_empty()
        });
        starts
    }

    /// Says whether this role of the interview may start a run now, or how long to wait.
    pub fn check(&self, interview: &InterviewId, role: Role) -> Result<(), AppError> {
        let now = Instant::now();
        let starts = self.starts(now);
        let Some(queue) = starts.get(&(interview.clone(), role)) else {
            return Ok(());
        };
        if queue.len() >= self.limit {
            let oldest = queue.front().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Counts a run that started.
    pub fn record(&self, interview: &InterviewId, role: Role) {
        let now = Instant::now();
        self.starts(now)
            .entry((interview.clone(), role))
            .or_default()
            .push_back(now);
    }
}
