"""A big world is built in small pages and its filled arrays collapsed into huge pages in
the background (engine/hugepages.py): where memory lies changes, results do not."""

from __future__ import annotations

import os
import time
import weakref

import numpy as np
import pytest

from engine import Simulation, hugepages
from engine.scenario import load_scenario

SWAP_STORM = "scenarios/campaign/04-the-swap-storm.toml"
needs_collapse = pytest.mark.skipif(not hugepages._can_collapse(),
                                    reason="no transparent huge pages or MADV_COLLAPSE here")


def _huge_bytes(a: np.ndarray) -> int:
    """Bytes of huge pages in the mappings that overlap `a` (/proc/self/smaps)."""
    lo, hi = a.ctypes.data, a.ctypes.data + a.nbytes
    total, overlaps = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                start, end = (int(x, 16) for x in head[0].split("-"))
                overlaps = start < hi and end > lo
            elif overlaps and head and head[0] == "AnonHugePages:":
                total += int(head[1]) * 1024
    return total


def test_small_pages_turns_numpys_advice_off_and_back() -> None:
    assert hugepages._SET_ADVICE is not None
    with hugepages.small_pages(True):
        assert hugepages._SET_ADVICE(False) is False  # off inside (and stays off)
    assert hugepages._SET_ADVICE(True) is True  # back on after


def test_one_thread_or_a_small_world_builds_as_numpy_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCOMMIT_THREADS", "1")
    assert not hugepages.wanted(1 << 40)
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    assert not hugepages.wanted(hugepages.MIN_BYTES - 1)


def test_filled_arrays_are_collapsed_and_the_others_advised(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []

    def record(start: int, size: int, advice: int) -> int:
        calls.append((start, size, advice))
        return 0

    monkeypatch.setattr(hugepages, "_MADVISE", record)
    filled, later = np.ones(20 << 20, np.uint8), np.zeros(6 << 20, np.int32)
    small, view = np.ones(1 << 20, np.uint8), filled[: 8 << 20]  # too small; not its own
    thread = hugepages.after_build([filled, small], [later, view])
    assert thread is not None
    thread.join(60)
    f_start, f_size = hugepages._huge_span(filled)
    l_start, l_size = hugepages._huge_span(later)
    assert f_size >= 18 << 20 and l_size >= 22 << 20
    assert (l_start, l_size, hugepages._MADV_HUGEPAGE) in calls
    assert (f_start, f_size, hugepages._MADV_HUGEPAGE) in calls
    steps = [(a, n) for a, n, advice in calls if advice == hugepages._MADV_COLLAPSE]
    assert steps[0][0] == f_start and all(n <= hugepages.STEP_BYTES for _, n in steps)
    assert all(a + n == b for (a, n), (b, _) in zip(steps, steps[1:], strict=False))
    assert sum(n for _, n in steps) == f_size  # the filled array's huge pages, once each
    assert len(calls) == 2 + len(steps)  # nothing for the small array or the view


@needs_collapse
def test_the_kernel_collapses_a_filled_array() -> None:
    with hugepages.small_pages(True):
        filled = np.ones(16 << 20, np.uint8)  # written at once, in small pages
    # (Mappings that share its area may hold huge pages of their own: count the change.)
    before = _huge_bytes(filled)
    if before >= hugepages._huge_span(filled)[1]:
        pytest.skip("malloc placed it in memory numpy had advised: huge pages already")
    thread = hugepages.after_build([filled], [])
    assert thread is not None
    thread.join(60)
    assert _huge_bytes(filled) - before >= hugepages.HUGE
    assert int(filled.sum()) == filled.size  # the data moved with its pages


@needs_collapse
def test_a_world_built_in_small_pages_runs_exactly_as_one_built_in_huge_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    digests = []
    for min_bytes in (1 << 50, 0):  # never, always
        monkeypatch.setattr(hugepages, "MIN_BYTES", min_bytes)
        sim = Simulation.from_spec(load_scenario(SWAP_STORM))
        sim.step(60)
        digests.append(sim.digest())
    assert digests[0] == digests[1]


def test_a_world_dropped_meanwhile_is_freed_without_waiting_for_the_collapse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []

    def slow(start: int, size: int, advice: int) -> int:
        if advice == hugepages._MADV_COLLAPSE:
            steps.append(start)
            time.sleep(0.05)
        return 0

    monkeypatch.setattr(hugepages, "_MADVISE", slow)
    filled = np.ones(64 << 20, np.uint8)  # 8 steps of 8 MiB: 0.4 s of "collapse"
    gone = weakref.ref(filled)
    thread = hugepages.after_build([filled], [])
    assert thread is not None
    del filled
    deadline = time.monotonic() + 5
    while gone() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone() is None  # freed while the thread was still at it
    thread.join(5)
    assert 1 <= len(steps) < 7  # and it stopped there


def test_no_collapse_step_runs_while_a_first_tick_holds_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []

    def record(start: int, size: int, advice: int) -> int:
        if advice == hugepages._MADV_COLLAPSE:
            steps.append(start)
        return 0

    monkeypatch.setattr(hugepages, "_MADVISE", record)
    filled = np.ones(32 << 20, np.uint8)
    with hugepages.hold():
        thread = hugepages.after_build([filled], [])
        assert thread is not None
        time.sleep(0.3)
        assert steps == []  # waiting
    thread.join(10)
    assert not thread.is_alive() and len(steps) >= 3  # then all of it


def test_a_simulation_holds_the_collapses_during_its_first_tick_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[bool] = []
    sim = Simulation.from_spec(load_scenario(SWAP_STORM))
    real_hold = hugepages.hold

    def spy() -> object:
        held.append(True)
        return real_hold()

    monkeypatch.setattr(hugepages, "hold", spy)
    sim.step(3)
    assert held == [True]
    assert hugepages._go.is_set()  # released after it


def test_a_child_forked_during_a_first_tick_does_not_wait_for_it() -> None:
    with hugepages.hold():
        pid = os.fork()
        if pid == 0:  # the child: the parent's tick is not running here
            os._exit(0 if hugepages._go.is_set() and hugepages._holding == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert not hugepages._go.is_set()  # the parent still holds
    assert os.waitstatus_to_exitcode(status) == 0
    assert hugepages._go.is_set()
