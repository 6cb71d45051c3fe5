//! The interview room: one shared document, the people connected to it, and the rules of the
//! Yjs sync and awareness protocols as the stock `y-websocket` client speaks them.
//!
//! Nothing a participant sends reaches the document before [`crate::validate`] accepted it, and
//! what the room stores and forwards is the update it applied, encoded from its own document:
//! never the client's bytes. So the log, late joiners, replay and runs see exactly what every
//! connected client sees.

use crate::awareness::{BadState, Presence, PresenceLimits};
use crate::board;
use crate::files;
use crate::history::{ClientOwners, Rebuilt};
use crate::scorecard::{ScorecardError, ScorecardState};
use crate::validate::{self, Invalid, Reader};
use duet_protocol::{
    close, Actor, EventKind, Identity, KeptCode, LogRecord, OutputChunk, QuestionSwitched, Record,
    Role, RunFinished, RunInput, RunStarted, MAIN_FILE,
};
use duet_protocol::{
    Head, Note, RoomEvent, RoomEventBody, Scorecard, ScorecardChange, ScorecardUpdate, Signal,
    SignalKind,
};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update};

mod effects;
mod presence;
mod review;
mod runs;
mod sync;
mod take_home;

pub use effects::{Audience, ConnId, Effect, Reply, ReplySlots};
pub use review::{Ended, QuestionPick, Questions, MAX_SIGNALS_PER_MINUTE};
pub use take_home::{TakeHome, TakeHomeError, SUBMITTED_REASON};

/// Tunables of the room's protocol handling.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Largest awareness state (JSON) one client may announce, in bytes.
    pub max_awareness_state: usize,
    /// Largest `main.py`, in UTF-8 bytes. An edit that would make it larger is refused.
    pub max_doc_bytes: usize,
    /// Bytes of log one interview may hold; past it, edits are refused.
    pub max_log_bytes: u64,
    pub presence: PresenceLimits,
    /// How long after a role's last connection left its leave is logged; a return within it
    /// logs nothing (so reconnect churn cannot flood the log).
    pub leave_grace_ms: i64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_awareness_state: 16 * 1024,
            max_doc_bytes: 1 << 20,
            max_log_bytes: 256 << 20,
            presence: PresenceLimits::default(),
            leave_grace_ms: 5_000,
        }
    }
}

#[derive(Debug)]
struct Peer {
    role: Role,
    identity: Identity,
    replies: ReplySlots,
}

/// One interview's live state.
pub struct Room {
    config: RoomConfig,
    doc: Doc,
    last_seq: u64,
    peers: HashMap<ConnId, Peer>,
    presence: Presence,
    owners: ClientOwners,
    /// Where every struct of the document is (the validator's view of it).
    places: validate::Places,
    /// A replica of the document on which an update that may change which files are listed is
    /// tried before the document takes it (see `check_files`): made the first time one comes,
    /// then brought up to date with what the document took since, and dropped whenever an
    /// update tried on it is not applied to the document.
    files_trial: Option<Doc>,
    log_bytes: u64,
    /// Connections per role, and since when a role with none has been gone (leave not logged yet).
    role_conns: HashMap<Role, usize>,
    pending_leaves: HashMap<Role, i64>,
    /// Set once the interviewer ended the interview: nobody edits or runs any more.
    ended: bool,
    /// Every run of the interview (evidence may name only these).
    runs: HashSet<String>,
    /// The runs among them only roles that read private material may see.
    private_runs: HashSet<String>,
    scorecard: ScorecardState,
    /// When the last signals arrived (to cap them).
    recent_signals: Vec<i64>,
    /// The question the room is on, and the code each question was left with.
    questions: Questions,
    /// The runs going on: their start's head and the output logged so far.
    live_runs: HashMap<String, runs::LiveRun>,
    /// A take-home's terms and round; `None` for a live interview.
    take_home: Option<TakeHome>,
}

/// What a room's log says beyond the document, read back when the room loads.
#[derive(Debug, Default)]
pub struct Restored {
    pub ended: bool,
    pub runs: HashSet<String>,
    pub private_runs: HashSet<String>,
    pub scorecard: ScorecardState,
    /// The question of the last switch and the code kept per question.
    pub questions: Questions,
    /// Runs that started and never finished (the server stopped under them).
    pub unfinished: Vec<crate::UnfinishedRun>,
    /// A take-home's start and submit, if the log has them (the terms are the interview's).
    pub take_home: TakeHome,
}

impl Restored {
    /// The kinds [`Restored::from_log`] reads: every kind but edits, joins, leaves and output.
    pub const KINDS: [EventKind; 7] = [
        EventKind::RunStarted,
        EventKind::RunFinished,
        EventKind::Question,
        EventKind::Scorecard,
        EventKind::End,
        EventKind::TakeHomeStarted,
        EventKind::TakeHomeSubmitted,
    ];

