//! Websocket close codes the server uses, with what each means to a client.

/// The server is shutting down or the room is reloading; reconnect.
pub const GOING_AWAY: u16 = 1001;
/// A frame that is not a Yjs binary message (for example a text frame).
pub const UNSUPPORTED: u16 = 1003;
/// A binary message that is not a well-formed Yjs message.
pub const INVALID_PAYLOAD: u16 = 1007;
/// Too many messages or bytes per second.
pub const POLICY: u16 = 1008;
/// A frame larger than the configured cap.
pub const TOO_BIG: u16 = 1009;
/// The room could not load its stored state, or storage failed.
pub const INTERNAL: u16 = 1011;
/// The client fell behind the room; reconnect and resync.
pub const TRY_AGAIN: u16 = 1013;
/// The take-home was submitted: the candidate's link shows only that now (do not reconnect).
pub const SUBMITTED: u16 = 4410;
