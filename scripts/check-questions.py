#!/usr/bin/env python3
"""Self-check for Duet's question bank.

For every questions/*.toml (or the files given on the command line) this script:

1. parses the file with tomllib and validates its fields (required fields per kind, allowed
   values, types, id equal to the file name, no unknown keys);
2. for coding questions, in a fresh temporary folder, writes main.py = starter beside
   test_visible.py and test_hidden.py, runs `python3 -m pytest -q -p no:cacheprovider` and
   requires at least one *visible* test to fail (a plain test failure, not a collection error);
3. in another fresh folder writes main.py = solution and requires every visible and hidden test
   to pass, with nothing skipped, in under MAX_SOLUTION_SECONDS of test time.

It prints one line per question and a summary, and exits non-zero on any problem.

    python3 scripts/check-questions.py                      # the whole bank
    python3 scripts/check-questions.py questions/lru-cache.toml
    python3 scripts/check-questions.py --questions-dir my-questions --no-run

Needs Python 3.11+ (tomllib) and pytest for that interpreter (`pip install pytest==7.2.1`,
the version the sandbox image has).
"""

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    sys.exit("check-questions: needs Python 3.11 or newer (tomllib)")

ROOT = Path(__file__).resolve().parent.parent
ID_RE = re.compile(r"[a-z0-9-]+")
KINDS = {"coding", "discussion"}
DIFFICULTIES = {"easy", "medium", "hard"}
AREAS = {"coding_quality", "system_design", "debugging", "collaboration", "production_experience"}
COMMON_REQUIRED = ("id", "title", "kind", "difficulty", "tags", "areas", "prompt", "hints")
CODE_FIELDS = ("starter", "solution", "visible_tests", "hidden_tests")
KNOWN_KEYS = set(COMMON_REQUIRED) | set(CODE_FIELDS) | {"follow_ups"}
HINT_KEYS = ("strong", "red_flags")
# Modules test and solution code may import besides the standard library.
ALLOWED_IMPORTS = {"pytest", "main"}
PYTEST_TIMEOUT = 60  # seconds per pytest run, far above what a question should take
MAX_SOLUTION_SECONDS = 2.0  # test time of the solution against both files (the sandbox gives 10 s)


def is_nonempty_str(value):
    return isinstance(value, str) and value.strip() != ""


def validate(path, data):
    """Problems with one question's fields, as a list of strings (empty when it is well formed)."""
    problems = []
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        problems.append("unknown keys: " + ", ".join(unknown))

    for key in COMMON_REQUIRED:
        if key not in data:
            problems.append(f"missing required field {key!r}")

    qid = data.get("id")
    if "id" in data:
        if not isinstance(qid, str) or not ID_RE.fullmatch(qid):
            problems.append(f"id {qid!r} must match [a-z0-9-]+")
        elif qid != path.stem:
            problems.append(f"id {qid!r} differs from the file name {path.name!r}")
    if not ID_RE.fullmatch(path.stem):
        problems.append(f"file name {path.name!r} must be <id>.toml with id matching [a-z0-9-]+")

    for key in ("title", "prompt"):
        if key in data and not is_nonempty_str(data[key]):
            problems.append(f"{key!r} must be a non-empty string")

    kind = data.get("kind")
    if "kind" in data and kind not in KINDS:
        problems.append(f"kind {kind!r} must be one of {sorted(KINDS)}")
    if "difficulty" in data and data["difficulty"] not in DIFFICULTIES:
        problems.append(f"difficulty {data['difficulty']!r} must be one of {sorted(DIFFICULTIES)}")

    tags = data.get("tags")
    if "tags" in data and not (isinstance(tags, list) and all(is_nonempty_str(t) for t in tags)):
        problems.append("'tags' must be a list of non-empty strings")

    areas = data.get("areas")
    if "areas" in data:
        if not (isinstance(areas, list) and areas and all(isinstance(a, str) for a in areas)):
            problems.append("'areas' must be a non-empty list of strings")
        else:
            bad = [a for a in areas if a not in AREAS]
            if bad:
                problems.append(f"unknown areas {bad}; allowed: {sorted(AREAS)}")
            if len(set(areas)) != len(areas):
                problems.append("'areas' has duplicates")

    if "follow_ups" in data:
        fu = data["follow_ups"]
        if not (isinstance(fu, list) and all(is_nonempty_str(f) for f in fu)):
            problems.append("'follow_ups' must be a list of non-empty strings")

    hints = data.get("hints")
    if "hints" in data:
        if not isinstance(hints, dict):
            problems.append("'hints' must be a table with 'strong' and 'red_flags'")
        else:
            extra = sorted(set(hints) - set(HINT_KEYS))
            if extra:
                problems.append("unknown keys in [hints]: " + ", ".join(extra))
            for key in HINT_KEYS:
                value = hints.get(key)
                if value is None:
                    problems.append(f"missing hints.{key}")
                elif not (is_nonempty_str(value) or (
                        isinstance(value, list) and value and all(is_nonempty_str(v) for v in value))):
                    problems.append(f"hints.{key} must be a non-empty string or a non-empty list of them")

    if kind == "coding":
        for key in CODE_FIELDS:
            if key not in data:
                problems.append(f"coding question without {key!r}")
            elif not is_nonempty_str(data[key]):
                problems.append(f"{key!r} must be a non-empty string")
        problems += check_code(data)
    elif kind == "discussion":
        present = [key for key in CODE_FIELDS if key in data]
        if present:
            problems.append("a discussion question must not have " + ", ".join(present))
    return problems


