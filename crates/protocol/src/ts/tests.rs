//! Each generated type held to the JSON the server sends: for samples of every kind of value,
//! the keys of the JSON are exactly the keys the TypeScript declares (a `?` key may be absent),
//! a `null` appears only where the TypeScript allows one, and a tagged union's tag picks the
//! alternative. The TypeScript is read from ts-rs's own output (`TS::inline`), so a serde
//! attribute ts-rs misread would fail here.

use super::*;
use crate::*;
use serde::Serialize;
use serde_json::{json, Value};

/// One field of a TypeScript object type: its name, whether it has `?`, its type.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    optional: bool,
    ty: String,
}

fn strip_comments(ts: &str) -> String {
    let mut out = String::new();
    let mut rest = ts;
    while let Some(start) = rest.find("/**") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("*/")
            .map_or(rest.len(), |e| start + e + 2);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Splits `s` at `sep` where no bracket or string is open.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '<' | '(' | '[' if !quoted => depth += 1,
            '}' | '>' | ')' | ']' if !quoted => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 && !quoted {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The fields of one object type `{ a: T, b?: U, }`.
fn object_fields(alt: &str) -> Vec<Field> {
    let body = alt
        .strip_prefix('{')
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an object type: {alt}"));
    split_top(body, ',')
        .into_iter()
        .map(|f| {
            let (name, ty) = f.split_once(':').unwrap_or_else(|| panic!("{f}"));
            let name = name.trim().trim_matches('"');
            Field {
                name: name.trim_end_matches('?').to_owned(),
                optional: name.ends_with('?'),
                ty: ty.trim().to_owned(),
            }
        })
        .collect()
}

/// The alternatives of a union of object types, each alternative's fields. A flattened part
/// is an intersection, `{ head } & ({ a } | { b })`: each alternative is the head's fields and
/// one of the union's.
fn alternatives<T: TS + ?Sized>() -> Vec<Vec<Field>> {
    let cfg = config(Path::new("."));
    let ts = strip_comments(&T::inline(&cfg));
    let mut alts: Vec<Vec<Field>> = vec![Vec::new()];
    for part in split_top(&ts, '&') {
        let part = part
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or(&part);
        let options: Vec<Vec<Field>> = split_top(part, '|')
            .into_iter()
            .map(|alt| object_fields(&alt))
            .collect();
        alts = alts
            .into_iter()
            .flat_map(|fields| {
                options.iter().map(move |more| {
                    let mut all = fields.clone();
                    all.extend(more.iter().cloned());
                    all
                })
            })
            .collect();
    }
    alts
}

/// Whether a JSON value fits a field's declared type at the top level: `null` only where
/// the type names it, a string literal (a tag) only with that string.
fn fits(value: &Value, ty: &str) -> bool {
    let options = split_top(ty, '|');
    match value {
        Value::Null => options.iter().any(|o| o == "null"),
        Value::String(s) if options.iter().all(|o| o.starts_with('"')) => {
            options.iter().any(|o| o.trim_matches('"') == s)
        }
        _ => options.iter().any(|o| o != "null"),
    }
}

/// Serializes `value` as the server does and checks it against `T`'s TypeScript.
fn check<T: TS + Serialize>(value: &T) -> Value {
    let json = serde_json::to_value(value).expect("serializes");
    let Value::Object(map) = &json else {
        panic!("{json} is not an object")
    };
    let alts = alternatives::<T>();
    let matching: Vec<_> = alts
        .iter()
        .filter(|fields| {
            fields
                .iter()
                .filter(|f| f.ty.starts_with('"'))
                .all(|f| map.get(&f.name).is_some_and(|v| fits(v, &f.ty)))
        })
        .collect();
    assert_eq!(matching.len(), 1, "{json}: one alternative of {alts:?}");
    let fields = matching[0];
    for f in fields {
        match map.get(&f.name) {
            None => assert!(f.optional, "{json}: `{}` is required in TS", f.name),
            Some(v) => assert!(fits(v, &f.ty), "{json}: `{}` is not {}", f.name, f.ty),
        }
    }
    for key in map.keys() {
        assert!(
            fields.iter().any(|f| &f.name == key),
            "{json}: `{key}` is not declared in {fields:?}"
        );
    }
    json
}

/// The names the TypeScript requires (no `?`).
fn required<T: TS>() -> Vec<String> {
    let alts = alternatives::<T>();
    assert_eq!(alts.len(), 1);
    alts[0]
        .iter()
        .filter(|f| !f.optional)
        .map(|f| f.name.clone())
        .collect()
}

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

fn question() -> Question {
    Question {
        summary: QuestionSummary {
            id: "two-sum".into(),
            title: "Two sum".into(),
            kind: QuestionKind::Coding,
            difficulty: Difficulty::Easy,
            tags: vec!["arrays".into()],
            areas: vec![Area::CodingQuality],
        },
        prompt: "p".into(),
        starter: "s".into(),
        solution: "x".into(),
        visible_tests: "v".into(),
        hidden_tests: "h".into(),
        hints: Hints::default(),
        follow_ups: vec![],
        board: vec![],
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
            },
        ),
        (head(9, Actor::Interviewer), B::Note { text: "n".into() }),
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
        (at(1, Actor::Interviewer), B::Note { text: "t".into() }),
        (
            at(1, Actor::Interviewer),
            B::Scorecard {
                action: "submitted".into(),
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
        10,
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

#[test]
fn questions_match_their_typescript() {
    let q = question();
    check(&q.summary);
    check(&q.for_candidate());
    // Flattened: the summary's keys sit beside the body's.
    let json = check(&q);
    assert_eq!(json["id"], "two-sum");
    // Untagged: a full question or the candidate's part, told apart by their keys.
    let cfg = config(Path::new("."));
    assert_eq!(QuestionView::inline(&cfg), "Question | CandidateQuestion");
    for view in [
        QuestionView::Full(Box::new(q.clone())),
        QuestionView::Candidate(q.for_candidate()),
    ] {
        let json = serde_json::to_value(&view).unwrap_or_default();
        assert!(json.get("type").is_none() && json.get("Full").is_none());
        check(&InterviewView {
            id: InterviewId::parse("abc").unwrap_or_else(|| unreachable!()),
            title: "t".into(),
            candidate_name: "c".into(),
            role: Role::Reviewer,
            created_at: 1,
            question: Some(view),
            status: InterviewStatus::Live,
        });
    }
}

#[test]
fn review_bodies_match_their_typescript() {
    check(&Scorecard::default());
    let card = Scorecard {
        ratings: [(Area::Debugging, Some(3)), (Area::SystemDesign, None)].into(),
        notes: "n".into(),
        recommendation: Some(Recommendation::StrongYes),
        level: Some(Level::Senior),
        evidence: [(
            Area::Debugging,
            vec![Evidence::Seq(4), Evidence::Run("r".into())],
        )]
        .into(),
        version: 2,
        updated_at: Some(1),
        submitted_at: None,
    };
    let json = check(&card);
    assert_eq!(json["evidence"]["debugging"], json!([4, "r"]));
    check(&NoteView {
        text: "t".into(),
        at: 1,
        seq: 2,
        author: Author {
            id: Some("p1".into()),
            name: "Ada".into(),
        },
    });
}

#[test]
fn interview_bodies_match_their_typescript() {
    let id = InterviewId::parse("abc").unwrap_or_else(|| unreachable!());
    let per = PerRole {
        interviewer: "i".into(),
        candidate: "c".into(),
        reviewer: "r".into(),
    };
    check(&CreatedInterview {
        id: id.clone(),
        tokens: per.clone(),
        urls: per,
    });
    let json = check(&InterviewSummary {
        interview: Interview {
            id,
            title: "t".into(),
            candidate_name: "c".into(),
            created_at: 1,
            candidate_ref: None,
            question_id: Some("q".into()),
        },
        status: InterviewStatus::Scheduled,
    });
    assert_eq!(json["candidate_ref"], Value::Null);
    check(&ErrorBody {
        error: ErrorDetail {
            code: "not_found".into(),
            message: "no such interview".into(),
        },
    });
    check(&Identity::for_role(Role::Candidate, "Ada"));
}

/// A request body's TypeScript requires exactly what the server cannot do without; the rest
/// (`#[serde(default)]`) the page may leave out.
#[test]
fn request_bodies_require_what_the_server_requires() {
    fn accepts<T: serde::de::DeserializeOwned>(body: Value) -> bool {
        serde_json::from_value::<T>(body).is_ok()
    }
    assert_eq!(required::<StartRun>(), ["kind"]);
    assert!(accepts::<StartRun>(json!({"kind": "run"})));
    assert!(accepts::<StartRun>(json!({"kind": "run", "stdin": null})));
    assert!(required::<RunStdin>().is_empty());
    assert!(accepts::<RunStdin>(json!({})));
    assert_eq!(required::<ScorecardUpdate>(), ["version"]);
    assert!(accepts::<ScorecardUpdate>(json!({"version": 0})));
    assert_eq!(required::<NewSignal>(), ["kind"]);
    assert!(accepts::<NewSignal>(json!({"kind": "blur"})));
    assert_eq!(required::<CreateInterview>(), ["title", "candidate_name"]);
    assert!(accepts::<CreateInterview>(
        json!({"title": "t", "candidate_name": "c"})
    ));
    assert_eq!(required::<NewNote>(), ["text"]);
    assert_eq!(required::<SwitchQuestion>(), ["question_id"]);
    // Every body refuses what it does not know, so a misspelt key is an error, not ignored.
    assert!(!accepts::<StartRun>(json!({"kind": "run", "stdn": "x"})));
}

/// 64-bit integers are `number`s: a `bigint` would not match what `JSON.parse` returns.
#[test]
fn no_bigint_reaches_the_page() {
    let cfg = config(Path::new("."));
    for decl in [
        RoomEvent::decl(&cfg),
        TimelineEvent::decl(&cfg),
        RunSummary::decl(&cfg),
        Scorecard::decl(&cfg),
        Snapshot::decl(&cfg),
    ] {
        assert!(!decl.contains("bigint"), "{decl}");
    }
}

#[test]
fn people_bodies_match_their_typescript() {
    let person = Person {
        id: "p1".into(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        role: StaffRole::Admin,
        state: PersonState::Active,
        created_at: 1,
        password_set: true,
    };
    check(&person);
    check(&SessionView {
        person: person.clone(),
        expires_at: 2,
    });
    check(&PasswordLink {
        person,
        link: "http://x/password#token=t".into(),
        expires_at: 3,
    });
    let info = ApiTokenInfo {
        id: "t1".into(),
        name: "CI".into(),
        created_at: 4,
        last_used_at: None,
    };
    check(&info);
    // Flattened: the token beside the listing's keys.
    let created = check(&ApiTokenCreated {
        info,
        token: "duet_pt_x".into(),
    });
    assert_eq!(created["token"], "duet_pt_x");
    let interview = Interview {
        id: InterviewId::parse("abc").unwrap_or_else(|| unreachable!()),
        title: "t".into(),
        candidate_name: "c".into(),
        created_at: 1,
        candidate_ref: None,
        question_id: Some("two-sum".into()),
    };
    let mine = MyInterview {
        summary: InterviewSummary {
            interview,
            status: InterviewStatus::Live,
        },
        role: Role::Interviewer,
    };
    // Flattened twice: the interview's keys, its status and the person's role side by side.
    let json = check(&mine);
    assert_eq!(
        (json["id"].as_str(), json["role"].as_str()),
        (Some("abc"), Some("interviewer"))
    );
    check(&MyInterviews {
        upcoming: Vec::new(),
        live: vec![mine],
        ended: Vec::new(),
    });
    for action in AuditAction::ALL {
        // The store keeps `as_str`; the API sends serde's name: one name either way.
        assert_eq!(
            serde_json::to_value(action).ok(),
            Some(json!(action.as_str()))
        );
        assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        check(&AuditPage {
            entries: vec![AuditEntry {
                id: 1,
                at: 2,
                actor: "admin-token".into(),
                action,
                target: None,
                from: Some("127.0.0.1".into()),
            }],
            next_before: None,
        });
    }
    check(&Panel {
        interviewers: vec!["p1".into()],
        reviewers: Vec::new(),
    });
}
