//! The output policy of a run in progress: what each stream printed waits a few milliseconds
//! (or up to 16 KiB) to share one record ([`Coalescer`]), and the run's output cap is counted on
//! the program's bytes stored (record headers aside). Sans-IO: the room pushes bytes with the
//! time, asks when a batch is next due, and takes what is due at a time it is given.

use duet_protocol::{Pieces, Stream};

/// How long a stream's output may wait to share a record with what follows it.
pub const COALESCE_MS: i64 = 5;
/// Most bytes of output one record holds before it is stored without waiting.
pub const COALESCE_BYTES: usize = 16 * 1024;

/// What one stream of one run printed and has not stored yet. Sans-IO: the room pushes bytes
/// with the time, asks when the batch is due, and takes it.
#[derive(Debug, Default)]
pub struct Coalescer {
    bytes: Vec<u8>,
    pieces: Pieces,
    opened_at: Option<i64>,
}

impl Coalescer {
    /// Adds a write made at `now`.
    pub fn push(&mut self, bytes: &[u8], now: i64) {
        if bytes.is_empty() {
            return;
        }
        if self.pieces.last().is_none_or(|(_, at)| *at != now) {
            self.pieces.push((self.bytes.len(), now));
        }
        self.opened_at.get_or_insert(now);
        self.bytes.extend_from_slice(bytes);
    }

    /// When what is waiting must be stored (unix ms), if anything waits.
    pub fn due_at(&self) -> Option<i64> {
        self.opened_at.map(|at| at + COALESCE_MS)
    }

    /// Whether the batch is full and must be stored now.
    pub fn is_full(&self) -> bool {
        self.bytes.len() >= COALESCE_BYTES
    }

    /// Takes what waits: the raw bytes and the pieces, or `None` if nothing does.
    pub fn take(&mut self) -> Option<(Vec<u8>, Pieces)> {
        self.opened_at.take()?;
        Some((
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.pieces),
        ))
    }
}

/// One batch of a stream's output to store: raw bytes and the time of each write in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub stream: Stream,
    pub bytes: Vec<u8>,
    pub pieces: Pieces,
}

/// A run's output on its way to the log: both streams' waiting batches and the bytes stored
/// against the run's cap.
///
/// The cap counts the bytes the program wrote: exactly the cap is kept whole, and only a byte
/// past it marks the run as over the limit ([`OutputBook::capped`]); that batch is cut to the
/// cap, and nothing else is kept: neither what the other stream had waiting nor what the
/// program writes after it.
#[derive(Debug)]
pub(crate) struct OutputBook {
    stdout: Coalescer,
    stderr: Coalescer,
    cap: usize,
    /// Bytes of output stored for this run, against the cap.
    stored: usize,
    capped: bool,
}

/// What [`OutputBook::take`] gives back.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// The batches to store, in stream order (stdout first).
    pub batches: Vec<Batch>,
    /// Whether these batches went past the cap for the first time (the run must be stopped).
    pub reached_cap: bool,
}

impl OutputBook {
    pub fn new(cap: usize) -> OutputBook {
        OutputBook {
            stdout: Coalescer::default(),
            stderr: Coalescer::default(),
            cap,
            stored: 0,
            capped: false,
        }
    }

    /// The run's output cap in bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Whether the program wrote past the cap.
    pub fn capped(&self) -> bool {
        self.capped
    }

    fn stream(&mut self, stream: Stream) -> &mut Coalescer {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Adds a write made at `now`; `true` if a batch is now full and the run's output must be
    /// taken at once. Output after the cap is dropped.
    pub fn push(&mut self, stream: Stream, bytes: &[u8], now: i64) -> bool {
        if self.capped {
            return false;
        }
        let out = self.stream(stream);
        out.push(bytes, now);
        out.is_full()
    }

    /// When the next batch is due (unix ms), if any waits.
    pub fn due_at(&self) -> Option<i64> {
        [self.stdout.due_at(), self.stderr.due_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes what is to be stored at `now`: both streams' batches if `all`, else those that
    /// are due or full, each cut so the stored bytes never pass the cap.
    pub fn take(&mut self, all: bool, now: i64) -> Taken {
        let mut taken = Taken::default();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let room_left = self.cap.saturating_sub(self.stored);
            let out = self.stream(stream);
            let due = out.due_at().is_some_and(|at| at <= now) || out.is_full();
            if !(all || due) {
                continue;
            }
            let Some((mut bytes, mut pieces)) = out.take() else {
                continue;
            };
            if bytes.len() > room_left {
                bytes.truncate(room_left);
                pieces.retain(|(offset, _)| *offset < room_left.max(1));
                if !self.capped {
                    self.capped = true;
                    taken.reached_cap = true;
                }
            }
            if !bytes.is_empty() {
                self.stored += bytes.len();
                taken.batches.push(Batch {
                    stream,
                    bytes,
                    pieces,
                });
            }
        }
        if self.capped {
            // Nothing more can be stored: what the other stream has waiting is dropped now,
            // not at a due time that would store nothing.
            self.stdout = Coalescer::default();
            self.stderr = Coalescer::default();
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_keeps_each_writes_time_and_is_due_after_the_window() {
        let mut c = Coalescer::default();
        assert_eq!(c.due_at(), None);
        c.push(b"a", 100);
        c.push(b"b", 100);
        c.push(b"cd", 103);
        assert_eq!(c.due_at(), Some(100 + COALESCE_MS));
        let (bytes, pieces) = c.take().expect("something waits");
        assert_eq!(bytes, b"abcd");
        assert_eq!(
            pieces,
            vec![(0, 100), (2, 103)],
            "same-ms writes share a piece"
        );
        assert!(c.take().is_none() && c.due_at().is_none());
        c.push(&vec![b'x'; COALESCE_BYTES], 200);
        assert!(c.is_full());
    }

    #[test]
    fn a_batch_cut_at_the_cap_keeps_only_the_pieces_inside_it() {
        let mut book = OutputBook::new(4);
        book.push(Stream::Stdout, b"ab", 10);
        book.push(Stream::Stdout, b"cd", 11);
        book.push(Stream::Stdout, b"ef", 12);
        let taken = book.take(true, 12);
        assert!(taken.reached_cap && book.capped());
        assert_eq!(
            taken.batches,
            vec![Batch {
                stream: Stream::Stdout,
                bytes: b"abcd".to_vec(),
                pieces: vec![(0, 10), (2, 11)],
            }]
        );
        assert!(!book.push(Stream::Stderr, b"late", 13), "dropped");
        assert_eq!(book.due_at(), None);
    }
}
