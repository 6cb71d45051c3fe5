//! One run inside a started, attached container: send the header and stdin, stream stdout and
//! stderr as they come, enforce wall time, CPU time, the output cap and cancel, then classify
//! the end.

use crate::container::{Attached, Input};
use crate::escape::escape;
use crate::protocol::{header, Frame, FrameFilter};
use crate::{Limits, RunEvent, RunLimit, RunOutcome, RunRequest, RunStatus, Stdin, Target};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::StatsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{self, Permit};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

/// Time allowed for inspecting the container after it exited.
const INSPECT: Duration = Duration::from_secs(5);
/// Output read ahead of a consumer that is behind, at most (beyond one chunk).
const READ_AHEAD: usize = 4 << 20;
/// Largest output event made by merging chunks (a chunk larger than this goes as it is).
const MAX_EVENT: usize = 64 << 10;
/// Pause before the CPU watch asks the engine for figures again after a stats stream ended.
const STATS_RETRY: Duration = Duration::from_millis(500);

/// Why the server stopped a run before it ended by itself.
enum Stop {
    /// The wall-time limit in force (the interactive one when stdin was kept open).
    Wall(Duration),
    /// The container's CPU time reached this limit.
    Cpu(Duration),
    /// A REPL had no input for this long.
    Idle(Duration),
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
    /// Cancelled when the engine is found down: the run ends at once as `sandbox_error`.
    pub lost: &'a CancellationToken,
    /// Where the engine answers, for messages.
    pub engine: &'a str,
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
    // Tests and lint read no console, whatever their stdin.
    // A REPL is a session a person works in, stopped after a while without input.
    let interactive = request.keep_stdin_open && matches!(request.target, Target::Program { .. });
    let repl = matches!(request.target, Target::Repl { .. });
    let wall = if repl {
        request.limits.repl_wall
    } else if interactive {
        request.limits.interactive_wall
    } else {
        request.limits.wall
    };
    let idle = repl.then_some(request.limits.repl_idle);
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
    // When input last came (the start counts as input), for the REPL's idle limit.
    let (typed_tx, typed) = watch::channel(started);
    let stdin_task = tokio::spawn(forward_stdin(input, request.stdin, more, typed_tx));

