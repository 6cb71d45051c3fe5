//! The whiteboard in the room's document: people draw on the `board` map through the room, a
//! bad element closes only its sender with 1007 and nothing of it is stored, the board's size
//! cap holds, a room reloaded from its log still takes edits to what was drawn before, and a
//! question's starter drawing opens on the board with each question keeping its own board.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_core::board::{BOARD, MAX_ELEMENTS};
use duet_core::{rebuild, ConnId, QuestionPick, Restored, Room, RoomConfig};
use duet_protocol::{close, Actor, EventKind, Role};
use std::collections::BTreeMap;
use yrs::{Map, Out, Transact};

mod common;
use common::scene::Scene;

impl Scene {
    /// `conn` sets `elements` (key, JSON) on its board in one transaction and sends the update.
    fn draw(&mut self, conn: ConnId, elements: &[(String, String)]) {
        let update = {
            let doc = &self.people[&conn];
            let board = doc.get_or_insert_map(BOARD);
            let mut txn = doc.transact_mut();
            for (key, json) in elements {
                board.insert(&mut txn, key.as_str(), json.as_str());
            }
            txn.encode_update_v1()
        };
        self.send_update(conn, update);
    }

    /// What `conn` sees on its board: key to element JSON.
    fn board_of(&self, conn: ConnId) -> BTreeMap<String, String> {
        let doc = &self.people[&conn];
        let board = doc.get_or_insert_map(BOARD);
        let txn = doc.transact();
        board
            .iter(&txn)
            .map(|(k, v)| match v {
                Out::Any(yrs::Any::String(s)) => (k.to_owned(), s.to_string()),
                other => panic!("{k} holds {other:?}, not a string"),
            })
            .collect()
    }

    fn edits(&self) -> usize {
        self.log
            .iter()
            .filter(|r| r.kind == EventKind::Edit)
            .count()
    }
}

fn rect(id: &str, x: i64) -> (String, String) {
    (
        id.to_owned(),
        format!(
            r#"{{"id":"{id}","type":"rectangle","x":{x},"y":0,"width":80,"height":40,"version":{x},"versionNonce":1}}"#
        ),
    )
}

