//! One run inside a started, attached container: send the header and stdin, stream stdout and
//! stderr as they come, enforce wall time, the output cap and cancel, then classify the end.

use crate::container::{Attached, Input};
use crate::escape::escape;
use crate::protocol::{header, Frame, FrameFilter};
use crate::{RunEvent, RunOutcome, RunRequest, RunStatus, Stdin, Target};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::Docker;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

/// Time allowed for inspecting the container after it exited.
const INSPECT: Duration = Duration::from_secs(5);

/// Why the server stopped a run before it ended by itself.
enum Stop {
    Timeout,
    OutputLimit,
    Cancelled,
    /// The engine failed: the connection broke, a call errored or hung.
    Engine(String),
}

/// Everything one run needs from its caller.
pub struct RunIo<'a> {
    pub events: &'a mpsc::Sender<RunEvent>,
    pub stdin: mpsc::Receiver<Stdin>,
    pub cancel: &'a CancellationToken,
}

/// Runs `request` in `container` and removes the container; never returns an error: every end
/// is a [`RunOutcome`]. The flag says whether the engine failed (not the runner, not the
/// program), for the engine's health.
pub async fn drive(
    docker: &Docker,
    container: Attached,
    request: RunRequest,
    nonce: &str,
    io: RunIo<'_>,
) -> (RunOutcome, bool) {
    let Attached {
        owned,
        mut output,
        mut input,
    } = container;
    let name = owned.name().to_string();
    let started = Instant::now();
    let deadline = started + request.limits.wall;

    let head = header(nonce, &request.files, &request.target);
    let wrote = timeout_at(deadline, async {
        input.write_all(&head).await?;
        input.flush().await
    })
    .await;
    let mut stop = match wrote {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(Stop::Engine(format!(
            "writing the run to the container: {e}"
        ))),
        Err(_) => Some(Stop::Engine(
            "the container did not take the run in time".into(),
        )),
    };
    let more = request.keep_stdin_open.then_some(io.stdin);
    let stdin_task = tokio::spawn(forward_stdin(input, request.stdin, more));

    let mut out = Output {
        events: io.events,
        cancel: io.cancel,
        deadline,
        cap: request.limits.output_bytes,
        sent: 0,
    };
    // Every target: the runner's failure frame can come before a program starts.
    let mut filter = Some(FrameFilter::new(nonce));
    while stop.is_none() {
        let item = tokio::select! {
            biased;
            _ = io.cancel.cancelled() => { stop = Some(Stop::Cancelled); break }
            _ = sleep_until(deadline) => { stop = Some(Stop::Timeout); break }
            _ = io.events.closed() => { stop = Some(Stop::Cancelled); break }
            item = output.next() => item,
        };
        let result = match item {
            None => break,
            Some(Err(e)) => Err(Stop::Engine(format!("the output stream broke: {e}"))),
            Some(Ok(LogOutput::StdOut { message })) => match filter.as_mut() {
                Some(f) => out.deliver(true, &f.push(&message)).await,
                None => out.deliver(true, &message).await,
            },
            Some(Ok(LogOutput::StdErr { message })) => out.deliver(false, &message).await,
            Some(Ok(_)) => Ok(()),
        };
        if let Err(s) = result {
            stop = Some(s);
        }
    }
    let mut frame = None;
    if stop.is_none() {
        if let Some(f) = filter.take() {
            let (rest, fr) = f.finish();
            frame = fr;
            if let Err(s) = out.deliver(true, &rest).await {
                stop = Some(s);
            }
        }
    }

    // The streams closed: the container is ending (or closed its stdio and runs on).
    let mut exit_code = None;
    let mut oom = false;
    if stop.is_none() {
        match exit_status(docker, &name, deadline, io.cancel).await {
            Ok((code, was_oom)) => {
                exit_code = Some(code);
                oom = was_oom;
            }
            Err(s) => stop = Some(s),
        }
    }
    let duration = started.elapsed();
    // Let go of the attach connection first: the engine will not finish removing a container
    // while it still copies output to a reader that stopped reading (the output cap).
    drop(output);
    stdin_task.abort();
    let remove_problem = owned.remove().await.err();

    let outcome = |status, detail: Option<String>| RunOutcome {
        status,
        exit_code,
        duration,
        tests: None,
        lint: None,
        detail: detail.map(|d| escape(&d)),
    };
    match stop {
        Some(Stop::Engine(d)) => (outcome(RunStatus::SandboxError, Some(d)), true),
        // A kill that did not happen leaves the run's end unknown: an infrastructure failure.
        Some(_) if remove_problem.is_some() => {
            (outcome(RunStatus::SandboxError, remove_problem), true)
        }
        Some(Stop::Timeout) => (outcome(RunStatus::Timeout, None), false),
        Some(Stop::OutputLimit) => (outcome(RunStatus::OutputLimit, None), false),
        Some(Stop::Cancelled) => (outcome(RunStatus::Cancelled, None), false),
        None => (
            classify(exit_code, oom, frame, &request.target, duration),
            false,
        ),
    }
}

