//! Turning what the clients saw into figures: percentiles, rates, and the two output forms.

use crate::cli::Args;
use crate::load::{count_closes, ClientResult};
use crate::proc::{cpu_percent, machine_percent, Machine, Sample};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Latency percentiles in milliseconds, from an exact sort.
#[derive(Debug, Default, Clone)]
pub struct Latency {
    pub samples: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn of(mut nanos: Vec<u64>) -> Latency {
        if nanos.is_empty() {
            return Latency::default();
        }
        nanos.sort_unstable();
        let n = nanos.len();
        let at = |p: f64| nanos[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1e6;
        let mean = nanos.iter().map(|&v| v as f64).sum::<f64>() / n as f64 / 1e6;
        Latency {
            samples: n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
            mean,
        }
    }

    fn json(&self) -> Value {
        json!({"samples": self.samples, "p50": self.p50, "p90": self.p90, "p99": self.p99, "p999": self.p999, "max": self.max, "mean": self.mean})
    }
}

/// Server figures over the run.
#[derive(Debug, Default, Clone)]
pub struct Server {
    pub cpu_percent: Option<f64>,
    pub rss_kb_before: Option<u64>,
    pub rss_kb_start: Option<u64>,
    pub rss_kb_end: Option<u64>,
    pub rss_kb_after: Option<u64>,
}

impl Server {
    pub fn from_samples(s: [Option<Sample>; 4]) -> Server {
        let cpu = match (&s[1], &s[2]) {
            (Some(a), Some(b)) => Some(cpu_percent(a, b)),
            _ => None,
        };
        let rss = |i: usize| s[i].map(|x| x.rss_kb);
        Server {
            cpu_percent: cpu,
            rss_kb_before: rss(0),
            rss_kb_start: rss(1),
            rss_kb_end: rss(2),
            rss_kb_after: rss(3),
        }
    }

    fn json(&self) -> Value {
        json!({"cpu_percent": self.cpu_percent, "rss_kb_before": self.rss_kb_before, "rss_kb_start": self.rss_kb_start,
               "rss_kb_end": self.rss_kb_end, "rss_kb_after": self.rss_kb_after})
    }
}

pub struct LoadReport {
    pub label: String,
    pub rooms: usize,
    pub clients: usize,
    pub rate: f64,
    pub duration: f64,
    pub connected: usize,
    pub connect_errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub read_errors: BTreeMap<String, u64>,
    pub sent: u64,
    pub sent_total: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub latency: Latency,
    pub server: Server,
    pub loadgen_cpu_percent: Option<f64>,
    /// Whole machine: busy CPU (200 = both cores) and hypervisor steal, over the window.
    pub machine_cpu_percent: Option<f64>,
    pub steal_percent: Option<f64>,
    /// Mixed load only (`--run-every`).
    pub runs: Option<RunsReport>,
}

/// Runs of a mixed load, all participants together.
#[derive(Debug, Default)]
pub struct RunsReport {
    pub started: u64,
    pub no_output: u64,
    pub refused: BTreeMap<String, u64>,
    pub first_byte: Latency,
    pub events_closed: BTreeMap<String, u64>,
    pub events_errors: BTreeMap<String, u64>,
}

impl RunsReport {
    fn of(results: &mut [ClientResult]) -> Option<RunsReport> {
        let mut report = RunsReport::default();
        let mut nanos = Vec::new();
        let mut any = false;
        let mut closes = Vec::new();
        let mut errors = Vec::new();
        for r in results.iter_mut() {
            let Some(runs) = r.runs.take() else { continue };
            any = true;
            report.started += runs.started;
            report.no_output += runs.no_output;
            for (k, n) in runs.refused {
                *report.refused.entry(k).or_insert(0) += n;
            }
            nanos.extend(runs.first_byte);
            closes.extend(runs.events_closed);
            errors.extend(runs.events_error);
        }
        report.first_byte = Latency::of(nanos);
        report.events_closed = count_closes(closes.iter());
        report.events_errors = tally(errors.iter());
        any.then_some(report)
    }

    fn json(&self) -> Value {
        json!({"started": self.started, "no_output": self.no_output, "refused": self.refused,
               "first_byte_ms": self.first_byte.json(), "events_closed": self.events_closed,
               "events_errors": self.events_errors})
    }
}

fn tally<'a>(items: impl Iterator<Item = &'a String>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        let short: String = item.chars().take(160).collect();
        *counts.entry(short).or_insert(0) += 1;
    }
    counts
}

impl LoadReport {
    pub fn build(
        args: &Args,
        mut results: Vec<ClientResult>,
        undelivered: u64,
        server: [Option<Sample>; 4],
        own: [Option<Sample>; 2],
        machine: [Option<Machine>; 2],
    ) -> LoadReport {
        let runs = RunsReport::of(&mut results);
        let connected = results.iter().filter(|r| r.connected).count();
        let connect_errors = tally(results.iter().filter_map(|r| r.connect_error.as_ref()));
        let closes = count_closes(results.iter().filter_map(|r| r.read.closed.as_ref()));
        let read_errors = tally(results.iter().filter_map(|r| r.read.error.as_ref()));
        let sent = results.iter().map(|r| r.sent).sum();
        let sent_total = results.iter().map(|r| r.sent_total).sum();
        let delivered = results.iter().map(|r| r.read.delivered).sum();
        let mut nanos = Vec::new();
        for r in results {
            nanos.extend(r.read.samples);
        }
        let loadgen_cpu_percent = match &own {
            [Some(a), Some(b)] => Some(cpu_percent(a, b)),
            _ => None,
        };
        let machine = match &machine {
            [Some(a), Some(b)] => Some(machine_percent(a, b)),
            _ => None,
        };
        LoadReport {
            machine_cpu_percent: machine.map(|m| m.0),
            steal_percent: machine.map(|m| m.1),
            label: args.label.clone(),
            rooms: args.rooms,
            clients: args.clients,
            rate: args.rate,
            duration: args.duration,
            connected,
            connect_errors,
            closes,
            read_errors,
            sent,
            sent_total,
            delivered,
            undelivered,
            latency: Latency::of(nanos),
            server: Server::from_samples(server),
            loadgen_cpu_percent,
            runs,
        }
    }
}

