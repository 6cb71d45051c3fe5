//! Counters and gauges for `GET /metrics`, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the persist-latency histogram, in seconds.
const PERSIST_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    pub rooms_open: AtomicI64,
    pub connections: AtomicI64,
    pub updates_persisted: AtomicU64,
    pub events_persisted: AtomicU64,
    pub room_load_failures: AtomicU64,
    pub connections_closed_by_server: AtomicU64,
    /// Sync and awareness requests answered by an answer already queued (see `ReplySlots`).
    pub replies_coalesced: std::sync::Arc<AtomicU64>,
    persist_buckets: [AtomicU64; PERSIST_BUCKETS.len()],
    persist_count: AtomicU64,
    persist_sum_micros: AtomicU64,
}

impl Metrics {
    /// Records how long one record took from hand-off to the store until it was durable.
    pub fn observe_persist(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in PERSIST_BUCKETS.iter().zip(&self.persist_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.persist_count.fetch_add(1, Relaxed);
        self.persist_sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "duet_rooms_open",
            "Interview rooms loaded in memory.",
            "gauge",
            self.rooms_open.load(Relaxed).to_string(),
        );
        gauge(
            "duet_connections",
            "Open Yjs websocket connections.",
            "gauge",
            self.connections.load(Relaxed).to_string(),
        );
        gauge(
            "duet_updates_persisted_total",
            "Document updates stored in the edit log.",
            "counter",
            self.updates_persisted.load(Relaxed).to_string(),
        );
        gauge(
            "duet_events_persisted_total",
            "Room events (edits, joins, leaves) stored.",
            "counter",
            self.events_persisted.load(Relaxed).to_string(),
        );
        gauge(
            "duet_room_load_failures_total",
            "Rooms whose stored state failed to load.",
            "counter",
            self.room_load_failures.load(Relaxed).to_string(),
        );
        gauge(
            "duet_connections_closed_by_server_total",
            "Connections the server closed (bad input, floods, slow clients).",
            "counter",
            self.connections_closed_by_server.load(Relaxed).to_string(),
        );
        gauge(
            "duet_replies_coalesced_total",
            "Sync and awareness requests folded into an answer already queued.",
            "counter",
            self.replies_coalesced.load(Relaxed).to_string(),
        );
        let name = "duet_persist_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Time from handing a room event to the store until it is durable.\n# TYPE {name} histogram");
        for (bound, bucket) in PERSIST_BUCKETS.iter().zip(&self.persist_buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.persist_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.persist_sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// The sandbox's figures, from its health, in the same format: per engine (label `engine`, its
/// address) and in total.
pub fn render_sandbox(health: &duet_sandbox::Health) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, values: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in values {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_engine = |f: &dyn Fn(&duet_sandbox::EngineStatus) -> String| {
        health
            .engines
            .iter()
            .map(|e| (format!("{{engine=\"{}\"}}", label(&e.engine)), f(e)))
            .collect::<Vec<_>>()
    };
    family(
        "duet_sandbox_queued",
        "Runs waiting for a slot on any engine.",
        "gauge",
        vec![(String::new(), health.queued.to_string())],
    );
    family(
        "duet_sandbox_waited_total",
        "Runs that waited in the queue for a slot.",
        "counter",
        vec![(String::new(), health.waited.to_string())],
    );
    family(
        "duet_sandbox_wait_seconds_total",
        "The time those runs waited, in all.",
        "counter",
        vec![(
            String::new(),
            format!("{}", health.waited_ms as f64 / 1000.0),
        )],
    );
    family(
        "duet_sandbox_engine_up",
        "1 when the engine answers and has the image, else 0 (it takes no runs then).",
        "gauge",
        per_engine(&|e| u8::from(e.status == "ok").to_string()),
    );
    family(
        "duet_sandbox_running",
        "Runs in progress on the engine.",
        "gauge",
        per_engine(&|e| e.running.to_string()),
    );
    family(
        "duet_sandbox_slots",
        "Runs the engine may hold at once.",
        "gauge",
        per_engine(&|e| e.slots.to_string()),
    );
    family(
        "duet_sandbox_warm",
        "Warm containers waiting on the engine.",
        "gauge",
        per_engine(&|e| e.warm.to_string()),
    );
    family(
        "duet_sandbox_pool_target",
        "Warm containers the engine's pool aims at, from the rate of runs.",
        "gauge",
        per_engine(&|e| e.pool_target.to_string()),
    );
    family(
        "duet_sandbox_runs_total",
        "Runs given a slot on the engine.",
        "counter",
        per_engine(&|e| e.runs.to_string()),
    );
    family(
        "duet_sandbox_cold_starts_total",
        "Runs that found no warm container and started one on demand.",
        "counter",
        per_engine(&|e| e.cold_starts.to_string()),
    );
    out
}

/// A label value with `\\`, `"` and line breaks escaped, as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_figures_are_rendered_per_engine() {
        let engine = |name: &str, status, cold| duet_sandbox::EngineStatus {
            engine: name.into(),
            status,
            detail: None,
            running: 1,
            slots: 2,
            warm: 3,
            pool_target: 4,
            runs: 10,
            cold_starts: cold,
        };
        let health = duet_sandbox::Health {
            status: "degraded",
            detail: None,
            running: 2,
            queued: 5,
            warm: 6,
            cold_starts: 3,
            waited: 7,
            waited_ms: 1500,
            environments: Vec::new(),
            engines: vec![
                engine("unix:///var/run/docker.sock", "ok", 1),
                engine("tcp://b\"x:2376", "degraded", 2),
            ],
        };
        let text = render_sandbox(&health);
        for line in [
            "duet_sandbox_queued 5",
            "duet_sandbox_waited_total 7",
            "duet_sandbox_wait_seconds_total 1.5",
            "duet_sandbox_engine_up{engine=\"unix:///var/run/docker.sock\"} 1",
            "duet_sandbox_engine_up{engine=\"tcp://b\\\"x:2376\"} 0",
            "duet_sandbox_cold_starts_total{engine=\"unix:///var/run/docker.sock\"} 1",
            "duet_sandbox_pool_target{engine=\"unix:///var/run/docker.sock\"} 4",
            "# TYPE duet_sandbox_runs_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
