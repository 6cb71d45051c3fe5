//! The wire protocol with the runner inside the image (sandbox/runner.py; sandbox/README.md).
//!
//! In: a header on the container's stdin, `DUET1 <n>\n` then `n` bytes of JSON (files, target,
//! nonce); whatever follows is the program's stdin. Out: at most one frame on stdout,
//! `\x1eDUET-REPORT <nonce> <json>\n`, written by the runner: after pytest or lint, once every
//! other process in the container is dead; or when the runner fails, before any candidate code
//! ran. [`FrameFilter`] takes the frame carrying this run's nonce out of the visible output; a
//! frame with any other nonce is just something the candidate printed.

use crate::{Limits, LintFinding, SandboxError, Target, TestCase, TestReport};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest file path the runner accepts.
const MAX_NAME: usize = 128;
/// Most files in one run.
const MAX_FILES: usize = 64;
/// A frame larger than this is dropped (the runner clips messages well below it).
const MAX_FRAME: usize = 8 << 20;

/// A fresh 128-bit nonce, as 32 hex digits.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `main.py`, `shop/cart.py`: a relative path of letters, digits and `_.-` segments joined by
/// `/`, none of them empty, `.` or `..`.
pub fn check_name(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        && name
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(SandboxError::Invalid(format!(
            "file name {name:?}: use 1 to {MAX_NAME} letters, digits, '_', '.', '-' or '/' \
             (a relative path, no empty, . or .. part)"
        )))
    }
}

