//! One y-websocket client: connect and sync, make single-character edits, read what others send.

use crate::track::{key_of, Key, RoomTrack, Timeline};
use anyhow::{bail, Context};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::sync::protocol::MessageReader;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Text, TextRef, Transact, Update};

pub const MAIN_FILE: &str = "main.py";
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Sink = SplitSink<Socket, Ws>;
pub type Stream = SplitStream<Socket>;
/// The sending half, shared by a client's editing loop and its reader (for sync replies).
pub type SharedSink = Arc<tokio::sync::Mutex<Sink>>;

/// Bytes read from the socket at once.
const READ_BUFFER: usize = 8 * 1024;
/// Messages read during the handshake before giving up on seeing the server's sync step 2.
const HANDSHAKE_MESSAGES: usize = 10_000;

/// A websocket close code and reason, as the server sent them.
pub type Closed = (u16, String);

/// The document side of a client.
pub struct Editor {
    pub doc: Doc,
    text: TextRef,
    rng: StdRng,
    cursor: u32,
    /// Keys of this client's deletes not yet echoed back (servers that echo send them back).
    pub own_deletes: Arc<Mutex<HashSet<Key>>>,
}

/// Own deletes remembered for echo detection, at most.
const MAX_OWN_DELETES: usize = 100_000;

/// An edit ready to send; `key` identifies it to receivers (inserts only).
pub struct Edit {
    pub message: Vec<u8>,
    pub key: Option<Key>,
}

impl Editor {
    fn new() -> Editor {
        // A 32-bit client id, as stock yjs makes them: yrs 0.28 picks 53-bit ones, which older
        // yrs (y-sweet 0.9.1's) reads back truncated to 32 bits, so its echoes and forwards would
        // carry ids no client ever wrote.
        let mut rng = StdRng::from_entropy();
        let doc = Doc::with_client_id(u64::from(rng.gen_range(1..=u32::MAX)));
        let text = doc.get_or_insert_text(MAIN_FILE);
        Editor {
            doc,
            text,
            rng,
            cursor: 0,
            own_deletes: Arc::default(),
        }
    }

    /// Types one character at the cursor (which sometimes jumps), or sometimes deletes one.
    pub fn edit(&mut self, delete_ratio: f64, jump_ratio: f64) -> Edit {
        let mut txn = self.doc.transact_mut();
        let len = self.text.len(&txn);
        if self.cursor > len || self.rng.gen_bool(jump_ratio.clamp(0.0, 1.0)) {
            self.cursor = self.rng.gen_range(0..=len);
        }
        if self.cursor > 0 && self.rng.gen_bool(delete_ratio.clamp(0.0, 1.0)) {
            self.text.remove_range(&mut txn, self.cursor - 1, 1);
            self.cursor -= 1;
        } else {
            let ch = char::from(self.rng.gen_range(b'a'..=b'z'));
            self.text
                .insert(&mut txn, self.cursor, ch.encode_utf8(&mut [0; 4]));
            self.cursor += 1;
        }
        let update = txn.encode_update_v1();
        drop(txn);
        let key = Update::decode_v1(&update).ok().as_ref().and_then(key_of);
        if let Some(key @ (true, _, _)) = key {
            let mut own = self.own_deletes.lock().unwrap_or_else(|p| p.into_inner());
            if own.len() < MAX_OWN_DELETES {
                own.insert(key);
            }
        }
        Edit {
            message: Message::Sync(SyncMessage::Update(update)).encode_v1(),
            key,
        }
    }
}

/// A connected, synced client.
pub struct Session {
    pub editor: Editor,
    pub sink: Sink,
    pub stream: Stream,
}

/// The server closed the connection before the sync handshake finished.
#[derive(Debug)]
pub struct HandshakeClosed {
    pub code: u16,
    pub reason: String,
}

impl HandshakeClosed {
    /// 1001 ("going away"): the server asks the client to connect again, as Duet does when
    /// the room is held by another node (several nodes); a y-websocket client reconnects.
    pub fn asks_to_reconnect(&self) -> bool {
        self.code == 1001
    }
}

impl std::fmt::Display for HandshakeClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "closed during the handshake: {} {}",
            self.code, self.reason
        )
    }
}

impl std::error::Error for HandshakeClosed {}

