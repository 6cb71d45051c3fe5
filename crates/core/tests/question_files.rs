//! Questions that are projects: a switch writes every starter file (code and data) into the
//! document as one edit by the server; a switch away keeps each file of the project as it was
//! left and a switch back brings it back (a file the candidate deleted stays deleted); the
//! files the candidate created stay through every switch; a room loaded from its log knows
//! what was kept. The candidate holds a stock yrs document throughout, and sees what the room
//! lists.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_core::files;
use duet_core::{rebuild, QuestionPick, Restored, Room, RoomConfig};
use duet_protocol::{Actor, LogRecord, ProjectFiles, Record, Role, FILES, MAIN_FILE};
use yrs::{Any, Doc, Map, Text, Transact};

mod common;
use common::scene::Scene;

const CANDIDATE: duet_core::ConnId = 1;

/// The candidate in a room (a stock yrs document), and the project the room is on (its paths
/// are what a switch away leaves).
struct Interview {
    scene: Scene,
    on: Vec<String>,
}

impl Interview {
    fn new() -> Interview {
        let mut scene = Scene::empty();
        scene.join(CANDIDATE, Role::Candidate);
        Interview {
            scene,
            on: vec![MAIN_FILE.to_owned()],
        }
    }

    fn doc(&self) -> &Doc {
        &self.scene.people[&CANDIDATE]
    }

    /// The candidate changes their document in one transaction and sends the change.
    fn candidate(&mut self, f: impl FnOnce(&Doc, &mut yrs::TransactionMut)) {
        let doc = self.doc().clone();
        doc.get_or_insert_map(FILES);
        let update = {
            let mut txn = doc.transact_mut();
            f(&doc, &mut txn);
            txn.encode_update_v1()
        };
        self.scene.send_update(CANDIDATE, update);
    }

    /// The candidate appends `chunk` to the file text `root`.
    fn types(&mut self, root: &str, chunk: &str) {
        let text = self.doc().get_or_insert_text(root);
        self.candidate(|_, txn| {
            let end = text.len(txn);
            text.insert(txn, end, chunk);
        });
    }

    /// The candidate sets `files` entries.
    fn entries(&mut self, entries: &[(&str, Any)]) {
        let map = self.doc().get_or_insert_map(FILES);
        self.candidate(|_, txn| {
            for (path, value) in entries {
                map.insert(txn, *path, value.clone());
            }
        });
    }

    /// The interviewer switches to question `id` with `project` (`None`: a discussion); answers
    /// the records the switch stored.
    fn switch(&mut self, id: &str, project: Option<&ProjectFiles>) -> Vec<LogRecord> {
        self.scene.clock += 1;
        let before = self.scene.log.len();
        let pick = QuestionPick {
            id,
            title: id,
            starter: project,
            board: &[],
        };
        let effects = self
            .scene
            .room
            .switch_question(pick, &self.on, Actor::Interviewer, self.scene.clock)
            .unwrap();
        self.scene.carry_out(effects);
        self.on = match project {
            Some(project) => project.keys().cloned().collect(),
            None => vec![MAIN_FILE.to_owned()],
        };
        self.scene.log[before..].to_vec()
    }

    /// The files the room lists, checked to be what the candidate's document lists too.
    fn files(&self) -> ProjectFiles {
        self.doc().get_or_insert_text(MAIN_FILE);
        let theirs: ProjectFiles = files::contents(self.doc()).into_iter().collect();
        let room: ProjectFiles = self.scene.room.files().into_iter().collect();
        assert_eq!(theirs, room, "the candidate sees what the room lists");
        assert!(self.scene.closed.is_empty(), "{:?}", self.scene.closed);
        room
    }
}

