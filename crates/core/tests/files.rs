//! Several files in the room's document: people create files by writing into a root text named
//! by its path, rename and delete them through the `files` map for everyone at once, a rename
//! keeps what the other person typed meanwhile, every change is in the log and a room rebuilt
//! from it lists the same files; names outside the rules, a rename onto an existing file and
//! the other bad shapes close only their sender with 1007, nothing of them stored.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_core::files::{self, MAX_FILES};
use duet_core::{rebuild, ConnId, Room, RoomConfig};
use duet_protocol::{close, Role, FILES};
use yrs::{Any, Doc, GetString, Map, MapRef, Text, Transact, TransactionMut};

mod common;
use common::scene::Scene;

impl Scene {
    /// `conn` changes its `files` map in one transaction; returns the update, unsent.
    fn change(&self, conn: ConnId, f: impl FnOnce(&MapRef, &mut TransactionMut)) -> Vec<u8> {
        let doc = &self.people[&conn];
        let map = doc.get_or_insert_map(FILES);
        let mut txn = doc.transact_mut();
        f(&map, &mut txn);
        txn.encode_update_v1()
    }

    /// `conn` appends `chunk` to the file text `root` and sends it.
    fn write(&mut self, conn: ConnId, root: &str, chunk: &str) {
        let doc = self.people.get(&conn);
        let doc = doc.unwrap_or_else(|| panic!("{conn} was closed: {:?}", self.closed));
        let update = append(doc, root, chunk);
        self.send_update(conn, update);
    }

    /// `conn` sets `files` entries in one transaction and sends them.
    fn entries(&mut self, conn: ConnId, entries: &[(&str, Any)]) {
        let update = self.change(conn, |map, txn| {
            for (path, value) in entries {
                map.insert(txn, *path, value.clone());
            }
        });
        self.send_update(conn, update);
    }

    /// The files `conn` sees, by the same rules the room lists them.
    fn files_of(&self, conn: ConnId) -> Vec<(String, String)> {
        let doc = &self.people[&conn];
        doc.get_or_insert_text(duet_protocol::MAIN_FILE);
        files::contents(doc)
    }

    /// `conn` sends `update`; returns why it was closed (it must be, with 1007), and checks
    /// that nothing was stored and the room's files did not change.
    fn refused(&mut self, conn: ConnId, update: Vec<u8>) -> String {
        let (stored, listed) = (self.log.len(), self.room.files());
        self.send_update(conn, update);
        let (who, code, reason) = self.closed.pop().expect("the sender was closed");
        assert_eq!((who, code), (conn, close::INVALID_PAYLOAD), "{reason}");
        assert_eq!(self.log.len(), stored, "nothing of it was stored");
        assert_eq!(self.room.files(), listed, "the files did not change");
        reason
    }
}

fn append(doc: &Doc, root: &str, chunk: &str) -> Vec<u8> {
    let text = doc.get_or_insert_text(root);
    let mut txn = doc.transact_mut();
    let end = text.len(&txn);
    text.insert(&mut txn, end, chunk);
    txn.encode_update_v1()
}

fn shows(root: &str) -> Any {
    Any::from(std::collections::HashMap::from([(
        "text".to_owned(),
        Any::from(root),
    )]))
}

fn deleted() -> Any {
    Any::from(std::collections::HashMap::from([(
        "deleted".to_owned(),
        Any::Bool(true),
    )]))
}

fn listing(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

const CART: &str = "def total(items):\n    return sum(items)\n";

#[test]
fn two_people_create_files_by_writing_into_a_text_named_by_its_path() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "shop/cart.py", CART);
    scene.write(1, "main.py", "from shop.cart import total\n");
    scene.write(
        2,
        "tests/test_cart.py",
        "def test_total():\n    assert True\n",
    );
    scene.write(2, "data/orders.csv", "id,amount\n1,9.5\n");
    let expected = listing(&[
        ("data/orders.csv", "id,amount\n1,9.5\n"),
        ("main.py", "from shop.cart import total\n"),
        ("shop/cart.py", CART),
        ("tests/test_cart.py", "def test_total():\n    assert True\n"),
    ]);
    assert_eq!(scene.room.files(), expected);
    assert_eq!(scene.files_of(1), expected, "the candidate sees every file");
    assert_eq!(
        scene.files_of(2),
        expected,
        "the interviewer sees every file"
    );
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
}

