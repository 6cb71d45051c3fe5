//! One run inside a started, attached container: send the header and stdin, stream stdout and
//! stderr as they come, enforce wall time, CPU time, the output cap and cancel, then classify
//! the end.

use crate::container::{Attached, Input};
use crate::escape::escape;
use crate::protocol::{header, Frame, FrameFilter};
use crate::{Limits, RunEvent, RunOutcome, RunRequest, RunStatus, Stdin, Target};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::StatsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

/// Time allowed for inspecting the container after it exited.
const INSPECT: Duration = Duration::from_secs(5);
/// Pause before the CPU watch asks the engine for figures again after a stats stream ended.
const STATS_RETRY: Duration = Duration::from_millis(500);

/// Why the server stopped a run before it ended by itself.
enum Stop {
    /// The wall-time limit in force (the interactive one when stdin was kept open).
    Wall(Duration),
    /// The container's CPU time reached this limit.
    Cpu(Duration),
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
    // A person answering `input()` takes minutes; the CPU limit keeps a busy loop short.
    let wall = if request.keep_stdin_open {
        request.limits.interactive_wall
    } else {
        request.limits.wall
    };
    let deadline = started + wall;
    let mut cpu = cpu_watch(docker, &name, &request.limits, wall);

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
        wall,
        cap: request.limits.output_bytes,
        sent: 0,
    };
    // Every target: the runner's failure frame can come before a program starts.
    let mut filter = Some(FrameFilter::new(nonce));
    while stop.is_none() {
        let item = tokio::select! {
            biased;
            _ = io.cancel.cancelled() => { stop = Some(Stop::Cancelled); break }
            _ = sleep_until(deadline) => { stop = Some(Stop::Wall(wall)); break }
            limit = &mut cpu => { stop = Some(Stop::Cpu(limit)); break }
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
        let end = RunEnd {
            deadline,
            wall,
            cpu: &mut cpu,
            cancel: io.cancel,
        };
        match exit_status(docker, &name, end).await {
            Ok((code, was_oom)) => {
                exit_code = Some(code);
                oom = was_oom;
            }
            Err(s) => stop = Some(s),
        }
    }
    let duration = started.elapsed();
    drop(cpu);
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
        Some(Stop::Wall(wall)) => {
            let why = format!("stopped after {} of wall time", time(wall));
            (outcome(RunStatus::Timeout, Some(why)), false)
        }
        Some(Stop::Cpu(cpu)) => {
            let why = format!("stopped after {} of CPU time", time(cpu));
            (outcome(RunStatus::Timeout, Some(why)), false)
        }
        Some(Stop::OutputLimit) => {
            let cap = bytes(request.limits.output_bytes as u64);
            let why = format!("output over {cap}: the rest was dropped");
            (outcome(RunStatus::OutputLimit, Some(why)), false)
        }
        Some(Stop::Cancelled) => (outcome(RunStatus::Cancelled, None), false),
        None => {
            let mut o = classify(exit_code, oom, frame, &request.target, duration);
            if o.status == RunStatus::MemoryLimit {
                let limit = bytes(u64::try_from(request.limits.memory_bytes).unwrap_or(0));
                o.detail = Some(format!("stopped at the memory limit of {limit}"));
            }
            (o, false)
        }
    }
}

/// A duration as a person reads a limit: `5 min`, `10 s`, `2.5 s`.
fn time(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A size as a person reads a limit: `1 MiB`, `64 KiB`, `1000 bytes`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Resolves with the CPU limit once the container's CPU time (every process in it, as the
/// engine's cgroup figures say, about once a second) has reached it.
type CpuWatch<'a> = Pin<Box<dyn Future<Output = Duration> + Send + 'a>>;

/// The CPU watch for a run whose wall limit is `wall`; one that never resolves where the
/// limit cannot bind first (wall × CPUs within it), which spares a stats stream per run.
fn cpu_watch<'a>(
    docker: &'a Docker,
    name: &'a str,
    limits: &Limits,
    wall: Duration,
) -> CpuWatch<'a> {
    let limit = limits.cpu;
    let most = wall.as_secs_f64() * limits.nano_cpus as f64 / 1e9;
    if most <= limit.as_secs_f64() {
        return Box::pin(std::future::pending());
    }
    Box::pin(async move {
        loop {
            let options = StatsOptions {
                stream: true,
                one_shot: false,
            };
            let mut samples = docker.stats(name, Some(options));
            while let Some(Ok(sample)) = samples.next().await {
                let used = sample
                    .cpu_stats
                    .and_then(|c| c.cpu_usage)
                    .and_then(|u| u.total_usage)
                    .map(Duration::from_nanos);
                if used.is_some_and(|u| u >= limit) {
                    return limit;
                }
            }
            // The stream ended or broke: the container is ending (the output stream says so)
            // or the engine hiccuped. Ask again in a moment; the wall limit still holds.
            tokio::time::sleep(STATS_RETRY).await;
        }
    })
}

/// What bounds the wait for a container's exit.
struct RunEnd<'a, 'b> {
    deadline: Instant,
    wall: Duration,
    cpu: &'b mut CpuWatch<'a>,
    cancel: &'b CancellationToken,
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
    end: RunEnd<'_, '_>,
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
        _ = end.cancel.cancelled() => return Err(Stop::Cancelled),
        _ = sleep_until(end.deadline) => return Err(Stop::Wall(end.wall)),
        limit = end.cpu => return Err(Stop::Cpu(limit)),
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
    /// The wall limit the deadline stands for.
    wall: Duration,
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
                _ = sleep_until(self.deadline) => return Err(Stop::Wall(self.wall)),
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
    fn limits_read_as_a_person_says_them() {
        assert_eq!(time(Duration::from_secs(300)), "5 min");
        assert_eq!(time(Duration::from_secs(10)), "10 s");
        assert_eq!(time(Duration::from_secs(90)), "90 s");
        assert_eq!(time(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(64 << 10), "64 KiB");
        assert_eq!(bytes(1000), "1000 bytes");
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
