//! Duet's wire vocabulary: roles and their capabilities, id newtypes, the JSON bodies of the
//! public API, the kinds of event in a room's log and the websocket close codes.
//!
//! Everything here is plain data: no tokio, no I/O, no yrs. The other crates agree through it.

pub mod close;
mod events;
mod integrations;
mod interviews;
mod people;
mod questions;
mod record;
mod review;
mod roles;
mod runs;
mod take_home;
#[cfg(feature = "ts")]
pub mod ts;

pub use events::*;
pub use integrations::*;
pub use interviews::*;
pub use people::*;
pub use questions::*;
pub use record::*;
pub use review::*;
pub use roles::*;
pub use runs::*;
pub use take_home::*;

/// The name of the shared `Y.Text` holding the candidate's program.
pub const MAIN_FILE: &str = "main.py";

/// The name of the shared `Y.Map` holding the whiteboard: element ids to Excalidraw elements
/// as JSON strings.
pub const BOARD: &str = "board";

/// The name of the shared `Y.Map` listing renamed and deleted files: a path to
/// `{"deleted": true}` or `{"text": ROOT}` (the root `Y.Text` the path shows). Every other file
/// is a root `Y.Text` named by its path.
pub const FILES: &str = "files";
