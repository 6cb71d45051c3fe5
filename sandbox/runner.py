#!/usr/bin/env python3
"""Duet's sandbox runner: the first process of every sandbox container (under docker-init).

Protocol (sandbox/README.md has the whole contract):

1. The server writes a header on the container's stdin: one ASCII line ``DUET1 <n>\\n``, then
   exactly ``n`` bytes of UTF-8 JSON::

       {"nonce": "<32 hex>", "files": {"main.py": "..."},
        "target": {"program": "main.py"} | {"pytest": ["test_x.py", ...]}
                  | {"lint": ["main.py", "shop/cart.py", ...]} | {"repl": "main.py"}}

   The runner reads the line one byte at a time and then exactly ``n`` bytes, so everything the
   server writes after the header stays unread in the pipe for the program's stdin.
2. The runner writes the files into the work dir (a tmpfs, the only writable place besides /tmp).
3. ``program``: the runner replaces itself (exec) with ``python3 <entry>``: a fresh interpreter
   with the program's own ``__main__``, ``sys.argv``, exit code, traceback and stdin, whose
   output goes straight to the container's stdout and stderr. Nothing more comes from the runner.
   ``repl``: the same, as ``python3 -q -i <entry>``: the program, then the interactive
   interpreter with its names in scope.
4. ``pytest`` and ``lint``: pytest (or pyflakes and pycodestyle) runs in a worker process
   forked *before* the header was read, so the
   nonce never exists in any process that runs candidate code (in a warm container the worker
   has imported pytest already); the runner itself is made non-dumpable, so its memory and
   /proc entries are closed to them. The worker sends its
   per-test results to the runner over a private pipe. When the worker exits, the runner kills
   every other process in the container (daemons included), and only then writes one frame on
   stdout, after all other output::

       \\x1eDUET-REPORT <nonce> <json>\\n

   with ``<json>`` = ``{"exit": int, "tests": {...} | null, "problem": str | null}``. The server
   accepts only a frame carrying its nonce and removes it from the visible output; anything else
   (a fake report printed by the candidate) is ordinary output.

Runner failures (a bad header, an unwritable work dir) print ``duet-runner: ...`` on stderr and
exit with 125 before any candidate code has run.
"""

import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time

WORK = "/work"
MAGIC = b"DUET1 "
RUNNER_FAILED = 125
NAME_RE = re.compile(r"[A-Za-z0-9_./-]{1,128}")
MAX_CASES = 1000
MAX_MESSAGE = 2000
MAX_NAME = 500


class RunnerError(Exception):
    pass


def fail(message, nonce):
    if nonce is not None:
        frame = json.dumps({"exit": RUNNER_FAILED, "failure": message}, ensure_ascii=True)
        try:
            write_frame(nonce, frame)
        except OSError:
            pass
    os.write(2, ("duet-runner: %s\n" % message).encode("utf-8", "replace"))
    os._exit(RUNNER_FAILED)


def write_frame(nonce, frame_json):
    write_all(1, b"\x1eDUET-REPORT " + nonce.encode("ascii") + b" " + frame_json.encode("ascii") + b"\n")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise RunnerError("stdin closed inside the header")
        buf += chunk
    return bytes(buf)


def read_header():
    line = bytearray()
    while True:
        byte = os.read(0, 1)
        if not byte:
            raise RunnerError("stdin closed before the header")
        if byte == b"\n":
            break
        line += byte
        if len(line) > 32:
            raise RunnerError("header line too long")
    if not line.startswith(MAGIC):
        raise RunnerError("not a Duet header")
    try:
        length = int(line[len(MAGIC):])
    except ValueError:
        raise RunnerError("bad header length")
    if not 0 < length <= 64 << 20:
        raise RunnerError("bad header length")
    try:
        header = json.loads(read_exact(0, length).decode("utf-8"))
    except ValueError as err:
        raise RunnerError("header is not JSON: %s" % err)
    if not isinstance(header, dict):
        raise RunnerError("header is not an object")
    return header


