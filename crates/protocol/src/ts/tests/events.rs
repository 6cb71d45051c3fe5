//! The events of the socket and the timeline, and the runs they report, held to their
//! TypeScript.

use super::*;

fn tests() -> TestResults {
    TestResults {
        passed: 1,
        failed: 1,
        errors: 0,
        skipped: 0,
        cases: vec![TestCaseResult {
            name: "test_a".into(),
            outcome: "failed".into(),
            message: None,
        }],
    }
}

fn summary(finished: bool) -> RunSummary {
    RunSummary {
        run_id: "r1".into(),
        kind: RunKind::Test,
        by: Role::Candidate,
        environment: "python".into(),
        seq: Some(7),
        started_at: 1_700_000_000_000,
        finished_at: finished.then_some(1_700_000_001_000),
        status: if finished {
            RunStatus::Timeout
        } else {
            RunStatus::Running
        },
        exit_code: finished.then_some(137),
        duration_ms: finished.then_some(1000),
        code_seq: Some(6),
        tests: finished.then(|| TestCounts::from(&tests())),
        limit: finished.then_some(RunLimit::Wall { ms: 10_000 }),
    }
}

fn head(seq: u64, by: Actor) -> Head {
    Head {
        seq,
        at: 1_700_000_000_000 + seq as i64,
        by,
    }
}

fn room_events() -> Vec<RoomEvent> {
    use RoomEventBody as B;
    let candidate = Actor::Candidate;
    [
        (
            head(1, candidate),
            B::RunStarted {
                run_id: "r".into(),
                kind: RunKind::Run,
            },
        ),
        (
            head(1, candidate),
            B::RunQueued {
                run_id: "r".into(),
                ahead: 2,
            },
        ),
        (
            head(2, candidate),
            B::RunOutput {
                run_id: "r".into(),
                stream: Stream::Stderr,
                offset: 0,
                data: Some("x".into()),
                base64: None,
            },
        ),
        (
            head(3, candidate),
            B::RunOutput {
                run_id: "r".into(),
                stream: Stream::Stdout,
                offset: 7,
                data: None,
                base64: Some("AAA=".into()),
            },
        ),
        (
            head(4, Actor::Interviewer),
            B::RunInput {
                run_id: "r".into(),
                data: "1\n".into(),
                eof: true,
            },
        ),
        (
            head(5, candidate),
            B::RunFinished {
                run_id: "r".into(),
                status: RunStatus::Ok,
                limit: None,
                exit_code: None,
                duration_ms: 3,
                tests: None,
                lint: None,
            },
        ),
        (
            head(6, candidate),
            B::RunFinished {
                run_id: "r".into(),
                status: RunStatus::OutputLimit,
                limit: Some(RunLimit::Output { bytes: 1 << 20 }),
                exit_code: Some(1),
                duration_ms: 3,
                tests: Some(tests()),
                lint: Some(vec![]),
            },
        ),
        (
            head(7, Actor::Server),
            B::Question {
                question_id: "q".into(),
                title: "Q".into(),
                restored: false,
            },
        ),
        (
            head(8, Actor::Interviewer),
            B::Scorecard {
                action: "saved".into(),
                version: 2,
                person: Some("p-1".into()),
            },
        ),
        (
            head(9, Actor::Interviewer),
            B::Note {
                text: "n".into(),
                person: None,
            },
        ),
        (
            head(10, candidate),
            B::Signal {
                kind: SignalKind::Paste,
                size: None,
            },
        ),
        (head(11, Actor::Interviewer), B::End),
    ]
    .into_iter()
    .map(|(head, body)| RoomEvent::new(head, body))
    .collect()
}