/// Checks the files and target of a request before anything is started: names, the target's
/// files, each file within the fsize limit and all within the work dir.
pub fn check_request(
    files: &BTreeMap<String, String>,
    target: &Target,
    limits: &Limits,
) -> Result<(), SandboxError> {
    if files.is_empty() {
        return Err(SandboxError::Invalid("no files to run".into()));
    }
    if files.len() > MAX_FILES {
        return Err(SandboxError::Invalid(format!(
            "more than {MAX_FILES} files"
        )));
    }
    let mut total: u64 = 0;
    for (name, content) in files {
        check_name(name)?;
        let bytes = content.len() as u64;
        if bytes > limits.fsize_bytes {
            return Err(SandboxError::TooLarge {
                file: Some(name.clone()),
                bytes,
                limit: limits.fsize_bytes,
            });
        }
        total = total.saturating_add(bytes);
    }
    if total > limits.work_dir_bytes {
        return Err(SandboxError::TooLarge {
            file: None,
            bytes: total,
            limit: limits.work_dir_bytes,
        });
    }
    let needed: Vec<&String> = match target {
        Target::Program { entry } | Target::Repl { entry } => vec![entry],
        Target::Pytest { test_files } if test_files.is_empty() => {
            return Err(SandboxError::Invalid(
                "pytest needs at least one test file".into(),
            ))
        }
        Target::Pytest { test_files } => test_files.iter().collect(),
        Target::Lint { files } if files.is_empty() => {
            return Err(SandboxError::Invalid("lint needs at least one file".into()))
        }
        Target::Lint { files } => files.iter().collect(),
    };
    for name in needed {
        check_name(name)?;
        if !files.contains_key(name) {
            return Err(SandboxError::Invalid(format!(
                "{name} is not among the files"
            )));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Header<'a> {
    nonce: &'a str,
    files: &'a BTreeMap<String, String>,
    target: WireTarget<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum WireTarget<'a> {
    Program(&'a str),
    Pytest(&'a [String]),
    Lint(&'a [String]),
    Repl(&'a str),
}

/// The bytes that open the container's stdin.
pub fn header(nonce: &str, files: &BTreeMap<String, String>, target: &Target) -> Vec<u8> {
    let target = match target {
        Target::Program { entry } => WireTarget::Program(entry),
        Target::Pytest { test_files } => WireTarget::Pytest(test_files),
        Target::Lint { files } => WireTarget::Lint(files),
        Target::Repl { entry } => WireTarget::Repl(entry),
    };
    // Serialising plain strings cannot fail; an empty object would make the runner refuse.
    let json = serde_json::to_vec(&Header {
        nonce,
        files,
        target,
    })
    .unwrap_or_default();
    let mut out = format!("DUET1 {}\n", json.len()).into_bytes();
    out.extend_from_slice(&json);
    out
}

/// What the runner reports: after pytest or lint, or instead of running anything when it
/// failed (`failure`). Fields a report does not use are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Frame {
    #[serde(default)]
    pub exit: i64,
    #[serde(default)]
    pub tests: Option<FrameTests>,
    #[serde(default)]
    pub lint: Option<Vec<LintFinding>>,
    /// Something the runner noticed about the worker's report (tampering, no report).
    #[serde(default)]
    pub problem: Option<String>,
    /// The runner failed before any candidate code ran: why.
    #[serde(default)]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FrameTests {
    pub cases: Vec<TestCase>,
}

impl FrameTests {
    /// Counts the cases; an outcome the runner should never send counts as an error.
    pub fn into_report(self) -> TestReport {
        let mut report = TestReport::default();
        for case in &self.cases {
            match case.outcome.as_str() {
                "passed" => report.passed += 1,
                "failed" => report.failed += 1,
                "skipped" => report.skipped += 1,
                _ => report.errors += 1,
            }
        }
        report.cases = self.cases;
        report
    }
}

/// Takes the runner's frame out of stdout, passing everything else through as it comes.
#[derive(Debug)]
pub struct FrameFilter {
    marker: Vec<u8>,
    /// A tail of stdout that may be the start of the marker, held until the next chunk.
    held: Vec<u8>,
    state: FilterState,
}

#[derive(Debug)]
enum FilterState {
    Visible,
    InFrame(Vec<u8>),
    Done(Option<Vec<u8>>),
}

impl FrameFilter {
    pub fn new(nonce: &str) -> Self {
        let mut marker = b"\x1eDUET-REPORT ".to_vec();
        marker.extend_from_slice(nonce.as_bytes());
        marker.push(b' ');
        FrameFilter {
            marker,
            held: Vec::new(),
            state: FilterState::Visible,
        }
    }

    /// Feeds a stdout chunk; returns what the candidate may see of it now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        match &mut self.state {
            FilterState::Done(_) => chunk.to_vec(),
            FilterState::InFrame(buf) => {
                let mut rest = Vec::new();
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        buf.extend_from_slice(&chunk[..end]);
                        rest.extend_from_slice(&chunk[end + 1..]);
                        let json = std::mem::take(buf);
                        self.state = FilterState::Done(Some(json));
                    }
                    None if buf.len() + chunk.len() > MAX_FRAME => {
                        self.state = FilterState::Done(None)
                    }
                    None => buf.extend_from_slice(chunk),
                }
                rest
            }
            FilterState::Visible => {
                let mut data = std::mem::take(&mut self.held);
                data.extend_from_slice(chunk);
                if let Some(at) = find(&data, &self.marker) {
                    let after = data.split_off(at + self.marker.len());
                    data.truncate(at);
                    self.state = FilterState::InFrame(Vec::new());
                    let rest = self.push(&after);
                    data.extend_from_slice(&rest);
                    return data;
                }
                let keep = partial_suffix(&data, &self.marker);
                self.held = data.split_off(data.len() - keep);
                data
            }
        }
    }

    /// At the end of stdout: the held-back bytes, and the frame if one came whole.
    pub fn finish(self) -> (Vec<u8>, Option<Frame>) {
        let frame = match self.state {
            FilterState::Done(Some(json)) => serde_json::from_slice(&json).ok(),
            _ => None,
        };
        (self.held, frame)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest suffix of `data` that is a proper prefix of `marker`.
fn partial_suffix(data: &[u8], marker: &[u8]) -> usize {
    let max = (marker.len() - 1).min(data.len());
    (1..=max)
        .rev()
        .find(|&n| data[data.len() - n..] == marker[..n])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    fn frame_bytes(nonce: &str) -> Vec<u8> {
        format!(
            "\x1eDUET-REPORT {nonce} {{\"exit\":1,\"tests\":{{\"cases\":[{{\"name\":\"t::a\",\"outcome\":\"failed\",\"message\":\"boom\"}}]}},\"problem\":null}}\n"
        )
        .into_bytes()
    }

    fn feed(chunks: &[&[u8]]) -> (Vec<u8>, Option<Frame>) {
        let mut filter = FrameFilter::new(NONCE);
        let mut visible = Vec::new();
        for c in chunks {
            visible.extend(filter.push(c));
        }
        let (rest, frame) = filter.finish();
        visible.extend(rest);
        (visible, frame)
    }

    #[test]
    fn frame_with_the_nonce_is_taken_out_of_the_output() {
        let mut all = b"hello\nno newline".to_vec();
        all.extend(frame_bytes(NONCE));
        let (visible, frame) = feed(&[&all]);
        assert_eq!(visible, b"hello\nno newline");
        let frame = frame.expect("frame");
        assert_eq!(frame.exit, 1);
        let report = frame.tests.expect("tests").into_report();
        assert_eq!((report.passed, report.failed), (0, 1));
    }

    #[test]
    fn frame_split_across_every_byte_is_still_found() {
        let mut all = b"out".to_vec();
        all.extend(frame_bytes(NONCE));
        let chunks: Vec<&[u8]> = all.chunks(1).collect();
        let (visible, frame) = feed(&chunks);
        assert_eq!(visible, b"out");
        assert!(frame.is_some());
    }

    #[test]
    fn frame_with_another_nonce_is_ordinary_output() {
        let fake = frame_bytes("ffffffffffffffffffffffffffffffff");
        let (visible, frame) = feed(&[&fake]);
        assert_eq!(visible, fake);
        assert!(frame.is_none());
    }

    #[test]
    fn a_partial_marker_is_released_when_more_output_comes() {
        let mut filter = FrameFilter::new(NONCE);
        assert_eq!(filter.push(b"abc\x1eDUET"), b"abc");
        assert_eq!(filter.push(b"!"), b"\x1eDUET!");
    }

    #[test]
    fn paths_in_folders_are_taken_and_paths_out_of_the_work_dir_refused() {
        for ok in [
            "main.py",
            "shop/cart.py",
            "tests/test_cart.py",
            &"a".repeat(128),
        ] {
            assert!(check_name(ok).is_ok(), "{ok:?}");
        }
        let long = "a".repeat(129);
        for bad in [
            "", ".", "..", "../x", "/etc/x", "a//b", "a/./b", "a/", "é.py", &long,
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_carries_its_length() {
        let files = BTreeMap::from([("main.py".to_string(), "print(1)\n".to_string())]);
        let h = header(
            NONCE,
            &files,
            &Target::Program {
                entry: "main.py".into(),
            },
        );
        let text = String::from_utf8(h).expect("utf-8");
        let (line, json) = text.split_once('\n').expect("line");
        assert_eq!(line, format!("DUET1 {}", json.len()));
        let v: serde_json::Value = serde_json::from_str(json).expect("json");
        assert_eq!(v["target"]["program"], "main.py");
        assert_eq!(v["nonce"], NONCE);
    }
}
