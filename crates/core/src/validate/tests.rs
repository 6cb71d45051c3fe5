use super::parse::{CONTENT_ANY, CONTENT_STRING, HAS_ORIGIN, HAS_PARENT_SUB};
use super::*;
use crate::board;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Array, Doc, Map, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

fn doc(client: u64) -> Doc {
    Doc::with_client_id(client)
}

/// The clients `update` creates structs under, checked against a document with `known`
/// clocks and `places`.
fn creates(update: &[u8], known: &HashMap<u64, u32>, places: &Places) -> Result<Vec<u64>, Invalid> {
    check(&parse(update)?, known, places).map(|c| c.creates)
}

fn typed(doc: &Doc, text: &str) -> Vec<u8> {
    let t = doc.get_or_insert_text(ROOT);
    let mut txn = doc.transact_mut();
    let len = yrs::GetString::get_string(&t, &txn).len() as u32;
    t.insert(&mut txn, len, text);
    txn.encode_update_v1()
}

#[test]
fn text_typed_by_a_stock_client_is_accepted() {
    let d = doc(7);
    let first = typed(&d, "print('hi')");
    let parsed = parse(&first).unwrap_or_default();
    assert_eq!(parsed.text_bytes, 11);
    let mut places = Places::default();
    assert_eq!(creates(&first, &HashMap::new(), &places), Ok(vec![7]));
    places.learn_update(&first);
    assert_eq!(
        places.get(Id {
            client: 7,
            clock: 10
        }),
        Some(&Place::Text(Arc::from(ROOT)))
    );
    let second = typed(&d, "\n");
    let known = HashMap::from([(7, 11)]);
    assert_eq!(creates(&second, &known, &places), Ok(vec![7]));
    // Without knowing where 7:10 is, the second keystroke cannot be placed: refused.
    assert!(creates(&second, &known, &Places::default()).is_err());
}

#[test]
fn deletions_and_garbage_collected_history_are_accepted() {
    let d = doc(3);
    typed(&d, "abcdef");
    {
        let t = d.get_or_insert_text(ROOT);
        let mut txn = d.transact_mut();
        t.remove_range(&mut txn, 1, 3);
    }
    let whole = d
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let parsed = parse(&whole).unwrap_or_default();
    assert!(check(&parsed, &HashMap::new(), &Places::default()).is_ok());
}

#[test]
fn nested_types_maps_and_other_roots_are_refused() {
    let d = doc(1);
    let nested = {
        let map = d.get_or_insert_map("scorecard");
        let mut txn = d.transact_mut();
        map.insert(&mut txn, "rating", 4);
        txn.encode_update_v1()
    };
    assert!(parse(&nested).is_err());
    let d = doc(2);
    let array = {
        let mut txn = d.transact_mut();
        let a = txn.get_or_insert_array(ROOT);
        a.push_back(&mut txn, yrs::ArrayPrelim::default());
        txn.encode_update_v1()
    };
    let refused = parse(&array);
    assert!(
        refused.as_ref().is_err_and(|e| e.0.contains("not")),
        "{refused:?}"
    );
}

#[test]
fn a_struct_that_names_itself_as_origin_would_stay_pending() {
    // One item of client 5 at clock 0 whose origin is 5:0: itself.
    let bytes = [1, 1, 5, 0, CONTENT_STRING | HAS_ORIGIN, 5, 0, 1, b'x', 0];
    let parsed = parse(&bytes).unwrap_or_default();
    assert!(check(&parsed, &HashMap::new(), &Places::default()).is_err());
}

#[test]
fn a_gap_in_clocks_would_stay_pending() {
    let d = doc(9);
    typed(&d, "ab");
    let later = typed(&d, "c"); // clock 2, but the receiver has nothing of client 9
    assert!(creates(&later, &HashMap::new(), &Places::default()).is_err());
}

#[test]
fn deleting_what_does_not_exist_is_refused() {
    let bytes = [0, 1, 4, 1, 0, 3];
    let none = Places::default();
    assert!(creates(&bytes, &HashMap::new(), &none).is_err());
    assert!(creates(&bytes, &HashMap::from([(4, 3)]), &none).is_ok());
}

