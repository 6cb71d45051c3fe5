//! Replay endpoints: the timeline, the snapshot at a moment, and the export archive. Each
//! request does its store reads and rebuilding on a blocking thread.

use crate::auth;
use crate::error::AppError;
use crate::replay::ReplayError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use duet_core::replay;
use duet_protocol::{
    BoardElement, EventKind, InterviewId, LogRecord, Record, Role, Snapshot, Timeline,
    TimelineBody, TimelineEvent, MAIN_FILE,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    if let TimelineBody::Question { question_id, title } = &mut event.body {
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
    let facts = state
        .replay
        .edit_facts(&state.store, interview, &moments, after, upto)?;
    let m = moments.lock().unwrap_or_else(|p| p.into_inner());
    let index = m.entries_after(after);
    let index = &index[..index.len().min(upto.saturating_sub(after) as usize)];
    let events: Vec<TimelineEvent> = replay::timeline(index, &data, &runs_before, &facts)
        .into_iter()
        .map(|event| titled(state, event))
        .collect();
    let ended_at = m.at_of(upto).unwrap_or(created_at).max(created_at);
    drop(m); // the cache's lock is not held while the store names the authors
    Ok(Timeline {
        started_at: created_at,
        ended_at,
        last_seq: upto,
        events: named(store, events)?,
    })
}

/// The notes and scorecard changes on the timeline, named by who wrote them (a panel member by
/// their name, the interviewer link as such). Reads the store: blocking threads only.
fn named(
    store: &dyn duet_store::Store,
    mut events: Vec<TimelineEvent>,
) -> Result<Vec<TimelineEvent>, AppError> {
    let ids = events.iter().filter_map(|e| match &e.body {
        TimelineBody::Note { person, .. } | TimelineBody::Scorecard { person, .. } => {
            person.clone()
        }
        _ => None,
    });
    let names = crate::scorecard_api::names(store, ids.collect::<Vec<_>>())?;
    for event in &mut events {
        if let TimelineBody::Note { person, name, .. }
        | TimelineBody::Scorecard { person, name, .. } = &mut event.body
        {
            *name = Some(crate::scorecard_api::author(person.as_deref(), &names).name);
        }
    }
    Ok(events)
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
        let doc = state
            .replay
            .doc_at(&state.store, &interview, &moments, seq)?;
        let mut files: BTreeMap<String, String> = doc.files.into_iter().collect();
        files.entry(MAIN_FILE.to_owned()).or_default(); // every document has it
        Ok(Json(Snapshot {
            seq,
            at,
            files,
            board: doc
                .board
                .iter()
                .filter_map(|(_, json)| BoardElement::from_json(json))
                .collect(),
        }))
    })
    .await
}

/// `GET /api/interviews/{id}/export` (interviewer, reviewer): a tar archive of the session,
/// streamed: it is written on a blocking thread into a small bounded channel as the response
/// body reads it, so neither the archive nor any file of it but the one being written is held
/// whole (the log's records are read once). Bounded by [`ExportSlots`].
pub async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, AppError> {
    query(&parts, &[])?;
    let interview = replayer(&state, &parts, &id).await?;
    let token = auth::hash(&auth::token_of(&parts).unwrap_or_default());
    let slot = match state.exports.take(token) {
        Ok(slot) => slot,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let (chunks, body) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(EXPORT_CHUNKS);
    let (ready, prepared) = tokio::sync::oneshot::channel::<Result<(), AppError>>();
    let name = interview.to_string();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let export = match Export::prepare(&state, &interview) {
            Ok(export) => export,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok(())).is_err() {
            return; // the client left
        }
        let mut out = ChunkWriter::new(chunks.clone());
        let written = export.write(&state, &mut out);
        if let Err(e) = written {
            // The client left (nothing to tell), or something broke: end the body with an
            // error so the archive cannot pass for complete.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, %interview, "export failed while streaming");
                let _ = chunks.blocking_send(Err(e));
            }
        }
    });
    prepared
        .await
        .map_err(|_| AppError::Internal("the export task ended early".into()))??;
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let mut response = axum::body::Body::from_stream(stream).into_response();
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

/// Chunks of an export in flight between its writer and the response, each up to
/// [`CHUNK_BYTES`].
const EXPORT_CHUNKS: usize = 8;
const CHUNK_BYTES: usize = 64 * 1024;