/// The end of a run that ended by itself. Only a frame with the run's nonce (which no
/// candidate code ever held) can make it the sandbox's failure; an exit code cannot.
fn classify(
    exit_code: Option<i64>,
    oom: bool,
    frame: Option<Frame>,
    target: &Target,
    duration: Duration,
) -> RunOutcome {
    let mut o = RunOutcome {
        status: RunStatus::Error,
        exit_code,
        duration,
        tests: None,
        lint: None,
        detail: None,
    };
    if oom {
        o.status = RunStatus::MemoryLimit;
        return o;
    }
    if let Some(failure) = frame.as_ref().and_then(|f| f.failure.as_deref()) {
        o.status = RunStatus::SandboxError;
        o.detail = Some(escape(&format!("the sandbox runner failed: {failure}")));
        return o;
    }
    let frame = frame.unwrap_or_else(|| Frame {
        exit: -1,
        problem: Some("no report".into()),
        ..Frame::default()
    });
    if let Some(problem) = &frame.problem {
        if !matches!(target, Target::Program { .. }) {
            tracing::info!("sandbox run: {}", escape(problem));
        }
    }
    if let Target::Lint { .. } = target {
        if exit_code == Some(0) && frame.lint.is_some() {
            o.status = RunStatus::Ok;
        }
        o.lint = frame.lint;
    } else if let Target::Pytest { .. } = target {
        let report = frame.tests.map(|t| t.into_report());
        let all_passed = report
            .as_ref()
            .is_some_and(|r| r.failed == 0 && r.errors == 0);
        if exit_code == Some(0) && all_passed {
            o.status = RunStatus::Ok;
        }
        o.tests = report;
    } else if exit_code == Some(0) {
        o.status = RunStatus::Ok;
    }
    o
}

/// Waits for the container to exit (bounded by the deadline) and reads its OOM flag.
async fn exit_status(
    docker: &Docker,
    name: &str,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(i64, bool), Stop> {
    let wait = async {
        let mut stream = docker.wait_container(name, None);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports any non-zero exit as an error: an ordinary result here.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(Stop::Engine(format!("waiting for the container: {e}"))),
            None => Err(Stop::Engine(
                "the engine ended the wait without a status".into(),
            )),
        }
    };
    let code = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Stop::Cancelled),
        _ = sleep_until(deadline) => return Err(Stop::Timeout),
        r = wait => r?,
    };
    let inspect = timeout_at(
        Instant::now() + INSPECT,
        docker.inspect_container(name, None),
    )
    .await;
    match inspect {
        Ok(Ok(info)) => {
            let oom = info.state.and_then(|s| s.oom_killed).unwrap_or(false);
            Ok((code, oom))
        }
        Ok(Err(e)) => Err(Stop::Engine(format!("inspecting the container: {e}"))),
        Err(_) => Err(Stop::Engine("inspecting the container: no answer".into())),
    }
}

