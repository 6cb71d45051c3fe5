//! Runs in the room log: how a run's output is coalesced and stored, and how the records of
//! each run's start, output and end are read back into summaries, whole runs and casts.
//!
//! Output storage: one `RunOutput` record holds what one stream printed within a few
//! milliseconds ([`Coalescer`]; the policy, with the run's output cap, is in `runs/output.rs`
//! and the room's run book, `room/runs.rs`), as raw bytes with the time of each write
//! ([`duet_protocol::OutputChunk`]; `duet_protocol::Record` says how it is stored), so a replay
//! plays the output at its pace and storage is lossless and proportional to what was printed.

use duet_protocol::{
    EventKind, LintFinding, LogRecord, Record, Role, RunStatus, RunSummary, Stream, TestCounts,
    TestResults,
};
use std::collections::HashMap;

mod output;

pub(crate) use output::OutputBook;
pub use output::{Coalescer, COALESCE_BYTES, COALESCE_MS};

/// Turns a byte stream into text chunk by chunk without splitting a character across chunks;
/// invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Decoder(Vec<u8>);

impl Utf8Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.0) {
                Ok(text) => {
                    out.push_str(text);
                    self.0.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.0[..valid]).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.0.drain(..valid); // an incomplete character: wait for the rest
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.0.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left (an incomplete character at the end becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        rest
    }
}

/// A run as its start and finish records describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEntry {
    /// As the staff see it (the candidate's is [`RunSummary::seen_by`]).
    pub summary: RunSummary,
    /// The seq of its start record.
    pub seq: u64,
    /// The seq whose snapshot is the code that ran.
    pub code_seq: u64,
    pub private: bool,
    /// The seq of its finish record, once it finished.
    pub finished_seq: Option<u64>,
    /// The code as old records kept it (newer ones store it by `code_seq`).
    pub legacy_code: Option<String>,
    pub tests: Option<TestResults>,
    pub lint: Option<Vec<LintFinding>>,
}

/// Every run in `records` (its start and finish records; others are ignored) that `viewer`
/// may see, in the order they started. Unreadable records are skipped and cannot hide others.
pub fn run_index(records: &[LogRecord], viewer: Role) -> Vec<RunEntry> {
    let mut runs: Vec<RunEntry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in records {
        match record.kind {
            EventKind::RunStarted => {
                let Ok(Record::RunStarted(started)) = record.decode() else {
                    continue;
                };
                if started.private && !viewer.can_read_scorecard() {
                    continue;
                }
                index.insert(started.run_id.clone(), runs.len());
                runs.push(RunEntry {
                    summary: RunSummary {
                        run_id: started.run_id,
                        kind: started.kind,
                        by: started.by,
                        environment: started.environment,
                        seq: Some(record.seq),
                        started_at: started.at,
                        finished_at: None,
                        status: RunStatus::Running,
                        exit_code: None,
                        duration_ms: None,
                        code_seq: Some(started.code_seq),
                        tests: None,
                        limit: None,
                    },
                    seq: record.seq,
                    code_seq: started.code_seq,
                    private: started.private,
                    finished_seq: None,
                    legacy_code: started.code,
                    tests: None,
                    lint: None,
                });
            }
            EventKind::RunFinished => {
                let Ok(Record::RunFinished(finished)) = record.decode() else {
                    continue;
                };
                if let Some(run) = index.get(&finished.run_id).map(|i| &mut runs[*i]) {
                    run.summary.finished_at = Some(finished.at);
                    run.summary.status = finished.status;
                    run.summary.limit = finished.limit;
                    run.summary.exit_code = finished.exit_code;
                    run.summary.duration_ms = Some(finished.duration_ms);
                    run.summary.tests = finished.tests.as_ref().map(TestCounts::from);
                    run.tests = finished.tests;
                    run.lint = finished.lint;
                    run.finished_seq = Some(record.seq);
                }
            }
            _ => {}
        }
    }
    runs
}

/// A run the log shows as started and never finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedRun {
    pub run_id: String,
    pub by: Role,
    pub private: bool,
}