#[test]
fn both_people_draw_and_each_sees_the_others_elements() {
    let mut scene = Scene::new(Room::new(RoomConfig::default()));
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.draw(1, &[rect("queue", 1), rect("api", 2)]);
    scene.draw(2, &[rect("cache", 3)]);
    scene.draw(1, &[rect("api", 40)]); // the candidate moves the API box
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
    let candidate = scene.board_of(1);
    assert_eq!(candidate.len(), 3);
    assert_eq!(candidate, scene.board_of(2), "both boards are the same");
    assert!(candidate["api"].contains(r#""x":40"#));
    assert_eq!(scene.edits(), 3, "every drawing is one stored edit");

    // A late joiner gets the whole board from the room.
    scene.join(3, Role::Reviewer);
    assert_eq!(scene.board_of(3), candidate);
    // The reviewer's own drawing is dropped: nobody else gets it, nothing is stored.
    scene.draw(3, &[rect("graffiti", 5)]);
    assert_eq!(scene.edits(), 3);
    assert!(!scene.board_of(1).contains_key("graffiti"));
}

#[test]
fn a_bad_element_closes_only_its_sender_with_1007_and_nothing_is_stored() {
    let mut scene = Scene::new(Room::new(RoomConfig::default()));
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    scene.draw(2, &[rect("a", 1)]);
    let stored = scene.log.len();
    let image = (
        "pic".to_owned(),
        r#"{"id":"pic","type":"image","fileId":"f","x":0,"y":0}"#.to_owned(),
    );
    scene.draw(1, &[rect("b", 2), image]);
    assert_eq!(scene.closed.len(), 1);
    let (conn, code, reason) = &scene.closed[0];
    assert_eq!((*conn, *code), (1, close::INVALID_PAYLOAD));
    assert!(reason.contains("\"image\""), "{reason}");
    assert_eq!(
        scene.edits(),
        1,
        "nothing of the refused update is stored ({:?})",
        &scene.log[stored..]
    );
    // The interviewer has neither element of the refused update and keeps drawing.
    assert_eq!(scene.board_of(2).keys().collect::<Vec<_>>(), ["a"]);
    scene.draw(2, &[rect("c", 3)]);
    assert_eq!(scene.board_of(2).len(), 2);
    assert_eq!(scene.closed.len(), 1);
}

#[test]
fn the_board_holds_at_most_its_cap_of_elements() {
    let mut scene = Scene::new(Room::new(RoomConfig::default()));
    scene.join(1, Role::Candidate);
    scene.join(2, Role::Interviewer);
    let all: Vec<_> = (0..MAX_ELEMENTS)
        .map(|i| rect(&format!("e{i}"), i as i64))
        .collect();
    scene.draw(1, &all[..MAX_ELEMENTS - 1]);
    scene.draw(2, &all[MAX_ELEMENTS - 1..]);
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
    assert_eq!(scene.board_of(2).len(), MAX_ELEMENTS);
    // Changing an element that exists is fine at the cap; one more is not.
    scene.draw(2, &[rect("e0", -1)]);
    assert!(scene.closed.is_empty(), "{:?}", scene.closed);
    scene.draw(1, &[rect("one-too-many", 0)]);
    let (conn, code, reason) = &scene.closed[0];
    assert_eq!((*conn, *code), (1, close::INVALID_PAYLOAD));
    assert!(reason.contains("at most 5000 elements"), "{reason}");
    assert_eq!(scene.board_of(2).len(), MAX_ELEMENTS);
}

#[test]
fn a_room_reloaded_from_its_log_takes_changes_to_what_was_drawn_before() {
    let mut before = Scene::new(Room::new(RoomConfig::default()));
    before.join(1, Role::Candidate);
    before.draw(1, &[rect("db", 1), rect("worker", 2)]);
    before.draw(1, &[rect("db", 3)]);
    let log = before.log.clone();
    let drawn = before.board_of(1);

    // The server restarts: the room comes back from its log; the candidate's page keeps its
    // document (and its Yjs client id) and syncs again.
    let rebuilt = rebuild(None, log.clone()).unwrap();
    let log_bytes = log.iter().map(|r| r.data.len() as u64).sum();
    let mut after = Scene::new(Room::from_history(
        RoomConfig::default(),
        rebuilt,
        log_bytes,
    ));
    after.log = log;
    let page = before.people.remove(&1).unwrap();
    after.join(2, Role::Interviewer);
    assert_eq!(
        after.board_of(2),
        drawn,
        "the interviewer gets the board from the log"
    );
    after.join_with(1, Role::Candidate, page);
    // Moving a box drawn before the restart names its earlier value as a neighbour, which
    // the reloaded room must know the place of.
    after.draw(1, &[rect("db", 99)]);
    assert!(after.closed.is_empty(), "{:?}", after.closed);
    assert!(after.board_of(2)["db"].contains(r#""x":99"#));
}

fn drawing(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| rect(id, 0).1).collect()
}

fn switch(scene: &mut Scene, id: &str, starter: Option<&str>, board: &[String]) {
    scene.clock += 1;
    let project = starter.map(|code| [("main.py".to_owned(), code.to_owned())].into());
    let pick = QuestionPick {
        id,
        title: id,
        starter: project.as_ref(),
        board,
    };
    let main = ["main.py".to_owned()];
    let effects = scene
        .room
        .switch_question(pick, &main, Actor::Interviewer, scene.clock)
        .unwrap();
    scene.carry_out(effects);
}

fn keys(scene: &Scene, conn: ConnId) -> Vec<String> {
    scene.board_of(conn).into_keys().collect()
}

#[test]
fn a_starter_drawing_opens_on_the_board_and_each_question_keeps_its_own_board() {
    let mut scene = Scene::new(Room::new(RoomConfig::default()));
    scene.join(1, Role::Candidate);
    let queue_design = drawing(&["api", "queue"]);
    let cache_design = drawing(&["cache"]);

    // The interviewer opens a design prompt: its starter drawing is on everyone's board.
    switch(&mut scene, "rate-limited-api", None, &queue_design);
    assert_eq!(keys(&scene, 1), ["api", "queue"]);
    let by_server = scene.log.last().unwrap();
    assert_eq!(
        (by_server.kind, by_server.by),
        (EventKind::Edit, Actor::Server)
    );
    // The candidate adds a worker pool.
    scene.draw(1, &[rect("workers", 5)]);

    // A coding question with no drawing leaves the board as it is; its starter goes to main.py.
    switch(&mut scene, "lru-cache", Some("class LRUCache: ...\n"), &[]);
    assert_eq!(keys(&scene, 1), ["api", "queue", "workers"]);
    assert_eq!(scene.room.text(), "class LRUCache: ...\n");

    // Another design prompt replaces the board with its own drawing.
    switch(&mut scene, "read-heavy-cache", None, &cache_design);
    assert_eq!(keys(&scene, 1), ["cache"]);
    scene.draw(1, &[rect("cdn", 7)]);

    // Back to the first prompt: its board comes back as it was left, not its starter.
    switch(&mut scene, "rate-limited-api", None, &queue_design);
    assert_eq!(keys(&scene, 1), ["api", "queue", "workers"]);

    // After a restart, the room still knows each question's board from its log.
    let log = scene.log.clone();
    let restored = Restored::from_log(
        &log.iter()
            .filter(|r| Restored::KINDS.contains(&r.kind))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut room = Room::from_history(
        RoomConfig::default(),
        rebuild(None, log.clone()).unwrap(),
        0,
    );
    room.restore(restored);
    let mut after = Scene::new(room);
    after.log = log;
    after.join(2, Role::Interviewer);
    assert_eq!(keys(&after, 2), ["api", "queue", "workers"]);
    switch(&mut after, "read-heavy-cache", None, &cache_design);
    assert_eq!(keys(&after, 2), ["cache", "cdn"]);
}
