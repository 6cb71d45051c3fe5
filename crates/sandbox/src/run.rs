//! One run inside a started, attached container: send the header and stdin, stream stdout and
//! stderr as they come, enforce wall time, the output cap and cancel, then classify the end.

use crate::container::{remove, Attached, Input};
use crate::protocol::{header, Frame, FrameFilter};
use crate::{RunEvent, RunOutcome, RunRequest, RunStatus, Target};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::Docker;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

/// Time allowed after the wall deadline for killing, inspecting and removing the container.
pub const TEARDOWN: Duration = Duration::from_secs(5);
/// What the runner prints on stderr when it fails before the program starts (exit 125).
const RUNNER_FAILED: &[u8] = b"duet-runner: ";

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
    pub stdin: mpsc::Receiver<Vec<u8>>,
    pub cancel: &'a CancellationToken,
}

/// Runs `request` in `container` and removes the container; never returns an error: every end
/// is a [`RunOutcome`].
pub async fn drive(
    docker: &Docker,
    container: Attached,
    request: RunRequest,
    nonce: &str,
    io: RunIo<'_>,
) -> RunOutcome {
    let Attached {
        name,
        mut output,
        mut input,
    } = container;
    let started = Instant::now();
    let deadline = started + request.limits.wall;
    let pytest = matches!(request.target, Target::Pytest { .. });

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
    let stdin_task = tokio::spawn(forward_stdin(input, request.stdin, io.stdin));

    let mut out = Output {
        events: io.events,
        cancel: io.cancel,
        deadline,
        cap: request.limits.output_bytes,
        sent: 0,
        stderr_head: Vec::new(),
    };
    let mut filter = pytest.then(|| FrameFilter::new(nonce));
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
    let removed = timeout_at(Instant::now() + TEARDOWN, remove(docker, &name)).await;
    let remove_problem = match removed {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("removing container {name}: {e}")),
        Err(_) => Some(format!(
            "removing container {name}: no answer within {TEARDOWN:?}"
        )),
    };

    let outcome = |status, detail| RunOutcome {
        status,
        exit_code,
        duration,
        tests: None,
        detail,
    };
    match stop {
        Some(Stop::Engine(d)) => outcome(RunStatus::SandboxError, Some(d)),
        // A kill that did not happen leaves the run's end unknown: an infrastructure failure.
        Some(_) if remove_problem.is_some() => outcome(RunStatus::SandboxError, remove_problem),
        Some(Stop::Timeout) => outcome(RunStatus::Timeout, None),
        Some(Stop::OutputLimit) => outcome(RunStatus::OutputLimit, None),
        Some(Stop::Cancelled) => outcome(RunStatus::Cancelled, None),
        None => classify(exit_code, oom, &out.stderr_head, frame, pytest, duration),
    }
}

/// The end of a run that ended by itself.
fn classify(
    exit_code: Option<i64>,
    oom: bool,
    stderr_head: &[u8],
    frame: Option<Frame>,
    pytest: bool,
    duration: Duration,
) -> RunOutcome {
    let mut o = RunOutcome {
        status: RunStatus::Error,
        exit_code,
        duration,
        tests: None,
        detail: None,
    };
    if oom {
        o.status = RunStatus::MemoryLimit;
    } else if exit_code == Some(125) && stderr_head.starts_with(RUNNER_FAILED) {
        o.status = RunStatus::SandboxError;
        let line = stderr_head
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        o.detail = Some(String::from_utf8_lossy(line).into_owned());
    } else if pytest {
        let frame = frame.unwrap_or(Frame {
            exit: -1,
            tests: None,
            problem: Some("no report".into()),
        });
        if let Some(problem) = &frame.problem {
            tracing::info!("pytest run: {problem}");
        }
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
        Instant::now() + TEARDOWN,
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
    /// The first bytes of stderr, to recognise a runner failure.
    stderr_head: Vec<u8>,
}

impl Output<'_> {
    async fn deliver(&mut self, stdout: bool, bytes: &[u8]) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        if !stdout && self.stderr_head.len() < 256 {
            let take = bytes.len().min(256 - self.stderr_head.len());
            self.stderr_head.extend_from_slice(&bytes[..take]);
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

/// Feeds the program's stdin: the request's bytes, then the handle's; closes it when the
/// handle's sender is dropped.
async fn forward_stdin(
    mut input: Input,
    first: Option<Vec<u8>>,
    mut more: mpsc::Receiver<Vec<u8>>,
) {
    if let Some(bytes) = first {
        if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    while let Some(bytes) = more.recv().await {
        if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
            return;
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

    #[test]
    fn oom_wins_over_the_exit_code() {
        let o = classify(Some(137), true, b"", None, false, Duration::ZERO);
        assert_eq!(o.status, RunStatus::MemoryLimit);
    }

    #[test]
    fn a_runner_failure_is_the_sandbox_s_not_the_candidate_s() {
        let o = classify(
            Some(125),
            false,
            b"duet-runner: bad header\n",
            None,
            false,
            Duration::ZERO,
        );
        assert_eq!(o.status, RunStatus::SandboxError);
        assert_eq!(o.detail.as_deref(), Some("duet-runner: bad header"));
        let o = classify(Some(125), false, b"Traceback", None, false, Duration::ZERO);
        assert_eq!(o.status, RunStatus::Error);
    }

    #[test]
    fn pytest_is_ok_only_with_a_report_and_no_failures() {
        let frame = |cases: Vec<TestCase>| Frame {
            exit: 0,
            tests: Some(FrameTests { cases }),
            problem: None,
        };
        let o = classify(
            Some(0),
            false,
            b"",
            Some(frame(vec![case("passed")])),
            true,
            Duration::ZERO,
        );
        assert_eq!(o.status, RunStatus::Ok);
        let o = classify(Some(0), false, b"", None, true, Duration::ZERO);
        assert_eq!(o.status, RunStatus::Error);
        let o = classify(
            Some(1),
            false,
            b"",
            Some(frame(vec![case("failed")])),
            true,
            Duration::ZERO,
        );
        assert_eq!(
            (o.status, o.tests.map(|t| t.failed)),
            (RunStatus::Error, Some(1))
        );
    }
}
