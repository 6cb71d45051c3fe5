//! The timeline, sans-IO: the room log read back as the reviewer's list of events (edit
//! bursts per file, board bursts, files created, renamed and deleted, joins, runs, questions,
//! notes, scorecard saves, signals, the end).

use duet_protocol::{
    EventKind, Head, LogEntry, LogRecord, Record, RunId, RunKind, TestCounts, TimelineBody,
    TimelineEvent,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the edits of a stretch of the log changed, as replay's index read them from the
/// document ([`crate::TextIndex::edit_facts`]). Empty when the index cannot tell (the edits
/// are then bursts with no file named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditFacts {
    /// The file (its path then) each edit typed into, the first one if several.
    pub files: HashMap<u64, String>,
    /// The board elements each edit drew, changed or erased.
    pub board: HashMap<u64, Vec<Arc<str>>>,
    /// The changes of the file list, in seq order.
    pub changes: Vec<(u64, FileChange)>,
}

/// A change of the file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    Created(String),
    Renamed { from: String, to: String },
    Deleted(String),
}

impl FileChange {
    fn body(&self) -> TimelineBody {
        match self {
            FileChange::Created(path) => TimelineBody::FileCreated { path: path.clone() },
            FileChange::Renamed { from, to } => TimelineBody::FileRenamed {
                from: from.clone(),
                to: to.clone(),
            },
            FileChange::Deleted(path) => TimelineBody::FileDeleted { path: path.clone() },
        }
    }

    /// The changes from one file list (path, root text) to the next: a path whose text was
    /// listed under another path was renamed; a new path with a new text was created; a path
    /// gone with its text was deleted.
    pub fn between(old: &[(String, String)], new: &[(String, String)]) -> Vec<FileChange> {
        let old_by_root: HashMap<&str, &str> =
            old.iter().map(|(p, r)| (r.as_str(), p.as_str())).collect();
        let new_roots: HashSet<&str> = new.iter().map(|(_, r)| r.as_str()).collect();
        let old_paths: HashSet<&str> = old.iter().map(|(p, _)| p.as_str()).collect();
        let new_paths: HashSet<&str> = new.iter().map(|(p, _)| p.as_str()).collect();
        let mut changes = Vec::new();
        for (path, root) in new {
            if old_paths.contains(path.as_str()) {
                continue;
            }
            changes.push(match old_by_root.get(root.as_str()) {
                Some(from) if !new_paths.contains(from) => FileChange::Renamed {
                    from: (*from).to_owned(),
                    to: path.clone(),
                },
                _ => FileChange::Created(path.clone()),
            });
        }
        for (path, root) in old {
            if !new_paths.contains(path.as_str()) && !new_roots.contains(root.as_str()) {
                changes.push(FileChange::Deleted(path.clone()));
            }
        }
        changes
    }
}

/// Edits by one author less than this far apart share one timeline burst.
pub const BURST_GAP_MS: i64 = 1_000;

/// Whether the timeline needs a kind's data (run ids, statuses...) or only its index entry.
/// Edits, joins, leaves and output need only the index; every other kind, including ones
/// added later, is read with its data.
pub fn timeline_needs_data(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Edit
            | EventKind::Join
            | EventKind::Leave
            | EventKind::RunOutput
            | EventKind::RunInput
    )
}

/// What one log entry becomes on the timeline.
enum Mapped {
    Edit,
    Event(TimelineBody),
    Skip,
}

