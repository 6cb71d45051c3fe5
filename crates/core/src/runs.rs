//! Run history, read back from a room's log: the records of each run's start, output and end
//! become one [`RunRecord`] per run.

use duet_protocol::{
    EventKind, LogRecord, Role, RunFinished, RunOutput, RunRecord, RunStarted, Stream,
};
use std::collections::HashMap;

/// Every run in `records` that `viewer` may see, in the order they started. Records that are
/// not run events are ignored; unreadable ones are skipped (and cannot hide other runs).
pub fn run_history(records: &[LogRecord], viewer: Role) -> Vec<RunRecord> {
    let mut runs: Vec<RunRecord> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in records {
        match record.kind {
            EventKind::RunStarted => {
                let Ok(started) = serde_json::from_slice::<RunStarted>(&record.data) else {
                    continue;
                };
                if started.private && !viewer.can_read_scorecard() {
                    continue;
                }
                index.insert(started.run_id.clone(), runs.len());
                runs.push(RunRecord {
                    run_id: started.run_id,
                    kind: started.kind,
                    by: started.by,
                    started_at: started.at,
                    finished_at: None,
                    status: "running".into(),
                    exit_code: None,
                    duration_ms: None,
                    code: started.code,
                    code_seq: started.code_seq,
                    stdout: String::new(),
                    stderr: String::new(),
                    tests: None,
                });
            }
            EventKind::RunOutput => {
                let Ok(output) = serde_json::from_slice::<RunOutput>(&record.data) else {
                    continue;
                };
                if let Some(run) = index.get(&output.run_id).map(|i| &mut runs[*i]) {
                    match output.stream {
                        Stream::Stdout => run.stdout.push_str(&output.data),
                        Stream::Stderr => run.stderr.push_str(&output.data),
                    }
                }
            }
            EventKind::RunFinished => {
                let Ok(finished) = serde_json::from_slice::<RunFinished>(&record.data) else {
                    continue;
                };
                if let Some(run) = index.get(&finished.run_id).map(|i| &mut runs[*i]) {
                    run.finished_at = Some(finished.at);
                    run.status = finished.status;
                    run.exit_code = finished.exit_code;
                    run.duration_ms = Some(finished.duration_ms);
                    run.tests = finished.tests;
                }
            }
            _ => {}
        }
    }
    runs
}

/// Runs that started and never finished (the server stopped under them), with who ran them
/// and whether they were private.
pub fn unfinished_runs(records: &[LogRecord]) -> Vec<(String, Role, bool)> {
    let mut open: Vec<(String, Role, bool)> = Vec::new();
    for record in records {
        match record.kind {
            EventKind::RunStarted => {
                if let Ok(s) = serde_json::from_slice::<RunStarted>(&record.data) {
                    open.push((s.run_id, s.by, s.private));
                }
            }
            EventKind::RunFinished => {
                if let Ok(f) = serde_json::from_slice::<RunFinished>(&record.data) {
                    open.retain(|(id, _, _)| *id != f.run_id);
                }
            }
            _ => {}
        }
    }
    open
}
