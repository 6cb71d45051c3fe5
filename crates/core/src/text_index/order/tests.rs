use super::decode::{BLOCK_GC, HAS_ORIGIN};
use super::*;
use duet_protocol::MAIN_FILE;
use yrs::encoding::write::Write;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::{Doc, GetString, Map, Text, Transact};

#[test]
fn whiteboard_entries_in_the_same_updates_leave_the_text_where_yrs_puts_it() {
    let doc = Doc::with_client_id(9);
    let text = doc.get_or_insert_text(MAIN_FILE);
    let board = doc.get_or_insert_map("board");
    let (mut order, mut tip) = (TextOrder::default(), Rope::new());
    for i in 0..60u32 {
        let update = {
            let mut txn = doc.transact_mut();
            // Setting a key again replaces (and tombstones) the entry before.
            board.insert(&mut txn, format!("e{}", i % 7), format!("{{\"id\":{i}}}"));
            let len = text.len(&txn);
            text.insert(&mut txn, (i * 7) % (len + 1), "ab");
            if i % 5 == 4 {
                board.remove(&mut txn, "e1");
                text.remove_range(&mut txn, 1, 2);
            }
            txn.encode_update_v1()
        };
        order
            .apply(&update, &mut tip, &mut Vec::new())
            .expect("the order follows it");
        assert_eq!(
            tip.to_string(),
            text.get_string(&doc.transact()),
            "edit {i}"
        );
    }
}

#[test]
fn text_anchored_on_a_garbage_collected_range_is_refused_not_guessed() {
    // Client 1 sends two collected clocks, then "x" typed after the second: yrs cannot
    // tell which type "x" belongs to and drops it; the order refuses to guess.
    let mut e = EncoderV1::new();
    e.write_var(1u32); // one client
    e.write_var(2u32); // two structs
    e.write_client(yrs::block::ClientID::new(1));
    e.write_var(0u32); // from clock 0
    e.write_info(BLOCK_GC);
    e.write_len(2);
    e.write_info(HAS_ORIGIN | 4); // a string with an origin
    e.write_left_id(&ID::new(yrs::block::ClientID::new(1), 1));
    e.write_string("x");
    e.write_var(0u32); // no deletes
    let update = e.to_vec();
    let doc = Doc::new();
    let decoded = yrs::Update::decode_v1(&update).expect("decodes");
    doc.transact_mut()
        .apply_update(decoded)
        .expect("yrs takes it");
    let text = doc.get_or_insert_text(MAIN_FILE);
    assert_eq!(
        text.get_string(&doc.transact()),
        "",
        "yrs keeps no text of it"
    );
    let (mut order, mut tip) = (TextOrder::default(), Rope::new());
    assert_eq!(
        order.apply(&update, &mut tip, &mut Vec::new()),
        Err(Unfollowable(
            "an item next to a garbage-collected neighbour"
        ))
    );
}
