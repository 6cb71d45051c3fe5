//! A take-home round, decided here and carried out by the server: the candidate's Start sets
//! the deadline from the server's clock (`take_home.started`), and the round ends once, by the
//! candidate's Submit or at the deadline (`take_home.submitted`, then `end`, as an
//! interviewer's End ends a live room). The server's task only asks when the deadline is
//! ([`Room::take_home_due`]) and calls [`Room::take_home_tick`] then, passing the time in: the
//! room never reads a clock.
//!
//! Who may do what in a take-home: before Start, the candidate's link opens no room socket
//! (the clock would be meaningless if they could write before it runs); while it runs the
//! candidate edits and runs as in a live room; staff (interviewer, panel, reviewer) may watch
//! read-only: their edits are dropped as a reviewer's are. After the submit, the candidate's
//! sockets are closed with [`close::SUBMITTED`] and a reopened one is refused the same way.

use super::*;
use duet_protocol::{
    RunKind, RunStatus, SubmitReason, TakeHomeStage, TakeHomeStarted, TakeHomeSubmitted,
};

/// How long after the sandbox refused the submitted code's hidden tests (busy) they are tried
/// again.
pub const TESTS_RETRY_MS: i64 = 10_000;

/// A take-home room's terms and where its round stands, as the log says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakeHome {
    /// The interview's time limit (minutes).
    pub time_limit_minutes: u32,
    pub started: Option<TakeHomeStarted>,
    pub submitted: Option<TakeHomeSubmitted>,
    /// The submitted code's hidden tests are still to run: set by the submit, cleared when
    /// their run starts, set again if that run ends as `sandbox_error` (the sandbox failed, or
    /// the server stopped under it), so they run once the server can.
    pub tests_owed: bool,
    /// The hidden-test run after the submit, once started.
    pub tests_run: Option<String>,
    /// When to try them again after the sandbox refused them (unix ms); `None`: at once.
    pub tests_retry_at: Option<i64>,
}

impl TakeHome {
    /// A take-home whose round has not started.
    pub fn new(time_limit_minutes: u32) -> TakeHome {
        TakeHome {
            time_limit_minutes,
            ..TakeHome::default()
        }
    }

    /// Takes in a record of the log, in order (the room's load reads them back; the live room
    /// passes its runs' starts and finishes).
    pub fn learn(&mut self, record: &Record) {
        match record {
            Record::TakeHomeStarted(started) if self.started.is_none() => {
                self.started = Some(*started)
            }
            Record::TakeHomeSubmitted(submitted) if self.submitted.is_none() => {
                self.submitted = Some(*submitted);
                self.tests_owed = true;
            }
            // The interviewer's test run after the submit is the hidden tests' run.
            Record::RunStarted(run)
                if self.tests_owed && run.private && run.kind == RunKind::Test =>
            {
                self.tests_owed = false;
                self.tests_run = Some(run.run_id.clone());
                self.tests_retry_at = None;
            }
            Record::RunFinished(run)
                if run.status == RunStatus::SandboxError
                    && self.tests_run.as_deref() == Some(run.run_id.as_str()) =>
            {
                self.tests_owed = true;
                self.tests_run = None;
            }
            _ => {}
        }
    }

    pub fn stage(&self) -> TakeHomeStage {
        match (self.started, self.submitted) {
            (_, Some(_)) => TakeHomeStage::Submitted,
            (Some(_), None) => TakeHomeStage::Running,
            (None, None) => TakeHomeStage::NotStarted,
        }
    }

    /// When the round is due to be submitted, while it runs.
    pub fn due(&self) -> Option<i64> {
        match (self.started, self.submitted) {
            (Some(started), None) => Some(started.deadline),
            _ => None,
        }
    }
}

/// Why a take-home action was refused: each says what happened and when (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TakeHomeError {
    /// The interview is a live one.
    #[error("this is a live interview, not a take-home: it has no Start or Submit")]
    NotTakeHome,
    /// Start was pressed before.
    #[error("the take-home already started at {} (unix ms); its deadline is {}", .0.started_at, .0.deadline)]
    AlreadyStarted(TakeHomeStarted),
    /// Submit before Start.
    #[error("the take-home has not started: press Start first")]
    NotStarted,
    /// It was submitted before (by the candidate, or at the time limit).
    #[error("the take-home was already submitted at {} (unix ms){}", .0.at, reason_words(.0.reason))]
    AlreadySubmitted(TakeHomeSubmitted),
    /// The candidate's Submit came after the deadline: the round was submitted at the limit
    /// instead, with what was written by then.
    #[error("the time limit was reached at {} (unix ms): the take-home was submitted then, automatically", .0.deadline)]
    PastLimit(TakeHomeSubmitted),
    /// Someone ended the interview some other way (an interviewer's End).
    #[error("the interview has ended")]
    Ended,
}

