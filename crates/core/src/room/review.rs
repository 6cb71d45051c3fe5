//! Leading and reviewing the interview: question switches (with the code kept per question),
//! the scorecard, private notes, integrity signals and the end.

use super::*;

/// The room's question and the code (and board) kept per question it moved away from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Questions {
    pub current: Option<String>,
    pub kept: HashMap<String, String>,
    /// The board's elements (each as its JSON) per question it moved away from.
    pub kept_boards: HashMap<String, Vec<String>>,
}

impl Questions {
    pub(super) fn switched(&mut self, switched: QuestionSwitched) {
        if let Some(left) = switched.left {
            self.kept_boards
                .insert(left.question_id.clone(), left.board);
            self.kept.insert(left.question_id, left.code);
        }
        self.current = Some(switched.question_id);
    }
}

/// A question to switch to, as the room needs it.
#[derive(Debug, Clone, Copy)]
pub struct QuestionPick<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// A coding question's starter code; `None` for a discussion (the code stays as it is).
    pub starter: Option<&'a str>,
    /// The question's starter drawing (Excalidraw elements as JSON); empty for none (the
    /// board stays as it is).
    pub board: &'a [String],
}

/// Integrity signals logged per minute at most.
pub const MAX_SIGNALS_PER_MINUTE: usize = 30;

impl Room {
    /// The room moves to another question: the switch is logged with the code and the board
    /// left on the question it leaves, then `main.py` becomes the code last written for the new
    /// question (a switch back) or, the first time, a coding question's starter, in one server
    /// edit, and the board likewise becomes the one left on it or, the first time, its starter
    /// drawing if it has one, in another; the events socket names the question. Refused once
    /// the interview has ended: the record of an ended interview does not change.
    pub fn switch_question(
        &mut self,
        to: QuestionPick<'_>,
        by: Actor,
        now_ms: i64,
    ) -> Result<Vec<Effect>, Ended> {
        if self.ended {
            return Err(Ended);
        }
        let left = self
            .questions
            .current
            .clone()
            .filter(|current| current != to.id)
            .map(|question_id| KeptCode {
                question_id,
                code: self.text(),
                board: self
                    .board_elements()
                    .into_iter()
                    .map(|(_, json)| json)
                    .collect(),
            });
        let switched = QuestionSwitched {
            question_id: to.id.to_owned(),
            by,
            left,
        };
        self.questions.switched(switched.clone());
        let record = self.log(by, Record::Question(switched), now_ms);
        let head = record.head();
        let mut effects = vec![Effect::Persist(record)];
        let kept = self.questions.kept.get(to.id).cloned();
        let restored = kept.is_some();
        if let Some(code) = kept.as_deref().or(to.starter) {
            effects.extend(self.replace_text(code, now_ms));
        }
        let board = match self.questions.kept_boards.get(to.id) {
            Some(kept) if restored => Some(kept.clone()),
            _ if restored || to.board.is_empty() => None,
            _ => Some(to.board.to_vec()),
        };
        if let Some(board) = board {
            effects.extend(self.replace_board(&board, now_ms));
        }
        // Told after the edits that bring the question's code and board, under the switch's
        // own head.
        effects.push(Effect::Event {
            audience: Audience::Everyone,
            event: RoomEvent::new(
                head,
                RoomEventBody::Question {
                    question_id: to.id.to_owned(),
                    title: to.title.to_owned(),
                    restored,
                },
            ),
        });
        Ok(effects)
    }

    /// The interviewer link saves its scorecard; answered with the stored card.
    pub fn save_scorecard(
        &mut self,
        update: ScorecardUpdate,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        self.save_scorecard_of(None, update, now_ms)
    }

    /// `author` (a panel member's id, or `None` for the interviewer link) saves their own
    /// scorecard; answered with the stored card.
    pub fn save_scorecard_of(
        &mut self,
        author: Option<&str>,
        update: ScorecardUpdate,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        let card = self
            .scorecard
            .save(author, update, &self.runs, self.last_seq, now_ms)?;
        Ok((
            card.clone(),
            self.store_scorecard(author, "saved", card, now_ms),
        ))
    }

