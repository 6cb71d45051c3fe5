//! Loading a room: its newest checkpoint and the log after it, replayed into a core room, with
//! what the log says about runs, the question, the scorecard and the end. Runs on a blocking
//! thread: it reads SQLite.

use duet_core::{CheckpointRef, Restored, Room, RoomConfig, ScorecardState};
use duet_protocol::{EventKind, InterviewId};
use duet_store::Store;

/// A room read back from the store.
pub(super) struct Loaded {
    pub(super) room: Room,
    /// Runs the log shows as started and never finished.
    pub(super) unfinished: Vec<duet_core::UnfinishedRun>,
    /// The last question switch in the log.
    pub(super) question: Option<String>,
    /// For a room whose log is empty: the question it was created with.
    pub(super) initial_question: Option<String>,
    pub(super) restored: Restored,
}

/// Loads a room from its history, with the runs the log shows as never finished.
pub(super) fn load(
    store: &dyn Store,
    id: &InterviewId,
    config: RoomConfig,
) -> Result<Loaded, String> {
    let history = store.load_history(id).map_err(|e| e.to_string())?;
    let checkpoint = history.checkpoint.as_ref().map(|cp| CheckpointRef {
        seq: cp.seq,
        state: &cp.state,
        owners: &cp.owners,
    });
    let rebuilt = duet_core::rebuild(checkpoint, history.records).map_err(|e| e.to_string())?;
    let kinds = [
        EventKind::RunStarted,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::End,
    ];
    let records = store.read_kinds(id, &kinds).map_err(|e| e.to_string())?;
    let of = |kind: EventKind| records.iter().filter(move |r| r.kind == kind);
    let runs: Vec<_> = records
        .iter()
        .filter(|r| matches!(r.kind, EventKind::RunStarted | EventKind::RunFinished))
        .cloned()
        .collect();
    let switches: Vec<_> = of(EventKind::Question).collect();
    let restored = Restored {
        ended: of(EventKind::End).next().is_some(),
        runs: of(EventKind::RunStarted)
            .filter_map(|r| serde_json::from_slice::<duet_protocol::RunStarted>(&r.data).ok())
            .map(|s| s.run_id)
            .collect(),
        scorecard: ScorecardState::from_log(of(EventKind::Scorecard)),
    };
    let question = switches
        .last()
        .and_then(|r| serde_json::from_slice::<duet_protocol::QuestionSwitched>(&r.data).ok())
        .map(|s| s.question_id);
    let initial_question = match rebuilt.last_seq {
        0 => store
            .get_interview(id)
            .map_err(|e| e.to_string())?
            .and_then(|i| i.question_id),
        _ => None,
    };
    Ok(Loaded {
        room: Room::from_history(config, rebuilt, history.log_bytes),
        unfinished: duet_core::unfinished_runs(&runs),
        question,
        initial_question,
        restored,
    })
}
