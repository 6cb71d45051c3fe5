use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Ws;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, OffsetKind, Options, ReadTxn, Text, Transact, Update};

/// How the server closed a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

#[derive(Default)]
struct Shared {
    awareness: HashMap<u64, String>,
    closed: Option<Closed>,
    synced: bool,
}

/// A Yjs client over a real websocket: it answers the server's sync step 1, applies what it
/// receives, and sends its own edits as updates, as the `y-websocket` client does.
pub struct YClient {
    pub doc: Doc,
    out: mpsc::UnboundedSender<Ws>,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl YClient {
    /// Connects and starts the handshake. Errors if the HTTP upgrade is refused.
    pub async fn connect(url: &str) -> Result<YClient, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (mut sink, mut stream) = ws.split();
        let doc = Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (out, mut out_rx) = mpsc::unbounded_channel::<Ws>();
        let sv = doc.transact().state_vector();
        out.send(Ws::Binary(
            Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1().into(),
        ))
        .unwrap();

        let (task_doc, task_shared) = (doc.clone(), shared.clone());
        let task = tokio::spawn(async move {
            // Once sending fails (the server closed), keep reading: its close frame says why.
            let mut can_send = true;
            loop {
                tokio::select! {
                    outgoing = out_rx.recv(), if can_send => match outgoing {
                        Some(frame) => if sink.send(frame).await.is_err() { can_send = false },
                        None => { let _ = sink.close().await; break }
                    },
                    incoming = stream.next() => match incoming {
                        Some(Ok(Ws::Binary(bytes))) => {
                            if let Some(reply) = handle(&task_doc, &task_shared, &bytes) {
                                if can_send && sink.send(Ws::Binary(reply.into())).await.is_err() { can_send = false }
                            }
                        }
                        Some(Ok(Ws::Close(frame))) => {
                            let closed = frame.map(|f| Closed { code: u16::from(f.code), reason: f.reason.to_string() })
                                .unwrap_or(Closed { code: u16::from(CloseCode::Status), reason: String::new() });
                            task_shared.lock().unwrap().closed = Some(closed);
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            let mut s = task_shared.lock().unwrap();
                            if s.closed.is_none() { s.closed = Some(Closed { code: 1006, reason: "dropped".into() }); }
                            break;
                        }
                    }
                }
            }
        });
        Ok(YClient {
            doc,
            out,
            shared,
            task,
        })
    }

    /// The program text as this client sees it.
    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text(duet_protocol::MAIN_FILE);
        text.get_string(&self.doc.transact())
    }

    /// Every file this client's document lists, path to text (by the room's own rules).
    pub fn files(&self) -> std::collections::BTreeMap<String, String> {
        self.doc.get_or_insert_text(duet_protocol::MAIN_FILE);
        duet_core::files::contents(&self.doc).into_iter().collect()
    }

    /// Length of the text in UTF-16 units (the offsets edits take).
    pub fn len(&self) -> u32 {
        self.text().encode_utf16().count() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the server's full state has arrived (its sync step 2).
    pub fn synced(&self) -> bool {
        self.shared.lock().unwrap().synced
    }

    /// Types `chunk` at UTF-16 offset `index` and sends the update.
    pub fn insert(&self, index: u32, chunk: &str) {
        self.edit(|text, txn| text.insert(txn, index, chunk));
    }

    /// Deletes `len` UTF-16 units at `index` and sends the update.
    pub fn delete(&self, index: u32, len: u32) {
        self.edit(|text, txn| text.remove_range(txn, index, len));
    }

    /// Appends `chunk` to the file at `path` (a root text named by the path: writing into
    /// one that does not exist yet creates the file) and sends the update.
    pub fn write_file(&self, path: &str, chunk: &str) {
        self.edit_in(path, |text, txn| {
            let end = text.len(txn);
            text.insert(txn, end, chunk)
        });
    }

    fn edit(&self, change: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut)) {
        self.edit_in(duet_protocol::MAIN_FILE, change)
    }

    fn edit_in(&self, root: &str, change: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut)) {
        let text = self.doc.get_or_insert_text(root);
        let update = {
            let mut txn = self.doc.transact_mut();
            change(&text, &mut txn);
            txn.encode_update_v1()
        };
        self.send_raw(Message::Sync(SyncMessage::Update(update)).encode_v1());
    }

    /// Announces an awareness state for awareness client id `client`.
    pub fn set_awareness(&self, client: u64, clock: u32, json: &str) {
        let mut clients = HashMap::new();
        clients.insert(
            yrs::block::ClientID::new(client),
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        );
        self.send_raw(Message::Awareness(AwarenessUpdate { clients }).encode_v1());
    }

    /// The awareness states this client has seen, by awareness client id.
    pub fn awareness(&self) -> HashMap<u64, String> {
        self.shared.lock().unwrap().awareness.clone()
    }

    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(Ws::Binary(bytes.into()));
    }

    pub fn send_frame(&self, frame: Ws) {
        let _ = self.out.send(frame);
    }

    /// How the server closed this connection, once it has.
    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().unwrap().closed.clone()
    }

    /// Closes the connection as a browser tab would.
    pub async fn close(self) {
        drop(self.out);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }

    /// Drops the connection without a close frame, as a crashed client would.
    pub fn abort(self) {
        self.task.abort();
    }
}

fn handle(doc: &Doc, shared: &Mutex<Shared>, bytes: &[u8]) -> Option<Vec<u8>> {
    match Message::decode_v1(bytes).expect("the server sent a malformed message") {
        Message::Sync(SyncMessage::SyncStep1(sv)) => {
            let diff = doc.transact().encode_state_as_update_v1(&sv);
            Some(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1())
        }
        Message::Sync(SyncMessage::SyncStep2(update)) => {
            doc.transact_mut()
                .apply_update(Update::decode_v1(&update).expect("update"))
                .expect("apply");
            shared.lock().unwrap().synced = true;
            None
        }
        Message::Sync(SyncMessage::Update(update)) => {
            doc.transact_mut()
                .apply_update(Update::decode_v1(&update).expect("update"))
                .expect("apply");
            None
        }
        Message::Awareness(update) => {
            let mut s = shared.lock().unwrap();
            for (id, entry) in update.clients {
                s.awareness.insert(id.get(), entry.json.to_string());
            }
            None
        }
        _ => None,
    }
}
