//! `duet-fsync-probe`: what an fsync costs on this disk, and what `synchronous=FULL` would cost
//! Duet's store per batch against the `synchronous=NORMAL` + one WAL fsync a second it uses.
//!
//! It never touches the server: it opens its own SQLite database (WAL, the `room_log` table as the
//! store declares it, the store's pragmas) in a scratch folder on the disk under test and commits
//! batches of keystroke-sized records the way the store's writer thread does (one transaction
//! per batch), timing each commit, with `synchronous=NORMAL` and then `FULL`. Beside it, the raw
//! cost of `fdatasync` after appending 4 KiB to a file.
//!
//!   duet-fsync-probe [DIR] [--commits N]      (DIR defaults to a new folder under /tmp)

use rusqlite::{params, Connection};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes of one stored keystroke update (a single-character Yjs update is about 20 to 30).
const RECORD_BYTES: usize = 28;

fn main() -> anyhow::Result<()> {
    let mut dir: Option<PathBuf> = None;
    let mut commits = 400usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--commits" => commits = args.next().unwrap_or_default().parse()?,
            "-h" | "--help" => {
                println!("duet-fsync-probe [DIR] [--commits N]");
                return Ok(());
            }
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let base = dir.unwrap_or_else(std::env::temp_dir);
    let scratch = base.join(format!("duet-fsync-probe.{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = probe(&scratch, commits);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn probe(dir: &Path, commits: usize) -> anyhow::Result<()> {
    println!(
        "disk under test: {} (commits per configuration: {commits})",
        dir.display()
    );
    println!();
    println!("| what | per operation p50, ms | p90, ms | p99, ms | max, ms | mean, ms | ops/s (1 thread) |");
    println!("|---|---|---|---|---|---|---|");
    let raw = raw_fdatasync(dir, commits)?;
    row("write 4 KiB + fdatasync (raw file)", &raw);
    for batch in [1usize, 16, 256] {
        for sync in ["NORMAL", "FULL"] {
            let t = sqlite_commits(dir, sync, batch, commits)?;
            row(
                &format!("SQLite WAL commit of {batch} record(s), synchronous={sync}"),
                &t,
            );
        }
    }
    println!();
    println!(
        "NORMAL is what the store runs (plus one fsync of the WAL a second on its own thread);"
    );
    println!(
        "FULL adds one fsync of the WAL to every commit, i.e. to every batch of the writer thread."
    );
    Ok(())
}

fn row(what: &str, t: &[Duration]) {
    let mut ms: Vec<f64> = t.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let at = |p: f64| ms[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    let mean = ms.iter().sum::<f64>() / n as f64;
    println!(
        "| {what} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        mean,
        1e3 / mean
    );
}

fn raw_fdatasync(dir: &Path, n: usize) -> anyhow::Result<Vec<Duration>> {
    let path = dir.join("raw.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let block = vec![0x5au8; 4096];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(t.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok(times)
}

fn sqlite_commits(dir: &Path, sync: &str, batch: usize, n: usize) -> anyhow::Result<Vec<Duration>> {
    let path = dir.join(format!("probe-{sync}-{batch}.db"));
    let conn = Connection::open(&path)?;
    // As the store's writer has them (crates/store/src/sqlite.rs).
    conn.pragma_update(None, "page_size", 1024)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.execute_batch(
        "CREATE TABLE room_log (interview_id TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
         kind TEXT NOT NULL, role TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (interview_id, seq)) WITHOUT ROWID;
         CREATE INDEX room_log_by_rare_kind ON room_log (interview_id, kind, seq) WHERE kind <> 'edit';",
    )?;
    let data = vec![0x11u8; RECORD_BYTES];
    let mut seq = 0i64;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let txn = conn.unchecked_transaction()?;
        {
            let mut insert = txn.prepare_cached(
                "INSERT INTO room_log (interview_id, seq, at_ms, kind, role, data) VALUES (?1, ?2, ?3, 'edit', 'candidate', ?4)",
            )?;
            for _ in 0..batch {
                seq += 1;
                insert.execute(params!["probe-interview-0001", seq, seq, &data])?;
            }
        }
        txn.commit()?;
        times.push(t.elapsed());
    }
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    Ok(times)
}