    /// The interviewer link submits its scorecard: it is locked from then on.
    pub fn submit_scorecard(
        &mut self,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        self.submit_scorecard_of(None, now_ms)
    }

    /// `author` submits their own scorecard: it is locked from then on (the others' are not).
    pub fn submit_scorecard_of(
        &mut self,
        author: Option<&str>,
        now_ms: i64,
    ) -> Result<(Scorecard, Vec<Effect>), ScorecardError> {
        let card = self.scorecard.submit(author, now_ms)?;
        Ok((
            card.clone(),
            self.store_scorecard(author, "submitted", card, now_ms),
        ))
    }

    fn store_scorecard(
        &mut self,
        author: Option<&str>,
        action: &str,
        card: Scorecard,
        now_ms: i64,
    ) -> Vec<Effect> {
        let change = ScorecardChange {
            action: action.to_owned(),
            scorecard: card.clone(),
            person: author.map(str::to_owned),
        };
        let body = RoomEventBody::Scorecard {
            action: action.to_owned(),
            version: card.version,
            person: change.person.clone(),
        };
        self.scorecard.stored(author, card);
        self.record_and_tell(
            Actor::Interviewer,
            Record::Scorecard(change),
            now_ms,
            // A panel stays blind live: only the author's own connections hear of it.
            Audience::Author(author.map(str::to_owned)),
            body,
        )
    }

    /// The interviewer link writes a private note (see [`Room::add_note_of`]).
    pub fn add_note(&mut self, text: String, now_ms: i64) -> Result<(Note, Vec<Effect>), String> {
        self.add_note_of(None, text, now_ms)
    }

    /// `author` (a panel member's id, or `None` for the interviewer link) writes a private
    /// note, stamped with the server's time and the room's seq.
    pub fn add_note_of(
        &mut self,
        author: Option<&str>,
        text: String,
        now_ms: i64,
    ) -> Result<(Note, Vec<Effect>), String> {
        if text.trim().is_empty() {
            return Err("a note needs some text".into());
        }
        if text.len() > crate::scorecard::MAX_NOTE {
            return Err(format!(
                "a note may hold at most {} bytes",
                crate::scorecard::MAX_NOTE
            ));
        }
        let note = Note {
            text,
            at: now_ms,
            seq: self.last_seq + 1,
            person: author.map(str::to_owned),
        };
        let body = RoomEventBody::Note {
            text: note.text.clone(),
            person: note.person.clone(),
        };
        let effects = self.record_and_tell(
            Actor::Interviewer,
            Record::Note(note.clone()),
            now_ms,
            Audience::Author(note.person.clone()),
            body,
        );
        Ok((note, effects))
    }

    /// The candidate's browser reports an integrity signal; at most [`MAX_SIGNALS_PER_MINUTE`]
    /// are logged a minute, the rest are dropped (they are context, and must not flood the log).
    pub fn signal(
        &mut self,
        kind: SignalKind,
        size: Option<u64>,
        now_ms: i64,
    ) -> Option<Vec<Effect>> {
        self.recent_signals.retain(|t| now_ms - t < 60_000);
        if self.ended || self.recent_signals.len() >= MAX_SIGNALS_PER_MINUTE {
            return None;
        }
        self.recent_signals.push(now_ms);
        let signal = Signal {
            kind,
            size,
            at: now_ms,
        };
        Some(self.record_and_tell(
            Actor::Candidate,
            Record::Signal(signal),
            now_ms,
            Audience::Private,
            RoomEventBody::Signal { kind, size },
        ))
    }

    /// The interviewer ends the interview: nobody edits or runs code from now on. Ending twice
    /// changes nothing.
    pub fn end(&mut self, now_ms: i64) -> Vec<Effect> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        self.record_and_tell(
            Actor::Interviewer,
            Record::End,
            now_ms,
            Audience::Everyone,
            RoomEventBody::End,
        )
    }
}

/// The interview has ended: what was asked would change its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the interview has ended")]
pub struct Ended;
