//! Duet's sans-IO core: the interview room as a state machine.
//!
//! A [`Room`] owns the interview's yrs `Doc` and the presence of everyone connected. It takes
//! events (a participant joins, a websocket message arrives, a participant leaves) with the time
//! they happened, and answers with [`Effect`]s for the server to carry out: records to make
//! durable, messages to send, connections to close. It never touches a socket, a clock or a
//! database, so every rule here is tested without a runtime.
//!
//! What does not belong here: tokio, axum, SQLite, Docker. Those live in the server, store and
//! sandbox crates, which depend on this one.

mod awareness;
mod history;
pub mod replay;
mod room;
mod runs;
pub mod scorecard;
mod text_index;
pub mod validate;

pub use awareness::PresenceLimits;
pub use history::{encode_owners, rebuild, CheckpointRef, ClientOwners, RebuildError, Rebuilt};
pub use room::{
    Audience, ConnId, Effect, Ended, QuestionPick, Questions, Reply, ReplySlots, Restored, Room,
    RoomConfig, MAX_SIGNALS_PER_MINUTE,
};
pub use runs::{
    asciicast, collect_output, run_index, unfinished_runs, Coalescer, OutputPiece, RunEntry,
    RunOutputs, UnfinishedRun, Utf8Decoder,
};
pub use scorecard::{ScorecardError, ScorecardState};
pub use text_index::{TextIndex, KEYFRAME_EVERY};