#[test]
fn non_canonical_and_out_of_range_varints_are_refused() {
    // Clock 0 spelled in two bytes.
    assert!(parse(&[1, 1, 5, 0x80, 0x00, 0, 1, 0]).is_err());
    // A clock whose fifth byte overflows 32 bits (yrs wraps it, yjs does not).
    assert!(parse(&[1, 1, 5, 0x81, 0x80, 0x80, 0x80, 0x10, 0, 1, 0]).is_err());
    // A client id past 2^53.
    assert!(parse(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 1, 0]).is_err());
    // Trailing bytes.
    assert!(parse(&[0, 0, 0]).is_err());
    // A count larger than the message.
    assert!(parse(&[0x7f]).is_err());
}

#[test]
fn every_truncation_of_a_real_update_is_refused_without_panicking() {
    let d = doc(11);
    typed(&d, "def f():\n    return 1\n");
    let full = d
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    for cut in 0..full.len() {
        assert!(
            parse(&full[..cut]).is_err(),
            "a prefix of {cut} bytes was accepted"
        );
    }
    assert!(parse(&full).is_ok());
}

#[test]
fn a_state_vector_update_round_trips_through_yrs() {
    let d = doc(12);
    typed(&d, "x = 1");
    let sv = d.transact().state_vector().encode_v1();
    assert!(!sv.is_empty());
}

/// The server's side: a document and where its structs are, taking updates the way the
/// room does (check, then apply and learn).
#[derive(Default)]
struct Server {
    doc: Doc,
    places: Places,
}

impl Server {
    fn offer(&mut self, update: &[u8]) -> Result<Checked, Invalid> {
        let known = self
            .doc
            .transact()
            .state_vector()
            .iter()
            .map(|(c, k)| (c.get(), *k))
            .collect();
        let checked = check(&parse(update)?, &known, &self.places)?;
        let decoded = Update::decode_v1(update).map_err(|e| Invalid(e.to_string()))?;
        self.doc
            .transact_mut()
            .apply_update(decoded)
            .map_err(|e| Invalid(e.to_string()))?;
        self.places.learn(checked.placed.clone());
        Ok(checked)
    }

    fn board(&self) -> Vec<(String, String)> {
        let board = self.doc.get_or_insert_map(board::BOARD);
        let txn = self.doc.transact();
        let mut all: Vec<_> = board
            .iter(&txn)
            .map(|(k, v)| (k.to_string(), v.to_string(&txn)))
            .collect();
        all.sort();
        all
    }
}

fn element(id: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"rectangle","x":10,"y":20,"version":1,"versionNonce":7{extra}}}"#
    )
}

fn drawn(doc: &Doc, key: &str, value: impl yrs::block::Prelim) -> Vec<u8> {
    let board = doc.get_or_insert_map(board::BOARD);
    let mut txn = doc.transact_mut();
    board.insert(&mut txn, key, value);
    txn.encode_update_v1()
}

fn refusal(result: Result<Checked, Invalid>) -> String {
    match result {
        Ok(checked) => panic!("accepted: {checked:?}"),
        Err(e) => e.0,
    }
}

/// A lib0 varint.
fn var(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// An update of one item of `client` at clock 0 with `origin`, flagged `info`, holding
/// `content` (already encoded), and no deletions.
fn one_item(client: u64, info: u8, origin: Id, content: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 1];
    var(client, &mut out);
    out.push(0);
    out.push(info);
    var(origin.client, &mut out);
    var(u64::from(origin.clock), &mut out);
    out.extend_from_slice(content);
    out.push(0);
    out
}

