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
//!
//! The room is split by concern: `room/sync.rs` (the Yjs protocols and edits),
//! `room/presence.rs` (joins and leaves), `room/runs.rs` (runs as records and events, and each
//! run's output policy: coalescing and the output cap, with `runs/output.rs`),
//! `room/review.rs` (question switches, the scorecard, notes, signals, the end), and
//! `room/effects.rs` (what the server is asked to do). A new kind of log record takes five
//! places: a `duet_protocol::Record` variant (with the body people are told of it, a
//! `RoomEventBody` variant and, if it shows on the timeline, a `TimelineBody` variant: the
//! head `{seq, at, by}` is the record's, filled in one place, `Room::record_and_tell`), a `Room`
//! method in the feature file it belongs to (returning the record as an effect and its event),
//! a room command and its handler in the server, a route if people act on it, and one `case`
//! in the page's event handling (`run.input` was added this way).

mod awareness;
pub mod board;
mod board_index;
pub mod board_svg;
pub mod files;
mod history;
pub mod replay;
mod room;
mod runs;
pub mod scorecard;
mod text_index;
mod timeline;
pub mod validate;

pub use awareness::PresenceLimits;
pub use history::{encode_owners, rebuild, CheckpointRef, ClientOwners, RebuildError, Rebuilt};
pub use room::{
    Audience, ConnId, Effect, Ended, QuestionPick, Questions, Reply, ReplySlots, Restored, Room,
    RoomConfig, TakeHome, TakeHomeError, MAX_SIGNALS_PER_MINUTE, SUBMITTED_REASON,
};
pub use runs::{
    asciicast, collect_output, run_index, unfinished_runs, Coalescer, OutputPiece, RunEntry,
    RunOutputs, UnfinishedRun, Utf8Decoder, COALESCE_BYTES, COALESCE_MS,
};
pub use scorecard::{ScorecardError, ScorecardState};
pub use text_index::{DocAt, TextIndex, KEYFRAME_EVERY};