fn reason_words(reason: SubmitReason) -> &'static str {
    match reason {
        SubmitReason::Submitted => " by the candidate",
        SubmitReason::TimeLimit => ", automatically at the time limit",
    }
}

impl Room {
    /// Makes this room a take-home: its terms and its round as the log says (the room's load
    /// calls it once, before anyone joins).
    pub fn set_take_home(&mut self, take_home: TakeHome) {
        self.take_home = Some(take_home);
    }

    /// The take-home's round, if this room is one.
    pub fn take_home(&self) -> Option<&TakeHome> {
        self.take_home.as_ref()
    }

    /// When the take-home is due to be submitted (unix ms), while its clock runs. An
    /// interview ended some other way (an interviewer's End) has no clock any more.
    pub fn take_home_due(&self) -> Option<i64> {
        if self.ended {
            return None;
        }
        self.take_home.as_ref().and_then(TakeHome::due)
    }

    /// The candidate pressed Start at `now_ms`: the deadline is `now_ms` plus the time limit.
    pub fn start_take_home(
        &mut self,
        now_ms: i64,
    ) -> Result<(TakeHomeStarted, Vec<Effect>), TakeHomeError> {
        let ended = self.ended;
        let take_home = self.take_home.as_mut().ok_or(TakeHomeError::NotTakeHome)?;
        if let Some(submitted) = take_home.submitted {
            return Err(TakeHomeError::AlreadySubmitted(submitted));
        }
        if let Some(started) = take_home.started {
            return Err(TakeHomeError::AlreadyStarted(started));
        }
        if ended {
            return Err(TakeHomeError::Ended);
        }
        let started = TakeHomeStarted {
            started_at: now_ms,
            deadline: now_ms.saturating_add(i64::from(take_home.time_limit_minutes) * 60_000),
            time_limit_minutes: take_home.time_limit_minutes,
        };
        take_home.started = Some(started);
        let effects = vec![self.record(Actor::Candidate, Record::TakeHomeStarted(started), now_ms)];
        Ok((started, effects))
    }

    /// The candidate pressed Submit at `now_ms`. At or after the deadline this is refused
    /// ([`TakeHomeError::PastLimit`]) and the round is submitted at the limit instead, in the
    /// effects returned beside the refusal (so the caller carries them out either way).
    pub fn submit_take_home(
        &mut self,
        now_ms: i64,
    ) -> (Result<TakeHomeSubmitted, TakeHomeError>, Vec<Effect>) {
        let Some(take_home) = &self.take_home else {
            return (Err(TakeHomeError::NotTakeHome), Vec::new());
        };
        if let Some(submitted) = take_home.submitted {
            return (Err(TakeHomeError::AlreadySubmitted(submitted)), Vec::new());
        }
        let Some(started) = take_home.started else {
            return (Err(TakeHomeError::NotStarted), Vec::new());
        };
        if self.ended {
            return (Err(TakeHomeError::Ended), Vec::new());
        }
        if now_ms >= started.deadline {
            let (submitted, effects) = self.submit(SubmitReason::TimeLimit, started, now_ms);
            return (Err(TakeHomeError::PastLimit(submitted)), effects);
        }
        let (submitted, effects) = self.submit(SubmitReason::Submitted, started, now_ms);
        (Ok(submitted), effects)
    }

    /// When the submitted code's hidden tests are due to be started (unix ms; at once is
    /// `i64::MIN`), while they are owed.
    pub fn take_home_tests_due(&self) -> Option<i64> {
        let take_home = self.take_home.as_ref()?;
        take_home
            .tests_owed
            .then(|| take_home.tests_retry_at.unwrap_or(i64::MIN))
    }

    /// Whether a run of `kind` by `by` would be the hidden tests the submit still owes (the one
    /// run the room starts after its end).
    pub fn take_home_owes(&self, by: Role, kind: RunKind) -> bool {
        by == Role::Interviewer
            && kind == RunKind::Test
            && self.take_home.as_ref().is_some_and(|t| t.tests_owed)
    }

