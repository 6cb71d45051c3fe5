use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;

/// A listener on an interview's events socket that keeps every JSON event it receives, with
/// the moment it arrived.
pub struct EventsClient {
    events: Arc<Mutex<Vec<(std::time::Instant, serde_json::Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventsClient {
    pub async fn connect(url: &str) -> Result<EventsClient, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (_sink, mut stream) = ws.split();
        let events = Arc::new(Mutex::new(Vec::new()));
        let keep = events.clone();
        let task = tokio::spawn(async move {
            let _sink = _sink; // keep the socket open
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame {
                    let value = serde_json::from_str(&text).expect("events are JSON");
                    keep.lock()
                        .unwrap()
                        .push((std::time::Instant::now(), value));
                }
            }
        });
        Ok(EventsClient { events, task })
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

    /// The stdout text of a run seen so far.
    pub fn stdout(&self, run_id: &str) -> String {
        self.of(run_id, "run.output")
            .iter()
            .filter(|e| e["stream"] == "stdout")
            .filter_map(|e| e["data"].as_str())
            .collect()
    }
}

impl Drop for EventsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}
