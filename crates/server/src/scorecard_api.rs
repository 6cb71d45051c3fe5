//! The interviewer's scorecard, private notes and the candidate's integrity signals. (The
//! interview's end and deletion are in `lifecycle_api.rs`, the debrief in `debrief_api.rs`.)
//!
//! Every change goes through the room, so it takes its place on the room's sequence and is
//! answered only once stored; reads come from the log through the store, on blocking threads.
//! Nothing here is ever served to the candidate.

use crate::api::{ask_room, blocking};
use crate::auth;
use crate::body::JsonBody;
use crate::error::AppError;
use crate::rooms::RoomCmd;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use duet_core::scorecard::{rubric, Anchors};
use duet_core::{ScorecardError, ScorecardState};
use duet_protocol::{
    AuditAction, Author, EventKind, Hints, InterviewId, NewNote, Note, NoteView, Record, Role,
    Scorecard, ScorecardUpdate, StaffRole,
};
use serde::Serialize;
use std::collections::HashMap;

/// A run as the scorecard lists it: enough to attach as evidence.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub kind: duet_protocol::RunKind,
    pub by: Role,
    pub at: i64,
    pub status: duet_protocol::RunStatus,
    pub tests_passed: Option<u32>,
    pub tests_failed: Option<u32>,
}

impl From<&duet_core::RunEntry> for RunSummary {
    fn from(run: &duet_core::RunEntry) -> RunSummary {
        let run = &run.summary;
        RunSummary {
            run_id: run.run_id.clone(),
            kind: run.kind,
            by: run.by,
            at: run.started_at,
            status: run.status,
            tests_passed: run.tests.as_ref().map(|t| t.passed),
            tests_failed: run.tests.as_ref().map(|t| t.failed + t.errors),
        }
    }
}

/// The question's private guidance, served with the scorecard.
#[derive(Debug, Serialize)]
pub struct Guidance {
    pub question_id: String,
    pub title: String,
    pub hints: Hints,
    pub follow_ups: Vec<String>,
}

/// `GET /api/interviews/{id}/scorecard`.
#[derive(Debug, Serialize)]
pub struct ScorecardView {
    /// The reader's own card (a reviewer's: the interviewer link's).
    pub scorecard: Scorecard,
    /// Whose card `scorecard` is.
    pub author: Author,
    pub rubric: Vec<Anchors>,
    pub runs: Vec<RunSummary>,
    pub question: Option<Guidance>,
}

/// Who reads or writes private material in one interview: their role there and, when signed
/// in, who they are.
pub(crate) struct Reader {
    pub interview: InterviewId,
    pub role: Role,
    /// The signed-in staff member's id (`None` for a role link).
    pub person_id: Option<String>,
    /// The signed-in staff member, when a reader needs more than the id.
    pub person: Option<duet_protocol::Person>,
}

impl Reader {
    /// Whose card and notes this reader writes: their own as a signed-in interviewer, the
    /// interviewer link's otherwise.
    pub fn author(&self) -> Option<&str> {
        match (&self.person_id, self.role) {
            (Some(id), Role::Interviewer) => Some(id.as_str()),
            _ => None,
        }
    }

    /// An admin (signed in) reads every card and note without submitting first.
    pub fn is_admin(&self) -> bool {
        self.person
            .as_ref()
            .is_some_and(|p| p.role == StaffRole::Admin)
    }
}

/// The role must be able to read private material (interviewer, reviewer); the candidate: 403.
pub(crate) async fn reader(state: &AppState, parts: &Parts, id: &str) -> Result<Reader, AppError> {
    let (interview, role, person_id) = auth::access_in(state, parts, id).await?;
    if !role.can_read_scorecard() {
        return Err(AppError::Forbidden(
            "the scorecard and notes are the interviewer's and reviewers'",
        ));
    }
    let person = match person_id.clone() {
        Some(person_id) => {
            let store = state.store.clone();
            blocking(move || store.person(&person_id)).await?
        }
        None => None,
    };
    Ok(Reader {
        interview,
        role,
        person_id,
        person,
    })
}

