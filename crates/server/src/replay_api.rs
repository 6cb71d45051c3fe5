//! Replay endpoints: the timeline, the snapshot at a moment, and the export archive. Each
//! request does its store reads and rebuilding on a blocking thread.

use crate::auth;
use crate::error::AppError;
use crate::replay::ReplayError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use duet_core::replay;
use duet_protocol::{
    EventKind, InterviewId, LogRecord, Record, Role, Snapshot, Timeline, TimelineEvent, MAIN_FILE,
};
use std::collections::{BTreeMap, HashMap};

impl From<ReplayError> for AppError {
    fn from(e: ReplayError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// Runs `work` on a blocking thread (store reads, rebuilding documents).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("a replay task failed: {e}")))?
}

/// The query parameters of a request, refusing any not in `allowed` (`token` is always
/// allowed) and any given twice.
pub(crate) fn query(parts: &Parts, allowed: &[&str]) -> Result<HashMap<String, String>, AppError> {
    let mut out = HashMap::new();
    for pair in parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "token" {
            continue;
        }
        if !allowed.contains(&key) {
            return Err(AppError::BadRequest(format!(
                "unknown parameter {key:?}; this endpoint takes {}",
                allowed.join(", ")
            )));
        }
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(AppError::BadRequest(format!(
                "parameter {key:?} given twice"
            )));
        }
    }
    Ok(out)
}

pub(crate) fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    key: &str,
    what: &str,
) -> Result<Option<T>, AppError> {
    params
        .get(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| AppError::BadRequest(format!("{key} must be {what}, not {v:?}")))
        })
        .transpose()
}

/// The interview, refused unless the caller's role may replay it.
async fn replayer(state: &AppState, parts: &Parts, id: &str) -> Result<InterviewId, AppError> {
    let (interview, role) = auth::role_in(state, parts, id).await?;
    if !role.can_replay() {
        return Err(AppError::Forbidden(
            "this role cannot replay the interview (interviewer and reviewer only)",
        ));
    }
    Ok(interview)
}

/// When the interview was created (a deleted one: 404). Reads the store: blocking threads only.
fn created_at(state: &AppState, interview: &InterviewId) -> Result<i64, AppError> {
    let found = state
        .store
        .get_interview(interview)?
        .ok_or(AppError::NotFound("no such interview"))?;
    Ok(found.created_at)
}

/// `GET /api/interviews/{id}/timeline?after=<seq>` (interviewer, reviewer).
pub async fn timeline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Timeline>, AppError> {
    let params = query(&parts, &["after"])?;
    let interview = replayer(&state, &parts, &id).await?;
    blocking(move || {
        let created_at = created_at(&state, &interview)?;
        let after: u64 = number(&params, "after", "a seq (a whole number)")?.unwrap_or(0);
        Ok(Json(build_timeline(&state, &interview, created_at, after)?))
    })
    .await
}

/// A question switch on the timeline, named by its title in the bank.
fn titled(state: &AppState, mut event: TimelineEvent) -> TimelineEvent {
    if let TimelineEvent::Question {
        question_id, title, ..
    } = &mut event
    {
        *title = state
            .questions
            .get(question_id)
            .map(|q| q.summary.title.clone());
    }
    event
}

fn build_timeline(
    state: &AppState,
    interview: &InterviewId,
    created_at: i64,
    after: u64,
) -> Result<Timeline, AppError> {
    let store = &*state.store;
    // The light index comes from the replay cache (read once, then only what is new).
    let moments = state.replay.moments(store, interview)?;
    let upto = moments.lock().unwrap_or_else(|p| p.into_inner()).last_seq();
    let data_kinds: Vec<EventKind> = EventKind::ALL
        .into_iter()
        .filter(|k| replay::timeline_needs_data(*k))
        .collect();
    let data = store.read_kinds_in(interview, &data_kinds, after, upto)?;
    let runs_before = if after > 0 {
        store.read_kinds_in(interview, &[EventKind::RunStarted], 0, after)?
    } else {
        Vec::new()
    };
    let m = moments.lock().unwrap_or_else(|p| p.into_inner());
    let index = m.entries_after(after);
    let index = &index[..index.len().min(upto.saturating_sub(after) as usize)];
    Ok(Timeline {
        started_at: created_at,
        ended_at: m.at_of(upto).unwrap_or(created_at).max(created_at),
        last_seq: upto,
        events: replay::timeline(index, &data, &runs_before)
            .into_iter()
            .map(|event| titled(state, event))
            .collect(),
    })
}

