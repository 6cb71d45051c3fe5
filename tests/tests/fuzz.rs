//! Differential fuzzing of the document path: a hostile candidate sends structured adversarial
//! Yjs messages (nested types, self-references, missing dependencies, non-canonical and
//! overflowing varints, foreign client ids, phantom deletions, mutated and random bytes,
//! awareness junk) while the interviewer types. After every batch the harness checks that the
//! server answers, that a fresh yrs client, the interviewer's live copy and the stored log all
//! hold the same text, and, every few batches and at the end, that the stock JavaScript client
//! (yjs + y-websocket, `tests/js/sync-text.mjs`) syncing afresh gets exactly that text.
//!
//! CI runs a bounded number of messages. A longer run (documented in the README):
//!   DUET_FUZZ_ITERS=20000 DUET_FUZZ_SEED=7 cargo test -p duet-tests --test fuzz -- --nocapture
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::MAIN_FILE;
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use yrs::block::ClientID;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{
    Array, ArrayPrelim, Doc, GetString, Map, MapPrelim, OffsetKind, Options, ReadTxn, Text,
    Transact, WriteTxn, XmlElementPrelim, XmlFragment,
};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sync_update(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

/// How a hand-built varint is spelled.
#[derive(Clone, Copy)]
enum Spelling {
    Canonical,
    /// With a redundant trailing zero group: the same number, not in its shortest form.
    Padded,
    /// Plus 2^32 in a fifth byte: yrs used to wrap it back, yjs does not.
    Overflowing,
}

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn var(&mut self, mut v: u64, spelling: Spelling) {
        if let Spelling::Overflowing = spelling {
            v += 1 << 32;
        }
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                if let Spelling::Padded = spelling {
                    self.0.push(byte | 0x80);
                    self.0.push(0);
                } else {
                    self.0.push(byte);
                }
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn c(&mut self, v: u64) {
        self.var(v, Spelling::Canonical);
    }
    fn string(&mut self, s: &str) {
        self.c(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// One insert at the start of `main.py` by `client` at `clock`, optionally with an origin, with
/// one of its numbers spelled as `spelling`.
fn hand_built_insert(
    client: u64,
    clock: u32,
    origin: Option<(u64, u32)>,
    text: &str,
    spelling: Spelling,
    which: usize,
) -> Vec<u8> {
    let s = |i: usize| {
        if i == which {
            spelling
        } else {
            Spelling::Canonical
        }
    };
    let mut e = Enc::default();
    e.c(1);
    e.c(1);
    e.var(client, s(0));
    e.var(u64::from(clock), s(1));
    match origin {
        Some((oc, ok)) => {
            e.0.push(0x84);
            e.var(oc, s(2));
            e.var(u64::from(ok), s(3));
        }
        None => {
            e.0.push(0x04);
            e.c(1);
            e.string(MAIN_FILE);
        }
    }
    e.string(text);
    e.c(0);
    e.0
}

fn nested(rng: &mut StdRng) -> Vec<u8> {
    let doc = Doc::with_client_id(rng.gen_range(1..1 << 30));
    let depth = rng.gen_range(1..300);
    let mut txn = doc.transact_mut();
    match rng.gen_range(0..3) {
        0 => {
            let root = txn.get_or_insert_map(if rng.gen() { MAIN_FILE } else { "m" });
            let mut map = root.insert(&mut txn, "k", MapPrelim::default());
            for d in 0..depth {
                map = map.insert(&mut txn, d.to_string(), MapPrelim::default());
            }
        }
        1 => {
            let root = txn.get_or_insert_array("a");
            let mut array = root.push_back(&mut txn, ArrayPrelim::default());
            for _ in 0..depth {
                array = array.push_back(&mut txn, ArrayPrelim::default());
            }
        }
        _ => {
            let root = txn.get_or_insert_xml_fragment("x");
            let mut el = root.push_back(&mut txn, XmlElementPrelim::empty("div"));
            for _ in 0..depth {
                el = el.push_back(&mut txn, XmlElementPrelim::empty("p"));
            }
        }
    }
    txn.encode_update_v1()
}

fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..4) {
            0 => bytes[at] ^= 1 << rng.gen_range(0..8),
            1 => bytes[at] = rng.gen(),
            2 => bytes.insert(at, rng.gen()),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

/// The candidate's own editor: a yrs document whose updates are sent in order (honest), out of
/// order (missing dependencies), mutated, or twice.
struct Attacker {
    doc: Doc,
    pending: Vec<Vec<u8>>,
}

impl Attacker {
    fn new(rng: &mut StdRng) -> Attacker {
        let options = Options {
            client_id: ClientID::new(rng.gen_range(1..1 << 31)),
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        };
        Attacker {
            doc: Doc::with_options(options),
            pending: Vec::new(),
        }
    }
    fn type_something(&mut self, rng: &mut StdRng) -> Vec<u8> {
        let text = self.doc.get_or_insert_text(MAIN_FILE);
        let mut txn = self.doc.transact_mut();
        // UTF-16 offsets at character boundaries, as an editor gives them.
        let chars: Vec<u32> = text
            .get_string(&txn)
            .chars()
            .map(|c| c.len_utf16() as u32)
            .collect();
        let offset = |k: usize| chars[..k].iter().sum::<u32>();
        if chars.len() > 4 && rng.gen_bool(0.3) {
            let k = rng.gen_range(0..chars.len());
            text.remove_range(&mut txn, offset(k), chars[k]);
        } else {
            let k = rng.gen_range(0..=chars.len());
            text.insert(
                &mut txn,
                offset(k),
                ["a", "b", "\n", "é", "🐍", "def "][rng.gen_range(0..6)],
            );
        }
        txn.encode_update_v1()
    }
}

/// What a client may legitimately say, or an attack, chosen at random.
fn next_message(
    rng: &mut StdRng,
    attacker: &mut Attacker,
    interviewer_client: u64,
    interviewer_clock: u32,
) -> (&'static str, Vec<u8>) {
    match rng.gen_range(0..13) {
        0..=2 => ("honest edit", sync_update(attacker.type_something(rng))),
        3 => {
            // Hold an update back and send the next: it depends on the one held back.
            let held = attacker.type_something(rng);
            attacker.pending.push(held);
            (
                "missing dependency",
                sync_update(attacker.type_something(rng)),
            )
        }
        4 => ("nested types", sync_update(nested(rng))),
        5 => {
            let client = rng.gen_range(1..1 << 30);
            let clock = rng.gen_range(0..3);
            (
                "self or forward origin",
                sync_update(hand_built_insert(
                    client,
                    clock,
                    Some((client, clock + rng.gen_range(0..3))),
                    "x",
                    Spelling::Canonical,
                    9,
                )),
            )
        }
        6 => {
            let spelling = if rng.gen() {
                Spelling::Padded
            } else {
                Spelling::Overflowing
            };
            // The clock (u32) for overflow; the client id may well exceed 32 bits.
            let which = if let Spelling::Overflowing = spelling {
                1
            } else {
                rng.gen_range(0..2)
            };
            (
                "non-canonical varint",
                sync_update(hand_built_insert(
                    rng.gen_range(1..1 << 30),
                    0,
                    None,
                    "evil()",
                    spelling,
                    which,
                )),
            )
        }
        7 => (
            "foreign client id",
            sync_update(hand_built_insert(
                interviewer_client,
                interviewer_clock,
                None,
                "import os\n",
                Spelling::Canonical,
                9,
            )),
        ),
        8 => {
            let mut e = Enc::default();
            e.c(0);
            e.c(1);
            e.c(if rng.gen() {
                interviewer_client
            } else {
                rng.gen_range(1..1 << 30)
            });
            e.c(1);
            e.c(rng.gen_range(0..u64::from(interviewer_clock) + 5));
            e.c(rng.gen_range(1..5));
            ("deletion (real or phantom)", sync_update(e.0))
        }
        9 => {
            let update = attacker.type_something(rng);
            ("mutated update", sync_update(mutate(rng, update)))
        }
        10 => {
            let len = rng.gen_range(0..40);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(first) = bytes.first_mut() {
                *first %= 4;
            }
            ("random bytes", bytes)
        }
        11 => {
            let mut payload = Enc::default();
            let n = rng.gen_range(0..3);
            payload.c(n);
            for _ in 0..n {
                payload.c(rng.gen_range(0..1 << 31));
                payload.c(rng.gen_range(0..=u64::from(u32::MAX)));
                payload.string(["{}", "null", "{nope", "[]"][rng.gen_range(0..4)]);
            }
            if rng.gen_bool(0.3) {
                payload.0[0] = 0x7f; // a count the message does not hold
            }
            let mut message = Enc::default();
            message.c(1);
            message.c(payload.0.len() as u64);
            message.0.extend(payload.0);
            ("awareness junk", message.0)
        }
        _ => {
            let mut sv = Enc::default();
            let n = rng.gen_range(0..4);
            sv.c(n);
            for _ in 0..n {
                sv.c(rng.gen_range(0..1 << 31));
                sv.c(rng.gen_range(0..1 << 20));
            }
            let mut message = Enc::default();
            message.c(0);
            message.c(0);
            message.c(sv.0.len() as u64);
            message.0.extend(sv.0);
            ("sync step 1", message.0)
        }
    }
}

/// What a stock yjs client syncing afresh reads.
fn stock_client_text(server: &TestServer, id: &str, token: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/sync-text.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(format!("ws://{}/yjs", server.addr))
        .arg(id)
        .arg(token)
        .output()
        .unwrap_or_else(|e| panic!("node is needed for the stock-client check (scripts/test installs the packages): {e}"));
    assert!(
        out.status.success(),
        "sync-text.mjs failed (run `cd tests/js && npm ci`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sync-text.mjs prints a JSON string")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_updates_never_crash_the_server_or_split_what_people_see() {
    let iterations = env_u64("DUET_FUZZ_ITERS", 600);
    let seed = env_u64("DUET_FUZZ_SEED", 20261122);
    let every = env_u64("DUET_FUZZ_CHECK_EVERY", 25);
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    let created = server.create_interview("Ada").await;
    let interviewer = YClient::connect(&server.yjs_url(&created.id, &created.tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || interviewer.synced()).await);
    interviewer.insert(0, "def solve():\n    return 42\n");
    let candidate_url = server.yjs_url(&created.id, &created.tokens.candidate);
    let mut candidate = YClient::connect(&candidate_url).await.unwrap();
    let mut attacker = Attacker::new(&mut rng);
    let mut kinds: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();

    for i in 0..iterations {
        if candidate.closed().is_some() {
            // Closed for what it sent: reconnect with a fresh editor, as a reloaded page would.
            candidate = YClient::connect(&candidate_url).await.unwrap();
            attacker = Attacker::new(&mut rng);
        }
        let interviewer_client = interviewer.doc.client_id().get();
        let interviewer_clock = interviewer
            .doc
            .transact()
            .state_vector()
            .get(&interviewer.doc.client_id());
        let (kind, message) = next_message(
            &mut rng,
            &mut attacker,
            interviewer_client,
            interviewer_clock,
        );
        candidate.send_raw(message);
        if rng.gen_bool(0.2) {
            // At a character boundary, as an editor types.
            let text = interviewer.text();
            let k = rng.gen_range(0..=text.chars().count());
            let at: u32 = text.chars().take(k).map(|c| c.len_utf16() as u32).sum();
            interviewer.insert(at, "i");
        }
        if i % every == every - 1 || i + 1 == iterations {
            if every == 1 {
                println!("{i}: {kind}");
            }
            check(
                &server,
                &created,
                &interviewer,
                i + 1 == iterations || i % 150 == 149,
            )
            .await;
        }
        let closed = eventually(std::time::Duration::from_millis(2), || {
            candidate.closed().is_some()
        })
        .await;
        let entry = kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += u32::from(closed);
    }
    for (kind, (sent, closed)) in &kinds {
        println!("{kind:>28}: {sent:>5} sent, {closed:>5} closed the sender");
    }
}

/// The server answers; a fresh client, the interviewer's live copy and the log replay agree;
/// with `stock`, the stock JavaScript client agrees too.
async fn check(
    server: &TestServer,
    created: &duet_protocol::CreatedInterview,
    interviewer: &YClient,
    stock: bool,
) {
    let health = reqwest::get(server.http("/healthz"))
        .await
        .expect("the server answers");
    assert_eq!(health.status(), 200);
    let fresh = YClient::connect(&server.yjs_url(&created.id, &created.tokens.reviewer))
        .await
        .unwrap();
    // A record is stored before it is forwarded, so the log may briefly be ahead of the
    // clients: wait until all three agree.
    let replay = || {
        duet_core::rebuild(None, server.state.store.read_log(&created.id, 0).unwrap())
            .unwrap()
            .text()
    };
    let agree = eventually(PATIENCE, || {
        fresh.synced() && fresh.text() == interviewer.text() && replay() == fresh.text()
    })
    .await;
    assert!(
        agree,
        "fresh client {:?}\ninterviewer {:?}\nlog replay {:?}",
        fresh.text(),
        interviewer.text(),
        replay()
    );
    let text = fresh.text();
    if stock {
        // A message of the candidate's still in flight may land while node starts: compare
        // with the state once everything has settled again, a few times, before calling it a
        // disagreement.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let stock = stock_client_text(server, created.id.as_str(), &created.tokens.reviewer);
            let settled = eventually(PATIENCE, || {
                fresh.text() == interviewer.text() && replay() == fresh.text()
            })
            .await;
            assert!(settled);
            if stock == fresh.text() {
                seen.clear();
                break;
            }
            seen.push((stock, fresh.text()));
        }
        assert!(
            seen.is_empty(),
            "the stock yjs client disagrees with the server: {seen:?}"
        );
    }
    let _ = text;
    fresh.close().await;
}