    /// What `records` (the log's records of [`Restored::KINDS`], in order) say. A record that
    /// cannot be read is skipped, as replay skips it.
    pub fn from_log(records: &[LogRecord]) -> Restored {
        let mut restored = Restored {
            unfinished: crate::unfinished_runs(records),
            ..Restored::default()
        };
        let mut scorecards = Vec::new();
        for record in records {
            let decoded = record.decode();
            if let Ok(decoded) = &decoded {
                restored.take_home.learn(decoded);
            }
            match decoded {
                Ok(Record::End) => restored.ended = true,
                Ok(Record::RunStarted(started)) => {
                    if started.private {
                        restored.private_runs.insert(started.run_id.clone());
                    }
                    restored.runs.insert(started.run_id);
                }
                Ok(Record::Question(switched)) => restored.questions.switched(switched),
                Ok(Record::Scorecard(_)) => scorecards.push(record),
                _ => {}
            }
        }
        restored.scorecard = ScorecardState::from_log(scorecards);
        restored
    }
}

impl Room {
    /// A room whose log is empty.
    pub fn new(config: RoomConfig) -> Room {
        Room::from_history(config, Rebuilt::empty(), 0)
    }

    /// A room continuing a stored history (see [`crate::rebuild`]) whose log holds `log_bytes`.
    pub fn from_history(config: RoomConfig, history: Rebuilt, log_bytes: u64) -> Room {
        let presence = Presence::new(config.presence.clone());
        let mut places = validate::Places::default();
        places.learn_update(
            &history
                .doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        Room {
            config,
            doc: history.doc,
            last_seq: history.last_seq,
            peers: HashMap::new(),
            presence,
            owners: history.owners,
            places,
            files_trial: None,
            log_bytes,
            role_conns: HashMap::new(),
            pending_leaves: HashMap::new(),
            ended: false,
            runs: HashSet::new(),
            private_runs: HashSet::new(),
            scorecard: ScorecardState::default(),
            recent_signals: Vec::new(),
            questions: Questions::default(),
            live_runs: HashMap::new(),
            take_home: None,
        }
    }

    /// Takes back what the log says beyond the document (see [`Restored`]).
    pub fn restore(&mut self, restored: Restored) {
        self.ended = restored.ended;
        self.runs = restored.runs;
        self.private_runs = restored.private_runs;
        self.scorecard = restored.scorecard;
        self.questions = restored.questions;
    }

    /// The question the room is on (its last switch).
    pub fn question(&self) -> Option<&str> {
        self.questions.current.as_deref()
    }

    /// Whether the interview has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The scorecard as it stands.
    pub fn scorecard(&self) -> &Scorecard {
        self.scorecard.card()
    }

    /// The sequence number of the newest event in the log.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many connections are in the room.
    pub fn connections(&self) -> usize {
        self.peers.len()
    }

    /// The candidate's program as it stands.
    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text(MAIN_FILE);
        let txn = self.doc.transact();
        text.get_string(&txn)
    }

    /// The files the document lists and their text, by path (see [`crate::files`]).
    pub fn files(&self) -> Vec<(String, String)> {
        files::contents(&self.doc)
    }

    /// The board as it stands: each element's id and JSON, by id.
    pub fn board_elements(&self) -> Vec<(String, String)> {
        let board = self.doc.get_or_insert_map(board::BOARD);
        let txn = self.doc.transact();
        let mut elements: Vec<_> = board
            .iter(&txn)
            .filter_map(|(key, value)| match value {
                yrs::Out::Any(yrs::Any::String(json)) => Some((key.to_owned(), json.to_string())),
                _ => None, // the validator lets nothing else in
            })
            .collect();
        elements.sort();
        elements
    }

    /// The whole document as one update for a checkpoint at `last_seq`, with the client owners
    /// ([`crate::encode_owners`]).
    pub fn checkpoint(&self) -> (u64, Vec<u8>, Vec<u8>) {
        let state = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        (
            self.last_seq,
            state,
            crate::history::encode_owners(&self.owners),
        )
    }

    /// The next record of the log: the one place a seq is given out.
    fn record(&mut self, by: Actor, payload: Record, now_ms: i64) -> Effect {
        Effect::Persist(self.log(by, payload, now_ms))
    }

    fn log(&mut self, by: Actor, payload: Record, now_ms: i64) -> LogRecord {
        self.last_seq += 1;
        let record = LogRecord::new(self.last_seq, now_ms, by, payload);
        self.log_bytes += record.data.len() as u64;
        record
    }

    /// The next record of the log and the event that tells `audience` of it: the event's head
    /// (`seq`, `at`, `by`) is the record's.
    fn record_and_tell(
        &mut self,
        by: Actor,
        payload: Record,
        now_ms: i64,
        audience: Audience,
        body: RoomEventBody,
    ) -> Vec<Effect> {
        let record = self.log(by, payload, now_ms);
        let event = RoomEvent::new(record.head(), body);
        vec![Effect::Persist(record), Effect::Event { audience, event }]
    }
}
