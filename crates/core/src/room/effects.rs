//! What the room asks the server to do (effects), who hears an event, and the per-connection
//! reply slots that coalesce repeated requests.

use super::*;

/// A connection's number, unique within the server's lifetime.
pub type ConnId = u64;

/// What the server must do after the room handled an event, in order.
///
/// The ordering rule that makes the log trustworthy: a `Send` or `Broadcast` must not leave the
/// server before every `Persist` that came before it (from this or any earlier call) is stored.
/// So no participant ever holds an edit that a crash could lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append this record to the room's durable log.
    Persist(LogRecord),
    /// Send a binary Yjs message to one connection. `reply` marks an answer that occupies the
    /// connection's reply slot until it is written (see [`ReplySlots`]).
    Send {
        to: ConnId,
        message: Vec<u8>,
        reply: Option<Reply>,
    },
    /// Send a binary Yjs message to every connection but `except`.
    Broadcast {
        except: Option<ConnId>,
        message: Vec<u8>,
    },
    /// Close one connection with a websocket close code and a reason a person can read.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// Publish an event on the interview's events socket to `audience`.
    Event {
        audience: Audience,
        event: RoomEvent,
    },
    /// Stop the sandbox run `run_id`: it wrote past its output cap. Its output is stored up to
    /// exactly the cap and nothing after it; when the sandbox reports the run cancelled, the
    /// room records it as `output_limit`. Given once per run.
    CancelRun { run_id: String },
    /// The document can no longer be trusted (yrs failed while applying an update that passed
    /// validation). Close everyone and reload the room from the store, which never saw it.
    Reload { reason: String },
}

/// Who receives an event on the events socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every role.
    Everyone,
    /// Only roles that may read private material (a hidden-test run): never the candidate.
    Private,
    /// Only the author's own connections, among those that may read private material: a
    /// panel member's (`Some(person id)`, the sockets they opened signed in), or the
    /// interviewer link's (`None`, the sockets opened with a role token). A note and a
    /// scorecard save are told this way, so a panel stays blind while the interview is live.
    Author(Option<String>),
}

impl Audience {
    /// Whether any connection of `role` may receive it.
    pub fn includes(&self, role: Role) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Private | Audience::Author(_) => role.can_read_scorecard(),
        }
    }

    /// Whether a connection of `role`, opened by the panel member `person` (or by a role
    /// token: `None`), receives it.
    pub fn reaches(&self, role: Role, person: Option<&str>) -> bool {
        match self {
            Audience::Author(author) => self.includes(role) && author.as_deref() == person,
            _ => self.includes(role),
        }
    }
}

/// The answers a connection may have at most one of in its outbound queue at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The answer to a sync step 1 (the document's diff: possibly large).
    Sync,
    /// The answer to an awareness query (everyone's presence).
    Awareness,
}

/// Per connection: whether a sync answer and an awareness answer are queued and not yet
/// written. A request that arrives while its answer is still queued is coalesced into it (the
/// answer already on its way, plus the updates that follow it, bring the client up to date), so
/// a socket that asks again and again without reading cannot make the server encode and queue
/// the document again and again. The server's writer calls [`ReplySlots::sent`].
#[derive(Debug, Clone, Default)]
pub struct ReplySlots(Arc<Slots>);

/// One allocation per connection (the two flags and the counter's handle together).
#[derive(Debug, Default)]
struct Slots {
    sync: AtomicBool,
    awareness: AtomicBool,
    coalesced: Arc<AtomicU64>,
}

impl ReplySlots {
    /// Slots that count coalesced requests into `coalesced` (a server-wide metric).
    pub fn counting_into(coalesced: Arc<AtomicU64>) -> ReplySlots {
        ReplySlots(Arc::new(Slots {
            coalesced,
            ..Slots::default()
        }))
    }

    fn flag(&self, reply: Reply) -> &AtomicBool {
        match reply {
            Reply::Sync => &self.0.sync,
            Reply::Awareness => &self.0.awareness,
        }
    }

    /// Takes the slot; `false` (and counted) if an answer of this kind is already queued.
    pub(crate) fn claim(&self, reply: Reply) -> bool {
        let free = !self.flag(reply).swap(true, Ordering::AcqRel);
        if !free {
            self.0.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        free
    }

    /// The answer of this kind was written to the socket: the slot is free again.
    pub fn sent(&self, reply: Reply) {
        self.flag(reply).store(false, Ordering::Release);
    }
}
