//! Loading a room: its newest checkpoint and the log after it, replayed into a core room, with
//! what the log says about runs, the question, the scorecard and the end. Runs on a blocking
//! thread: it reads SQLite.

use duet_core::{CheckpointRef, Restored, Room, RoomConfig};
use duet_protocol::InterviewId;
use duet_store::Store;

/// A room read back from the store.
pub(super) struct Loaded {
    pub(super) room: Room,
    /// For a room whose log is empty: the question it was created with.
    pub(super) initial_question: Option<String>,
    pub(super) restored: Restored,
    /// The interview's sandbox environment.
    pub(super) environment: String,
    /// A take-home's time limit (minutes); `None` for a live interview.
    pub(super) take_home_minutes: Option<u32>,
}

/// Loads a room from its history, with the runs the log shows as never finished.
pub(super) fn load(
    store: &dyn Store,
    id: &InterviewId,
    config: RoomConfig,
) -> Result<Loaded, String> {
    // A deleted interview's room never loads again: a request that passed its token check just
    // before the delete finds no room to write into (and the store refuses its records).
    let Some(interview) = store.get_interview(id).map_err(|e| e.to_string())? else {
        return Err("the interview does not exist (it was deleted)".into());
    };
    let history = store.load_history(id).map_err(|e| e.to_string())?;
    let checkpoint = history.checkpoint.as_ref().map(|cp| CheckpointRef {
        seq: cp.seq,
        state: &cp.state,
        owners: &cp.owners,
    });
    let rebuilt = duet_core::rebuild(checkpoint, history.records).map_err(|e| e.to_string())?;
    let records = store
        .read_kinds(id, &Restored::KINDS)
        .map_err(|e| e.to_string())?;
    let restored = Restored::from_log(&records);
    let take_home_minutes = match interview.mode {
        duet_protocol::InterviewMode::TakeHome => interview.time_limit_minutes,
        duet_protocol::InterviewMode::Live => None,
    };
    let initial_question = match rebuilt.last_seq {
        0 => interview.question_id,
        _ => None,
    };
    Ok(Loaded {
        room: Room::from_history(config, rebuilt, history.log_bytes),
        initial_question,
        restored,
        environment: interview.environment,
        take_home_minutes,
    })
}