#[test]
fn a_rename_reaches_both_and_keeps_what_the_other_typed_meanwhile() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "shop/cart.py", CART);
    // The interviewer types into cart.py while the candidate renames it: neither has seen the
    // other's change when they send.
    let typed = append(&scene.people[&2], "shop/cart.py", "# TODO: discounts\n");
    let rename = scene.change(1, |map, txn| {
        map.insert(txn, "shop/basket.py", shows("shop/cart.py"));
        map.insert(txn, "shop/cart.py", deleted());
    });
    scene.send_update(1, rename);
    scene.send_update(2, typed);
    let expected = listing(&[
        ("main.py", ""),
        ("shop/basket.py", &format!("{CART}# TODO: discounts\n")),
    ]);
    assert_eq!(scene.room.files(), expected);
    assert_eq!(scene.files_of(1), expected);
    assert_eq!(scene.files_of(2), expected);
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
}

#[test]
fn a_delete_reaches_both_and_a_room_rebuilt_from_the_log_lists_the_same_files() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "notes.md", "scratch\n");
    scene.write(1, "shop/cart.py", CART);
    scene.entries(2, &[("notes.md", deleted())]);
    let expected = listing(&[("main.py", ""), ("shop/cart.py", CART)]);
    assert_eq!(scene.room.files(), expected);
    assert_eq!(scene.files_of(1), expected, "the candidate sees it gone");
    // Every change is a record in the log: a room rebuilt from it lists the same files, and
    // the deleted file's text is still in the document, only unlisted.
    let rebuilt = Room::from_history(
        RoomConfig::default(),
        rebuild(None, scene.log.clone()).unwrap(),
        0,
    );
    assert_eq!(rebuilt.files(), expected);
    let doc = &scene.people[&1];
    let notes = doc.get_or_insert_text("notes.md");
    assert_eq!(notes.get_string(&doc.transact()), "scratch\n");
    // Writing the path again with itself as its text brings the file back.
    scene.entries(1, &[("notes.md", shows("notes.md"))]);
    assert!(scene.room.files().iter().any(|(p, _)| p == "notes.md"));
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
}

#[test]
fn a_rename_onto_an_existing_file_is_refused_and_nobody_else_is_touched() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "shop/cart.py", CART);
    scene.write(1, "main.py", "print(1)\n");
    let onto_main = scene.change(1, |map, txn| {
        map.insert(txn, "main.py", shows("shop/cart.py"));
        map.insert(txn, "shop/cart.py", deleted());
    });
    let said = scene.refused(1, onto_main);
    assert!(said.contains("\"main.py\" already exists"), "{said}");
    assert!(scene.people.contains_key(&2), "the interviewer stays");
    scene.write(2, "main.py", "print(2)\n");
    assert!(scene
        .room
        .files()
        .contains(&("main.py".into(), "print(1)\nprint(2)\n".into())));
}

