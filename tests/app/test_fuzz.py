"""A fixed sample of the fuzz corpus (tests/fuzz/; all of it: benchmarks/fuzz.py).

Every case runs in a forked child under a timeout: the only acceptable outcomes are a
one-line error with exit 2 for a wrong input, or acceptance of a valid one. The sample
holds every distinct crash, hang and silent accept the trust issue lists (the cross-field,
file, command-line, save and console-command cases) and a stride of the per-field value
mutations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import api, saves, scenarios
from tests.fuzz.runner import Case, run_case
from tests.fuzz.savekill import kill_experiment

STRIDE = 37  # every 37th per-field mutation: a few of each kind of wrong value
# The damaged and edited saves the trust issue lists (the rest: benchmarks/fuzz.py).
SAVE_CASES = ("valid", "history a string", "money as a string", "VM 99", "RNG state negative",
              "short thresholds", "object array", "sidecar with ..", "sidecar with /",
              "schema_version 0", "schema_version -1", "negative tick", "salting level",
              "host renamed", "migration duplicated", "migration removed", "to its source",
              "mode bogus", "status bogus", "cursor past the end", "another save's",
              "refcounts zeroed", "duplicate free-frame", "hint table full",
              "frame keys of different", "frame key of a frame past", "VM spec memory",
              "vm_specs_at")


def _sample(cache: Path) -> list[Case]:
    cases = [*scenarios.semantic_cases(), *scenarios.raw_cases(),
             *scenarios.command_line_cases()]
    cases += [c for c in saves.save_cases(cache) if any(k in c.name for k in SAVE_CASES)]
    cases += list(scenarios.value_cases())[::STRIDE]
    cases += list(api.api_cases())[::STRIDE]
    return cases


def test_fuzz_sample_has_no_traceback_hang_or_silent_accept(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    cases = _sample(folder / "cache")
    assert len(cases) > 130
    findings = []
    for i, case in enumerate(cases):
        outcome = run_case(case, folder / f"case{i}", timeout_s=15.0)
        if outcome.verdict != "ok":
            last = (outcome.stderr.strip().splitlines() or [""])[-1]
            findings.append(f"[{outcome.verdict}] {case.category}: {case.name}: {last}")
    assert findings == []


def test_the_runner_sees_each_kind_of_failure(tmp_path: Path) -> None:
    """The judge itself: a traceback, a hang, a silent accept, a leaked escape."""
    def crash() -> int:
        raise RuntimeError("boom")

    def hang() -> int:
        import time
        time.sleep(60)
        return 0

    def leak() -> int:
        print("\x1b[2J")
        return 0

    cases = {"traceback": Case("x", "t", "refuse", lambda f: crash),
             "hang": Case("x", "t", "refuse", lambda f: hang),
             "silent accept": Case("x", "t", "refuse", lambda f: lambda: 0),
             "escape leak": Case("x", "t", "either", lambda f: leak)}
    for i, (verdict, case) in enumerate(cases.items()):
        assert run_case(case, tmp_path / str(i), timeout_s=1.0).verdict == verdict


def test_a_save_killed_while_overwritten_leaves_a_loadable_one(tmp_path: Path) -> None:
    # Every fourth file-system call of a save (open, write, fsync, rename, unlink...),
    # and a few random moments; benchmarks/fuzz.py kills at all of them and many more.
    assert kill_experiment(tmp_path, points=3, every=4) == 0