    // Output is read as it comes and sent as the consumer takes it. While the consumer is
    // behind, what comes meanwhile is read ahead (up to READ_AHEAD) and merged into few large
    // events: a flood written a byte at a time neither blocks the program on a slow consumer
    // nor reaches the consumer as a million events queued in front of the run's end.
    let mut out = Output::new(request.limits.output_bytes);
    // Every target: the runner's failure frame can come before a program starts.
    let mut filter = Some(FrameFilter::new(nonce));
    let mut frame = None;
    let mut ended = false;
    while stop.is_none() {
        if out.pending.is_empty() {
            if out.over {
                stop = Some(Stop::OutputLimit);
                break;
            }
            if ended {
                break;
            }
        }
        let reading = !ended && out.reading();
        let idle_at = idle.map(|i| *typed.borrow() + i);
        tokio::select! {
            biased;
            _ = io.cancel.cancelled() => stop = Some(Stop::Cancelled),
            _ = io.lost.cancelled() => stop = Some(Stop::Engine(lost(io.engine, &name))),
            _ = sleep_until(deadline) => stop = Some(Stop::Wall(wall)),
            limit = &mut cpu => stop = Some(Stop::Cpu(limit)),
            // Input meanwhile moves the idle deadline: the loop looks again.
            _ = sleep_until(idle_at.unwrap_or(deadline)), if idle_at.is_some() => {
                if let Some(i) = idle.filter(|i| Instant::now() >= *typed.borrow() + *i) {
                    stop = Some(Stop::Idle(i));
                }
            }
            _ = io.events.closed() => stop = Some(Stop::Cancelled),
            permit = io.events.reserve(), if !out.pending.is_empty() => match permit {
                Ok(permit) => out.send(permit),
                Err(_) => stop = Some(Stop::Cancelled),
            },
            item = output.next(), if reading => match item {
                None => {
                    ended = true;
                    if let Some(f) = filter.take() {
                        let (rest, fr) = f.finish();
                        frame = fr;
                        out.take(true, rest);
                    }
                }
                Some(Err(e)) => {
                    stop = Some(Stop::Engine(format!("the output stream broke: {e}")))
                }
                Some(Ok(LogOutput::StdOut { message })) => {
                    let visible = match filter.as_mut() {
                        Some(f) => f.push(&message),
                        None => message.to_vec(),
                    };
                    out.take(true, visible);
                }
                Some(Ok(LogOutput::StdErr { message })) => out.take(false, message.to_vec()),
                Some(Ok(_)) => {}
            },
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
            lost: io.lost,
            engine: io.engine,
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
    let remove_problem = match stop {
        // The program ended by itself (its container has exited), or the engine failed: the
        // run's end is known, and waiting for the removal would only hold up the run's slot and
        // its end (the engine may never answer). The guard removes the container in the
        // background, holding its uid until it is gone (shutdown waits for it), and the reaper
        // does once the engine is back.
        None | Some(Stop::Engine(_)) => {
            drop(owned);
            None
        }
        // Stopped by us: the run's end is known only once the kill happened.
        Some(_) => owned.remove().await.err(),
    };

    let outcome = |status, detail: Option<String>, limit| RunOutcome {
        status,
        exit_code,
        duration,
        tests: None,
        lint: None,
        detail: detail.map(|d| escape(&d)),
        limit,
    };
    let ms = |d: Duration| d.as_millis() as u64;
    match stop {
        Some(Stop::Engine(d)) => (outcome(RunStatus::SandboxError, Some(d), None), true),
        // A kill that did not happen leaves the run's end unknown: an infrastructure failure.
        Some(_) if remove_problem.is_some() => {
            (outcome(RunStatus::SandboxError, remove_problem, None), true)
        }
        Some(Stop::Wall(wall)) => {
            let why = format!("stopped after {} of wall time", time(wall));
            let limit = RunLimit::Wall { ms: ms(wall) };
            (outcome(RunStatus::Timeout, Some(why), Some(limit)), false)
        }
        Some(Stop::Idle(idle)) => {
            let why = format!("stopped after {} without input", time(idle));
            let limit = RunLimit::Idle { ms: ms(idle) };
            (outcome(RunStatus::Timeout, Some(why), Some(limit)), false)
        }
        Some(Stop::Cpu(cpu)) => {
            let why = format!("stopped after {} of CPU time", time(cpu));
            let limit = RunLimit::Cpu { ms: ms(cpu) };
            (outcome(RunStatus::Timeout, Some(why), Some(limit)), false)
        }
        Some(Stop::OutputLimit) => {
            let cap = request.limits.output_bytes as u64;
            let why = format!("output over {}: the rest was dropped", bytes(cap));
            let limit = RunLimit::Output { bytes: cap };
            (
                outcome(RunStatus::OutputLimit, Some(why), Some(limit)),
                false,
            )
        }
        Some(Stop::Cancelled) => (outcome(RunStatus::Cancelled, None, None), false),
        None => {
            let mut o = classify(exit_code, oom, frame, &request.target, duration);
            if o.status == RunStatus::MemoryLimit {
                let limit = u64::try_from(request.limits.memory_bytes).unwrap_or(0);
                o.detail = Some(format!("stopped at the memory limit of {}", bytes(limit)));
                o.limit = Some(RunLimit::Memory { bytes: limit });
            }
            (o, false)
        }
    }
}

fn lost(engine: &str, container: &str) -> String {
    format!(
        "the sandbox engine at {engine} stopped answering during the run (container {container})"
    )
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
    if !cpu_can_bind(limits, wall) {
        return Box::pin(std::future::pending());
    }
    Box::pin(async move {
        let mut warned = false;
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
                match used {
                    Some(used) if used >= limit => return limit,
                    Some(_) => {}
                    None if !warned => {
                        warned = true;
                        tracing::warn!(
                            container = name,
                            "the engine reports no CPU usage for a sandbox container: its CPU \
                             limit cannot be enforced, only its wall limit"
                        );
                    }
                    None => {}
                }
            }
            // The stream ended or broke: the container is ending (the output stream says so)
            // or the engine hiccuped. Ask again in a moment; the wall limit still holds.
            tokio::time::sleep(STATS_RETRY).await;
        }
    })
}

/// Whether a run with this wall limit could use more CPU time than its CPU limit.
fn cpu_can_bind(limits: &Limits, wall: Duration) -> bool {
    let most = wall.as_secs_f64() * limits.nano_cpus as f64 / 1e9;
    most > limits.cpu.as_secs_f64()
}