#[test]
fn names_outside_the_rules_and_bad_entries_are_refused_saying_what() {
    let bad_names = [
        ("../etc/passwd.py", "must not contain .."),
        ("/abs.py", "relative"),
        ("run.sh", "must end in one of"),
        ("a b.py", "not allowed"),
        ("dir//x.py", "empty"),
    ];
    for (name, why) in bad_names {
        let mut scene = Scene::empty();
        scene.join(1, Role::Candidate);
        let update = append(&scene.people[&1], name, "x");
        let said = scene.refused(1, update);
        assert!(said.contains(why), "{name}: {said}");
    }
    type Change = Box<dyn Fn(&MapRef, &mut TransactionMut)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "an entry of another shape",
            Box::new(|map, txn| {
                map.insert(txn, "a.py", Any::from(1.0));
            }),
            "file entry",
        ),
        (
            "an entry with extra fields",
            Box::new(|map, txn| {
                let value = Any::from(std::collections::HashMap::from([
                    ("deleted".to_owned(), Any::Bool(true)),
                    ("by".to_owned(), Any::from("me")),
                ]));
                map.insert(txn, "a.py", value);
            }),
            "file entry must be",
        ),
        (
            "an entry under a bad path",
            Box::new(|map, txn| {
                map.insert(txn, "../a.py", deleted());
            }),
            "must not contain ..",
        ),
        (
            "a path showing a text the document lacks",
            Box::new(|map, txn| {
                map.insert(txn, "b.py", shows("nowhere.py"));
            }),
            "does not have",
        ),
        (
            "two paths showing one text",
            Box::new(|map, txn| {
                map.insert(txn, "copy.py", shows("main.py"));
            }),
            "would show the same text",
        ),
        (
            "a nested type in the files map",
            Box::new(|map, txn| {
                map.insert(txn, "a.py", yrs::MapPrelim::default());
            }),
            "nested shared type",
        ),
    ];
    for (what, change, why) in cases {
        let mut scene = Scene::empty();
        scene.join(1, Role::Candidate);
        scene.write(1, "main.py", "x = 1\n");
        let update = scene.change(1, change);
        let said = scene.refused(1, update);
        assert!(said.contains(why), "{what}: {said}");
    }
}

#[test]
fn at_most_64_files_are_listed() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    for i in 1..MAX_FILES {
        scene.write(1, &format!("pkg/m{i}.py"), "pass\n");
    }
    assert_eq!(scene.room.files().len(), MAX_FILES, "main.py and 63 more");
    let one_more = append(&scene.people[&1], "pkg/extra.py", "pass\n");
    let said = scene.refused(1, one_more);
    assert!(said.contains("at most 64 files"), "{said}");
}

#[test]
fn main_py_can_be_neither_deleted_nor_renamed_since_every_run_starts_it() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "main.py", "print(1)\n");
    let delete = scene.change(1, |map, txn| {
        map.insert(txn, "main.py", deleted());
    });
    let said = scene.refused(1, delete);
    assert!(said.contains("cannot be deleted or renamed"), "{said}");
    scene.join(1, Role::Candidate);
    let rename = scene.change(1, |map, txn| {
        map.insert(txn, "app.py", shows("main.py"));
        map.insert(txn, "main.py", deleted());
    });
    let said = scene.refused(1, rename);
    assert!(said.contains("cannot be deleted or renamed"), "{said}");
    assert!(scene.people.contains_key(&2), "the interviewer stays");
    assert_eq!(scene.files_of(2), listing(&[("main.py", "print(1)\n")]));
}

/// The room tries a files change on a replica of its document before taking it; a refused
/// change must leave nothing of itself there, or the next one would be judged against files
/// that never were.
#[test]
fn a_refused_rename_leaves_nothing_behind_that_judges_the_next_one() {
    let mut scene = Scene::empty();
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.write(1, "shop/cart.py", CART);
    // The candidate renames cart.py to basket.py and deletes main.py in one update: refused.
    let refused = scene.change(1, |map, txn| {
        map.insert(txn, "shop/basket.py", shows("shop/cart.py"));
        map.insert(txn, "shop/cart.py", deleted());
        map.insert(txn, "main.py", deleted());
    });
    let reason = scene.refused(1, refused);
    assert!(reason.contains("main.py"), "{reason}");
    // The interviewer renames cart.py to till.py: had basket.py stayed on the replica, both
    // would show cart.py's text and this would be refused.
    let rename = scene.change(2, |map, txn| {
        map.insert(txn, "shop/till.py", shows("shop/cart.py"));
        map.insert(txn, "shop/cart.py", deleted());
    });
    scene.send_update(2, rename);
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
    let expected = listing(&[("main.py", ""), ("shop/till.py", CART)]);
    assert_eq!(scene.room.files(), expected);
    // And a file made since the replica's last trial is known to the next check: a rename
    // onto it is refused.
    scene.write(2, "shop/tax.py", "RATE = 0.2\n");
    let onto = scene.change(2, |map, txn| {
        map.insert(txn, "shop/tax.py", shows("shop/cart.py"));
        map.insert(txn, "shop/till.py", deleted());
    });
    let reason = scene.refused(2, onto);
    assert!(reason.contains("already exists"), "{reason}");
}