/// Runs that started and never finished (the server stopped under them).
pub fn unfinished_runs(records: &[LogRecord]) -> Vec<UnfinishedRun> {
    let mut open: Vec<UnfinishedRun> = Vec::new();
    let started_or_finished =
        |r: &&LogRecord| matches!(r.kind, EventKind::RunStarted | EventKind::RunFinished);
    for record in records.iter().filter(started_or_finished) {
        match record.decode() {
            Ok(Record::RunStarted(s)) => open.push(UnfinishedRun {
                run_id: s.run_id,
                by: s.by,
                private: s.private,
            }),
            Ok(Record::RunFinished(f)) => open.retain(|run| run.run_id != f.run_id),
            _ => {}
        }
    }
    open
}

/// One write of a run's output: which stream, when, and where in that stream's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPiece {
    pub stream: Stream,
    pub at: i64,
    pub range: std::ops::Range<usize>,
}

/// A run's whole output, read back from its `RunOutput` records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutputs {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Every write in log order (each stream's in the order it printed).
    pub pieces: Vec<OutputPiece>,
    /// The seq of the newest output record gathered (0 if none).
    pub through_seq: u64,
}

impl RunOutputs {
    pub fn bytes(&self, stream: Stream) -> &[u8] {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

/// Gathers the output of `run_id` from records (others, and unreadable ones, are skipped).
pub fn collect_output(records: &[LogRecord], run_id: &str) -> RunOutputs {
    let mut out = RunOutputs::default();
    for record in records.iter().filter(|r| r.kind == EventKind::RunOutput) {
        let Ok(Record::RunOutput(chunk)) = record.decode() else {
            continue;
        };
        if chunk.run_id != run_id {
            continue;
        }
        out.through_seq = out.through_seq.max(record.seq);
        let buf = match chunk.stream {
            Stream::Stdout => &mut out.stdout,
            Stream::Stderr => &mut out.stderr,
        };
        let base = buf.len();
        buf.extend_from_slice(&chunk.bytes);
        for (i, (offset, at)) in chunk.pieces.iter().enumerate() {
            let end = chunk.pieces.get(i + 1).map_or(chunk.bytes.len(), |p| p.0);
            if end > *offset {
                out.pieces.push(OutputPiece {
                    stream: chunk.stream,
                    at: *at,
                    range: base + offset..base + end,
                });
            }
        }
    }
    out
}

/// The run's output as an asciicast v2 recording: a header line, then `[seconds, "o", text]`
/// per write, seconds counted from the run's start. A pipe has no terminal to turn `\n` into a
/// new line at column 0, so `\n` becomes `\r\n`; stderr is shown in red (`ESC[31m` ...
/// `ESC[0m` around each stderr write).
///
/// A cast is played in reviewers' own terminals (`asciinema play`), so the candidate's output
/// goes through a [`TerminalFilter`] per stream: only colour and cursor movement act on the
/// player's terminal; every other control sequence (clipboard writes, links, titles and their
/// reports, device control strings, screen clears, concealed text) is shown as visible text.
pub fn asciicast(run: &RunSummary, output: &RunOutputs) -> String {
    let header = serde_json::json!({
        "version": 2, "width": 100, "height": 30,
        "timestamp": run.started_at.div_euclid(1000),
        "title": format!("run {} ({})", run.run_id, format!("{:?}", run.kind).to_lowercase()),
        "env": {"TERM": "xterm-256color"},
    });
    let mut cast = header.to_string();
    cast.push('\n');
    let mut pieces: Vec<&OutputPiece> = output.pieces.iter().collect();
    pieces.sort_by_key(|p| p.at); // stable: each stream keeps its order
    let (mut out_text, mut err_text) = (Utf8Decoder::default(), Utf8Decoder::default());
    let (mut out_filter, mut err_filter) = (TerminalFilter::default(), TerminalFilter::default());
    let (mut out_at, mut err_at) = (run.started_at, run.started_at);
    let event = |cast: &mut String, stream: Stream, at: i64, text: String| {
        if text.is_empty() {
            return;
        }
        let text = terminal_newlines(&text);
        let text = match stream {
            Stream::Stdout => text,
            Stream::Stderr => format!("\u{1b}[31m{text}\u{1b}[0m"),
        };
        let seconds = (at - run.started_at).max(0) as f64 / 1000.0;
        cast.push_str(&serde_json::json!([seconds, "o", text]).to_string());
        cast.push('\n');
    };
    for piece in pieces {
        let bytes = &output.bytes(piece.stream)[piece.range.clone()];
        let text = match piece.stream {
            Stream::Stdout => {
                out_at = piece.at;
                out_filter.push(&out_text.push(bytes))
            }
            Stream::Stderr => {
                err_at = piece.at;
                err_filter.push(&err_text.push(bytes))
            }
        };
        event(&mut cast, piece.stream, piece.at, text);
    }
    // A sequence cut off by the end of the output is shown, not left for the player to finish.
    event(&mut cast, Stream::Stdout, out_at, out_filter.finish());
    event(&mut cast, Stream::Stderr, err_at, err_filter.finish());
    cast
}

fn terminal_newlines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Longest escape sequence held back waiting for its end (split across writes); a longer one
/// is neutralised as it stands.
const MAX_PENDING_ESCAPE: usize = 64;

/// Makes program output safe to play in a real terminal, for one stream (it carries an escape
/// sequence split across writes to the next write).
///
/// Kept as they are: text, `\n`, `\r`, `\t`, backspace, cursor movement (`CSI` `A`-`H`, `f`,
/// `d` with plain numeric parameters) and SGR colours and styles, less conceal (`8`, dropped
/// from the parameters). Everything else a terminal would act on is made visible instead:
/// `ESC` becomes `␛` (so `ESC ] 52 ; ...` prints as `␛]52;...`), the other C0 controls their
/// Unicode control pictures (`BEL` is `␇`), `DEL` `␡`, and the 8-bit C1 controls `�`.
#[derive(Debug, Default)]
pub struct TerminalFilter {
    /// The start of an escape sequence whose end has not arrived yet.
    pending: Vec<char>,
}

/// What the start of the input is, when it begins with `ESC`.
enum Escape {
    /// The sequence may go on in the next write.
    Incomplete,
    /// A sequence this long that may act: written as the replacement (possibly nothing).
    Keep(usize, String),
    /// Anything else: shown as text.
    Neutralise,
}

impl TerminalFilter {
    /// The safe form of `text`, which follows what was pushed before.
    pub fn push(&mut self, text: &str) -> String {
        let mut chars = std::mem::take(&mut self.pending);
        chars.extend(text.chars());
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '\u{1b}' {
                push_visible(&mut out, chars[i]);
                i += 1;
                continue;
            }
            match escape(&chars[i..]) {
                Escape::Incomplete if chars.len() - i <= MAX_PENDING_ESCAPE => {
                    self.pending = chars[i..].to_vec();
                    break;
                }
                Escape::Keep(len, replacement) => {
                    out.push_str(&replacement);
                    i += len;
                }
                Escape::Incomplete | Escape::Neutralise => {
                    out.push('\u{241b}');
                    i += 1;
                }
            }
        }
        out
    }

    /// What is still held back, made visible: the output ended inside a sequence.
    pub fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        let mut out = String::new();
        for c in pending {
            match c {
                '\u{1b}' => out.push('\u{241b}'),
                c => push_visible(&mut out, c),
            }
        }
        out
    }
}