/// `GET /api/interviews/{id}/snapshot?at=<unix ms>` or `?seq=<n>` (interviewer, reviewer).
pub async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Snapshot>, AppError> {
    let params = query(&parts, &["at", "seq"])?;
    let interview = replayer(&state, &parts, &id).await?;
    blocking(move || {
        let at: Option<i64> = number(&params, "at", "unix milliseconds (a whole number)")?;
        let seq: Option<u64> = number(&params, "seq", "a seq (a whole number)")?;
        let created_at = created_at(&state, &interview)?;
        let moments = state.replay.moments(&*state.store, &interview)?;
        let (seq, at) = {
            let m = moments.lock().unwrap_or_else(|p| p.into_inner());
            let ended_at = m.last_at().unwrap_or(created_at).max(created_at);
            match (at, seq) {
                (Some(_), Some(_)) => {
                    return Err(AppError::BadRequest(
                        "give either at or seq, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(AppError::BadRequest("give at=<unix ms> or seq=<n>".into()))
                }
                (Some(at), None) => {
                    let at = at.clamp(created_at, ended_at);
                    (m.seq_at(at), at)
                }
                (None, Some(seq)) if seq > m.last_seq() => {
                    return Err(AppError::BadRequest(format!(
                        "unknown seq {seq}: the log ends at seq {}",
                        m.last_seq()
                    )))
                }
                (None, Some(seq)) => (seq, m.at_of(seq).unwrap_or(created_at)),
            }
        };
        let text = state
            .replay
            .text_at(&state.store, &interview, &moments, seq)?;
        Ok(Json(Snapshot {
            seq,
            at,
            files: BTreeMap::from([(MAIN_FILE.to_owned(), text)]),
        }))
    })
    .await
}

/// `GET /api/interviews/{id}/export` (interviewer, reviewer): a tar archive of the session.
pub async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, AppError> {
    query(&parts, &[])?;
    let interview = replayer(&state, &parts, &id).await?;
    let (name, archive) = blocking(move || {
        let created_at = created_at(&state, &interview)?;
        let archive = build_export(&state, &interview, created_at)?;
        Ok((interview.to_string(), archive))
    })
    .await?;
    let mut response = archive.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"duet-{name}.tar\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

const EXPORT_README: &str = include_str!("export_readme.md");

fn build_export(
    state: &AppState,
    interview: &InterviewId,
    created_at: i64,
) -> Result<Vec<u8>, AppError> {
    let store = &*state.store;
    let meta = store
        .get_interview(interview)?
        .ok_or(AppError::NotFound("no such interview"))?;
    let records = store.read_range(interview, 0, u64::MAX)?;
    let runs = duet_core::run_index(&records, Role::Reviewer);
    let code_seqs: Vec<u64> = runs.iter().map(|r| r.summary.code_seq).collect();
    let (codes, final_text) = replay::texts_at(&records, &code_seqs).map_err(ReplayError::from)?;
    let last = records.last();
    let mut tar = Tar::default();
    tar.file("duet-export/README.md", EXPORT_README.as_bytes());
    let about = serde_json::json!({
        "format": "duet-export/1",
        "id": meta.id, "title": meta.title, "candidate_name": meta.candidate_name,
        "created_at": created_at,
        "last_seq": last.map_or(0, |r| r.seq),
        "ended_at": last.map_or(created_at, |r| r.at_ms.max(created_at)),
        "question_id": crate::api::current_question(store, &meta)?,
        "notes": null, "scorecard": null,
    });
    tar.file("duet-export/interview.json", &pretty(&about));
    // Every question the session was on, whole (the roles that may export may read them).
    let mut asked: Vec<String> = records
        .iter()
        .filter(|r| r.kind == EventKind::Question)
        .filter_map(|r| match r.decode() {
            Ok(Record::Question(q)) => Some(q.question_id),
            _ => None,
        })
        .chain(meta.question_id.clone())
        .collect();
    asked.sort();
    asked.dedup();
    for question_id in asked {
        if let Some(question) = state.questions.get(&question_id) {
            tar.file(
                &format!("duet-export/questions/{question_id}.json"),
                &pretty(&*question),
            );
        }
    }
    let mut log = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut log, &log_line(record)).map_err(internal)?;
        log.push(b'\n');
    }
    tar.file("duet-export/log.jsonl", &log);
    tar.file("duet-export/main.py", final_text.as_bytes());
    let timeline = build_timeline(state, interview, created_at, 0)?;
    tar.file("duet-export/timeline.json", &pretty(&timeline));
    let summaries: Vec<_> = runs.iter().map(|r| &r.summary).collect();
    tar.file("duet-export/runs/index.json", &pretty(&summaries));
    for run in &runs {
        let s = &run.summary;
        let dir = format!("duet-export/runs/{}", s.run_id);
        let output = duet_core::collect_output(&records, &s.run_id);
        let code = run
            .legacy_code
            .clone()
            .or_else(|| codes.get(&s.code_seq).cloned())
            .unwrap_or_default();
        tar.file(&format!("{dir}/main.py"), code.as_bytes());
        tar.file(&format!("{dir}/stdout"), &output.stdout);
        tar.file(&format!("{dir}/stderr"), &output.stderr);
        tar.file(
            &format!("{dir}/run.json"),
            &pretty(&serde_json::json!({
                "run": s, "private": run.private, "tests": run.tests, "lint": run.lint,
            })),
        );
        tar.file(
            &format!("{dir}/output.cast"),
            duet_core::asciicast(s, &output).as_bytes(),
        );
    }
    Ok(tar.finish())
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn pretty(value: &impl serde::Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// One line of `log.jsonl`.
fn log_line(record: &LogRecord) -> serde_json::Value {
    let mut line = serde_json::json!({
        "seq": record.seq, "at": record.at_ms, "kind": record.kind.as_str(), "by": record.by,
    });
    let data = |value: serde_json::Result<serde_json::Value>| match value {
        Ok(data) => serde_json::json!({ "data": data }),
        Err(_) => serde_json::json!({"raw": STANDARD.encode(&record.data)}),
    };
    let extra = match record.decode() {
        Ok(Record::Edit(update)) => serde_json::json!({"update": STANDARD.encode(update)}),
        Ok(Record::Join | Record::Leave | Record::End) => serde_json::json!({}),
        Ok(Record::RunOutput(out)) => serde_json::json!({
            "run_id": out.run_id, "stream": out.stream,
            "pieces": out.pieces.iter().map(|(o, at)| [*o as i64, *at]).collect::<Vec<_>>(),
            "bytes": STANDARD.encode(&out.bytes),
        }),
        Ok(Record::RunStarted(v)) => data(serde_json::to_value(v)),
        Ok(Record::RunInput(v)) => data(serde_json::to_value(v)),
        Ok(Record::RunFinished(v)) => data(serde_json::to_value(v)),
        Ok(Record::Question(v)) => data(serde_json::to_value(v)),
        Ok(Record::Scorecard(v)) => data(serde_json::to_value(v)),
        Ok(Record::Note(v)) => data(serde_json::to_value(v)),
        Ok(Record::Signal(v)) => data(serde_json::to_value(v)),
        Err(_) => serde_json::json!({"raw": STANDARD.encode(&record.data)}),
    };
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line
}

/// A POSIX ustar archive of regular files, written in memory.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn file(&mut self, path: &str, contents: &[u8]) {
        let mut header = [0u8; 512];
        let (prefix, name) = match path.len() {
            0..=100 => ("", path),
            _ => path.rsplit_once('/').unwrap_or(("", path)),
        };
        header[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], contents.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[345..345 + prefix.len().min(155)]
            .copy_from_slice(&prefix.as_bytes()[..prefix.len().min(155)]);
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        octal(&mut header[148..155], u64::from(sum));
        header[155] = b' ';
        self.0.extend_from_slice(&header);
        self.0.extend_from_slice(contents);
        let pad = (512 - contents.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

/// Writes `value` as zero-padded octal filling the field but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(width)..];
    field[..width].copy_from_slice(text);
    field[width] = 0;
}
