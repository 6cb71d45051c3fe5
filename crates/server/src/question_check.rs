//! Checking a question bank before use (`duet check-questions`, and the test suite): the files
//! load as the server loads them, each prompt renders as its author meant (CommonMark with GFM
//! tables, as the page renders it), and each coding question fails on its starter and passes on
//! its solution in the real sandbox.
//!
//! What does not belong here: loading the bank for the server (`questions.rs`).

use duet_protocol::{Question, QuestionKind};
use duet_sandbox::{Limits, RunEvent, RunRequest, RunStatus, Sandbox, Target};
use pulldown_cmark::{Event, Options, Parser, Tag};

/// Constructs in a prompt that would not come out as written, each with its line (1-based)
/// and what to write instead.
pub fn prompt_problems(prompt: &str) -> Vec<String> {
    let line_of = |offset: usize| {
        1 + prompt.as_bytes()[..offset.min(prompt.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    };
    let mut problems = Vec::new();
    let mut in_table = false;
    for (event, range) in Parser::new_ext(prompt, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::List(Some(start))) if start != 1 => problems.push(format!(
                "line {}: `{start}.` at the start of a line begins a list numbered from {start}; \
                 if it is a number in a sentence, write `{start}\\.`",
                line_of(range.start)
            )),
            Event::Html(_) | Event::InlineHtml(_) => problems.push(format!(
                "line {}: raw HTML is shown as text in the page; write Markdown instead",
                line_of(range.start)
            )),
            Event::Start(Tag::Table(_)) => in_table = true,
            Event::End(pulldown_cmark::TagEnd::Table) => in_table = false,
            Event::Text(text) if !in_table => {
                let looks_like_a_row = text.trim().starts_with('|') && text.trim().ends_with('|');
                if looks_like_a_row && text.trim().len() > 1 {
                    problems.push(format!(
                        "line {}: this looks like a table row but is not in a table, so its \
                         pipes show as they are (a table needs a header row, then a `|---|` row)",
                        line_of(range.start)
                    ));
                }
            }
            _ => {}
        }
    }
    problems.dedup();
    problems
}