#[test]
fn board_elements_drawn_through_a_stock_map_are_accepted_and_placed() {
    let mut server = Server::default();
    let alice = doc(21);
    let first = drawn(&alice, "a", element("a", ""));
    let checked = server.offer(&first).expect("a first element");
    assert_eq!(checked.board_keys, vec![Arc::from("a")]);
    assert_eq!(
        server.places.get(Id {
            client: 21,
            clock: 0
        }),
        Some(&Place::Board(Arc::from("a")))
    );
    // Moving it writes the key again, next to its last value (an origin, no parent written).
    let moved = drawn(&alice, "a", element("a", r#","x":99"#));
    assert!(parse(&moved).is_ok_and(|p| matches!(
        &p.clients[0].1[0].kind,
        BlockKind::Item {
            origin: Some(_),
            parent: None,
            ..
        }
    )));
    server.offer(&moved).expect("the element moved");
    // Another person draws beside it; text still goes into main.py.
    let bob = doc(22);
    server
        .offer(&drawn(&bob, "b", element("b", "")))
        .expect("a second element");
    server
        .offer(&typed(&bob, "print(1)"))
        .expect("text beside the board");
    let board = server.board();
    assert_eq!(board.len(), 2);
    assert!(board[0].1.contains(r#""x":99"#), "{board:?}");
}

#[test]
fn an_element_is_refused_unless_it_is_an_acceptable_json_object() {
    let big = format!(r#","text":"{}""#, "x".repeat(board::MAX_ELEMENT_BYTES));
    let cases: Vec<(&str, String, &str)> = vec![
        ("k", "not json".into(), "not JSON"),
        ("k", "[1, 2]".into(), "JSON object"),
        ("k", element("k", &big), "over the 64 KiB cap"),
        (
            "k",
            element("k", "").replace("rectangle", "image"),
            "\"image\"",
        ),
        ("k", element("k", r#","fileId":"f1""#), "fileId"),
        (
            "k",
            element("k", r#","link":"data:text/html,<b>hi</b>""#),
            "data: URL",
        ),
        (
            "k",
            element("k", r#","customData":{"a":["DATA:image/png;base64,AA"]}"#),
            "data: URL",
        ),
        (
            "k",
            r#"{"type":"rectangle"}"#.into(),
            "needs a string \"id\"",
        ),
        ("k", element("other", ""), "stored under another key"),
        (
            "k",
            element("k", "").replace(r#""type":"rectangle","#, ""),
            "\"type\"",
        ),
    ];
    for (key, value, why) in cases {
        let mut server = Server::default();
        let said = refusal(server.offer(&drawn(&doc(30), key, value.as_str())));
        assert!(
            said.contains(why),
            "{value:.80}: said {said:?}, not {why:?}"
        );
        assert!(server.board().is_empty(), "nothing of it was applied");
    }
    // A value that is not a string at all.
    let said = refusal(Server::default().offer(&drawn(&doc(31), "k", 4)));
    assert!(said.contains("JSON string"), "{said}");
    // An element's text that looks like markup is data, and accepted as such.
    let html = element("h", r#","type2":"<img src=x onerror=alert(1)>""#);
    Server::default()
        .offer(&drawn(&doc(32), "h", html.as_str()))
        .expect("markup in a field is just text");
}

#[test]
fn nested_types_under_the_board_are_refused() {
    let said = refusal(Server::default().offer(&drawn(&doc(40), "k", yrs::MapPrelim::default())));
    assert!(said.contains("nested shared type"), "{said}");
    let said = refusal(Server::default().offer(&drawn(&doc(41), "k", yrs::TextPrelim::new("x"))));
    assert!(said.contains("nested shared type"), "{said}");
}

#[test]
fn each_root_keeps_its_own_shape() {
    // A text named "board", a map named "main.py", and another root altogether.
    let d = doc(50);
    let text_board = {
        let t = d.get_or_insert_text(board::BOARD);
        let mut txn = d.transact_mut();
        t.insert(&mut txn, 0, "x");
        txn.encode_update_v1()
    };
    assert!(refusal(Server::default().offer(&text_board)).contains("is a map"));
    let d = doc(51);
    let map_main = {
        let m = d.get_or_insert_map(ROOT);
        let mut txn = d.transact_mut();
        m.insert(&mut txn, "k", element("k", ""));
        txn.encode_update_v1()
    };
    assert!(refusal(Server::default().offer(&map_main)).contains("is a text"));
    let d = doc(52);
    let other = {
        let m = d.get_or_insert_map("notes");
        let mut txn = d.transact_mut();
        m.insert(&mut txn, "k", element("k", ""));
        txn.encode_update_v1()
    };
    assert!(refusal(Server::default().offer(&other)).contains("file name \"notes\""));
}

#[test]
fn text_cannot_follow_a_board_entry_nor_an_element_follow_text() {
    let mut server = Server::default();
    server
        .offer(&drawn(&doc(60), "a", element("a", "")))
        .expect("an element");
    server.offer(&typed(&doc(61), "ab")).expect("some text");
    // A string whose origin is the board entry 60:0 would land in the map.
    let mut string = vec![1, b'x'];
    let text_on_board = one_item(
        62,
        CONTENT_STRING | HAS_ORIGIN,
        Id {
            client: 60,
            clock: 0,
        },
        &string,
    );
    let said = refusal(server.offer(&text_on_board));
    assert!(said.contains("not onto the board"), "{said}");
    // Flagged as a map entry, the same string is still refused.
    string[0] = 1;
    let keyed = one_item(
        62,
        CONTENT_STRING | HAS_ORIGIN | HAS_PARENT_SUB,
        Id {
            client: 60,
            clock: 0,
        },
        &string,
    );
    assert!(refusal(server.offer(&keyed)).contains("not onto the board"));
    // An element whose origin is the text 61:1 would land in main.py.
    let json = element("a", "");
    let mut any = vec![1, 119];
    var(json.len() as u64, &mut any);
    any.extend_from_slice(json.as_bytes());
    let element_in_text = one_item(
        63,
        CONTENT_ANY | HAS_ORIGIN,
        Id {
            client: 61,
            clock: 1,
        },
        &any,
    );
    let said = refusal(server.offer(&element_in_text));
    assert!(said.contains("not into \"main.py\""), "{said}");
    // The same element next to the board entry, flagged as a map entry, is an overwrite.
    let overwrite = one_item(
        63,
        CONTENT_ANY | HAS_ORIGIN | HAS_PARENT_SUB,
        Id {
            client: 60,
            clock: 0,
        },
        &any,
    );
    server.offer(&overwrite).expect("an overwrite of a");
    // Unflagged, it is refused: every stock client flags map entries.
    let unflagged = one_item(
        64,
        CONTENT_ANY | HAS_ORIGIN,
        Id {
            client: 63,
            clock: 0,
        },
        &any,
    );
    assert!(refusal(server.offer(&unflagged)).contains("flagged as a map entry"));
    assert_eq!(server.board().len(), 1);
}

#[test]
fn deleted_board_entries_in_a_whole_state_are_accepted_by_a_fresh_server() {
    let d = doc(70);
    for round in 0..3 {
        drawn(&d, "a", element("a", &format!(r#","x":{round}"#)));
    }
    drawn(&d, "b", element("b", ""));
    {
        let board = d.get_or_insert_map(board::BOARD);
        let mut txn = d.transact_mut();
        board.remove(&mut txn, "b");
    }
    let whole = d
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let mut server = Server::default();
    server.offer(&whole).expect("a whole state with tombstones");
    assert_eq!(server.board().len(), 1);
    // A server that learnt the places from the whole state takes a later overwrite.
    let mut reloaded = Server::default();
    reloaded.offer(&whole).expect("whole state");
    let mut learnt = Places::default();
    learnt.learn_update(&whole);
    reloaded.places = learnt;
    reloaded
        .offer(&drawn(&d, "a", element("a", r#","x":9"#)))
        .expect("an overwrite after a reload");
}

#[test]
fn every_truncation_of_a_board_update_is_refused_without_panicking() {
    let d = doc(80);
    let full = drawn(&d, "a", element("a", r#","text":"héllo""#));
    for cut in 0..full.len() {
        assert!(
            parse(&full[..cut]).is_err(),
            "a prefix of {cut} bytes was accepted"
        );
    }
    assert!(parse(&full).is_ok());
}
