//! Keeping the WAL durable and short: the syncer thread (an fsync of the WAL file, then a
//! passive checkpoint, every interval while there are writes), the writer's share of a
//! checkpoint that lets the WAL start over, and the full truncation after an erase.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the writer and the syncer tell each other.
pub(super) struct Shared {
    /// The writer has committed since the syncer's last sync.
    pub(super) dirty: AtomicBool,
    /// The syncer has copied most of the WAL into the database: the writer copies the rest
    /// after its next batch, so that the commit after it starts the WAL over from its beginning.
    pub(super) finish_checkpoint: AtomicBool,
    /// The WAL's size, in bytes, past which the writer is asked to finish a checkpoint.
    pub(super) wal_limit: u64,
}

/// The writer's share of a checkpoint: copies the frames committed since the syncer's last
/// pass (a few milliseconds' worth) and syncs them. With every frame copied and no commit in
/// between, SQLite starts the WAL over at the next commit, so the WAL stays about one interval
/// long. A checkpoint from another connection cannot get there while commits continue: each
/// commit lands after the frames it copied. Without this the WAL grew by every commit (a
/// gigabyte in 13 s of 500 busy rooms), and with it the bytes each fsync had to flush.
pub(super) fn finish_checkpoint(conn: &Connection) -> bool {
    match checkpoint_passive(conn) {
        Ok(Checkpointed { busy, .. }) => !busy,
        Err(e) => {
            tracing::warn!(error = %e, "store: the writer's WAL checkpoint failed");
            true
        }
    }
}

/// What `PRAGMA wal_checkpoint(PASSIVE)` did: it copies what it can without waiting for anyone.
struct Checkpointed {
    /// Another connection was checkpointing: nothing was done.
    busy: bool,
    /// Frames in the WAL since it last started over (its file is reused, never shrunk).
    frames: i64,
    /// Of those, frames not yet copied (a reader's old snapshot, or commits since, hold them).
    left: i64,
}

fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<Checkpointed> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let (frames, copied): (i64, i64) = (r.get(1)?, r.get(2)?);
        Ok(Checkpointed {
            busy: r.get::<_, i64>(0)? != 0,
            frames,
            left: frames - copied,
        })
    })
}

/// Every `interval` while there were writes, fsyncs the WAL file itself (so everything
/// committed before the sync survives a power cut, whether or not a checkpoint could run), then
/// copies what it can into the main database without waiting for readers, and leaves the last
/// few frames to the writer ([`finish_checkpoint`]). It runs on its own connection and thread,
/// so a slow fsync or a long copy never holds up commits, and so never holds up any room's
/// deliveries.
pub(super) fn syncer_loop(conn: Connection, wal: PathBuf, shared: Arc<Shared>, interval: Duration) {
    // The size of a WAL frame: a page and its header (the page size is fixed once created).
    let frame_bytes = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap_or(4096)
        + WAL_FRAME_HEADER;
    loop {
        std::thread::sleep(interval);
        if shared.dirty.swap(false, Ordering::AcqRel) {
            sync(&conn, &wal, &shared, frame_bytes);
        }
        if Arc::strong_count(&shared) == 1 {
            // The writer has stopped: a final sync, then done.
            sync(&conn, &wal, &shared, frame_bytes);
            return;
        }
    }
}

/// At most this many frames are left for the writer to copy; the syncer makes another pass
/// while more remain (each pass leaves only what was committed during it).
const WRITER_TAIL_FRAMES: i64 = 256;
const SYNC_PASSES: usize = 3;

fn sync(conn: &Connection, wal: &std::path::Path, shared: &Shared, frame_bytes: i64) {
    match fsync(wal) {
        Ok(()) => {}
        // No WAL file: a checkpoint truncated it, and the main database was synced then.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(error = %e, wal = %wal.display(), "store: fsync of the WAL failed")
        }
    }
    let mut frames = 0;
    for _ in 0..SYNC_PASSES {
        match checkpoint_passive(conn) {
            Ok(pass) => {
                frames = pass.frames;
                if pass.busy || pass.left <= WRITER_TAIL_FRAMES {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: WAL checkpoint failed");
                return;
            }
        }
    }
    // A WAL past its limit is started over: the writer copies the last frames itself (and pays
    // two fsyncs, so only now and then). Below the limit the WAL starts over by itself whenever a
    // pass copies everything before the next commit, which a quiet moment allows.
    if (frames * frame_bytes).max(0) as u64 > shared.wal_limit {
        // fsync what was committed during the passes too, so the writer's share syncs little.
        let _ = fsync(wal);
        shared.finish_checkpoint.store(true, Ordering::Release);
    }
}

const WAL_FRAME_HEADER: i64 = 24;

fn fsync(path: &std::path::Path) -> std::io::Result<()> {
    // fsync flushes the file (the inode), whichever descriptor asks.
    std::fs::File::open(path).and_then(|f| f.sync_data())
}

/// Checkpoints the whole WAL into the database and truncates it to nothing, waiting (bounded)
/// for readers that still hold old snapshots.
pub(super) fn truncate_wal(conn: &Connection) -> Result<()> {
    for _ in 0..50 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(StoreError::WriteFailed {
        failure: crate::Failure::Other,
        message: "could not truncate the WAL: readers kept old snapshots for a second".into(),
    })
}

#[cfg(test)]
mod tests {
    use crate::sqlite::testing::{created, record};
    use crate::sqlite::{SqliteConfig, SqliteStore};
    use crate::LogStore;
    use duet_protocol::{EventKind, InterviewId};
    use std::time::Duration;

    #[tokio::test]
    async fn a_steady_stream_of_commits_keeps_the_wal_bounded() {
        // A checkpoint from the syncer's own connection can never catch up with a writer that
        // keeps committing, so without the writer's share the WAL grows by every byte written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let mut config = SqliteConfig::at(&path);
        config.sync_interval = Duration::from_millis(20);
        config.wal_limit = 256 << 10;
        let store = SqliteStore::open(config).unwrap();
        let wal = dir.path().join("duet.db-wal");
        for room in 0..20 {
            created(&store, &format!("walRoom{room}")).await;
        }
        let (mut written, mut largest) = (0u64, 0u64);
        for chunk in 0..200u64 {
            let tickets: Vec<_> = (0..40u64)
                .map(|i| {
                    let room = InterviewId::parse(&format!("walRoom{}", i % 20)).unwrap();
                    let seq = chunk * 2 + 1 + i / 20;
                    let mut record = record(seq, EventKind::Edit);
                    record.data = vec![7; 4096];
                    store.append(&room, record)
                })
                .collect();
            for ticket in tickets {
                ticket.await.unwrap().unwrap();
            }
            written += 40 * 4096;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            // A steady stream, not a flood: on a loaded machine a flood could starve the syncer
            // thread for the whole test, and the WAL grows by every commit until it runs.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(
            largest < written / 2,
            "the WAL reached {largest} bytes after {written} bytes of records"
        );
    }
}