    /// The sandbox refused the hidden tests at `now_ms` (busy): they are tried again after
    /// [`TESTS_RETRY_MS`]. `for_good`: they cannot run at all (no tests, no code), and are
    /// not owed any more.
    pub fn take_home_tests_refused(&mut self, now_ms: i64, for_good: bool) {
        if let Some(take_home) = self.take_home.as_mut() {
            if for_good {
                take_home.tests_owed = false;
            } else {
                take_home.tests_retry_at = Some(now_ms.saturating_add(TESTS_RETRY_MS));
            }
        }
    }

    /// A run started or finished: the take-home notes its hidden-test run.
    pub(super) fn take_home_learn(&mut self, record: &Record) {
        if let Some(take_home) = self.take_home.as_mut() {
            take_home.learn(record);
        }
    }

    /// The server's timer: submits the round if its deadline has come by `now_ms`.
    pub fn take_home_tick(&mut self, now_ms: i64) -> Option<(TakeHomeSubmitted, Vec<Effect>)> {
        let due = self.take_home_due()?;
        if now_ms < due || self.ended {
            return None;
        }
        let started = self.take_home.as_ref()?.started?;
        Some(self.submit(SubmitReason::TimeLimit, started, now_ms))
    }

    /// Whether `role` may hold a room socket now, and if not, the close code and why.
    pub fn take_home_refusal(&self, role: Role) -> Option<(u16, &'static str)> {
        let take_home = self.take_home.as_ref()?;
        if role != Role::Candidate {
            return None;
        }
        match take_home.stage() {
            TakeHomeStage::NotStarted => Some((
                close::POLICY,
                "the take-home has not started: press Start on your link's page",
            )),
            TakeHomeStage::Running => None,
            TakeHomeStage::Submitted => Some((close::SUBMITTED, SUBMITTED_REASON)),
        }
    }

    /// Whether `role`'s edits are dropped because this is a take-home (staff watch read-only).
    pub(super) fn take_home_read_only(&self, role: Role) -> bool {
        self.take_home.is_some() && role != Role::Candidate
    }

    /// Logs the submit and the end, tells everyone of the end, and closes the candidate's
    /// room sockets.
    fn submit(
        &mut self,
        reason: SubmitReason,
        started: TakeHomeStarted,
        now_ms: i64,
    ) -> (TakeHomeSubmitted, Vec<Effect>) {
        let submitted = TakeHomeSubmitted {
            reason,
            at: now_ms,
            started_at: started.started_at,
            deadline: started.deadline,
        };
        if let Some(take_home) = self.take_home.as_mut() {
            take_home.submitted = Some(submitted);
            take_home.tests_owed = true;
        }
        let by = match reason {
            SubmitReason::Submitted => Actor::Candidate,
            SubmitReason::TimeLimit => Actor::Server,
        };
        let mut effects = vec![self.record(by, Record::TakeHomeSubmitted(submitted), now_ms)];
        self.ended = true;
        effects.extend(self.record_and_tell(
            by,
            Record::End,
            now_ms,
            Audience::Everyone,
            RoomEventBody::End,
        ));
        let mut candidates: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.role == Role::Candidate)
            .map(|(conn, _)| *conn)
            .collect();
        candidates.sort_unstable();
        effects.extend(candidates.into_iter().map(|conn| Effect::Close {
            conn,
            code: close::SUBMITTED,
            reason: SUBMITTED_REASON.to_owned(),
        }));
        (submitted, effects)
    }
}