/// Connects to `url` and runs the sync handshake until the server's sync step 2 arrived.
pub async fn connect(url: &str) -> anyhow::Result<Session> {
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read, which
    // for small Yjs messages costs more than everything else the client does.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("connecting to {}", url.split('?').next().unwrap_or(url)))?;
    let (mut sink, mut stream) = socket.split();
    let editor = Editor::new();
    let sv = editor.doc.transact().state_vector();
    sink.send(Ws::Binary(
        Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1().into(),
    ))
    .await?;
    for _ in 0..HANDSHAKE_MESSAGES {
        let bytes = match stream.next().await {
            Some(Ok(Ws::Binary(bytes))) => bytes,
            Some(Ok(Ws::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                return Err(HandshakeClosed { code, reason }.into());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("handshake: {e}"),
            None => bail!("handshake: connection ended"),
        };
        let mut synced = false;
        for reply in handle(&editor.doc, true, &bytes, |_| {}, &mut |step2| {
            synced |= step2
        })? {
            sink.send(Ws::Binary(reply.into())).await?;
        }
        if synced {
            return Ok(Session {
                editor,
                sink,
                stream,
            });
        }
    }
    bail!("no sync step 2 after {HANDSHAKE_MESSAGES} messages")
}

/// Applies one websocket message (possibly several Yjs messages) to `doc`. Calls `on_update` with
/// each broadcast update, `on_step2` for each sync step 2, and returns the replies to send.
fn handle(
    doc: &Doc,
    apply: bool,
    bytes: &[u8],
    mut on_update: impl FnMut(&Update),
    on_step2: &mut impl FnMut(bool),
) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut replies = Vec::new();
    let mut decoder = DecoderV1::from(bytes);
    for message in MessageReader::new(&mut decoder) {
        match message.context("undecodable message from the server")? {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                replies.push(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1());
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => {
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&update)?)?;
                on_step2(true);
            }
            Message::Sync(SyncMessage::Update(update)) => {
                let update = Update::decode_v1(&update)?;
                on_update(&update);
                if apply {
                    doc.transact_mut().apply_update(update)?;
                }
            }
            _ => {} // awareness, auth, custom: not part of the measurement
        }
    }
    Ok(replies)
}

/// What a client's reader saw.
#[derive(Default)]
pub struct ReadOutcome {
    /// Fan-out latencies of edits sent inside the window, in nanoseconds.
    pub samples: Vec<u64>,
    /// Updates received inside the window.
    pub delivered: u64,
    pub closed: Option<Closed>,
    pub error: Option<String>,
}

/// Reads until `timeline.drain_to`, timing every tracked edit that arrives.
pub async fn read_loop(
    mut stream: Stream,
    editor: (Doc, Arc<Mutex<HashSet<Key>>>),
    out: SharedSink,
    room: Arc<RoomTrack>,
    timeline: Timeline,
    apply: bool,
) -> ReadOutcome {
    let (doc, own_deletes) = editor;
    let me = doc.client_id();
    let mut outcome = ReadOutcome::default();
    loop {
        let next = match tokio::time::timeout_at(timeline.drain_to.into(), stream.next()).await {
            Ok(next) => next,
            Err(_) => break,
        };
        let bytes = match next {
            Some(Ok(Ws::Binary(bytes))) => bytes,
            Some(Ok(Ws::Close(frame))) => {
                outcome.closed = Some(frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                }));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                outcome.error = Some(e.to_string());
                break;
            }
            None => {
                outcome.error = Some("connection ended without a close frame".into());
                break;
            }
        };
        let now = Instant::now();
        let in_window = timeline.measuring(now);
        let on_update = |update: &Update| {
            let key = key_of(update);
            let echo = match key {
                Some((false, client, _)) => client == me,
                Some(key @ (true, _, _)) => own_deletes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key),
                None => false,
            };
            if echo {
                return; // servers that send an edit back to its author: not a delivery
            }
            outcome.delivered += u64::from(in_window);
            if let Some(sent) = key.and_then(|key| room.received(key)) {
                if timeline.measuring(sent) {
                    outcome
                        .samples
                        .push(now.duration_since(sent).as_nanos() as u64);
                }
            }
        };
        match handle(&doc, apply, &bytes, on_update, &mut |_| {}) {
            Ok(replies) => {
                for reply in replies {
                    let _ = out.lock().await.send(Ws::Binary(reply.into())).await;
                }
            }
            Err(e) => {
                outcome.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    outcome
}