#[test]
fn every_room_event_matches_its_typescript() {
    let events = room_events();
    for e in &events {
        // As staff receive it (with `seq`) and as the candidate does (without).
        check(e);
        check(&e.clone().seen_by(Role::Candidate));
    }
    // Output: `data` or `base64`, the other left out.
    let text = check(&events[2]);
    assert!(text.get("data").is_some() && text.get("base64").is_none());
    let bytes = check(&events[3]);
    assert!(bytes.get("data").is_none() && bytes.get("base64").is_some());
    // `limit` and `lint` are sent as `null`, not left out: the page sees the key.
    let json = check(&events[5]);
    assert_eq!(json["type"], "run.finished");
    assert_eq!(json["limit"], Value::Null);
    assert_eq!(json["lint"], Value::Null);
    assert_eq!(
        alternatives::<RoomEvent>().len(),
        10,
        "one alternative per variant"
    );
}

fn timeline_events() -> Vec<TimelineEvent> {
    use TimelineBody as B;
    let at = |seq: u64, by: Actor| Head { seq, at: 1, by };
    [
        (
            at(1, Actor::Candidate),
            B::Edit {
                last_seq: 3,
                last_at: 2,
                edits: 3,
                file: Some("shop/cart.py".into()),
            },
        ),
        (at(1, Actor::Reviewer), B::Join),
        (at(1, Actor::Reviewer), B::Leave),
        (
            at(1, Actor::Interviewer),
            B::Question {
                question_id: "gone".into(),
                title: None,
            },
        ),
        (
            at(1, Actor::Interviewer),
            B::Note {
                text: "t".into(),
                person: Some("p-1".into()),
                name: Some("Grace Hopper".into()),
            },
        ),
        (
            at(1, Actor::Interviewer),
            B::Scorecard {
                action: "submitted".into(),
                person: None,
                name: None,
            },
        ),
        (
            at(1, Actor::Candidate),
            B::Signal {
                kind: SignalKind::Blur,
                size: Some(3),
            },
        ),
        (at(1, Actor::Server), B::End),
        (
            at(1, Actor::Candidate),
            B::TakeHomeStarted {
                deadline: 1_801_000,
                time_limit_minutes: 30,
            },
        ),
        (
            at(1, Actor::Server),
            B::TakeHomeSubmitted {
                reason: crate::SubmitReason::TimeLimit,
                deadline: 1_801_000,
            },
        ),
        (
            at(1, Actor::Candidate),
            B::Board {
                last_seq: 2,
                last_at: 3,
                edits: 4,
                elements: 2,
            },
        ),
        (
            at(1, Actor::Candidate),
            B::FileCreated {
                path: "shop/cart.py".into(),
            },
        ),
        (
            at(1, Actor::Interviewer),
            B::FileRenamed {
                from: "a.py".into(),
                to: "b.py".into(),
            },
        ),
        (
            at(1, Actor::Candidate),
            B::FileDeleted {
                path: "b.py".into(),
            },
        ),
        (
            at(1, Actor::Interviewer),
            B::RunStarted {
                run_id: "r".into(),
                kind: RunKind::Lint,
                code_seq: 0,
                private: true,
            },
        ),
        (
            at(1, Actor::Interviewer),
            B::RunFinished {
                run_id: "r".into(),
                kind: RunKind::Test,
                status: RunStatus::MemoryLimit,
                exit_code: None,
                duration_ms: 1,
                tests: None,
            },
        ),
    ]
    .into_iter()
    .map(|(head, body)| TimelineEvent { head, body })
    .collect()
}