def count_tests(tree):
    """Module-level test_* functions plus test_* methods of Test* classes."""
    count = 0
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            count += 1
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            count += sum(1 for n in node.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"))
    return count


def imported_modules(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def check_code(data):
    problems = []
    allowed = set(sys.stdlib_module_names) | ALLOWED_IMPORTS
    for key in CODE_FIELDS:
        source = data.get(key)
        if not is_nonempty_str(source):
            continue
        try:
            tree = ast.parse(source, filename=key)
        except SyntaxError as exc:
            problems.append(f"{key} does not parse: line {exc.lineno}: {exc.msg}")
            continue
        foreign = sorted(imported_modules(tree) - allowed)
        if foreign:
            problems.append(f"{key} imports modules outside the standard library and pytest: {foreign}")
        if key.endswith("_tests"):
            if count_tests(tree) == 0:
                problems.append(f"{key} has no test functions")
            if "pytest.mark.asyncio" in source:
                problems.append(f"{key} uses pytest-asyncio, which the sandbox lacks: call asyncio.run in a plain test")
    return problems


def run_pytest(main_source, data):
    """Runs pytest in a fresh folder; returns (exit code, cases, seconds, output tail).

    cases maps "test_visible.py::name" to "passed", "failed", "error" or "skipped"."""
    with tempfile.TemporaryDirectory(prefix="duet-question-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "main.py").write_text(main_source, encoding="utf-8")
        (work / "test_visible.py").write_text(data["visible_tests"], encoding="utf-8")
        (work / "test_hidden.py").write_text(data["hidden_tests"], encoding="utf-8")
        report = Path(tmp) / "report.xml"
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", LANG="C.UTF-8")
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", "test_visible.py", "test_hidden.py"]
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=PYTEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, {}, float(PYTEST_TIMEOUT), f"pytest did not finish in {PYTEST_TIMEOUT} s"
        cases, seconds = {}, 0.0
        if report.exists():
            root = ET.parse(report).getroot()
            for suite in root.iter("testsuite"):
                seconds += float(suite.get("time", 0) or 0)
            for case in root.iter("testcase"):
                module = case.get("classname", "").split(".")[0]
                name = f"{module}.py::{case.get('name')}"
                outcome = "passed"
                for child in case:
                    if child.tag in ("failure", "error", "skipped"):
                        outcome = {"failure": "failed"}.get(child.tag, child.tag)
                        break
                cases[name] = outcome
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        return proc.returncode, cases, seconds, tail


def check_runs(data):
    """Problems found by running the tests, and a short description of what ran."""
    problems = []
    code, cases, _, tail = run_pytest(data["starter"], data)
    visible_failing = [n for n, o in cases.items() if n.startswith("test_visible.py::") and o == "failed"]
    starter_note = ""
    if code is None:
        problems.append("starter: " + tail)
    elif code != 1:
        problems.append(f"starter: pytest exited {code} (expected 1: some tests failed, none errored "
                        f"at collection)\n{indent(tail)}")
    elif not visible_failing:
        problems.append("starter: no visible test fails (the candidate must start from something that fails)")
    else:
        visible = sum(1 for n in cases if n.startswith("test_visible.py::"))
        starter_note = f"starter fails {len(visible_failing)}/{visible} visible"

    code, cases, seconds, tail = run_pytest(data["solution"], data)
    not_passed = {n: o for n, o in cases.items() if o != "passed"}
    visible = [n for n in cases if n.startswith("test_visible.py::")]
    hidden = [n for n in cases if n.startswith("test_hidden.py::")]
    solution_note = ""
    if code is None:
        problems.append("solution: " + tail)
    elif code != 0 or not_passed:
        listed = ", ".join(f"{n} {o}" for n, o in sorted(not_passed.items())) or f"pytest exited {code}"
        problems.append(f"solution: {listed}\n{indent(tail)}")
    elif not visible or not hidden:
        problems.append("solution: pytest ran no visible or no hidden tests")
    else:
        solution_note = f"solution passes {len(visible)} visible + {len(hidden)} hidden in {seconds:.2f}s"
        if seconds > MAX_SOLUTION_SECONDS:
            problems.append(f"solution: tests took {seconds:.2f}s, more than {MAX_SOLUTION_SECONDS}s")
    return problems, "; ".join(n for n in (starter_note, solution_note) if n)


def indent(text):
    return "\n".join("      " + line for line in text.splitlines())


def ensure_pytest():
    probe = subprocess.run([sys.executable, "-c", "import pytest; print(pytest.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"check-questions: pytest is missing for {sys.executable}; "
                 "install it with: pip install pytest==7.2.1")
    return probe.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description="Validate and test Duet question files.")
    parser.add_argument("files", nargs="*", type=Path, help="question files (default: every *.toml in the folder)")
    parser.add_argument("--questions-dir", type=Path, default=ROOT / "questions",
                        help="folder of question files (default: questions/ at the repository root)")
    parser.add_argument("--no-run", action="store_true", help="validate fields only, run no tests")
    args = parser.parse_args()

    files = args.files or sorted(args.questions_dir.glob("*.toml"))
    if not files:
        print(f"check-questions: no question files in {args.questions_dir}", file=sys.stderr)
        return 1
    if not args.no_run:
        print(f"pytest {ensure_pytest()} on Python {sys.version.split()[0]}")

    started = time.monotonic()
    seen_ids = {}
    failed = []
    counts = {"coding": {d: 0 for d in ("easy", "medium", "hard")}, "discussion": 0}
    for path in files:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            print(f"FAIL {path.name}: cannot parse: {exc}")
            failed.append(path.name)
            continue
        problems = validate(path, data)
        qid = data.get("id", path.stem)
        if qid in seen_ids:
            problems.append(f"id {qid!r} is also used by {seen_ids[qid]}")
        seen_ids.setdefault(qid, path.name)
        note = ""
        if not problems and data["kind"] == "coding" and not args.no_run:
            run_problems, note = check_runs(data)
            problems += run_problems
        label = f"{qid} ({data.get('kind')}, {data.get('difficulty')})"
        if problems:
            failed.append(path.name)
            print(f"FAIL {label}")
            for problem in problems:
                print(f"  - {problem}")
        else:
            if data["kind"] == "coding":
                counts["coding"][data["difficulty"]] += 1
            else:
                counts["discussion"] += 1
            print(f"ok   {label}" + (f": {note}" if note else ""))

    coding = counts["coding"]
    ok = len(files) - len(failed)
    print(f"\n{len(files)} questions, {ok} ok, {len(failed)} with problems "
          f"(ok: {sum(coding.values())} coding: {coding['easy']} easy, {coding['medium']} medium, "
          f"{coding['hard']} hard; {counts['discussion']} discussion) in {time.monotonic() - started:.1f}s")
    if failed:
        print("problems in: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