/// `c` as text a terminal only prints.
fn push_visible(out: &mut String, c: char) {
    match u32::from(c) {
        0x0a | 0x0d | 0x09 | 0x08 => out.push(c),
        n @ 0x00..=0x1f => out.push(char::from_u32(0x2400 + n).unwrap_or('\u{fffd}')),
        0x7f => out.push('\u{2421}'),
        0x80..=0x9f => out.push('\u{fffd}'),
        _ => out.push(c),
    }
}

/// Reads the escape sequence `chars` starts with (`chars[0]` is `ESC`).
fn escape(chars: &[char]) -> Escape {
    match chars.get(1) {
        None => Escape::Incomplete,
        Some('[') => csi(chars),
        Some(_) => Escape::Neutralise,
    }
}

/// A control sequence: `ESC [`, parameter bytes, intermediate bytes, one final byte.
fn csi(chars: &[char]) -> Escape {
    let mut end = 2;
    while chars.get(end).is_some_and(|c| ('0'..='?').contains(c)) {
        end += 1;
    }
    let params: String = chars[2..end].iter().collect();
    let intermediates = end;
    while chars.get(end).is_some_and(|c| (' '..='/').contains(c)) {
        end += 1;
    }
    let Some(&last) = chars.get(end) else {
        return Escape::Incomplete;
    };
    if !('@'..='~').contains(&last) || end != intermediates {
        return Escape::Neutralise;
    }
    let len = end + 1;
    let numbers = |extra: char| {
        params
            .chars()
            .all(|c| c.is_ascii_digit() || c == ';' || c == extra)
    };
    match last {
        'm' if numbers(':') => Escape::Keep(len, sgr_without_conceal(&params)),
        'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'f' | 'd' if numbers(';') => {
            Escape::Keep(len, chars[..len].iter().collect())
        }
        _ => Escape::Neutralise,
    }
}