#[test]
fn every_timeline_event_matches_its_typescript() {
    let events = timeline_events();
    for e in &events {
        check(e);
    }
    // A question no longer in the bank: `title` is sent as null.
    assert_eq!(check(&events[3])["title"], Value::Null);
    assert_eq!(
        alternatives::<TimelineEvent>().len(),
        16,
        "one alternative per variant"
    );
    check(&Timeline {
        started_at: 1,
        ended_at: 2,
        last_seq: 3,
        events: events.clone(),
    });
    check(&Snapshot {
        seq: 1,
        at: 2,
        files: [("main.py".to_owned(), "print(1)".to_owned())].into(),
        board: BoardElement::from_json(r#"{"id": "e1", "type": "text", "text": "<b>"}"#)
            .into_iter()
            .collect(),
    });
}

#[test]
fn run_limits_are_tagged_by_kind() {
    for limit in [
        RunLimit::Wall { ms: 1 },
        RunLimit::Cpu { ms: 1 },
        RunLimit::Output { bytes: 1 },
        RunLimit::Memory { bytes: 1 },
    ] {
        check(&limit);
    }
    assert_eq!(
        serde_json::to_value(RunLimit::Cpu { ms: 5 }).ok(),
        Some(json!({"kind": "cpu", "ms": 5}))
    );
}

#[test]
fn run_history_matches_its_typescript() {
    check(&summary(false));
    // A run that never stopped on a limit still sends `limit: null`.
    let json = check(&summary(false));
    assert_eq!(json["limit"], Value::Null);
    check(&RunPage {
        runs: vec![summary(false), summary(true)],
        next: None,
    });
    // The candidate's: no seqs, and a cursor that is a run id.
    let json = check(&RunPage {
        runs: vec![summary(true).seen_by(Role::Candidate)],
        next: Some("r1".into()),
    });
    assert!(json["runs"][0].get("seq").is_none() && json["runs"][0].get("code_seq").is_none());
}

fn detail(lint: Option<Vec<LintFinding>>) -> RunDetail {
    RunDetail {
        summary: RunSummary {
            tests: None,
            ..summary(true)
        },
        code: "print(1)".into(),
        stdout: Some("1\n".into()),
        stdout_base64: None,
        stderr: None,
        stderr_base64: Some("/w==".into()),
        stdout_truncated: false,
        stderr_truncated: true,
        stdout_bytes: 2,
        stderr_bytes: 1,
        through_seq: Some(9),
        tests: Some(tests()),
        lint,
    }
}

#[test]
fn run_detail_json_is_what_the_mirror_says() {
    for (lint, role) in [
        (None, Role::Interviewer),
        (None, Role::Candidate),
        (
            Some(vec![LintFinding {
                path: "shop/cart.py".into(),
                line: 1,
                col: 2,
                code: "F401".into(),
                message: "unused".into(),
            }]),
            Role::Reviewer,
        ),
    ] {
        let d = detail(lint).seen_by(role);
        let json = check(&d);
        // One `tests`, the detail's with its cases.
        let text = serde_json::to_string(&d).unwrap_or_default();
        assert_eq!(text.matches("\"tests\":").count(), 1, "{text}");
        assert_eq!(json["tests"]["cases"][0]["name"], "test_a");
        let s = d.summary;
        let mirror = RunDetailJson {
            run_id: s.run_id,
            kind: s.kind,
            by: s.by,
            environment: s.environment,
            seq: s.seq,
            started_at: s.started_at,
            finished_at: s.finished_at,
            status: s.status,
            exit_code: s.exit_code,
            duration_ms: s.duration_ms,
            code_seq: s.code_seq,
            limit: s.limit,
            code: d.code,
            stdout: d.stdout,
            stdout_base64: d.stdout_base64,
            stderr: d.stderr,
            stderr_base64: d.stderr_base64,
            stdout_truncated: d.stdout_truncated,
            stderr_truncated: d.stderr_truncated,
            stdout_bytes: d.stdout_bytes,
            stderr_bytes: d.stderr_bytes,
            through_seq: d.through_seq,
            tests: d.tests,
            lint: d.lint.clone(),
        };
        assert_eq!(serde_json::to_value(&mirror).ok(), Some(json.clone()));
        // Left out, never `null`, when the run was not a lint.
        assert_eq!(json.get("lint").is_some(), d.lint.is_some());
    }
    let lint = alternatives::<RunDetail>()
        .remove(0)
        .into_iter()
        .find(|f| f.name == "lint");
    assert!(lint.is_some_and(|f| f.optional && !f.ty.contains("null")));
}
