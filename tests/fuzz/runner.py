"""Run one fuzz case in a forked child, under a timeout and a memory limit, and judge it.

The only acceptable outcomes: a clean one-line error (`error: ...`, no traceback) with
exit status 2 for an input that is wrong, or acceptance (0, or 3 when an objective fails)
of an input that is in fact valid. Everything else is a finding: a traceback, a hang, a
silent accept, a messy error, a valid input refused, or control characters of the input
reaching the output (escape injection).
"""

from __future__ import annotations

import gc
import io
import os
import re
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Imported once here, before any fork: each case's child then starts in milliseconds.
import app.campaign  # noqa: E402, F401
import app.cli  # noqa: E402
import app.reproduce  # noqa: E402, F401

REFUSE, ACCEPT, EITHER = "refuse", "accept", "either"
# Control characters a plain (non-terminal) run never prints on its own.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Case:
    name: str
    category: str
    expect: str  # REFUSE, ACCEPT or EITHER
    # Writes its files into the folder and returns the argv for app.cli.main, or a
    # callable run in the child instead (console command previews).
    build: Callable[[Path], list[str] | Callable[[], int]]
    check_after: Callable[[Path], str | None] | None = None  # a problem left behind, if any


@dataclass
class Outcome:
    case: Case
    kind: str  # error, accepted, traceback, hang, messy error, crash
    code: int | None
    stderr: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """ok, or the finding's name."""
        if self.kind in ("traceback", "hang", "crash", "messy error"):
            return self.kind
        if self.problems:
            return self.problems[0].split(":")[0]
        if self.kind == "accepted" and self.case.expect == REFUSE:
            return "silent accept"
        if self.kind == "error" and self.case.expect == ACCEPT:
            return "valid refused"
        return "ok"


def _child(case: Case, folder: Path, out: Path, err: Path, memory_limit: int) -> None:
    code = 1
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err_fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        target = case.build(folder)
        code = int(target()) if callable(target) else int(app.cli.main(target))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child reports everything, then exits
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_case(case: Case, folder: Path, timeout_s: float = 20.0,
             memory_limit: int = 4 * 1024**3) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    out, err = folder / ".stdout", folder / ".stderr"
    start = time.perf_counter()
    gc.freeze()  # the child's garbage collector then leaves the parent's pages shared
    pid = os.fork()
    if pid == 0:
        _child(case, folder, out, err, memory_limit)
    gc.unfreeze()
    status: int | None = None
    # A pidfd wakes us the moment the child ends; the timeout bounds a hang.
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)
    if ready:
        status = os.waitpid(pid, 0)[1]
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    seconds = time.perf_counter() - start
    stdout = out.read_text(errors="replace") if out.exists() else ""
    stderr = err.read_text(errors="replace") if err.exists() else ""
    if status is None:
        return Outcome(case, "hang", None, stderr, seconds)
    if os.WIFSIGNALED(status):
        return Outcome(case, "crash", -os.WTERMSIG(status), stderr, seconds)
    code = os.WEXITSTATUS(status)
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr or code == 1:
        kind = "traceback"
    elif code == 2:
        one = len(lines) == 1 and lines[0].startswith("error: ")
        kind = "error" if one else "messy error"
    elif code in (0, 3):
        kind = "accepted"
    else:
        kind = "crash"
    outcome = Outcome(case, kind, code, stderr, seconds)
    if _CONTROL.search(stdout + stderr):
        outcome.problems.append("escape leak: control characters reached the output")
    if case.check_after is not None and kind in ("accepted", "error"):
        problem = case.check_after(folder)
        if problem:
            outcome.problems.append(problem)
    return outcome