pub struct IdleReport {
    pub label: String,
    pub rooms: usize,
    pub connected: usize,
    pub errors: BTreeMap<String, u64>,
    pub rss_kb_before: Option<u64>,
    pub rss_kb_after: Option<u64>,
    pub kb_per_room: Option<f64>,
    pub server_cpu_percent: Option<f64>,
}

pub enum Report {
    Load(Box<LoadReport>),
    Idle(IdleReport),
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

impl Report {
    pub fn json(&self) -> String {
        let value = match self {
            Report::Load(r) => json!({
                "mode": "load", "label": r.label, "rooms": r.rooms, "clients": r.clients, "rate": r.rate,
                "duration": r.duration, "connected": r.connected, "connect_errors": r.connect_errors,
                "closed_by_server": r.closes, "read_errors": r.read_errors,
                "sent": r.sent, "sent_per_sec": r.sent as f64 / r.duration, "sent_total": r.sent_total,
                "delivered": r.delivered, "delivered_per_sec": r.delivered as f64 / r.duration,
                "undelivered": r.undelivered, "latency_ms": r.latency.json(), "server": r.server.json(),
                "loadgen_cpu_percent": r.loadgen_cpu_percent, "machine_cpu_percent": r.machine_cpu_percent,
                "steal_percent": r.steal_percent,
                "runs": r.runs.as_ref().map(RunsReport::json),
            }),
            Report::Idle(r) => json!({
                "mode": "idle", "label": r.label, "rooms": r.rooms, "connected": r.connected, "errors": r.errors,
                "rss_kb_before": r.rss_kb_before, "rss_kb_after": r.rss_kb_after, "kb_per_room": r.kb_per_room,
                "server": {"cpu_percent": r.server_cpu_percent, "rss_kb_before": r.rss_kb_before, "rss_kb_end": r.rss_kb_after},
            }),
        };
        value.to_string()
    }

    pub fn human(&self) -> String {
        match self {
            Report::Load(r) => {
                let l = &r.latency;
                let mut out = format!(
                    "[{}] {} rooms x {} clients at {} edits/s, {} s measured\n\
                     connected {}/{}\n\
                     sent {} ({:.0}/s), delivered {} ({:.0}/s), undelivered {}\n\
                     fan-out latency ms: p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} (n={})\n\
                     server cpu {}%, rss KB before {} start {} end {} after {}; loadgen cpu {}%; machine busy {}% (of 200), steal {}%",
                    r.label, r.rooms, r.clients, if r.rate > 0.0 { r.rate.to_string() } else { "max".into() }, r.duration,
                    r.connected, r.rooms * r.clients,
                    r.sent, r.sent as f64 / r.duration, r.delivered, r.delivered as f64 / r.duration, r.undelivered,
                    l.p50, l.p90, l.p99, l.p999, l.max, l.samples,
                    opt(r.server.cpu_percent.map(|c| format!("{c:.0}"))), opt(r.server.rss_kb_before), opt(r.server.rss_kb_start),
                    opt(r.server.rss_kb_end), opt(r.server.rss_kb_after), opt(r.loadgen_cpu_percent.map(|c| format!("{c:.0}"))),
                    opt(r.machine_cpu_percent.map(|c| format!("{c:.0}"))), opt(r.steal_percent.map(|c| format!("{c:.1}"))),
                );
                if let Some(runs) = &r.runs {
                    let f = &runs.first_byte;
                    out.push_str(&format!(
                        "\nruns: {} started, {} without output in time; run to first byte ms: p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} (n={})",
                        runs.started, runs.no_output, f.p50, f.p90, f.p99, f.max, f.samples
                    ));
                    for (what, map) in [
                        ("run refused", &runs.refused),
                        ("events socket closed", &runs.events_closed),
                        ("events socket error", &runs.events_errors),
                    ] {
                        for (text, n) in map {
                            out.push_str(&format!("\n{what}: {text} (x{n})"));
                        }
                    }
                }
                for (what, map) in [
                    ("connect error", &r.connect_errors),
                    ("closed by server", &r.closes),
                    ("read error", &r.read_errors),
                ] {
                    for (text, n) in map {
                        out.push_str(&format!("\n{what}: {text} (x{n})"));
                    }
                }
                out
            }
            Report::Idle(r) => {
                let mut out = format!(
                    "[{}] idle: {} rooms, {} connected; server rss KB {} -> {}: {} KB per idle room; cpu {}%",
                    r.label, r.rooms, r.connected, opt(r.rss_kb_before), opt(r.rss_kb_after),
                    opt(r.kb_per_room.map(|k| format!("{k:.1}"))), opt(r.server_cpu_percent.map(|c| format!("{c:.1}"))),
                );
                for (text, n) in &r.errors {
                    out.push_str(&format!("\nerror: {text} (x{n})"));
                }
                out
            }
        }
    }
}