def check_name(name):
    """A relative path (``main.py``, ``shop/cart.py``): no empty, ``.`` or ``..`` part."""
    if (not isinstance(name, str) or not NAME_RE.fullmatch(name)
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise RunnerError("bad file name %r" % (name,))
    return name


def write_files(files):
    if not isinstance(files, dict) or not files:
        raise RunnerError("no files")
    for name, content in files.items():
        check_name(name)
        if not isinstance(content, str):
            raise RunnerError("content of %s is not a string" % name)
        path = os.path.join(WORK, name)
        try:
            # Folders are made here, by the runner, so none of them is a link.
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise RunnerError("cannot write %s: %s" % (name, e.strerror))
        try:
            write_all(fd, content.encode("utf-8"))
        finally:
            os.close(fd)


def make_undumpable():
    """Closes this process's memory and /proc entries to the (same-uid) candidate code."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_DUMPABLE = 4
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise RunnerError("prctl(PR_SET_DUMPABLE) failed: errno %d" % ctypes.get_errno())


def kill_everyone_else():
    """SIGKILLs every process of the container this runner may signal, but itself and init."""
    for _ in range(200):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.005)
        # Orphans are reaped by docker-init; our own children here.
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


# ---- the pytest worker (forked before the header is read) ----


def clip(text, limit):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_message(report):
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        reason = str(longrepr[2])
        return clip(reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason, MAX_MESSAGE)
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return clip(crash.message, MAX_MESSAGE)
    return clip(str(longrepr).strip().splitlines()[-1] if str(longrepr).strip() else "", MAX_MESSAGE)


class ReportPlugin:
    """Collects one case per test outcome, as pytest counts them."""

    def __init__(self):
        self.cases = []

    def add(self, name, outcome, message):
        if len(self.cases) < MAX_CASES:
            self.cases.append({"name": clip(name, MAX_NAME), "outcome": outcome, "message": message})

    def pytest_collectreport(self, report):
        if report.failed:
            self.add(report.nodeid or "<collection>", "error", failure_message(report))

    def pytest_runtest_logreport(self, report):
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if xfail:
                outcome = "passed" if report.passed else "skipped"
            elif report.passed:
                outcome = "passed"
            elif report.failed:
                outcome = "failed"
            else:
                outcome = "skipped"
            message = None if outcome == "passed" else failure_message(report)
            if xfail and outcome == "skipped":
                message = clip("xfail: %s" % report.wasxfail, MAX_MESSAGE)
            self.add(report.nodeid, outcome, message)
        elif report.failed:  # setup or teardown raised
            self.add(report.nodeid, "error", failure_message(report))
        elif report.when == "setup" and report.skipped:
            self.add(report.nodeid, "skipped", failure_message(report))


def worker(go_r, report_sock, preload):
    if preload:
        import pytest  # noqa: F401  (warm: pay the import before the run)
    data = bytearray()
    while True:
        chunk = os.read(go_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(go_r)
    if not data:
        os._exit(0)
    job = json.loads(data.decode("utf-8"))
    os.chdir(WORK)
    if "lint" in job:
        lint_worker(job["lint"], report_sock)
    test_files = job["pytest"]
    sys.argv = ["pytest"]
    sys.path.insert(0, WORK)  # a test in tests/ imports shop.cart as main.py does
    import pytest

    plugin = ReportPlugin()
    try:
        code = int(pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", WORK, *test_files],
                               plugins=[plugin]))
    except BaseException as err:  # pytest itself broke: say so, keep the cases seen
        sys.stderr.write("duet-runner: pytest failed: %r\n" % (err,))
        code = 3
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    report_sock.setblocking(True)
    report_sock.sendall(json.dumps({"exit": code, "cases": plugin.cases}).encode("utf-8") + b"\n")
    os._exit(code & 0xFF)


# flake8's numbers for pyflakes' messages, by message class; others get "F" and the class name.
PYFLAKES_CODES = {
    "UnusedImport": "F401", "ImportShadowedByLoopVar": "F402", "ImportStarUsed": "F403",
    "LateFutureImport": "F404", "ImportStarUsage": "F405", "ImportStarNotPermitted": "F406",
    "FutureFeatureNotDefined": "F407", "PercentFormatInvalidFormat": "F501",
    "PercentFormatExpectedMapping": "F502", "PercentFormatExpectedSequence": "F503",
    "PercentFormatExtraNamedArguments": "F504", "PercentFormatMissingArgument": "F505",
    "PercentFormatMixedPositionalAndNamed": "F506", "PercentFormatPositionalCountMismatch": "F507",
    "PercentFormatStarRequiresSequence": "F508", "PercentFormatUnsupportedFormatCharacter": "F509",
    "StringDotFormatInvalidFormat": "F521", "StringDotFormatExtraNamedArguments": "F522",
    "StringDotFormatExtraPositionalArguments": "F523", "StringDotFormatMissingArgument": "F524",
    "StringDotFormatMixingAutomatic": "F525", "FStringMissingPlaceholders": "F541",
    "MultiValueRepeatedKeyLiteral": "F601", "MultiValueRepeatedKeyVariable": "F602",
    "TooManyExpressionsInStarredAssignment": "F621", "TwoStarredExpressions": "F622",
    "AssertTuple": "F631", "IsLiteral": "F632", "InvalidPrintSyntax": "F633", "IfTuple": "F634",
    "BreakOutsideLoop": "F701", "ContinueOutsideLoop": "F702", "YieldOutsideFunction": "F704",
    "ReturnOutsideFunction": "F706", "DefaultExceptNotLast": "F707", "DoctestSyntaxError": "F721",
    "ForwardAnnotationSyntaxError": "F722", "RedefinedWhileUnused": "F811",
    "UndefinedName": "F821", "UndefinedExport": "F822", "UndefinedLocal": "F823",
    "DuplicateArgument": "F831", "UnusedVariable": "F841", "UnusedAnnotation": "F842",
    "RaiseNotImplemented": "F901",
}
MAX_FINDINGS = 1000
MAX_LINE_LENGTH = 100


def lint_worker(names, report_sock):
    """pyflakes and pycodestyle over each file, every finding naming its file; parses the
    files, never runs them. At most MAX_FINDINGS in all, in the order of ``names`` and by
    position within a file."""
    findings = []
    for name in names:
        if len(findings) >= MAX_FINDINGS:
            break
        findings.extend(lint_file(name, MAX_FINDINGS - len(findings)))
    report_sock.setblocking(True)
    report_sock.sendall(json.dumps({"exit": 0, "lint": findings}).encode("utf-8") + b"\n")
    os._exit(0)


def lint_file(name, room):
    """At most ``room`` findings of pyflakes and pycodestyle in the file ``name``."""
    findings = []

    def add(line, col, code, message):
        findings.append({"path": name, "line": max(int(line or 1), 1),
                         "col": max(int(col or 1), 1), "code": code,
                         "message": clip(message, MAX_MESSAGE)})

    path = os.path.join(WORK, name)
    with open(path, "rb") as f:
        source = f.read().decode("utf-8", "replace")

    import pyflakes.api
    import pyflakes.reporter

    class Flakes(pyflakes.reporter.Reporter):
        def __init__(self):
            pass

        def unexpectedError(self, filename, message):
            add(1, 1, "E902", str(message))

        def syntaxError(self, filename, message, lineno, offset, text):
            add(lineno, offset, "E999", "SyntaxError: %s" % message)

        def flake(self, message):
            kind = type(message).__name__
            add(message.lineno, getattr(message, "col", 0) + 1,
                PYFLAKES_CODES.get(kind, "F" + kind), message.message % message.message_args)

    pyflakes.api.check(source, name, Flakes())

    import pycodestyle

    class Style(pycodestyle.BaseReport):
        def error(self, line_number, offset, text, check):
            code = super().error(line_number, offset, text, check)
            if code:
                add(line_number, offset + 1, code, text[len(code):].strip())
            return code

    style = pycodestyle.StyleGuide(max_line_length=MAX_LINE_LENGTH, quiet=True, reporter=Style)
    style.check_files([path])
    findings.sort(key=lambda f: (f["line"], f["col"], f["code"]))
    return findings[:room]


def watch_exit(pid):
    """A descriptor that becomes readable when `pid` (not our child) exits, if the kernel has
    pidfds; None otherwise (then the caller polls)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def alive(pid, pidfd):
    if pidfd is not None:
        return not select.select([pidfd], [], [], 0)[0]
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def report_from_worker(report_sock, worker_pid):
    """Waits for the worker, keeping only what the worker process itself sent.

    The socket passes the kernel-checked pid of each sender (SO_PASSCRED): bytes from any
    other process (a daemon forked by a test, which inherits the socket) are dropped. The
    socket is read while the worker runs, so nobody can block the worker by filling it.
    """
    data = bytearray()
    foreign = False
    pidfd = watch_exit(worker_pid)
    watched = [report_sock] + ([pidfd] if pidfd is not None else [])
    report_sock.setblocking(False)
    deadline = None
    while True:
        if deadline is None and not alive(worker_pid, pidfd):
            kill_everyone_else()
            deadline = time.monotonic() + 2.0
            watched = [report_sock]
        elif deadline is not None and time.monotonic() > deadline:
            break
        ready, _, _ = select.select(watched, [], [], 0.02)
        if report_sock not in ready:
            if deadline is not None:
                break  # everyone else is dead and the socket is drained
            continue
        try:
            chunk, ancdata, _, _ = report_sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
        except BlockingIOError:
            continue
        if not chunk:
            if deadline is None:
                continue  # every writer closed it: wait for the worker's exit
            break
        sender = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                sender = struct.unpack("3i", payload[:12])[0]
        if sender != worker_pid:
            foreign = True
        elif len(data) < 16 << 20:
            data += chunk
    return bytes(data), foreign


def parse_report(data, foreign, key):
    """(exit code, report[key] or None, problem or None) from the worker's one-line report."""
    lines = data.split(b"\n")
    if not data:
        return 1, None, "no report: the worker process died"
    if len(lines) != 2 or lines[1] != b"":
        return 1, None, "the report was tampered with"
    try:
        report = json.loads(lines[0].decode("utf-8"))
        code, items = report["exit"], report[key]
        if not isinstance(items, list) or not isinstance(code, int):
            raise ValueError("report")
    except Exception:
        return 1, None, "the report was tampered with"
    return code, items, ("ignored bytes sent by another process" if foreign else None)


def run_worker(nonce, job, worker_pid, go_w, report_sock):
    """Hands the job (pytest or lint) to the worker, then writes the frame with its report."""
    write_all(go_w, json.dumps(job).encode("utf-8"))
    os.close(go_w)
    data, foreign = report_from_worker(report_sock, worker_pid)
    if "lint" in job:
        code, findings, problem = parse_report(data, foreign, "lint")
        frame = {"exit": code, "lint": findings, "problem": problem}
    else:
        code, cases, problem = parse_report(data, foreign, "cases")
        frame = {"exit": code, "tests": None if cases is None else {"cases": cases}, "problem": problem}
    write_frame(nonce, json.dumps(frame, ensure_ascii=True))
    os._exit(code & 0xFF)


def spawn_worker(preload):
    """Forks the pytest worker through an intermediate process that exits at once, so the
    worker is docker-init's child: killing it costs the runner nothing (init reaps it), and
    the program the runner execs never inherits it as a child."""
    go_r, go_w = os.pipe()
    report_r, report_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    report_r.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    pid_r, pid_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        code = RUNNER_FAILED
        try:
            os.close(go_w)
            os.close(pid_r)
            report_r.close()
            pid = os.fork()
            if pid == 0:
                os.close(pid_w)
                try:
                    worker(go_r, report_w, preload)
                finally:
                    os._exit(RUNNER_FAILED)
            write_all(pid_w, b"%d" % pid)
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(pid_w)
    report_w.close()
    os.waitpid(middle, 0)
    data = os.read(pid_r, 32)
    os.close(pid_r)
    if not data:
        raise RunnerError("the pytest worker did not start")
    return int(data), go_w, report_r


def main():
    preload = "--preload-pytest" in sys.argv[1:]
    nonce = None
    try:
        worker_pid, go_w, report_r = spawn_worker(preload)
        make_undumpable()
        header = read_header()
        claimed = header.get("nonce")
        if not isinstance(claimed, str) or not re.fullmatch(r"[0-9a-f]{32,128}", claimed):
            raise RunnerError("bad nonce")
        nonce = claimed
        target = header.get("target")
        if not isinstance(target, dict) or len(target) != 1:
            raise RunnerError("bad target")
        files = header.get("files")
        write_files(files)
        if "program" in target:
            entry = check_name(target["program"])
            if entry not in files:
                raise RunnerError("entry %s is not among the files" % entry)
            # Not waited for: tearing down a process that loaded pytest takes milliseconds,
            # and docker-init reaps it.
            os.kill(worker_pid, signal.SIGKILL)
            os.close(go_w)
            report_r.close()
            os.chdir(WORK)
            os.execv(sys.executable, [sys.executable, entry])
        elif "repl" in target:
            # python3 -i: the program, then the interactive interpreter with its names in
            # scope, reading lines from stdin (prompts on stderr), until exit() or the end of
            # stdin. Nothing more comes from the runner, as for a program.
            entry = check_name(target["repl"])
            if entry not in files:
                raise RunnerError("entry %s is not among the files" % entry)
            os.kill(worker_pid, signal.SIGKILL)
            os.close(go_w)
            report_r.close()
            os.chdir(WORK)
            os.execv(sys.executable, [sys.executable, "-q", "-i", entry])
        elif "pytest" in target:
            test_files = target["pytest"]
            if not isinstance(test_files, list) or not test_files:
                raise RunnerError("no test files")
            for name in test_files:
                if check_name(name) not in files:
                    raise RunnerError("test file %s is not among the files" % name)
            run_worker(nonce, {"pytest": test_files}, worker_pid, go_w, report_r)
        elif "lint" in target:
            names = target["lint"]
            if not isinstance(names, list) or not names:
                raise RunnerError("no files to lint")
            for name in names:
                if check_name(name) not in files:
                    raise RunnerError("lint file %s is not among the files" % name)
            run_worker(nonce, {"lint": names}, worker_pid, go_w, report_r)
        else:
            raise RunnerError("unknown target")
    except (RunnerError, OSError, ValueError) as err:
        fail(str(err), nonce)


if __name__ == "__main__":
    main()