/// Where output goes: counted against the cap, sent as events, bounded by the deadline.
struct Output<'a> {
    events: &'a mpsc::Sender<RunEvent>,
    cancel: &'a CancellationToken,
    deadline: Instant,
    cap: usize,
    sent: usize,
}

impl Output<'_> {
    async fn deliver(&mut self, stdout: bool, bytes: &[u8]) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        let room = self.cap - self.sent;
        let over = bytes.len() > room;
        let keep = &bytes[..bytes.len().min(room)];
        self.sent += keep.len();
        if !keep.is_empty() {
            let event = if stdout {
                RunEvent::Stdout(keep.to_vec())
            } else {
                RunEvent::Stderr(keep.to_vec())
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(Stop::Cancelled),
                _ = sleep_until(self.deadline) => return Err(Stop::Timeout),
                sent = self.events.send(event) => if sent.is_err() { return Err(Stop::Cancelled) },
            }
        }
        if over {
            return Err(Stop::OutputLimit);
        }
        Ok(())
    }
}

/// Feeds the program's stdin: the request's bytes, then (when kept open) the handle's until
/// [`Stdin::Eof`] or the sender is dropped; then closes it.
async fn forward_stdin(
    mut input: Input,
    first: Option<Vec<u8>>,
    more: Option<mpsc::Receiver<Stdin>>,
) {
    if let Some(bytes) = first {
        if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    if let Some(mut more) = more {
        while let Some(Stdin::Data(bytes)) = more.recv().await {
            if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
                return;
            }
        }
    }
    let _ = input.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FrameTests;
    use crate::TestCase;

    fn case(outcome: &str) -> TestCase {
        TestCase {
            name: format!("t::{outcome}"),
            outcome: outcome.into(),
            message: None,
        }
    }

    fn program() -> Target {
        Target::Program {
            entry: "main.py".into(),
        }
    }

    fn pytest() -> Target {
        Target::Pytest {
            test_files: vec!["test_x.py".into()],
        }
    }

    #[test]
    fn oom_wins_over_the_exit_code() {
        let o = classify(Some(137), true, None, &program(), Duration::ZERO);
        assert_eq!(o.status, RunStatus::MemoryLimit);
    }

    #[test]
    fn only_a_frame_with_the_nonce_makes_a_runner_failure() {
        let failed = Frame {
            exit: 125,
            failure: Some("bad header\x1b[31m".into()),
            ..Frame::default()
        };
        let o = classify(Some(125), false, Some(failed), &program(), Duration::ZERO);
        assert_eq!(o.status, RunStatus::SandboxError);
        assert_eq!(
            o.detail.as_deref(),
            Some("the sandbox runner failed: bad header\\u{1b}[31m")
        );
        // Exit 125 and whatever on stderr, without the frame: the program's own error.
        let o = classify(Some(125), false, None, &program(), Duration::ZERO);
        assert_eq!((o.status, o.detail), (RunStatus::Error, None));
    }

    #[test]
    fn pytest_is_ok_only_with_a_report_and_no_failures() {
        let frame = |cases: Vec<TestCase>| Frame {
            exit: 0,
            tests: Some(FrameTests { cases }),
            ..Frame::default()
        };
        let o = classify(
            Some(0),
            false,
            Some(frame(vec![case("passed")])),
            &pytest(),
            Duration::ZERO,
        );
        assert_eq!(o.status, RunStatus::Ok);
        let o = classify(Some(0), false, None, &pytest(), Duration::ZERO);
        assert_eq!(o.status, RunStatus::Error);
        let o = classify(
            Some(1),
            false,
            Some(frame(vec![case("failed")])),
            &pytest(),
            Duration::ZERO,
        );
        assert_eq!(
            (o.status, o.tests.map(|t| t.failed)),
            (RunStatus::Error, Some(1))
        );
    }
}