/// Only interviewers write: each their own card and notes (the link writes the link's).
async fn writer(state: &AppState, parts: &Parts, id: &str) -> Result<Reader, AppError> {
    let (interview, role, person_id) = auth::access_in(state, parts, id).await?;
    if !role.can_write_scorecard() {
        return Err(match role {
            Role::Reviewer => AppError::Forbidden(
                "reviewers read the scorecard and notes; only the interviewer writes them",
            ),
            _ => AppError::Forbidden("the scorecard and notes are the interviewer's"),
        });
    }
    // The id is enough to write: the name is looked up when the card is read.
    Ok(Reader {
        interview,
        role,
        person_id,
        person: None,
    })
}

/// The name every card and note of the interviewer link is shown with.
pub const LINK_NAME: &str = "Interviewer link";

/// Names the authors `ids` (panel members' ids) from the store: a person no longer there is
/// shown by their id.
pub(crate) fn names(
    store: &dyn duet_store::Store,
    ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, duet_store::StoreError> {
    let mut names = HashMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        let name = store
            .person(&id)?
            .map(|p| p.name)
            .unwrap_or_else(|| id.clone());
        names.insert(id, name);
    }
    Ok(names)
}

/// The author `id` names, given the names looked up.
pub(crate) fn author(id: Option<&str>, names: &HashMap<String, String>) -> Author {
    match id {
        None => Author {
            id: None,
            name: LINK_NAME.to_owned(),
        },
        Some(id) => Author {
            id: Some(id.to_owned()),
            name: names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
        },
    }
}

impl From<ScorecardError> for AppError {
    fn from(e: ScorecardError) -> AppError {
        match e {
            ScorecardError::Stale { .. } | ScorecardError::Submitted => {
                AppError::Conflict(e.to_string())
            }
            ScorecardError::Invalid(why) => AppError::BadRequest(why),
        }
    }
}

/// Every card of the interview, as the log has them.
pub(crate) async fn stored_cards(
    state: &AppState,
    interview: &InterviewId,
) -> Result<ScorecardState, AppError> {
    let store = state.store.clone();
    let id = interview.clone();
    let records = blocking(move || store.read_kinds(&id, &[EventKind::Scorecard])).await?;
    Ok(ScorecardState::from_log(&records))
}

/// `GET /api/interviews/{id}/scorecard` (interviewer, reviewer): the card, the rubric's anchors,
/// every run of the session, and the question's hints and follow-ups.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<ScorecardView>, AppError> {
    let who = reader(&state, &parts, &id).await?;
    let (interview, role) = (who.interview.clone(), who.role);
    let scorecard = stored_cards(&state, &interview)
        .await?
        .card_of(who.author());
    let author = author(
        who.author(),
        &who.person
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect(),
    );
    let store = state.store.clone();
    let id = interview.clone();
    let (records, current) = blocking(move || {
        let records = store.read_kinds(&id, &[EventKind::RunStarted, EventKind::RunFinished])?;
        let current = match store.get_interview(&id)? {
            Some(meta) => crate::api::current_question(&*store, &meta)?,
            None => None,
        };
        Ok((records, current))
    })
    .await?;
    let runs = duet_core::run_index(&records, role)
        .iter()
        .map(RunSummary::from)
        .collect();
    let question = current
        .and_then(|q| state.questions.get(&q))
        .map(|q| Guidance {
            question_id: q.id().to_owned(),
            title: q.summary.title.clone(),
            hints: q.hints.clone(),
            follow_ups: q.follow_ups.clone(),
        });
    Ok(Json(ScorecardView {
        scorecard,
        author,
        rubric: rubric(),
        runs,
        question,
    }))
}