/// The one place that says what each kind of record shows on the timeline (its body: the head
/// is the entry's own). A new kind is one arm here. `data` is the record with its data when
/// [`timeline_needs_data`] says so; a record whose data cannot be read is left off (and cannot
/// hide others).
fn map(entry: &LogEntry, data: Option<&LogRecord>, runs: &mut HashMap<RunId, RunKind>) -> Mapped {
    let Some(kind) = entry.kind else {
        return Mapped::Skip; // a kind this version does not know
    };
    match kind {
        EventKind::Edit => return Mapped::Edit,
        EventKind::Join => return Mapped::Event(TimelineBody::Join),
        EventKind::Leave => return Mapped::Event(TimelineBody::Leave),
        EventKind::End => return Mapped::Event(TimelineBody::End),
        // Played from the run's cast and shown with the run.
        EventKind::RunOutput | EventKind::RunInput => return Mapped::Skip,
        _ => {}
    }
    let Some(Ok(record)) = data.filter(|r| r.kind == kind).map(LogRecord::decode) else {
        return Mapped::Skip;
    };
    Mapped::Event(match record {
        Record::RunStarted(s) => {
            runs.insert(s.run_id.clone(), s.kind);
            TimelineBody::RunStarted {
                run_id: s.run_id,
                kind: s.kind,
                code_seq: s.code_seq,
                private: s.private,
            }
        }
        Record::RunFinished(f) => {
            let Some(kind) = runs.get(&f.run_id).copied() else {
                return Mapped::Skip; // its start is unreadable or before `after`
            };
            TimelineBody::RunFinished {
                run_id: f.run_id,
                kind,
                status: f.status,
                exit_code: f.exit_code,
                duration_ms: f.duration_ms,
                tests: f.tests.as_ref().map(TestCounts::from),
            }
        }
        Record::Question(q) => TimelineBody::Question {
            question_id: q.question_id,
            title: None, // the bank is the server's: it names the question
        },
        Record::Note(note) => TimelineBody::Note {
            text: note.text,
            person: note.person,
            name: None, // the people are the server's: it names the author
        },
        Record::Scorecard(change) => TimelineBody::Scorecard {
            action: change.action,
            person: change.person,
            name: None,
        },
        Record::Signal(signal) => TimelineBody::Signal {
            kind: signal.kind,
            size: signal.size,
        },
        Record::TakeHomeStarted(started) => TimelineBody::TakeHomeStarted {
            deadline: started.deadline,
            time_limit_minutes: started.time_limit_minutes,
        },
        // Who submitted is the head's `by`: the candidate, or the server at the limit.
        Record::TakeHomeSubmitted(submitted) => TimelineBody::TakeHomeSubmitted {
            reason: submitted.reason,
            deadline: submitted.deadline,
        },
        Record::Edit(_)
        | Record::Join
        | Record::Leave
        | Record::End
        | Record::RunOutput(_)
        | Record::RunInput(_) => return Mapped::Skip,
    })
}

