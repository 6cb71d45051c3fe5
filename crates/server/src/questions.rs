//! The question bank: one TOML file per question in a folder (`questions/` by default; the
//! format is documented in `questions/README.md`), read once at start. A malformed file is
//! reported with its name, line and what is wrong, and skipped; two files with one id are both
//! reported and neither is loaded. Nothing here ever stops the server.

use duet_protocol::{Area, Difficulty, Hints, Question, QuestionKind, QuestionSummary};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every question that loaded, by id.
#[derive(Debug, Default)]
pub struct QuestionBank {
    by_id: BTreeMap<String, Arc<Question>>,
}

/// A file that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    /// 1-based line of the problem, when the parser knows it.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHints {
    strong: OneOrMany,
    red_flags: OneOrMany,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: String,
    title: String,
    #[serde(default = "coding")]
    kind: QuestionKind,
    difficulty: Difficulty,
    #[serde(default)]
    tags: Vec<String>,
    areas: Vec<Area>,
    prompt: String,
    starter: Option<String>,
    solution: Option<String>,
    visible_tests: Option<String>,
    hidden_tests: Option<String>,
    hints: RawHints,
    #[serde(default)]
    follow_ups: Vec<String>,
    /// The starter drawing: the JSON of an Excalidraw file, or just its elements array.
    board: Option<String>,
}

fn coding() -> QuestionKind {
    QuestionKind::Coding
}

/// A starter drawing's elements, each as compact JSON, checked as the room checks what people
/// draw (so a question can never put on the board what a participant could not).
fn starter_board(json: &str) -> Result<Vec<String>, String> {
    use duet_core::board::{check_element, MAX_ELEMENTS};
    use serde_json::Value;
    let value: Value = serde_json::from_str(json).map_err(|e| format!("board is not JSON: {e}"))?;
    let elements = match value {
        Value::Array(elements) => elements,
        Value::Object(mut file) => match file.remove("elements") {
            Some(Value::Array(elements)) => elements,
            _ => return Err("board must be an Excalidraw file (with an \"elements\" list) or a list of elements".into()),
        },
        _ => return Err("board must be an Excalidraw file (with an \"elements\" list) or a list of elements".into()),
    };
    if elements.len() > MAX_ELEMENTS {
        return Err(format!(
            "board has {} elements; the board holds at most {MAX_ELEMENTS}",
            elements.len()
        ));
    }
    let mut ids = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let json = element.to_string();
        let id = check_element(&json).map_err(|e| format!("board element {}: {e}", i + 1))?;
        if !ids.insert(id.clone()) {
            return Err(format!(
                "board element {}: the id {id:?} is used twice",
                i + 1
            ));
        }
        out.push(json);
    }
    Ok(out)
}

/// Reads one question file's text.
pub fn parse(text: &str) -> Result<Question, (Option<usize>, String)> {
    let raw: RawQuestion = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        (line, e.message().to_owned())
    })?;
    let valid_id = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_id {
        return Err((
            None,
            format!("id {:?} must be 1 to 64 of a-z, 0-9 and -", raw.id),
        ));
    }
    if raw.title.trim().is_empty() || raw.prompt.trim().is_empty() {
        return Err((None, "title and prompt must not be empty".into()));
    }
    if raw.areas.is_empty() {
        return Err((None, "areas must name at least one rubric area".into()));
    }
    let code = [
        ("starter", &raw.starter),
        ("solution", &raw.solution),
        ("visible_tests", &raw.visible_tests),
        ("hidden_tests", &raw.hidden_tests),
    ];
    let board = match &raw.board {
        Some(json) => starter_board(json).map_err(|e| (None, e))?,
        None => Vec::new(),
    };
    match raw.kind {
        QuestionKind::Coding => {
            if let Some((field, _)) = code
                .iter()
                .find(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
            {
                return Err((None, format!("a coding question needs {field}")));
            }
        }
        QuestionKind::Discussion => {
            if let Some((field, _)) = code.iter().find(|(_, v)| v.is_some()) {
                return Err((None, format!("a discussion question has no {field}")));
            }
        }
    }
    Ok(Question {
        summary: QuestionSummary {
            id: raw.id,
            title: raw.title,
            kind: raw.kind,
            difficulty: raw.difficulty,
            tags: raw.tags,
            areas: raw.areas,
        },
        prompt: raw.prompt,
        starter: raw.starter.unwrap_or_default(),
        solution: raw.solution.unwrap_or_default(),
        visible_tests: raw.visible_tests.unwrap_or_default(),
        hidden_tests: raw.hidden_tests.unwrap_or_default(),
        hints: Hints {
            strong: raw.hints.strong.into_vec(),
            red_flags: raw.hints.red_flags.into_vec(),
        },
        follow_ups: raw.follow_ups,
        board,
    })
}

