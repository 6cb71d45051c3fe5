//! The question bank: one TOML file per question in a folder (`questions/` by default; the
//! format is documented in `questions/README.md`), read once at start. A malformed file is
//! reported with its name, line and what is wrong, and skipped; two files with one id are both
//! reported and neither is loaded. Nothing here ever stops the server.
//!
//! A coding question is a small project: starter files, data files, visible and hidden test
//! files, a reference solution as files, an entry point and an environment. The single-file
//! form of the first questions (`starter = '''...'''` for `main.py`, `visible_tests` for
//! `test_visible.py`, `hidden_tests` for `test_hidden.py`) loads as the same project.

use duet_core::files::{check_path, MAX_FILES};
use duet_protocol::{
    Area, Difficulty, Hints, ProjectFiles, Question, QuestionKind, QuestionSummary,
    DEFAULT_QUESTION_ENVIRONMENT, MAIN_FILE,
};
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

/// A code field: one text (the single-file form) or a table of files, path to text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Code {
    One(String),
    Files(ProjectFiles),
}

impl Code {
    /// The files, the single text becoming the file `single`.
    fn into_files(self, single: &str) -> ProjectFiles {
        match self {
            Code::One(text) => ProjectFiles::from([(single.to_owned(), text)]),
            Code::Files(files) => files,
        }
    }
}

/// The environments a question may name: `python` (the standard library and pytest) and
/// `python-data` (numpy, pandas and scipy besides).
pub const ENVIRONMENTS: [&str; 2] = [DEFAULT_QUESTION_ENVIRONMENT, "python-data"];

/// The most text a question's project (starter and data files) may hold: the document's
/// default cap, which covers every file.
pub const MAX_PROJECT_BYTES: usize = 1 << 20;

/// The file the single-file form's visible tests are written to.
pub const VISIBLE_TESTS: &str = "test_visible.py";
/// The file the single-file form's hidden tests are written to.
pub const HIDDEN_TESTS: &str = "test_hidden.py";

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
    environment: Option<String>,
    entry: Option<String>,
    starter: Option<Code>,
    solution: Option<Code>,
    visible_tests: Option<Code>,
    hidden_tests: Option<Code>,
    data: Option<ProjectFiles>,
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
    let board = match &raw.board {
        Some(json) => starter_board(json).map_err(|e| (None, e))?,
        None => Vec::new(),
    };
    let environment = raw
        .environment
        .unwrap_or_else(|| DEFAULT_QUESTION_ENVIRONMENT.to_owned());
    if !ENVIRONMENTS.contains(&environment.as_str()) {
        return Err((
            None,
            format!(
                "environment {environment:?} is not one of {}",
                ENVIRONMENTS.join(", ")
            ),
        ));
    }
    let project = match raw.kind {
        QuestionKind::Coding => project(RawProject {
            starter: raw.starter,
            solution: raw.solution,
            visible_tests: raw.visible_tests,
            hidden_tests: raw.hidden_tests,
            data: raw.data,
            entry: raw.entry,
        })
        .map_err(|e| (None, e))?,
        QuestionKind::Discussion => {
            let given = [
                ("starter", raw.starter.is_some()),
                ("solution", raw.solution.is_some()),
                ("visible_tests", raw.visible_tests.is_some()),
                ("hidden_tests", raw.hidden_tests.is_some()),
                ("data", raw.data.is_some()),
                ("entry", raw.entry.is_some()),
            ];
            if let Some((field, _)) = given.iter().find(|(_, given)| *given) {
                return Err((None, format!("a discussion question has no {field}")));
            }
            Project {
                entry: MAIN_FILE.to_owned(),
                ..Project::default()
            }
        }
    };
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
        environment,
        entry: project.entry,
        starter: project.starter,
        solution: project.solution,
        data: project.data,
        visible_tests: project.visible_tests,
        hidden_tests: project.hidden_tests,
        hints: Hints {
            strong: raw.hints.strong.into_vec(),
            red_flags: raw.hints.red_flags.into_vec(),
        },
        follow_ups: raw.follow_ups,
        board,
    })
}

/// A coding question's code fields as written.
struct RawProject {
    starter: Option<Code>,
    solution: Option<Code>,
    visible_tests: Option<Code>,
    hidden_tests: Option<Code>,
    data: Option<ProjectFiles>,
    entry: Option<String>,
}

/// A coding question's files, checked.
#[derive(Default)]
struct Project {
    entry: String,
    starter: ProjectFiles,
    solution: ProjectFiles,
    data: Vec<String>,
    visible_tests: ProjectFiles,
    hidden_tests: ProjectFiles,
}

