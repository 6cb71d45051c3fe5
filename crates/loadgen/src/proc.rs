//! CPU time and resident memory of a process, from /proc (Linux).

use std::time::Instant;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on every Linux we target).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime, in seconds.
    pub cpu_secs: f64,
    pub rss_kb: u64,
}

/// Samples `pid`, or this process when `pid` is `None`. `None` if the process is gone.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, so split after its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; here indexes 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(Sample {
        at: Instant::now(),
        cpu_secs: (utime + stime) / TICKS_PER_SEC,
        rss_kb,
    })
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (to.cpu_secs - from.cpu_secs) / wall * 100.0
}

/// Machine-wide CPU time from /proc/stat, in seconds: (busy, steal).
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    pub at: Instant,
    pub busy_secs: f64,
    pub steal_secs: f64,
}

pub fn machine() -> Option<Machine> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .filter_map(|&i| v.get(i))
        .sum::<f64>();
    Some(Machine {
        at: Instant::now(),
        busy_secs: busy / TICKS_PER_SEC,
        steal_secs: v.get(7).copied().unwrap_or(0.0) / TICKS_PER_SEC,
    })
}

/// Busy and steal CPU between two machine samples, in percent of one core (200 = two cores).
pub fn machine_percent(from: &Machine, to: &Machine) -> (f64, f64) {
    let wall = to.at.duration_since(from.at).as_secs_f64().max(1e-9);
    (
        (to.busy_secs - from.busy_secs) / wall * 100.0,
        (to.steal_secs - from.steal_secs) / wall * 100.0,
    )
}