/// The timeline of `index` (every entry in seq order). `data` holds, with their data, the
/// records of the kinds [`timeline_needs_data`] names; `runs_before` the start records of runs
/// that began before the index does (so a finish after `?after=` still says what kind of run
/// it ended); `facts` what each edit changed. Every event's head is its (first) record's;
/// consecutive edits of one file (or of the board) by one author less than [`BURST_GAP_MS`]
/// apart become one burst; a change of the file list is an event of its own, before the
/// edit's burst.
pub fn timeline(
    index: &[LogEntry],
    data: &[LogRecord],
    runs_before: &[LogRecord],
    facts: &EditFacts,
) -> Vec<TimelineEvent> {
    let mut changes = facts.changes.iter().peekable();
    // The elements the open board burst (the last event, if it is one) changed.
    let mut drawn: HashSet<Arc<str>> = HashSet::new();
    let by_seq: HashMap<u64, &LogRecord> = data.iter().map(|r| (r.seq, r)).collect();
    let mut runs = HashMap::new();
    for record in runs_before {
        if let Ok(Record::RunStarted(s)) = record.decode() {
            runs.insert(s.run_id, s.kind);
        }
    }
    let mut events: Vec<TimelineEvent> = Vec::new();
    for entry in index {
        let Some(by) = entry.by else {
            continue; // an author this version does not know
        };
        let head = Head {
            seq: entry.seq,
            at: entry.at_ms,
            by,
        };
        match map(entry, by_seq.get(&entry.seq).copied(), &mut runs) {
            Mapped::Skip => {}
            Mapped::Event(body) => events.push(TimelineEvent { head, body }),
            Mapped::Edit => {
                let mut listed = false;
                while changes.peek().is_some_and(|(seq, _)| *seq < entry.seq) {
                    changes.next(); // before the index: shown by an earlier page
                }
                while let Some((_, change)) = changes.next_if(|(seq, _)| *seq == entry.seq) {
                    listed = true;
                    events.push(TimelineEvent {
                        head,
                        body: change.body(),
                    });
                }
                let file = facts.files.get(&entry.seq);
                if let (None, Some(ids)) = (file, facts.board.get(&entry.seq)) {
                    if let Some(TimelineEvent {
                        head: Head { by: author, .. },
                        body:
                            TimelineBody::Board {
                                last_seq,
                                last_at,
                                edits,
                                elements,
                            },
                    }) = events.last_mut()
                    {
                        if *author == by && entry.at_ms - *last_at < BURST_GAP_MS {
                            *last_seq = entry.seq;
                            *last_at = entry.at_ms;
                            *edits += 1;
                            drawn.extend(ids.iter().cloned());
                            *elements = drawn.len() as u32;
                            continue;
                        }
                    }
                    drawn = ids.iter().cloned().collect();
                    events.push(TimelineEvent {
                        head,
                        body: TimelineBody::Board {
                            last_seq: entry.seq,
                            last_at: entry.at_ms,
                            edits: 1,
                            elements: drawn.len() as u32,
                        },
                    });
                    continue;
                }
                if listed && file.is_none() {
                    continue; // a rename or a delete: its event says it all
                }
                if let Some(TimelineEvent {
                    head: Head { by: author, .. },
                    body:
                        TimelineBody::Edit {
                            last_seq,
                            last_at,
                            edits,
                            file: burst_file,
                        },
                }) = events.last_mut()
                {
                    if *author == by
                        && entry.at_ms - *last_at < BURST_GAP_MS
                        && burst_file.as_ref() == file
                    {
                        *last_seq = entry.seq;
                        *last_at = entry.at_ms;
                        *edits += 1;
                        continue;
                    }
                }
                events.push(TimelineEvent {
                    head,
                    body: TimelineBody::Edit {
                        last_seq: entry.seq,
                        last_at: entry.at_ms,
                        edits: 1,
                        file: file.cloned(),
                    },
                });
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::tests::{edit, entry};
    use duet_protocol::{Actor, SubmitReason, TakeHomeStarted, TakeHomeSubmitted};
    use yrs::{Doc, Text};

    #[test]
    fn keystrokes_coalesce_into_bursts_that_keep_their_ends_and_author() {
        let doc = Doc::new();
        let mut log = Vec::new();
        for i in 0..5u32 {
            log.push(edit(
                &doc,
                u64::from(i) + 1,
                100 + i64::from(i) * 10,
                Actor::Candidate,
                |t, x| t.insert(x, i, "a"),
            ));
        }
        log.push(LogRecord {
            seq: 6,
            at_ms: 200,
            kind: EventKind::Join,
            by: Actor::Reviewer,
            data: vec![],
        });
        log.push(edit(&doc, 7, 210, Actor::Candidate, |t, x| {
            t.insert(x, 0, "b")
        }));
        log.push(edit(&doc, 8, 220, Actor::Interviewer, |t, x| {
            t.insert(x, 0, "c")
        }));
        log.push(edit(
            &doc,
            9,
            220 + BURST_GAP_MS,
            Actor::Interviewer,
            |t, x| t.insert(x, 0, "d"),
        ));
        let index: Vec<LogEntry> = log.iter().map(entry).collect();
        let events = timeline(&index, &[], &[], &EditFacts::default());
        let shape: Vec<(String, u64, u64, u32)> = events
            .iter()
            .map(|e| match e.body {
                TimelineBody::Edit {
                    last_seq, edits, ..
                } => (format!("edit {}", e.head.by), e.seq(), last_seq, edits),
                _ => ("other".into(), e.seq(), e.seq(), 0),
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("edit candidate".into(), 1, 5, 5),
                ("other".into(), 6, 6, 0),
                ("edit candidate".into(), 7, 7, 1),
                ("edit interviewer".into(), 8, 8, 1),
                ("edit interviewer".into(), 9, 9, 1),
            ]
        );
        assert!(matches!(
            events[0],
            TimelineEvent {
                head: Head { at: 100, .. },
                body: TimelineBody::Edit { last_at: 140, .. },
            }
        ));
    }

    #[test]
    fn unknown_and_unreadable_records_do_not_break_a_timeline() {
        let index = vec![
            LogEntry {
                seq: 1,
                at_ms: 1,
                kind: None,
                by: Some(Actor::Server),
            },
            LogEntry {
                seq: 2,
                at_ms: 2,
                kind: Some(EventKind::RunStarted),
                by: Some(Actor::Candidate),
            },
            LogEntry {
                seq: 3,
                at_ms: 3,
                kind: Some(EventKind::RunFinished),
                by: Some(Actor::Candidate),
            },
            LogEntry {
                seq: 4,
                at_ms: 4,
                kind: Some(EventKind::Join),
                by: Some(Actor::Candidate),
            },
        ];
        let data = vec![
            LogRecord {
                seq: 2,
                at_ms: 2,
                kind: EventKind::RunStarted,
                by: Actor::Candidate,
                data: b"not json".to_vec(),
            },
            LogRecord {
                seq: 3,
                at_ms: 3,
                kind: EventKind::RunFinished,
                by: Actor::Candidate,
                data: b"{}".to_vec(),
            },
        ];
        let events = timeline(&index, &data, &[], &EditFacts::default());
        assert_eq!(
            events,
            vec![TimelineEvent {
                head: Head {
                    seq: 4,
                    at: 4,
                    by: Actor::Candidate
                },
                body: TimelineBody::Join,
            }]
        );
    }

    #[test]
    fn notes_signals_and_the_end_take_their_place_on_the_timeline() {
        let note = br#"{"text": "asks about eviction", "at": 5, "seq": 2}"#.to_vec();
        let signal = br#"{"kind": "paste", "size": 420, "at": 6}"#.to_vec();
        let records = [
            (2, EventKind::Note, Actor::Interviewer, note),
            (3, EventKind::Signal, Actor::Candidate, signal),
            (4, EventKind::End, Actor::Interviewer, Vec::new()),
        ]
        .map(|(seq, kind, by, data)| LogRecord {
            seq,
            at_ms: seq as i64,
            kind,
            by,
            data,
        });
        let index: Vec<LogEntry> = records.iter().map(entry).collect();
        let data: Vec<LogRecord> = records
            .iter()
            .filter(|r| timeline_needs_data(r.kind))
            .cloned()
            .collect();
        let events = timeline(&index, &data, &[], &EditFacts::default());
        assert_eq!(
            serde_json::to_value(&events).unwrap_or_default(),
            serde_json::json!([
                {"type": "note", "seq": 2, "at": 2, "by": "interviewer", "text": "asks about eviction"},
                {"type": "signal", "seq": 3, "at": 3, "by": "candidate", "kind": "paste", "size": 420},
                {"type": "end", "seq": 4, "at": 4, "by": "interviewer"},
            ])
        );
    }

    /// A take-home's log, as the room writes it: Start, then the submit and the end it causes.
    fn take_home_timeline(reason: SubmitReason, by: Actor) -> serde_json::Value {
        let started = TakeHomeStarted {
            started_at: 1_000,
            deadline: 1_801_000,
            time_limit_minutes: 30,
        };
        let submitted = TakeHomeSubmitted {
            reason,
            at: 1_500_000,
            started_at: 1_000,
            deadline: 1_801_000,
        };
        let records = [
            (
                1,
                EventKind::TakeHomeStarted,
                Actor::Candidate,
                serde_json::to_vec(&started).unwrap_or_default(),
            ),
            (
                2,
                EventKind::TakeHomeSubmitted,
                by,
                serde_json::to_vec(&submitted).unwrap_or_default(),
            ),
            (3, EventKind::End, by, Vec::new()),
        ]
        .map(|(seq, kind, by, data)| LogRecord {
            seq,
            at_ms: seq as i64,
            kind,
            by,
            data,
        });
        let index: Vec<LogEntry> = records.iter().map(entry).collect();
        let data: Vec<LogRecord> = records
            .iter()
            .filter(|r| timeline_needs_data(r.kind))
            .cloned()
            .collect();
        serde_json::to_value(timeline(&index, &data, &[], &EditFacts::default()))
            .unwrap_or_default()
    }

    #[test]
    fn a_take_home_start_and_the_candidates_submit_have_their_own_entries() {
        assert_eq!(
            take_home_timeline(SubmitReason::Submitted, Actor::Candidate),
            serde_json::json!([
                {"type": "take_home.started", "seq": 1, "at": 1, "by": "candidate", "deadline": 1_801_000, "time_limit_minutes": 30},
                {"type": "take_home.submitted", "seq": 2, "at": 2, "by": "candidate", "reason": "submitted", "deadline": 1_801_000},
                {"type": "end", "seq": 3, "at": 3, "by": "candidate"},
            ])
        );
    }

    #[test]
    fn a_take_home_submitted_at_the_limit_says_so_and_that_the_server_did_it() {
        let events = take_home_timeline(SubmitReason::TimeLimit, Actor::Server);
        assert_eq!(
            events[1],
            serde_json::json!({"type": "take_home.submitted", "seq": 2, "at": 2, "by": "server", "reason": "time_limit", "deadline": 1_801_000})
        );
    }
}