/// Runs the question's visible and hidden tests in `sandbox` against its starter (at least one
/// test must fail, and fail as a test, not as a crash of the run) and its solution (every test
/// must pass). Answers what did not hold; empty when the question holds. A discussion question
/// has nothing to run.
pub async fn self_check(sandbox: &dyn Sandbox, q: &Question, limits: &Limits) -> Vec<String> {
    if q.summary.kind != QuestionKind::Coding {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (what, project, must_pass) in [
        ("starter", &q.starter, false),
        ("solution", &q.solution, true),
    ] {
        let mut files = project.clone();
        files.extend(q.visible_tests.clone());
        files.extend(q.hidden_tests.clone());
        let test_files = q
            .visible_tests
            .keys()
            .chain(q.hidden_tests.keys())
            .cloned()
            .collect();
        let request = RunRequest {
            files,
            target: Target::Pytest { test_files },
            environment: q.environment.clone(),
            stdin: None,
            keep_stdin_open: false,
            limits: limits.clone(),
            party: "check-questions".into(),
        };
        let mut handle = match sandbox.start(request) {
            Ok(handle) => handle,
            Err(e) => {
                problems.push(format!("{what}: the sandbox refused the run: {e}"));
                continue;
            }
        };
        let mut outcome = None;
        let mut output = Vec::new();
        while let Some(event) = handle.events.recv().await {
            match event {
                RunEvent::Finished(o) => outcome = Some(o),
                RunEvent::Stdout(b) | RunEvent::Stderr(b) => output.extend(b),
                RunEvent::Queued { .. } => {}
            }
        }
        let Some(outcome) = outcome else {
            problems.push(format!("{what}: the run never finished"));
            continue;
        };
        let tests = outcome.tests.clone().unwrap_or_default();
        let collected = !tests.cases.is_empty() && tests.errors == 0;
        let holds = if must_pass {
            outcome.status == RunStatus::Ok && tests.failed == 0 && collected
        } else {
            tests.failed + tests.errors > 0
        };
        if !holds {
            let expected = if must_pass {
                "every test to pass"
            } else {
                "a test to fail"
            };
            problems.push(format!(
                "{what}: expected {expected}, got {:?} ({} passed, {} failed, {} errors)\n{}",
                outcome.status,
                tests.passed,
                tests.failed,
                tests.errors,
                String::from_utf8_lossy(&output)
            ));
        }
    }
    problems
}

/// `duet check-questions`: checks the bank in `args.questions_dir` (or the questions named),
/// printing one line per question and what is wrong; answers how many problems it found.
pub async fn check_bank(args: &crate::config::CheckArgs) -> anyhow::Result<usize> {
    let (bank, load_problems) = crate::questions::QuestionBank::load(&args.questions_dir);
    let mut problems = 0;
    for problem in &load_problems {
        println!("FAIL {problem}");
        problems += 1;
    }
    let ids: Vec<String> = match args.ids.is_empty() {
        true => bank.list().into_iter().map(|q| q.id).collect(),
        false => args.ids.clone(),
    };
    let sandbox = match args.no_run {
        true => None,
        false => Some(check_sandbox(args).await?),
    };
    for id in &ids {
        let Some(question) = bank.get(id) else {
            println!(
                "FAIL {id}: no such question in {}",
                args.questions_dir.display()
            );
            problems += 1;
            continue;
        };
        let mut found: Vec<String> = prompt_problems(&question.prompt)
            .into_iter()
            .map(|p| format!("prompt {p}"))
            .collect();
        if let Some((sandbox, _)) = &sandbox {
            found.extend(self_check(sandbox, &question, &args.sandbox.limits()).await);
        }
        match found.is_empty() {
            true => println!("ok   {id}"),
            false => {
                problems += found.len();
                for problem in found {
                    println!("FAIL {id}: {problem}");
                }
            }
        }
    }
    if let Some((sandbox, dir)) = sandbox {
        sandbox.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    }
    println!(
        "{} questions checked, {problems} problems{}",
        ids.len(),
        if args.no_run { " (nothing run)" } else { "" }
    );
    Ok(problems)
}

/// A sandbox for the checker: the server's own, with no warm pool, its instance kept in a
/// scratch folder removed afterwards.
async fn check_sandbox(
    args: &crate::config::CheckArgs,
) -> anyhow::Result<(duet_sandbox::DockerSandbox, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("duet-check-questions-{}", std::process::id()));
    let mut serve = crate::config::ServeArgs::for_data_dir(&dir);
    serve.sandbox = args.sandbox.clone();
    serve.sandbox.pool = 0;
    let sandbox = crate::docker_sandbox(&serve)?;
    let health = sandbox.check_now().await;
    if health.status != "ok" {
        anyhow::bail!(
            "the sandbox is not usable, so the questions cannot be run: {}\n(pass --no-run to check the files and prompts only)",
            health.detail.unwrap_or_default()
        );
    }
    Ok((sandbox, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_at_a_line_start_a_stray_table_row_and_raw_html_are_reported_with_their_lines() {
        let prompt = "Retry on errors.\n\n503. Service Unavailable is retried.\n\n| a | b |\n\nSee <b>this</b>.\n";
        let problems = prompt_problems(prompt);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("line 3: `503.`"), "{}", problems[0]);
        assert!(problems[1].starts_with("line 5:"), "{}", problems[1]);
        assert!(problems[2].contains("raw HTML"), "{}", problems[2]);
    }

    #[test]
    fn tables_numbered_steps_emphasis_and_a_number_inside_a_sentence_are_fine() {
        let prompt =
            "Steps:\n\n1. parse\n2. run\n\n| cmd | effect |\n|---|---|\n| `ls` | lists |\n\n\
                      Return *n* items; a status like\n503. inside a paragraph stays text.\n";
        assert_eq!(prompt_problems(prompt), Vec::<String>::new());
    }
}