fn project(files: &[(&str, &str)]) -> ProjectFiles {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

fn entry(key: &str, value: Any) -> Any {
    Any::from(std::collections::HashMap::from([(key.to_owned(), value)]))
}

fn deleted() -> Any {
    entry("deleted", Any::Bool(true))
}

fn shows(root: &str) -> Any {
    entry("text", Any::from(root))
}

/// The shop question: a module, an entry point and a data file.
fn shop() -> ProjectFiles {
    project(&[
        ("main.py", "from shop.cart import total\n"),
        (
            "shop/cart.py",
            "def total(items):\n    raise NotImplementedError\n",
        ),
        ("data/orders.csv", "id,amount\n1,9.50\n2,3.25\n"),
    ])
}

/// The billing question: another module under another folder.
fn billing() -> ProjectFiles {
    project(&[
        ("main.py", "from billing.invoice import render\n"),
        ("billing/invoice.py", "def render(lines):\n    return ''\n"),
    ])
}

/// Every edit stored, and who made it.
fn edits(records: &[LogRecord]) -> Vec<Actor> {
    records
        .iter()
        .filter(|r| matches!(r.decode(), Ok(Record::Edit(_))))
        .map(|r| r.by)
        .collect()
}

#[test]
fn a_switch_writes_every_starter_file_as_one_edit_by_the_server_and_keeps_the_candidates_own() {
    let mut scene = Interview::new();
    // The candidate jots notes before any question.
    scene.types("notes.md", "ask about taxes\n");
    let stored = scene.switch("shop", Some(&shop()));
    assert_eq!(
        edits(&stored),
        [Actor::Server],
        "the question's files come as one edit by the server"
    );
    let mut expected = shop();
    expected.insert("notes.md".into(), "ask about taxes\n".into());
    assert_eq!(scene.files(), expected);
    // A room rebuilt from the log lists the same files.
    let rebuilt = rebuild(None, scene.scene.log.clone()).unwrap();
    let rebuilt = Room::from_history(RoomConfig::default(), rebuilt, 0);
    assert_eq!(
        rebuilt.files().into_iter().collect::<ProjectFiles>(),
        expected
    );
}

#[test]
fn a_switch_back_brings_back_every_file_as_it_was_left_and_a_deleted_one_stays_deleted() {
    let mut scene = Interview::new();
    scene.switch("shop", Some(&shop()));
    // The candidate works on the shop: edits the module and main.py, deletes the data file,
    // and creates a helper of their own.
    scene.types("shop/cart.py", "# sums the amounts\n");
    scene.types("main.py", "print(total([1]))\n");
    scene.entries(&[("data/orders.csv", deleted())]);
    scene.types("helper.py", "def double(x):\n    return 2 * x\n");
    let mut left = scene.files();
    assert!(!left.contains_key("data/orders.csv"));

    // On to billing: the shop's files go, billing's come, the helper stays.
    scene.switch("billing", Some(&billing()));
    let mut expected = billing();
    expected.insert("helper.py".into(), left["helper.py"].clone());
    assert_eq!(scene.files(), expected);
    scene.types("billing/invoice.py", "# billing work\n");
    scene.types("helper.py", "# edited under billing\n");

    // Back to the shop: each file as it was left, the data file still deleted, the helper as
    // the candidate has it now, billing's module gone.
    let stored = scene.switch("shop", Some(&shop()));
    assert_eq!(edits(&stored), [Actor::Server]);
    left.insert(
        "helper.py".into(),
        "def double(x):\n    return 2 * x\n# edited under billing\n".into(),
    );
    assert_eq!(scene.files(), left);

    // And back to billing once more: the work done there is back too.
    scene.switch("billing", Some(&billing()));
    let billing_files = scene.files();
    assert!(
        billing_files["billing/invoice.py"].ends_with("# billing work\n"),
        "{billing_files:?}"
    );
    assert!(!billing_files.contains_key("shop/cart.py"));
}

#[test]
fn a_room_loaded_from_its_log_knows_the_files_kept_per_question() {
    let mut scene = Interview::new();
    scene.switch("shop", Some(&shop()));
    scene.types("shop/cart.py", "# kept across a restart\n");
    scene.entries(&[("data/orders.csv", deleted())]);
    let left = scene.files();
    scene.switch("billing", Some(&billing()));

    // The server restarts: the room is rebuilt from its log, and what the log says beyond the
    // document is restored.
    let kinds = Restored::KINDS;
    let records: Vec<LogRecord> = scene
        .scene
        .log
        .iter()
        .filter(|r| kinds.contains(&r.kind))
        .cloned()
        .collect();
    let rebuilt = rebuild(None, scene.scene.log.clone()).unwrap();
    let mut room = Room::from_history(RoomConfig::default(), rebuilt, 0);
    room.restore(Restored::from_log(&records));
    let pick = QuestionPick {
        id: "shop",
        title: "shop",
        starter: Some(&shop()),
        board: &[],
    };
    let on: Vec<String> = billing().into_keys().collect();
    room.switch_question(pick, &on, Actor::Interviewer, 99)
        .unwrap();
    assert_eq!(room.files().into_iter().collect::<ProjectFiles>(), left);
}

#[test]
fn a_discussion_leaves_the_files_as_they_are_and_a_switch_back_restores_main_py() {
    let mut scene = Interview::new();
    scene.switch("shop", Some(&shop()));
    let before = scene.files();
    let stored = scene.switch("design", None);
    assert!(edits(&stored).is_empty(), "a discussion writes no file");
    assert_eq!(scene.files(), before);
    scene.types("main.py", "# a sketch during the discussion\n");
    let sketch = scene.files()["main.py"].clone();
    scene.switch("shop", Some(&shop()));
    assert_eq!(scene.files(), before, "the shop's files as they were left");
    scene.switch("design", None);
    assert_eq!(scene.files()["main.py"], sketch, "the discussion's main.py");
}

#[test]
fn a_project_file_the_candidate_renamed_keeps_its_text_and_the_path_gets_a_text_of_its_own() {
    let mut scene = Interview::new();
    scene.switch("shop", Some(&shop()));
    // The candidate renames the module: basket.py now shows cart.py's text.
    scene.types("shop/cart.py", "# mine\n");
    scene.entries(&[
        ("shop/basket.py", shows("shop/cart.py")),
        ("shop/cart.py", deleted()),
    ]);
    let basket = scene.files()["shop/basket.py"].clone();
    assert!(basket.ends_with("# mine\n"));
    // A question whose project has shop/cart.py again: the path gets the starter in a text of
    // its own, the renamed file keeps the candidate's text.
    let mut other = billing();
    other.insert("shop/cart.py".into(), "CART = 'fresh'\n".into());
    scene.switch("other", Some(&other));
    let now = scene.files();
    assert_eq!(now["shop/cart.py"], "CART = 'fresh'\n");
    assert_eq!(now["shop/basket.py"], basket);
    // The document still keeps the files' rules: the candidate goes on editing both and
    // creating files, and is never refused.
    scene.types("shop/extra.py", "X = 1\n");
    let root = {
        let map = scene.doc().get_or_insert_map(FILES);
        let txn = scene.doc().transact();
        match map.get(&txn, "shop/cart.py") {
            Some(yrs::Out::Any(Any::Map(fields))) => match fields.get("text") {
                Some(Any::String(root)) => root.to_string(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    };
    scene.types(&root, "# edited\n");
    let now = scene.files();
    assert_eq!(now["shop/cart.py"], "CART = 'fresh'\n# edited\n");
    assert!(now.contains_key("shop/extra.py"));
}

#[test]
fn a_switch_to_the_question_the_room_is_on_changes_no_file() {
    let mut scene = Interview::new();
    scene.switch("shop", Some(&shop()));
    scene.switch("billing", Some(&billing()));
    scene.switch("shop", Some(&shop()));
    // The candidate works on after the switch back; the interviewer clicks the shop again.
    scene.types("shop/cart.py", "# newer than what was kept\n");
    let now = scene.files();
    let stored = scene.switch("shop", Some(&shop()));
    assert!(
        edits(&stored).is_empty(),
        "nothing written: the kept files are older than the editor's"
    );
    assert_eq!(scene.files(), now);
}