/// Whether pytest collects `path` by its name (`test_*.py`).
fn is_test_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("test_") && name.ends_with(".py")
}

/// Builds a coding question's project from its fields and checks it: every path under the
/// document's rules, test files named `test_*.py` with distinct file names, no path in two
/// roles (so a hidden test never lands in what the candidate receives), `main.py` and the
/// entry in the starter, at most [`MAX_FILES`] files in the project and in a run (tests
/// included), the starter and the solution within [`MAX_PROJECT_BYTES`].
fn project(raw: RawProject) -> Result<Project, String> {
    let need = |field: &str, code: Option<Code>, single: &str| -> Result<ProjectFiles, String> {
        let files = code
            .map(|c| c.into_files(single))
            .filter(|files| files.values().any(|text| !text.trim().is_empty()))
            .ok_or_else(|| format!("a coding question needs {field}"))?;
        for path in files.keys() {
            check_path(path).map_err(|e| format!("{field}: {}", e.0))?;
        }
        Ok(files)
    };
    let mut starter = need("starter", raw.starter, MAIN_FILE)?;
    let solved = need("solution", raw.solution, MAIN_FILE)?;
    let visible_tests = need("visible_tests", raw.visible_tests, VISIBLE_TESTS)?;
    let hidden_tests = need("hidden_tests", raw.hidden_tests, HIDDEN_TESTS)?;
    let data = raw.data.unwrap_or_default();
    for path in data.keys() {
        check_path(path).map_err(|e| format!("data: {}", e.0))?;
    }
    // Every path has one role: a data file is not also a starter file, and no test file is in
    // the project (a hidden one there would reach the candidate).
    let mut roles: BTreeMap<&str, &str> = BTreeMap::new();
    for (role, files) in [
        ("starter", &starter),
        ("data", &data),
        ("visible_tests", &visible_tests),
        ("hidden_tests", &hidden_tests),
    ] {
        for path in files.keys() {
            if let Some(other) = roles.insert(path, role) {
                return Err(format!("{path:?} is in both {other} and {role}"));
            }
        }
    }
    for path in solved.keys() {
        if let Some(role @ ("data" | "visible_tests" | "hidden_tests")) =
            roles.get(path.as_str()).copied()
        {
            return Err(format!(
                "solution: {path:?} is in {role}; the solution gives code files only"
            ));
        }
    }
    let mut names = BTreeMap::new();
    for path in visible_tests.keys().chain(hidden_tests.keys()) {
        if !is_test_name(path) {
            return Err(format!(
                "test file {path:?} must be named test_*.py (pytest collects it by its name)"
            ));
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if let Some(other) = names.insert(name, path) {
            return Err(format!(
                "test files {other:?} and {path:?} share a file name, which pytest cannot import twice"
            ));
        }
    }
    // Yjs shares a text only once it holds something: an empty starter file would reach
    // nobody.
    for (path, text) in starter.iter().chain(&data) {
        if text.is_empty() {
            return Err(format!(
                "{path:?} is empty, and an empty file cannot be shared: give it a line (a comment or a docstring)"
            ));
        }
    }
    if !starter.contains_key(MAIN_FILE) {
        return Err(format!(
            "starter needs {MAIN_FILE:?}: every project has it (the entry may be another file)"
        ));
    }
    let entry = raw.entry.unwrap_or_else(|| MAIN_FILE.to_owned());
    if !entry.ends_with(".py") || !starter.contains_key(&entry) {
        return Err(format!("entry {entry:?} must be a .py file of the starter"));
    }
    let mut solution = starter.clone();
    solution.extend(solved);
    for (path, text) in &data {
        starter.insert(path.clone(), text.clone());
        solution.insert(path.clone(), text.clone());
    }
    let in_run = solution.len() + visible_tests.len() + hidden_tests.len();
    if starter.len() > MAX_FILES || in_run > MAX_FILES {
        return Err(format!(
            "a project holds at most {MAX_FILES} files, tests included ({} in the starter, {in_run} in a run of the solution)",
            starter.len()
        ));
    }
    for (what, files) in [("starter", &starter), ("solution", &solution)] {
        let bytes: usize = files.values().map(String::len).sum();
        if bytes > MAX_PROJECT_BYTES {
            return Err(format!(
                "the {what} holds {bytes} bytes of text; a document holds at most {MAX_PROJECT_BYTES}"
            ));
        }
    }
    Ok(Project {
        entry,
        starter,
        solution,
        data: data.into_keys().collect(),
        visible_tests,
        hidden_tests,
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

    const PROJECT: &str = r#"
id = "shop"
title = "Shop"
difficulty = "medium"
areas = ["coding_quality"]
prompt = "Fix the cart."
environment = "python-data"
[starter]
"main.py" = "from shop.cart import total\n"
"shop/__init__.py" = "\"\"\"The shop.\"\"\"\n"
"shop/cart.py" = "def total(rows):\n    return 0\n"
[solution]
"shop/cart.py" = "def total(rows):\n    return sum(rows)\n"
[data]
"data/orders.csv" = "id,amount\n1,2\n"
[visible_tests]
"tests/test_cart.py" = "from shop.cart import total\ndef test_total():\n    assert total([1]) == 1\n"
[hidden_tests]
"tests/test_cart_more.py" = "from shop.cart import total\ndef test_none():\n    assert total([]) == 0\n"
[hints]
strong = "sums"
red_flags = "does not"
"#;

    #[test]
    fn a_project_loads_with_its_files_data_tests_and_environment() {
        let q = parse(PROJECT)
            .map_err(|e| e.1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.environment, "python-data");
        assert_eq!(q.entry, "main.py");
        assert_eq!(
            q.starter.keys().collect::<Vec<_>>(),
            [
                "data/orders.csv",
                "main.py",
                "shop/__init__.py",
                "shop/cart.py"
            ],
            "the data file is part of the project the candidate starts from"
        );
        assert_eq!(q.data, ["data/orders.csv"]);
        assert!(q.solution["shop/cart.py"].contains("sum(rows)"));
        assert_eq!(
            q.solution["main.py"], q.starter["main.py"],
            "unchanged files stay"
        );
        assert!(q.hidden_tests.contains_key("tests/test_cart_more.py"));
        let candidate = serde_json::to_string(&q.for_candidate()).unwrap_or_default();
        assert!(!candidate.contains("test_none"), "{candidate}");
    }

    #[test]
    fn the_single_file_form_loads_as_a_project_of_main_py() {
        let q = parse(GOOD)
            .map_err(|e| e.1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.environment, "python");
        assert_eq!(q.starter.keys().collect::<Vec<_>>(), ["main.py"]);
        assert_eq!(
            q.visible_tests.keys().collect::<Vec<_>>(),
            ["test_visible.py"]
        );
        assert_eq!(
            q.hidden_tests.keys().collect::<Vec<_>>(),
            ["test_hidden.py"]
        );
    }

    #[test]
    fn a_project_that_breaks_a_rule_is_refused_saying_which() {
        let many: String = (0..64)
            .map(|i| format!("\"m{i}.py\" = \"x = {i}\\n\"\n"))
            .collect();
        let cases = [
            (
                "\"shop/cart.py\" = \"def",
                "\"../cart.py\" = \"def",
                "must not contain ..",
            ),
            (
                "environment = \"python-data\"",
                "environment = \"rust\"",
                "not one of python, python-data",
            ),
            (
                "\"tests/test_cart_more.py\"",
                "\"shop/secret.py\"",
                "must be named test_*.py",
            ),
            (
                "\"tests/test_cart_more.py\"",
                "\"more/test_cart.py\"",
                "share a file name",
            ),
            (
                "\"data/orders.csv\"",
                "\"shop/cart.py\"",
                "in both starter and data",
            ),
            (
                "[hidden_tests]\n\"tests/test_cart_more.py\"",
                "[hidden_tests]\n\"shop/cart.py\"",
                "in both starter and hidden_tests",
            ),
            (
                "environment = ",
                "entry = \"run.py\"\nenvironment = ",
                "entry \"run.py\" must be a .py file of the starter",
            ),
            (
                "\"main.py\" = \"from",
                "\"app.py\" = \"from",
                "starter needs \"main.py\"",
            ),
            (
                "[solution]\n",
                &format!("[solution]\n{many}"),
                "at most 64 files",
            ),
            (
                "[data]\n\"data/orders.csv\"",
                "[data]\n\"data/run.sh\"",
                "must end in one of",
            ),
            (
                "\"main.py\" = \"from",
                "\"empty.py\" = \"\"\n\"main.py\" = \"from",
                "\"empty.py\" is empty",
            ),
        ];
        for (from, to, why) in cases {
            let bad = PROJECT.replacen(from, to, 1);
            assert_ne!(bad, PROJECT, "{from} is in the sample");
            let said = parse(&bad).err().map(|e| e.1).unwrap_or_default();
            assert!(said.contains(why), "{to}: said {said:?}, expected {why:?}");
        }
        let huge = PROJECT.replace("1,2\\n", &"1,2\\n".repeat(300_000));
        let said = parse(&huge).err().map(|e| e.1).unwrap_or_default();
        assert!(said.contains("a document holds at most"), "{said}");
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