/// Exports in flight: at most `max` on the server (more: 503) and `per_token` for one token
/// (more: 429). A slot is held from the request until the archive's last byte is written, or
/// the client leaves.
pub struct ExportSlots {
    server: Arc<Semaphore>,
    per_token: usize,
    by_token: Mutex<HashMap<duet_store::TokenHash, usize>>,
}

/// One export's place under [`ExportSlots`], given back on drop.
pub struct ExportSlot {
    slots: Arc<ExportSlots>,
    token: duet_store::TokenHash,
    _server: OwnedSemaphorePermit,
}

/// Why an export was not started.
pub enum ExportRefusal {
    /// This token already has its exports in flight.
    Token(usize),
    /// The server has all its exports in flight.
    Server,
}

impl IntoResponse for ExportRefusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ExportRefusal::Token(n) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_exports",
                format!("this token already has {n} export(s) in progress; retry when it is done"),
            ),
            ExportRefusal::Server => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is busy with other exports; retry in a minute".to_owned(),
            ),
        };
        let body = duet_protocol::ErrorBody {
            error: duet_protocol::ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        response
    }
}

impl ExportSlots {
    pub fn new(max: usize, per_token: usize) -> ExportSlots {
        ExportSlots {
            server: Arc::new(Semaphore::new(max.max(1))),
            per_token: per_token.max(1),
            by_token: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one export by `token`, or why not.
    pub fn take(
        self: &Arc<Self>,
        token: duet_store::TokenHash,
    ) -> Result<ExportSlot, ExportRefusal> {
        let mut by_token = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
        let held = by_token.get(&token).copied().unwrap_or(0);
        if held >= self.per_token {
            return Err(ExportRefusal::Token(held));
        }
        let permit = self
            .server
            .clone()
            .try_acquire_owned()
            .map_err(|_| ExportRefusal::Server)?;
        by_token.insert(token, held + 1);
        Ok(ExportSlot {
            slots: self.clone(),
            token,
            _server: permit,
        })
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut by_token = self
            .slots
            .by_token
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(held) = by_token.get_mut(&self.token) {
            *held -= 1;
            if *held == 0 {
                by_token.remove(&self.token);
            }
        }
    }
}

/// Sends what is written to it in chunks over a bounded channel, waiting while the channel is
/// full (the client reads slowly); fails with `BrokenPipe` once the client has gone.
struct ChunkWriter {
    buf: Vec<u8>,
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
}

impl ChunkWriter {
    fn new(chunks: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>) -> ChunkWriter {
        ChunkWriter {
            buf: Vec::with_capacity(CHUNK_BYTES),
            chunks,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// What an export needs from the store, read (and checked) before the answer starts.
struct Export {
    meta: duet_protocol::Interview,
    created_at: i64,
    question_id: Option<String>,
    records: Vec<LogRecord>,
    runs: Vec<duet_core::RunEntry>,
    codes: HashMap<u64, String>,
    ended: duet_core::DocAt,
    timeline: Timeline,
}

impl Export {
    fn prepare(state: &AppState, interview: &InterviewId) -> Result<Export, AppError> {
        let store = &*state.store;
        let meta = store
            .get_interview(interview)?
            .ok_or(AppError::NotFound("no such interview"))?;
        let created_at = meta.created_at;
        let records = store.read_range(interview, 0, u64::MAX)?;
        let runs = duet_core::run_index(&records, Role::Reviewer);
        let code_seqs: Vec<u64> = runs.iter().map(|r| r.code_seq).collect();
        let (codes, ended) = replay::texts_at(&records, &code_seqs).map_err(ReplayError::from)?;
        let question_id = crate::api::current_question(store, &meta)?;
        let timeline = build_timeline(state, interview, created_at, 0)?;
        Ok(Export {
            meta,
            created_at,
            question_id,
            records,
            runs,
            codes: codes.into_iter().collect(),
            ended,
            timeline,
        })
    }

    /// Writes the archive to `out`, one file at a time.
    fn write(self, state: &AppState, out: &mut ChunkWriter) -> std::io::Result<()> {
        let Export {
            meta,
            created_at,
            question_id,
            records,
            runs,
            codes,
            ended,
            timeline,
        } = self;
        let mut tar = tar::Builder::new(out);
        file(&mut tar, "duet-export/README.md", EXPORT_README.as_bytes())?;
        let last = records.last();
        let about = serde_json::json!({
            "format": "duet-export/1",
            "id": meta.id, "title": meta.title, "candidate_name": meta.candidate_name,
            "created_at": created_at,
            "last_seq": last.map_or(0, |r| r.seq),
            "ended_at": last.map_or(created_at, |r| r.at_ms.max(created_at)),
            "question_id": question_id,
            "notes": null, "scorecard": null,
        });
        file(&mut tar, "duet-export/interview.json", &pretty(&about))?;
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
                file(
                    &mut tar,
                    &format!("duet-export/questions/{question_id}.json"),
                    &pretty(&*question),
                )?;
            }
        }
        // The log, the largest file: measured in a first pass, then written line by line.
        let mut line = Vec::new();
        let mut size = 0u64;
        for record in &records {
            line.clear();
            write_log_line(&mut line, record)?;
            size += line.len() as u64;
        }
        let mut header = header_for(size);
        tar.append_data(
            &mut header,
            "duet-export/log.jsonl",
            LogLines {
                records: records.iter(),
                line: Vec::new(),
                pos: 0,
            },
        )?;
        // Every file as it ended (main.py also at the top, where exports before files kept it),
        // and the board: its elements, and a drawing of them.
        for (path, text) in &ended.files {
            if path == MAIN_FILE {
                file(&mut tar, "duet-export/main.py", text.as_bytes())?;
            }
            file(
                &mut tar,
                &format!("duet-export/files/{path}"),
                text.as_bytes(),
            )?;
        }
        let elements: Vec<BoardElement> = ended
            .board
            .iter()
            .filter_map(|(_, json)| BoardElement::from_json(json))
            .collect();
        file(&mut tar, "duet-export/board.json", &pretty(&elements))?;
        let svg = duet_core::board_svg::render(ended.board.iter().map(|(_, json)| &**json));
        file(&mut tar, "duet-export/board.svg", svg.as_bytes())?;
        drop(ended);
        file(&mut tar, "duet-export/timeline.json", &pretty(&timeline))?;
        drop(timeline);
        let summaries: Vec<_> = runs.iter().map(|r| &r.summary).collect();
        file(&mut tar, "duet-export/runs/index.json", &pretty(&summaries))?;
        for run in &runs {
            let s = &run.summary;
            let dir = format!("duet-export/runs/{}", s.run_id);
            let output = duet_core::collect_output(&records, &s.run_id);
            let code = run
                .legacy_code
                .clone()
                .or_else(|| codes.get(&run.code_seq).cloned())
                .unwrap_or_default();
            file(&mut tar, &format!("{dir}/main.py"), code.as_bytes())?;
            file(&mut tar, &format!("{dir}/stdout"), &output.stdout)?;
            file(&mut tar, &format!("{dir}/stderr"), &output.stderr)?;
            file(
                &mut tar,
                &format!("{dir}/run.json"),
                &pretty(&serde_json::json!({
                    "run": s, "private": run.private, "tests": run.tests, "lint": run.lint,
                })),
            )?;
            file(
                &mut tar,
                &format!("{dir}/output.cast"),
                duet_core::asciicast(s, &output).as_bytes(),
            )?;
        }
        tar.into_inner()?.flush()
    }
}

/// The header of a regular file of `size` bytes: mode 0644, owner 0, time 0.
fn header_for(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

/// Appends one file; a path too long for the header goes in a GNU long-name entry, whole.
fn file<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    contents: &[u8],
) -> std::io::Result<()> {
    let mut header = header_for(contents.len() as u64);
    tar.append_data(&mut header, path, contents)
}

/// `log.jsonl`, read line by line from the records.
struct LogLines<'a> {
    records: std::slice::Iter<'a, LogRecord>,
    line: Vec<u8>,
    pos: usize,
}

impl std::io::Read for LogLines<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.line.len() {
            let Some(record) = self.records.next() else {
                return Ok(0);
            };
            self.line.clear();
            self.pos = 0;
            write_log_line(&mut self.line, record)?;
        }
        let n = buf.len().min(self.line.len() - self.pos);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn write_log_line(out: &mut Vec<u8>, record: &LogRecord) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &log_line(record))?;
    out.push(b'\n');
    Ok(())
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
        Ok(Record::TakeHomeStarted(v)) => data(serde_json::to_value(v)),
        Ok(Record::TakeHomeSubmitted(v)) => data(serde_json::to_value(v)),
        Err(_) => serde_json::json!({"raw": STANDARD.encode(&record.data)}),
    };
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line
}