/// The close reason the candidate's sockets get once the take-home is submitted.
pub const SUBMITTED_REASON: &str = "the take-home was submitted: this link shows only that now";

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn take_home_room() -> Room {
        let mut room = Room::new(RoomConfig::default());
        room.set_take_home(TakeHome::new(30));
        room
    }

    fn join(room: &mut Room, conn: ConnId, role: Role, now: i64) -> Vec<Effect> {
        let identity = Identity::for_role(role, "Ada");
        room.join(conn, role, identity, ReplySlots::default(), now)
    }

    fn kinds(effects: &[Effect]) -> Vec<EventKind> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Persist(record) => Some(record.kind),
                _ => None,
            })
            .collect()
    }

    fn closes(effects: &[Effect]) -> Vec<(ConnId, u16)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Close { conn, code, .. } => Some((*conn, *code)),
                _ => None,
            })
            .collect()
    }

    /// A candidate text edit as y-websocket sends it.
    fn typed(text: &str) -> Vec<u8> {
        let doc = Doc::new();
        let main = doc.get_or_insert_text(MAIN_FILE);
        let update = {
            let mut txn = doc.transact_mut();
            main.insert(&mut txn, 0, text);
            txn.encode_update_v1()
        };
        Message::Sync(SyncMessage::Update(update)).encode_v1()
    }

    #[test]
    fn the_clock_starts_at_start_not_when_the_link_opens_and_starts_once() {
        let mut room = take_home_room();
        assert_eq!(room.take_home_due(), None, "no clock before Start");
        let (started, effects) = room.start_take_home(10 * MINUTE).expect("starts");
        assert_eq!(started.started_at, 10 * MINUTE);
        assert_eq!(started.deadline, 40 * MINUTE, "30 minutes from Start");
        assert_eq!(kinds(&effects), [EventKind::TakeHomeStarted]);
        assert_eq!(room.take_home_due(), Some(40 * MINUTE));
        let again = room
            .start_take_home(11 * MINUTE)
            .expect_err("a second Start");
        assert_eq!(again, TakeHomeError::AlreadyStarted(started));
        assert!(again.to_string().contains(&started.deadline.to_string()));
    }

    #[test]
    fn a_live_interview_has_no_start_or_submit() {
        let mut room = Room::new(RoomConfig::default());
        assert_eq!(
            room.start_take_home(1).err(),
            Some(TakeHomeError::NotTakeHome)
        );
        assert_eq!(room.submit_take_home(1).0, Err(TakeHomeError::NotTakeHome));
        assert!(room.take_home_tick(i64::MAX).is_none());
    }

    #[test]
    fn submit_logs_the_reason_then_the_end_and_closes_the_candidates_sockets() {
        let mut room = take_home_room();
        assert_eq!(room.submit_take_home(1).0, Err(TakeHomeError::NotStarted));
        room.start_take_home(0).expect("starts");
        join(&mut room, 1, Role::Candidate, 1);
        join(&mut room, 2, Role::Interviewer, 1);
        let (submitted, effects) = room.submit_take_home(5 * MINUTE);
        let submitted = submitted.expect("submitted");
        assert_eq!(submitted.reason, SubmitReason::Submitted);
        assert_eq!(submitted.at, 5 * MINUTE);
        assert_eq!(
            kinds(&effects),
            [EventKind::TakeHomeSubmitted, EventKind::End]
        );
        assert_eq!(
            closes(&effects),
            [(1, close::SUBMITTED)],
            "only the candidate's socket"
        );
        assert!(room.is_ended());
        assert_eq!(room.take_home_due(), None, "no clock after the submit");

        let (again, effects) = room.submit_take_home(6 * MINUTE);
        assert_eq!(again, Err(TakeHomeError::AlreadySubmitted(submitted)));
        assert!(effects.is_empty(), "a second submit changes nothing");
        assert!(room.take_home_tick(31 * MINUTE).is_none());
    }

    #[test]
    fn the_deadline_submits_for_the_server_and_not_a_moment_before() {
        let mut room = take_home_room();
        room.start_take_home(0).expect("starts");
        assert!(room.take_home_tick(30 * MINUTE - 1).is_none());
        let (submitted, effects) = room.take_home_tick(30 * MINUTE).expect("due");
        assert_eq!(submitted.reason, SubmitReason::TimeLimit);
        let Some(Effect::Persist(record)) = effects.first() else {
            panic!("the submit is logged first: {effects:?}");
        };
        assert_eq!(record.by, Actor::Server);
        assert_eq!(
            record.decode().ok(),
            Some(Record::TakeHomeSubmitted(submitted))
        );
    }

    #[test]
    fn a_submit_after_the_limit_is_refused_and_the_round_is_submitted_at_the_limit() {
        let mut room = take_home_room();
        room.start_take_home(0).expect("starts");
        let (refused, effects) = room.submit_take_home(30 * MINUTE + 5);
        let Err(TakeHomeError::PastLimit(submitted)) = refused else {
            panic!("refused: {refused:?}");
        };
        assert_eq!(submitted.reason, SubmitReason::TimeLimit);
        assert!(refused
            .err()
            .is_some_and(|e| e.to_string().contains("time limit")));
        assert_eq!(
            kinds(&effects),
            [EventKind::TakeHomeSubmitted, EventKind::End]
        );
    }

    #[test]
    fn the_candidate_holds_a_room_socket_only_while_the_clock_runs() {
        let mut room = take_home_room();
        assert_eq!(
            closes(&join(&mut room, 1, Role::Candidate, 1)),
            [(1, close::POLICY)]
        );
        assert!(
            closes(&join(&mut room, 2, Role::Interviewer, 1)).is_empty(),
            "staff may watch"
        );
        assert_eq!(room.connections(), 1);
        room.start_take_home(2).expect("starts");
        assert!(closes(&join(&mut room, 3, Role::Candidate, 3)).is_empty());
        room.submit_take_home(4).0.expect("submitted");
        assert_eq!(
            closes(&join(&mut room, 4, Role::Candidate, 5)),
            [(4, close::SUBMITTED)],
            "a reopened link is refused"
        );
    }

    #[test]
    fn staff_watch_read_only_while_the_candidate_writes() {
        let mut room = take_home_room();
        room.start_take_home(0).expect("starts");
        join(&mut room, 1, Role::Candidate, 1);
        join(&mut room, 2, Role::Interviewer, 1);
        let staff = room.receive(2, &typed("mine"), 2);
        assert!(
            kinds(&staff).is_empty() && closes(&staff).is_empty(),
            "dropped"
        );
        assert_eq!(room.text(), "");
        let candidate = room.receive(1, &typed("def f(): ..."), 3);
        assert_eq!(kinds(&candidate), [EventKind::Edit]);
        assert_eq!(room.text(), "def f(): ...");
    }

    #[test]
    fn hidden_tests_are_owed_until_their_run_starts_and_again_if_the_sandbox_failed_it() {
        let mut room = take_home_room();
        room.start_take_home(0).expect("starts");
        assert_eq!(
            room.take_home_tests_due(),
            None,
            "nothing owed while the clock runs"
        );
        let (_, mut log) = room.submit_take_home(MINUTE);
        assert_eq!(room.take_home_tests_due(), Some(i64::MIN), "owed at once");
        assert!(room.take_home_owes(Role::Interviewer, RunKind::Test));
        assert!(!room.take_home_owes(Role::Candidate, RunKind::Test));
        room.take_home_tests_refused(MINUTE, false);
        assert_eq!(room.take_home_tests_due(), Some(MINUTE + TESTS_RETRY_MS));
        let started = RunStarted {
            run_id: "hidden".into(),
            kind: RunKind::Test,
            by: Role::Interviewer,
            at: 2 * MINUTE,
            code: None,
            code_seq: room.last_seq(),
            private: true,
            environment: "python".into(),
        };
        log.extend(room.run_started(&started, 1 << 20, 2 * MINUTE));
        assert_eq!(room.take_home_tests_due(), None, "started");
        let failed = RunFinished {
            run_id: "hidden".into(),
            status: RunStatus::SandboxError,
            limit: None,
            exit_code: None,
            duration_ms: 0,
            tests: None,
            lint: None,
            at: 3 * MINUTE,
        };
        log.extend(room.run_finished(&failed, Role::Interviewer, true, 3 * MINUTE));
        assert_eq!(room.take_home_tests_due(), Some(i64::MIN), "owed again");
        // A server that stopped there finds them owed when the room loads.
        let records: Vec<LogRecord> = log
            .into_iter()
            .filter_map(|e| match e {
                Effect::Persist(record) => Some(record),
                _ => None,
            })
            .collect();
        assert!(Restored::from_log(&records).take_home.tests_owed);
        // A question without tests: nothing to owe.
        room.take_home_tests_refused(4 * MINUTE, true);
        assert_eq!(room.take_home_tests_due(), None);
    }

    #[test]
    fn an_interviewers_end_stops_the_clock() {
        let mut room = take_home_room();
        room.start_take_home(0).expect("starts");
        room.end(MINUTE);
        assert_eq!(room.take_home_due(), None, "no deadline to wait for");
        assert!(room.take_home_tick(31 * MINUTE).is_none());
        assert_eq!(
            room.submit_take_home(2 * MINUTE).0,
            Err(TakeHomeError::Ended)
        );
    }

    #[test]
    fn the_round_reads_back_from_the_log() {
        let mut room = take_home_room();
        let (_, mut effects) = room.start_take_home(0).expect("starts");
        effects.extend(room.submit_take_home(MINUTE).1);
        let records: Vec<LogRecord> = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Persist(record) => Some(record),
                _ => None,
            })
            .collect();
        let restored = Restored::from_log(&records);
        assert!(restored.ended);
        assert_eq!(restored.take_home.stage(), TakeHomeStage::Submitted);
        assert_eq!(
            restored.take_home.submitted.map(|s| s.reason),
            Some(SubmitReason::Submitted)
        );
        assert!(restored.take_home.started.is_some());
    }
}
