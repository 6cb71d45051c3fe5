//! A take-home round through the API: the candidate's start page (`GET .../take-home`), its
//! check that a run works, Start and Submit. The room decides (duet-core's `take_home.rs`);
//! these handlers check who asks, pass the command to the room and answer what it decided,
//! each refusal saying what happened and when.

use crate::api::{ask_room, blocking, current_question};
use crate::auth;
use crate::error::AppError;
use crate::rooms::{RoomCmd, TakeHomeCmd};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::Json;
use duet_core::{TakeHome, TakeHomeError};
use duet_protocol::{
    EventKind, InterviewMode, QuestionView, Role, SubmitReason, TakeHomeCheck, TakeHomeStage,
    TakeHomeStarted, TakeHomeSubmitted, TakeHomeView, TAKE_HOME_RECORDED,
};
use duet_sandbox::{RunEvent, RunRequest, RunStatus, Target};
use duet_store::{Interview, Store};
use std::time::{Duration, UNIX_EPOCH};

/// A take-home's round as its log says: its start and submit, and whether the hidden tests are
/// still owed (blocking: reads the store).
pub fn read_round(
    store: &dyn Store,
    interview: &Interview,
) -> Result<TakeHome, duet_store::StoreError> {
    let mut round = TakeHome::new(interview.time_limit_minutes.unwrap_or(0));
    let kinds = [
        EventKind::TakeHomeStarted,
        EventKind::TakeHomeSubmitted,
        EventKind::RunStarted,
        EventKind::RunFinished,
    ];
    for record in store.read_kinds(&interview.id, &kinds)? {
        if let Ok(record) = record.decode() {
            round.learn(&record);
        }
    }
    Ok(round)
}

/// Whether `role` may read the question of a take-home at `stage`: staff always, the candidate
/// only while the clock runs (not before Start, not after the submit).
pub fn question_visible(mode: InterviewMode, stage: Option<TakeHomeStage>, role: Role) -> bool {
    mode == InterviewMode::Live || role != Role::Candidate || stage == Some(TakeHomeStage::Running)
}

/// `GET /api/interviews/{id}/take-home` (any role of a take-home): where the round stands, with
/// the server's clock for the page's countdown.
pub async fn view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<TakeHomeView>, AppError> {
    let (id, role) = auth::role_in(&state, &parts, &id).await?;
    let store = state.store.clone();
    let (interview, round, current) = blocking(move || {
        let Some(interview) = store.get_interview(&id)? else {
            return Ok(None);
        };
        let round = read_round(&*store, &interview)?;
        let current = current_question(&*store, &interview)?;
        Ok(Some((interview, round, current)))
    })
    .await?
    .ok_or(AppError::NotFound("no such interview"))?;
    let Some(time_limit_minutes) = take_home_limit(&interview) else {
        return Err(not_take_home());
    };
    let question = current.as_deref().and_then(|q| state.questions.get(q));
    let stage = round.stage();
    let shown = question
        .as_ref()
        .filter(|_| question_visible(interview.mode, Some(stage), role))
        .map(|q| {
            if role.can_read_scorecard() {
                QuestionView::Full(Box::new((**q).clone()))
            } else {
                QuestionView::Candidate(q.for_candidate())
            }
        });
    Ok(Json(TakeHomeView {
        stage,
        title: interview.title,
        candidate_name: interview.candidate_name,
        time_limit_minutes,
        question_title: question.map(|q| q.summary.title.clone()),
        question: shown,
        started: round.started,
        submitted: round.submitted,
        server_now: crate::rooms::now_ms(),
        recorded: TAKE_HOME_RECORDED.iter().map(|s| (*s).to_owned()).collect(),
    }))
}

/// `POST /api/interviews/{id}/start` (the candidate of a take-home): the clock starts now, on
/// the server's clock. Answers the start (with the deadline) once it is stored; 409 if it
/// started before or was submitted, saying when.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<TakeHomeStarted>, AppError> {
    let interview = candidate_of_take_home(&state, &parts, &id).await?;
    let started = ask_room(&state, &interview.id, |reply| {
        RoomCmd::TakeHome(TakeHomeCmd::Start { reply })
    })
    .await?
    .map_err(refusal)?;
    tracing::info!(interview = %interview.id, deadline = started.deadline, "take-home started");
    Ok(Json(started))
}

/// `POST /api/interviews/{id}/submit` (the candidate of a take-home): ends the round now, as an
/// interviewer's End ends a live one; the hidden tests then run on the submitted code. 409 for
/// a second submit or one after the time limit, saying what happened and when.
pub async fn submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<TakeHomeSubmitted>, AppError> {
    let interview = candidate_of_take_home(&state, &parts, &id).await?;
    let submitted = ask_room(&state, &interview.id, |reply| {
        RoomCmd::TakeHome(TakeHomeCmd::Submit { reply })
    })
    .await?
    .map_err(refusal)?;
    Ok(Json(submitted))
}

