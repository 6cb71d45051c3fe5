use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;

/// A listener on an interview's events socket that keeps every JSON event it receives, with
/// the moment it arrived.
pub struct EventsClient {
    events: Arc<Mutex<Vec<(std::time::Instant, serde_json::Value)>>>,
    /// Bytes of every text frame received, as they came over the wire.
    received: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl EventsClient {
    pub async fn connect(url: &str) -> Result<EventsClient, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        EventsClient::connect_with(url.into_client_request()?).await
    }

    /// Connects with a request of one's own (a signed-in person's cookie and origin, say).
    pub async fn connect_with(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<EventsClient, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let (_sink, mut stream) = ws.split();
        let events = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (keep, counted) = (events.clone(), received.clone());
        let task = tokio::spawn(async move {
            let _sink = _sink; // keep the socket open
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame {
                    counted.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
                    let value = serde_json::from_str(&text).expect("events are JSON");
                    keep.lock()
                        .unwrap()
                        .push((std::time::Instant::now(), value));
                }
            }
        });
        Ok(EventsClient {
            events,
            received,
            task,
        })
    }

    /// Bytes of text frames received so far.
    pub fn received_bytes(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the server closed the socket (or it broke).
    pub fn closed(&self) -> bool {
        self.task.is_finished()
    }

    /// Every event so far.
    pub fn all(&self) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every event so far with its arrival time.
    pub fn timed(&self) -> Vec<(std::time::Instant, serde_json::Value)> {
        self.events.lock().unwrap().clone()
    }

    /// Events of one run, of one type.
    pub fn of(&self, run_id: &str, kind: &str) -> Vec<serde_json::Value> {
        self.all()
            .into_iter()
            .filter(|e| e["run_id"] == run_id && e["type"] == kind)
            .collect()
    }

    /// The bytes a run wrote on `stream` so far, as the events carried them (`data` as text,
    /// `base64` as bytes).
    pub fn bytes(&self, run_id: &str, stream: &str) -> Vec<u8> {
        use base64::Engine;
        let mut bytes = Vec::new();
        for e in self.of(run_id, "run.output") {
            if e["stream"] != stream {
                continue;
            }
            match (e["data"].as_str(), e["base64"].as_str()) {
                (Some(text), None) => bytes.extend_from_slice(text.as_bytes()),
                (None, Some(b64)) => bytes.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64 output"),
                ),
                _ => panic!("a run.output has exactly one of data and base64: {e}"),
            }
        }
        bytes
    }

    /// The stdout text of a run seen so far (decoded as a page decodes it).
    pub fn stdout(&self, run_id: &str) -> String {
        String::from_utf8_lossy(&self.bytes(run_id, "stdout")).into_owned()
    }
}

impl Drop for EventsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}