/// An SGR sequence with conceal (`8`) taken out of its parameters; nothing if nothing is left.
/// Colour arguments (`38;5;8`, `48;2;r;g;b`) are read as such, not as attributes.
fn sgr_without_conceal(params: &str) -> String {
    if params.is_empty() {
        return "\u{1b}[m".to_owned();
    }
    let list: Vec<&str> = params.split(';').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(list.len());
    let mut i = 0;
    while i < list.len() {
        let p = list[i];
        let head = p.split(':').next().unwrap_or("").trim_start_matches('0');
        let colour_args = match head {
            "38" | "48" | "58" if !p.contains(':') => match list.get(i + 1).copied() {
                Some("5") => 2,
                Some("2") => 4,
                _ => 0,
            },
            _ => 0,
        };
        if head == "8" {
            i += 1;
            continue;
        }
        let upto = (i + 1 + colour_args).min(list.len());
        kept.extend_from_slice(&list[i..upto]);
        i = upto;
    }
    if kept.is_empty() {
        String::new()
    } else {
        format!("\u{1b}[{}m", kept.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(text: &str) -> String {
        let mut filter = TerminalFilter::default();
        let mut out = filter.push(text);
        out.push_str(&filter.finish());
        out
    }

    #[test]
    fn colour_and_cursor_movement_pass_and_nothing_else_acts() {
        let keep = "\u{1b}[1;31mred\u{1b}[0m \u{1b}[2A\u{1b}[10;4H\u{1b}[3D\u{1b}[38;5;8mgrey\u{1b}[m\r\n\tx\u{8}";
        assert_eq!(filtered(keep), keep);
        for (hostile, shown) in [
            ("\u{1b}]52;c;aGk=\u{7}", "␛]52;c;aGk=␇"),
            (
                "\u{1b}]8;;http://x/\u{1b}\\a\u{1b}]8;;\u{1b}\\",
                "␛]8;;http://x/␛\\a␛]8;;␛\\",
            ),
            ("\u{1b}]0;owned\u{7}", "␛]0;owned␇"),
            ("\u{1b}[21t\u{1b}[?1049h", "␛[21t␛[?1049h"),
            ("\u{1b}P$q\"p\u{1b}\\", "␛P$q\"p␛\\"),
            ("\u{1b}[2J\u{1b}[3J\u{1b}c\u{1b}[K", "␛[2J␛[3J␛c␛[K"),
            ("\u{1b}[8msecret\u{1b}[0;8;31mx", "secret\u{1b}[0;31mx"),
            (
                "\u{9b}2J\u{9d}0;t\u{7}\u{e}\u{7f}",
                "\u{fffd}2J\u{fffd}0;t␇␎␡",
            ),
        ] {
            assert_eq!(filtered(hostile), shown, "{hostile:?}");
        }
    }

    #[test]
    fn a_sequence_split_across_writes_is_judged_whole() {
        let text = "a\u{1b}]52;c;aGk=\u{7}b\u{1b}[31mc\u{1b}[8md";
        let whole = filtered(text);
        let chars: Vec<char> = text.chars().collect();
        for cut in 0..=chars.len() {
            let mut filter = TerminalFilter::default();
            let first: String = chars[..cut].iter().collect();
            let second: String = chars[cut..].iter().collect();
            let mut out = filter.push(&first);
            out.push_str(&filter.push(&second));
            out.push_str(&filter.finish());
            assert_eq!(out, whole, "cut at {cut}");
        }
        assert_eq!(whole, "a␛]52;c;aGk=␇b\u{1b}[31mcd");
        let mut filter = TerminalFilter::default();
        assert_eq!(filter.push("x\u{1b}[3"), "x");
        assert_eq!(filter.finish(), "␛[3", "cut off by the end: shown");
    }
    use duet_protocol::{Actor, OutputChunk, RunKind};

    #[test]
    fn characters_split_across_chunks_come_out_whole() {
        let snake = "🐍".as_bytes();
        let mut carry = Utf8Decoder::default();
        assert_eq!(carry.push(&[b'a', snake[0], snake[1]]), "a");
        assert_eq!(carry.push(&[snake[2], snake[3], b'b']), "🐍b");
        assert_eq!(carry.push(&[0xff, b'c']), "\u{FFFD}c");
        assert_eq!(carry.push(&[snake[0]]), "");
        assert_eq!(carry.finish(), "\u{FFFD}");
    }

    #[test]
    fn output_is_stored_as_raw_bytes_and_reads_back_losslessly() {
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 0xff, b'\n']).collect();
        let chunk = OutputChunk {
            run_id: "r".into(),
            stream: Stream::Stderr,
            pieces: vec![(0, 10), (100, 12)],
            bytes: bytes.clone(),
        };
        let record = LogRecord::new(2, 99, Actor::Candidate, Record::RunOutput(chunk.clone()));
        assert!(
            record.data.len() < bytes.len() + 80,
            "stored size is the output plus a small header, not escaped text"
        );
        assert_eq!(record.decode().ok(), Some(Record::RunOutput(chunk)));
    }

    #[test]
    fn a_cast_plays_each_write_at_its_time_with_stderr_in_red() {
        let mut records = Vec::new();
        for (seq, stream, pieces, bytes) in [
            (
                2,
                Stream::Stdout,
                vec![(0, 1_000), (3, 1_500)],
                &b"hi\nyo\n"[..],
            ),
            (3, Stream::Stderr, vec![(0, 1_200)], &b"oops\n"[..]),
            (4, Stream::Stdout, vec![(0, 1_600)], &b"other run"[..]),
        ] {
            let run_id = if seq == 4 { "other" } else { "r" };
            let chunk = OutputChunk {
                run_id: run_id.into(),
                stream,
                pieces,
                bytes: bytes.to_vec(),
            };
            records.push(LogRecord::new(
                seq,
                0,
                Actor::Candidate,
                Record::RunOutput(chunk),
            ));
        }
        let output = collect_output(&records, "r");
        assert_eq!(
            (output.stdout.as_slice(), output.stderr.as_slice()),
            (&b"hi\nyo\n"[..], &b"oops\n"[..])
        );
        let run = RunSummary {
            run_id: "r".into(),
            kind: RunKind::Run,
            by: Role::Candidate,
            environment: "python".into(),
            seq: Some(1),
            started_at: 1_000,
            finished_at: None,
            status: RunStatus::Running,
            exit_code: None,
            duration_ms: None,
            code_seq: Some(0),
            tests: None,
            limit: None,
        };
        let cast = asciicast(&run, &output);
        let lines: Vec<serde_json::Value> = cast
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[1], serde_json::json!([0.0, "o", "hi\r\n"]));
        assert_eq!(
            lines[2],
            serde_json::json!([0.2, "o", "\u{1b}[31moops\r\n\u{1b}[0m"])
        );
        assert_eq!(lines[3], serde_json::json!([0.5, "o", "yo\r\n"]));
        assert_eq!(lines.len(), 4, "another run's output stays out");
    }
}