/// What bounds the wait for a container's exit.
struct RunEnd<'a, 'b> {
    deadline: Instant,
    wall: Duration,
    cpu: &'b mut CpuWatch<'a>,
    cancel: &'b CancellationToken,
    lost: &'b CancellationToken,
    engine: &'b str,
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
        limit: None,
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
        if !matches!(target, Target::Program { .. } | Target::Repl { .. }) {
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
        _ = end.lost.cancelled() => return Err(Stop::Engine(lost(end.engine, name))),
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

/// Output taken from the container, counted against the cap, waiting for the consumer.
struct Output {
    cap: usize,
    /// Bytes taken so far, against the cap.
    kept: usize,
    /// More came than the cap holds: nothing more is taken.
    over: bool,
    /// Events not yet sent (true: stdout), in order; consecutive ones of one stream merged up
    /// to MAX_EVENT bytes.
    pending: VecDeque<(bool, Vec<u8>)>,
    pending_bytes: usize,
}

impl Output {
    fn new(cap: usize) -> Self {
        Output {
            cap,
            kept: 0,
            over: false,
            pending: VecDeque::new(),
            pending_bytes: 0,
        }
    }

    /// Whether more output may be read now: not over the cap, and the consumer not too far
    /// behind.
    fn reading(&self) -> bool {
        !self.over && self.pending_bytes < READ_AHEAD
    }

    /// Takes what a stream gave, up to the cap.
    fn take(&mut self, stdout: bool, mut bytes: Vec<u8>) {
        if self.over || bytes.is_empty() {
            return;
        }
        let room = self.cap - self.kept;
        if bytes.len() > room {
            bytes.truncate(room);
            self.over = true;
        }
        if bytes.is_empty() {
            return;
        }
        self.kept += bytes.len();
        self.pending_bytes += bytes.len();
        match self.pending.back_mut() {
            Some((s, last)) if *s == stdout && last.len() + bytes.len() <= MAX_EVENT => {
                last.extend_from_slice(&bytes)
            }
            _ => self.pending.push_back((stdout, bytes)),
        }
    }

    /// Sends the oldest pending event through a reserved place.
    fn send(&mut self, permit: Permit<'_, RunEvent>) {
        if let Some((stdout, bytes)) = self.pending.pop_front() {
            self.pending_bytes -= bytes.len();
            permit.send(if stdout {
                RunEvent::Stdout(bytes)
            } else {
                RunEvent::Stderr(bytes)
            });
        }
    }
}

/// Feeds the program's stdin: the request's bytes, then (when kept open) the handle's until
/// [`Stdin::Eof`] or the sender is dropped; then closes it.
async fn forward_stdin(
    mut input: Input,
    first: Option<Vec<u8>>,
    more: Option<mpsc::Receiver<Stdin>>,
    typed: watch::Sender<Instant>,
) {
    if let Some(bytes) = first {
        if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    if let Some(mut more) = more {
        while let Some(Stdin::Data(bytes)) = more.recv().await {
            typed.send_replace(Instant::now());
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
    fn pending_output_merges_one_stream_in_order_and_keeps_exactly_the_cap() {
        let mut out = Output::new(10);
        out.take(true, b"ab".to_vec());
        out.take(true, b"cd".to_vec());
        out.take(false, b"ef".to_vec());
        out.take(true, b"gh".to_vec());
        assert!(out.reading());
        out.take(true, b"ijk".to_vec());
        assert!(out.over && !out.reading());
        out.take(false, b"l".to_vec());
        let pending: Vec<_> = out.pending.iter().cloned().collect();
        assert_eq!(
            pending,
            vec![
                (true, b"abcd".to_vec()),
                (false, b"ef".to_vec()),
                (true, b"ghij".to_vec())
            ]
        );
        assert_eq!((out.kept, out.pending_bytes), (10, 10));
        // Exactly the cap is not over it.
        let mut out = Output::new(4);
        out.take(false, b"abcd".to_vec());
        assert!(!out.over);
    }

    #[test]
    fn merged_events_stay_within_their_size() {
        let mut out = Output::new(1 << 20);
        for _ in 0..(MAX_EVENT / 1000 + 1) {
            out.take(true, vec![0; 1000]);
        }
        assert_eq!(out.pending.len(), 2);
        assert!(out.pending.iter().all(|(_, b)| b.len() <= MAX_EVENT));
    }

    #[test]
    fn cpu_is_watched_only_where_it_can_bind_before_the_wall_limit() {
        let limits = Limits::default();
        assert!(!cpu_can_bind(&limits, limits.wall), "10 s of one CPU");
        assert!(cpu_can_bind(&limits, limits.interactive_wall));
        let two_cpus = Limits {
            nano_cpus: 2_000_000_000,
            ..Limits::default()
        };
        assert!(cpu_can_bind(&two_cpus, two_cpus.wall));
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