/// `PUT /api/interviews/{id}/scorecard` (interviewer): saves the whole of the caller's own card
/// (a signed-in interviewer's, or the link's) if `version` is the one stored (409 with the
/// current version otherwise).
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<ScorecardUpdate>,
) -> Result<Json<Scorecard>, AppError> {
    let who = writer(&state, &parts, &id).await?;
    let update = body.read()?;
    let author = who.author().map(str::to_owned);
    let card = ask_room(&state, &who.interview, |reply| RoomCmd::SaveScorecard {
        author,
        update,
        reply,
    })
    .await??;
    Ok(Json(card))
}

/// `POST /api/interviews/{id}/scorecard/submit` (interviewer): locks the caller's own card;
/// answered once the lock is stored.
pub async fn submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Scorecard>, AppError> {
    let who = writer(&state, &parts, &id).await?;
    let author = who.author().map(str::to_owned);
    let card = ask_room(&state, &who.interview, |reply| RoomCmd::SubmitScorecard {
        author: author.clone(),
        reply,
    })
    .await??;
    let actor = match author {
        Some(person_id) => {
            let store = state.store.clone();
            blocking(move || store.person(&person_id))
                .await?
                .map_or_else(|| "unknown".to_owned(), |p| p.email)
        }
        None => "interviewer-link".to_owned(),
    };
    crate::people_api::audit(
        &state,
        actor,
        AuditAction::ScorecardSubmitted,
        Some(who.interview.to_string()),
        Some(&parts),
    )
    .await;
    Ok(Json(card))
}

/// `POST /api/interviews/{id}/notes` (interviewer): a private note at this moment, the caller's
/// own.
pub async fn add_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<NewNote>,
) -> Result<(StatusCode, Json<Note>), AppError> {
    let who = writer(&state, &parts, &id).await?;
    let note = body.read()?;
    let author = who.author().map(str::to_owned);
    let note = ask_room(&state, &who.interview, |reply| RoomCmd::AddNote {
        author,
        text: note.text,
        reply,
    })
    .await?
    .map_err(AppError::BadRequest)?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /api/interviews/{id}/notes` (interviewer, reviewer): notes oldest first, each with its
/// author. An interviewer reads their own (a signed-in one theirs, the link the link's);
/// reviewers and admins read everyone's.
pub async fn notes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Vec<NoteView>>, AppError> {
    let who = reader(&state, &parts, &id).await?;
    let everyone = who.role == Role::Reviewer || who.is_admin();
    let mine = who.author().map(str::to_owned);
    let store = state.store.clone();
    let interview = who.interview.clone();
    let views = blocking(move || {
        let records = store.read_kinds(&interview, &[EventKind::Note])?;
        let notes: Vec<Note> = records
            .iter()
            .filter_map(|r| match r.decode() {
                Ok(Record::Note(note)) if everyone || note.person == mine => Some(note),
                _ => None,
            })
            .collect();
        let names = names(&*store, notes.iter().filter_map(|n| n.person.clone()))?;
        Ok(notes
            .into_iter()
            .map(|note| NoteView {
                author: author(note.person.as_deref(), &names),
                text: note.text,
                at: note.at,
                seq: note.seq,
            })
            .collect())
    })
    .await?;
    Ok(Json(views))
}

/// `POST /api/interviews/{id}/signals` (candidate): a large paste (its size) or the tab losing
/// focus, logged for the interviewer's review. `202 {"logged": bool}` (false once the minute's
/// cap is reached or the interview has ended).
pub async fn signal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: JsonBody<duet_protocol::NewSignal>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let (interview, role) = auth::role_in(&state, &parts, &id).await?;
    if role != Role::Candidate {
        return Err(AppError::Forbidden(
            "integrity signals come from the candidate's page",
        ));
    }
    let signal = body.read()?;
    let logged = ask_room(&state, &interview, |reply| RoomCmd::Signal {
        kind: signal.kind,
        size: signal.size,
        reply,
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "logged": logged })),
    ))
}
