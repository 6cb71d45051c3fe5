//! Leading and reviewing the interview: question switches (with the code kept per question),
//! the scorecard, private notes, integrity signals and the end.

use super::*;
use duet_protocol::{ProjectFiles, FILES};
use std::collections::BTreeMap;

/// The room's question and the code (and board) kept per question it moved away from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Questions {
    pub current: Option<String>,
    /// `main.py` per question it moved away from.
    pub kept: HashMap<String, String>,
    /// The project's other files per question it moved away from (see [`KeptCode::files`]).
    pub kept_files: HashMap<String, ProjectFiles>,
    /// The board's elements (each as its JSON) per question it moved away from.
    pub kept_boards: HashMap<String, Vec<String>>,
}

impl Questions {
    pub(super) fn switched(&mut self, switched: QuestionSwitched) {
        if let Some(left) = switched.left {
            self.kept_boards
                .insert(left.question_id.clone(), left.board);
            match left.files {
                Some(files) => self.kept_files.insert(left.question_id.clone(), files),
                None => self.kept_files.remove(&left.question_id),
            };
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
    /// A coding question's project, path to starter text (`main.py` among them, data files
    /// too); `None` for a discussion (the files stay as they are).
    pub starter: Option<&'a ProjectFiles>,
    /// The question's starter drawing (Excalidraw elements as JSON); empty for none (the
    /// board stays as it is).
    pub board: &'a [String],
}

/// Integrity signals logged per minute at most.
pub const MAX_SIGNALS_PER_MINUTE: usize = 30;

impl Room {
    /// The room moves to another question: the switch is logged with the files and the board
    /// left on the question it leaves (`leaving`: the paths of that question's project, which
    /// the room wrote for it; `main.py` is always kept), then, in one server edit, every file
    /// of the new question's project becomes the text last left in it (a switch back: a file
    /// the candidate had deleted stays deleted) or, the first time, its starter, and the files
    /// of the project left that the new one lacks are deleted (`main.py` excepted). Files the
    /// candidate created stay as they are. The board likewise becomes the one left on it or,
    /// the first time, its starter drawing if it has one, in another edit; the events socket
    /// names the question. A discussion question changes no file, except that a switch back
    /// brings back the `main.py` left on it. A switch to the question the room is on writes
    /// nothing. Refused once the interview has ended: the record of an ended interview does
    /// not change.
    pub fn switch_question(
        &mut self,
        to: QuestionPick<'_>,
        leaving: &[String],
        by: Actor,
        now_ms: i64,
    ) -> Result<Vec<Effect>, Ended> {
        if self.ended {
            return Err(Ended);
        }
        // A switch to the question the room is on is logged and told, and changes nothing:
        // what was kept for it from an earlier visit is older than what is in the editor.
        let again = self.questions.current.as_deref() == Some(to.id);
        let listed: BTreeMap<String, String> = self.files().into_iter().collect();
        let left = self
            .questions
            .current
            .clone()
            .filter(|current| current != to.id)
            .map(|question_id| {
                let others: Vec<&String> = leaving.iter().filter(|p| *p != MAIN_FILE).collect();
                let files = (!others.is_empty()).then(|| {
                    others
                        .iter()
                        .filter_map(|path| Some(((*path).clone(), listed.get(*path)?.clone())))
                        .collect()
                });
                KeptCode {
                    question_id,
                    code: self.text(),
                    files,
                    board: self
                        .board_elements()
                        .into_iter()
                        .map(|(_, json)| json)
                        .collect(),
                }
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
        let kept = self.questions.kept.get(to.id).cloned().filter(|_| !again);
        let restored = kept.is_some();
        // What each path becomes: its text, or deleted (`None`).
        let mut wanted: BTreeMap<String, Option<String>> = BTreeMap::new();
        if again {
            // Nothing to write.
        } else if let Some(project) = to.starter {
            for path in leaving {
                if path != MAIN_FILE && !project.contains_key(path) {
                    wanted.insert(path.clone(), None);
                }
            }
            let kept_files = self.questions.kept_files.get(to.id);
            for (path, starter) in project {
                let text = match (&kept, kept_files) {
                    (Some(code), _) if path == MAIN_FILE => Some(code.clone()),
                    (Some(_), Some(files)) => files.get(path).cloned(),
                    _ => Some(starter.clone()),
                };
                wanted.insert(path.clone(), text);
            }
        } else if let Some(code) = kept {
            wanted.insert(MAIN_FILE.to_owned(), Some(code));
        }
        effects.extend(self.replace_files(&wanted, now_ms));
        let board = match self.questions.kept_boards.get(to.id) {
            _ if again => None,
            Some(kept) if restored => Some(kept.clone()),
            _ if restored || to.board.is_empty() => None,
            _ => Some(to.board.to_vec()),
        };
        if let Some(board) = board {
            effects.extend(self.replace_board(&board, now_ms));
        }
        // Told after the edits that bring the question's files and board, under the switch's
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

    /// The server writes files, as one edit under its own client id that every client
    /// receives: each path of `wanted` shows the text given, or is deleted (`None`; `main.py`
    /// never is). A path that is listed keeps its text root (a renamed file's text is
    /// rewritten where it is); one that is not gets its own root, or, when a renamed file now
    /// shows that root, a fresh one listed under the path; an empty text is written only
    /// into a listed file. Returns nothing if every file is already so.
    pub fn replace_files(
        &mut self,
        wanted: &BTreeMap<String, Option<String>>,
        now_ms: i64,
    ) -> Vec<Effect> {
        let listing = files::listing(&self.doc);
        let shown: HashSet<&str> = listing
            .paths
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        // Where each written text goes: (path, root, whether the path needs a files entry).
        let mut writes: Vec<(&str, String, &str, bool)> = Vec::new();
        let mut deletes: Vec<&str> = Vec::new();
        let mut taken: HashSet<String> = listing.texts.iter().cloned().collect();
        taken.extend(wanted.keys().cloned());
        for (path, text) in wanted {
            let listed = listing.paths.get(path).cloned().flatten();
            match (text, listed) {
                (None, Some(_)) if path != MAIN_FILE => deletes.push(path),
                (None, _) => {}
                (Some(text), Some(root)) => writes.push((path, root, text, false)),
                // Yjs shares a text only once it holds something: an empty file that is not
                // listed would reach nobody, so it stays unlisted.
                (Some(text), None) if text.is_empty() => {}
                (Some(text), None) if !shown.contains(path.as_str()) => {
                    writes.push((path, path.clone(), text, true))
                }
                (Some(text), None) => {
                    let Some(root) = fresh_root(path, &taken, &listing) else {
                        continue; // no free name within the length limit: left as it is
                    };
                    taken.insert(root.clone());
                    writes.push((path, root, text, true));
                }
            }
        }
        let texts: Vec<yrs::TextRef> = writes
            .iter()
            .map(|(_, root, _, _)| self.doc.get_or_insert_text(root.as_str()))
            .collect();
        let map = self.doc.get_or_insert_map(FILES);
        let update = {
            let mut txn = self.doc.transact_mut();
            for ((path, root, text, entry), handle) in writes.iter().zip(&texts) {
                if handle.get_string(&txn) != **text {
                    let len = handle.len(&txn);
                    handle.remove_range(&mut txn, 0, len);
                    handle.insert(&mut txn, 0, text);
                }
                if !entry {
                    continue;
                }
                if root == path {
                    if map.get(&txn, path).is_some() {
                        map.remove(&mut txn, path);
                    }
                } else {
                    map.insert(&mut txn, root.as_str(), deleted_entry());
                    map.insert(&mut txn, *path, text_entry(root));
                }
            }
            for path in &deletes {
                map.insert(&mut txn, *path, deleted_entry());
            }
            if txn.delete_set().is_empty() && txn.before_state() == &txn.state_vector() {
                return Vec::new();
            }
            txn.encode_update_v1()
        };
        self.server_edit(update, now_ms)
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

/// The `files` entry `{"deleted": true}`.
fn deleted_entry() -> yrs::Any {
    yrs::Any::from(HashMap::from([(
        "deleted".to_owned(),
        yrs::Any::Bool(true),
    )]))
}

/// The `files` entry `{"text": root}`.
fn text_entry(root: &str) -> yrs::Any {
    yrs::Any::from(HashMap::from([("text".to_owned(), yrs::Any::from(root))]))
}

/// A root name for `path`'s text when its own is shown by a renamed file: `dir/name-N.ext`,
/// the first that is no text, no listed path and within the path rules.
fn fresh_root(path: &str, taken: &HashSet<String>, listing: &files::Listing) -> Option<String> {
    let (stem, ext) = path.rsplit_once('.')?;
    (2..1000).map(|n| format!("{stem}-{n}.{ext}")).find(|name| {
        !taken.contains(name)
            && !listing.paths.contains_key(name)
            && files::check_path(name).is_ok()
    })
}
