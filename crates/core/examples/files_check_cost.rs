//! What an update that changes which files are listed costs the room, in a document near its
//! size cap: `main.py` holds about 900 KiB, then one participant renames a file back and forth
//! (each rename one update writing two `files` entries, which the room checks against the
//! files rule before applying). Prints the time per rename and per plain keystroke.
//!
//! `cargo run --release -p duet-core --example files_check_cost`

use duet_core::{Effect, ReplySlots, Room, RoomConfig};
use duet_protocol::{Identity, Role, FILES, MAIN_FILE};
use std::time::Instant;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, ReadTxn, Text, Transact};

fn send(room: &mut Room, at: &mut i64, update: Vec<u8>) {
    *at += 1;
    let message = Message::Sync(SyncMessage::Update(update)).encode_v1();
    for effect in room.receive(1, &message, *at) {
        if let Effect::Close { reason, .. } = effect {
            panic!("refused: {reason}");
        }
    }
}

fn entry(fields: &[(&str, Any)]) -> Any {
    Any::from(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<std::collections::HashMap<_, _>>(),
    )
}

fn main() {
    let mut room = Room::new(RoomConfig::default());
    let mut at = 0;
    room.join(
        1,
        Role::Candidate,
        Identity::for_role(Role::Candidate, "Ada"),
        ReplySlots::default(),
        at,
    );
    let doc = Doc::new();
    let text = doc.get_or_insert_text(MAIN_FILE);
    let line = "print('a line of the candidate program, long enough to matter')\n";
    for _ in 0..(900 * 1024 / 64 / line.len()) {
        let update = {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, &line.repeat(64));
            txn.encode_update_v1()
        };
        send(&mut room, &mut at, update);
    }
    let other = doc.get_or_insert_text("a.py");
    let update = {
        let mut txn = doc.transact_mut();
        other.insert(&mut txn, 0, "x = 1\n");
        txn.encode_update_v1()
    };
    send(&mut room, &mut at, update);
    let files = doc.get_or_insert_map(FILES);
    let deleted = entry(&[("deleted", Any::Bool(true))]);
    let renames = 200;
    let start = Instant::now();
    for i in 0..renames {
        let (from, to) = if i % 2 == 0 {
            ("a.py", "b.py")
        } else {
            ("b.py", "a.py")
        };
        let update = {
            let mut txn = doc.transact_mut();
            files.insert(&mut txn, to, entry(&[("text", Any::from("a.py"))]));
            files.insert(&mut txn, from, deleted.clone());
            txn.encode_update_v1()
        };
        send(&mut room, &mut at, update);
    }
    let per_rename = start.elapsed() / renames;
    let keys = 2000;
    let start = Instant::now();
    for _ in 0..keys {
        let update = {
            let mut txn = doc.transact_mut();
            other.insert(&mut txn, 0, "y");
            txn.encode_update_v1()
        };
        send(&mut room, &mut at, update);
    }
    let per_key = start.elapsed() / keys;
    let bytes = doc
        .transact()
        .encode_state_as_update_v1(&Default::default())
        .len();
    println!("document {bytes} bytes: {per_rename:?} per rename, {per_key:?} per keystroke");
}