impl QuestionBank {
    /// Loads every `*.toml` in `dir`. A missing folder is one problem, not an error.
    pub fn load(dir: &Path) -> (QuestionBank, Vec<LoadProblem>) {
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(LoadProblem {
                    file: dir.to_owned(),
                    line: None,
                    message: format!("cannot read the question folder: {e}"),
                });
                return (QuestionBank::default(), problems);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut found: BTreeMap<String, Vec<(PathBuf, Question)>> = BTreeMap::new();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(LoadProblem {
                        file,
                        line: None,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            match parse(&text) {
                Ok(question) => found
                    .entry(question.id().to_owned())
                    .or_default()
                    .push((file, question)),
                Err((line, message)) => problems.push(LoadProblem {
                    file,
                    line,
                    message,
                }),
            }
        }
        let mut bank = QuestionBank::default();
        for (id, mut copies) in found {
            if copies.len() > 1 {
                let names: Vec<String> = copies
                    .iter()
                    .map(|(f, _)| f.display().to_string())
                    .collect();
                for (file, _) in copies {
                    problems.push(LoadProblem {
                        file,
                        line: None,
                        message: format!(
                            "id {id:?} is used by {}; none of them is loaded",
                            names.join(", ")
                        ),
                    });
                }
                continue;
            }
            if let Some((file, question)) = copies.pop() {
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if stem != id {
                    problems.push(LoadProblem {
                        message: format!("id {id:?} must equal the file name {stem:?}"),
                        file,
                        line: None,
                    });
                    continue;
                }
                bank.by_id.insert(id, Arc::new(question));
            }
        }
        (bank, problems)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Question>> {
        self.by_id.get(id).cloned()
    }

    pub fn list(&self) -> Vec<QuestionSummary> {
        self.by_id.values().map(|q| q.summary.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "tiny"
title = "Tiny"
difficulty = "easy"
areas = ["coding_quality"]
prompt = "Write f."
starter = "def f():\n    pass\n"
solution = "def f():\n    return 1\n"
visible_tests = "from main import f\ndef test_f():\n    assert f() == 1\n"
hidden_tests = "from main import f\ndef test_g():\n    assert f() == 1\n"
[hints]
strong = "returns 1"
red_flags = ["returns 2"]
"#;

    #[test]
    fn a_single_string_is_accepted_where_a_list_of_hints_is_expected() {
        let q = parse(GOOD)
            .map_err(|e| e.1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.hints.strong, ["returns 1"]);
        assert_eq!(q.summary.kind, QuestionKind::Coding);
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_line() {
        let broken = GOOD.replace("difficulty = \"easy\"", "difficulty = easy");
        let (line, message) = parse(&broken).err().unwrap_or_default();
        assert_eq!(line, Some(4), "{message}");
    }

    #[test]
    fn a_coding_question_without_hidden_tests_is_refused() {
        let missing = GOOD.replace("hidden_tests =", "# hidden_tests =");
        assert!(parse(&missing).is_err_and(|e| e.1.contains("hidden_tests")));
    }

    #[test]
    fn the_repositorys_bank_loads_without_problems() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../questions");
        let (bank, problems) = QuestionBank::load(&dir);
        assert!(problems.is_empty(), "{problems:?}");
        let list = bank.list();
        let coding = list
            .iter()
            .filter(|q| q.kind == QuestionKind::Coding)
            .count();
        assert!(
            coding >= 14 && list.len() - coding >= 8,
            "{coding} coding, {} discussion",
            list.len() - coding
        );
        for difficulty in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            assert!(list
                .iter()
                .any(|q| q.kind == QuestionKind::Coding && q.difficulty == difficulty));
        }
    }

    #[test]
    fn two_files_with_one_id_are_both_refused() {
        let dir = std::env::temp_dir().join(format!("duet-q-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("tiny.toml"), GOOD);
        let _ = std::fs::write(dir.join("tiny-copy.toml"), GOOD);
        let _ = std::fs::write(
            dir.join("other.toml"),
            GOOD.replace("id = \"tiny\"", "id = \"other\""),
        );
        let _ = std::fs::write(
            dir.join("misnamed.toml"),
            GOOD.replace("id = \"tiny\"", "id = \"elsewhere\""),
        );
        let _ = std::fs::write(dir.join("broken.toml"), "id = ");
        let (bank, problems) = QuestionBank::load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            bank.list()
                .iter()
                .map(|q| q.id.as_str())
                .collect::<Vec<_>>(),
            ["other"],
            "{problems:?}"
        );
        let said: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(said.len(), 4, "{said:?}");
        assert!(said.iter().any(|p| p.contains("broken.toml:1")), "{said:?}");
        assert_eq!(
            said.iter()
                .filter(|p| p.contains("none of them is loaded"))
                .count(),
            2,
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|p| p.contains("misnamed.toml") && p.contains("file name")),
            "{said:?}"
        );
    }

    const DRAWING: &str = r#"
id = "design"
title = "Design"
kind = "discussion"
difficulty = "medium"
areas = ["system_design"]
prompt = "Design it."
board = '''{"type": "excalidraw", "version": 2, "elements": [
  {"id": "api", "type": "rectangle", "x": 0, "y": 0, "width": 100, "height": 50},
  {"id": "label", "type": "text", "x": 10, "y": 10, "text": "API <b>v1</b>"}
]}'''
[hints]
strong = "draws it"
red_flags = "does not"
"#;

    #[test]
    fn a_starter_drawing_loads_from_an_excalidraw_file_or_an_elements_list() {
        let q = parse(DRAWING)
            .map_err(|e| e.1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.board.len(), 2);
        assert!(q.board[1].contains("API <b>v1</b>"), "{:?}", q.board);
        let list = DRAWING
            .replace(r#"{"type": "excalidraw", "version": 2, "elements": ["#, "[")
            .replace("]}'''", "]'''");
        let q = parse(&list)
            .map_err(|e| e.1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.board.len(), 2);
        // Coding questions may carry one too.
        let coding = GOOD.replace(
            "[hints]",
            "board = '[{\"id\": \"a\", \"type\": \"ellipse\"}]'\n[hints]",
        );
        assert!(parse(&coding).is_ok_and(|q| q.board.len() == 1));
    }

    #[test]
    fn a_starter_drawing_the_board_would_refuse_is_reported() {
        let cases = [
            (
                r#""type": "rectangle", "x": 0"#,
                r#""type": "image", "fileId": "f""#,
                "image",
            ),
            (r#""id": "label""#, r#""id": "api""#, "used twice"),
            (
                r#""x": 10, "y": 10"#,
                r#""link": "data:text/html,hi""#,
                "data: URL",
            ),
            ("\"elements\": [", "\"shapes\": [", "Excalidraw file"),
        ];
        for (from, to, why) in cases {
            let bad = DRAWING.replacen(from, to, 1);
            assert_ne!(bad, DRAWING, "{from} is in the sample");
            let said = parse(&bad).err().map(|e| e.1).unwrap_or_default();
            assert!(said.contains(why), "{to}: said {said:?}");
        }
    }
}
