//! The bodies of the HTTP API (questions, reviews, interviews, people), sent and received,
//! held to their TypeScript.

use super::*;

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
        environment: "python".into(),
        entry: "main.py".into(),
        starter: [("main.py".into(), "s".into())].into(),
        solution: [("main.py".into(), "x".into())].into(),
        data: vec![],
        visible_tests: [("test_visible.py".into(), "v".into())].into(),
        hidden_tests: [("test_hidden.py".into(), "h".into())].into(),
        hints: Hints::default(),
        follow_ups: vec![],
        board: vec![],
    }
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
            mode: crate::InterviewMode::TakeHome,
            environment: "python-data".into(),
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
            mode: crate::InterviewMode::Live,
            time_limit_minutes: None,
            environment: "python".into(),
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
        mode: crate::InterviewMode::Live,
        time_limit_minutes: None,
        environment: "python".into(),
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

#[test]
fn take_home_bodies_match_their_typescript() {
    let started = crate::TakeHomeStarted {
        started_at: 1,
        deadline: 1_800_001,
        time_limit_minutes: 30,
    };
    let submitted = crate::TakeHomeSubmitted {
        reason: crate::SubmitReason::TimeLimit,
        at: 1_800_002,
        started_at: 1,
        deadline: 1_800_001,
    };
    check(&started);
    check(&submitted);
    for (stage, question) in [
        (crate::TakeHomeStage::NotStarted, None),
        (
            crate::TakeHomeStage::Running,
            Some(QuestionView::Candidate(question().for_candidate())),
        ),
    ] {
        check(&crate::TakeHomeView {
            stage,
            title: "Screen".into(),
            candidate_name: "Ada".into(),
            time_limit_minutes: 30,
            question_title: Some("Two sum".into()),
            question,
            started: Some(started),
            submitted: Some(submitted),
            server_now: 5,
            recorded: vec!["every keystroke".into()],
        });
    }
    check(&crate::TakeHomeCheck {
        ok: true,
        output: "duet check ok 3.11.2\n".into(),
        duration_ms: 40,
    });
}