/// The check program: it prints the line the check looks for.
const CHECK_PROGRAM: &str = "import sys\nprint('duet check ok', sys.version.split()[0])\n";
/// The line a working run prints.
const CHECK_LINE: &str = "duet check ok";
/// Output the check keeps.
const CHECK_OUTPUT: usize = 4096;

/// `POST /api/interviews/{id}/take-home/check` (the candidate of a take-home, before or during
/// the round): runs a fixed program in the sandbox and answers what it printed. Nothing is
/// recorded and no clock starts: it only shows that runs work from where the candidate is.
pub async fn check(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<TakeHomeCheck>, AppError> {
    let interview = candidate_of_take_home(&state, &parts, &id).await?;
    // A check counts as a run against the candidate's runs a minute.
    state.run_rate.check(&interview.id, Role::Candidate)?;
    state.run_rate.record(&interview.id, Role::Candidate);
    let question_environment = interview
        .question_id
        .as_deref()
        .and_then(|q| state.questions.get(q))
        .map(|q| q.environment.clone());
    let request = RunRequest {
        files: [("main.py".to_owned(), CHECK_PROGRAM.to_owned())].into(),
        target: Target::Program {
            entry: "main.py".to_owned(),
        },
        // Where the round's runs go (its question's environment when that names one beyond
        // the default): the check shows that runs work there.
        environment: duet_protocol::run_environment(
            question_environment.as_deref(),
            &interview.environment,
        )
        .to_owned(),
        stdin: None,
        keep_stdin_open: false,
        limits: state.config.sandbox.limits(),
        party: interview.id.to_string(),
    };
    let mut handle = state
        .sandbox
        .start(request)
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let mut output = Vec::new();
    let mut status = RunStatus::SandboxError;
    let mut duration = Duration::ZERO;
    while let Some(event) = handle.events.recv().await {
        match event {
            RunEvent::Stdout(bytes) | RunEvent::Stderr(bytes) => {
                let room = CHECK_OUTPUT.saturating_sub(output.len());
                output.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            RunEvent::Finished(outcome) => {
                status = outcome.status;
                duration = outcome.duration;
            }
            RunEvent::Queued { .. } => {}
        }
    }
    let output = String::from_utf8_lossy(&output).into_owned();
    Ok(Json(TakeHomeCheck {
        ok: status == RunStatus::Ok && output.contains(CHECK_LINE),
        output,
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    }))
}

/// The interview `id`, if the request is its candidate's and it is a take-home.
async fn candidate_of_take_home(
    state: &AppState,
    parts: &Parts,
    id: &str,
) -> Result<Interview, AppError> {
    let (id, role) = auth::role_in(state, parts, id).await?;
    if role != Role::Candidate {
        return Err(AppError::Forbidden(
            "only the candidate starts, checks and submits their take-home (staff watch)",
        ));
    }
    let store = state.store.clone();
    let interview = blocking(move || store.get_interview(&id))
        .await?
        .ok_or(AppError::NotFound("no such interview"))?;
    match take_home_limit(&interview) {
        Some(_) => Ok(interview),
        None => Err(not_take_home()),
    }
}

fn take_home_limit(interview: &Interview) -> Option<u32> {
    match interview.mode {
        InterviewMode::TakeHome => interview.time_limit_minutes,
        InterviewMode::Live => None,
    }
}

fn not_take_home() -> AppError {
    AppError::Conflict(TakeHomeError::NotTakeHome.to_string())
}

/// A refusal, with its times as dates a person reads.
fn refusal(e: TakeHomeError) -> AppError {
    AppError::Conflict(match e {
        TakeHomeError::AlreadyStarted(s) => format!(
            "the take-home already started at {}; its time runs out at {}",
            date(s.started_at),
            date(s.deadline)
        ),
        TakeHomeError::AlreadySubmitted(s) => format!(
            "the take-home was already submitted at {}{}; nothing changed",
            date(s.at),
            match s.reason {
                SubmitReason::Submitted => " by the candidate",
                SubmitReason::TimeLimit => ", automatically at the time limit",
            }
        ),
        TakeHomeError::PastLimit(s) => format!(
            "the time limit was reached at {}: the take-home was submitted then, automatically, with what was written by then",
            date(s.deadline)
        ),
        other => other.to_string(),
    })
}

/// Unix milliseconds as an HTTP date (`Sat, 05 Dec 2026 22:40:01 GMT`).
fn date(unix_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    httpdate::fmt_http_date(at)
}
