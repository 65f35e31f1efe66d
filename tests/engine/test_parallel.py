"""Gathers, constant scatters and pieces of work cut across two threads give what one thread
gives."""

from __future__ import annotations

import os
import threading
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import InputError, Simulation, parallel
from engine.scenario import load_scenario


@pytest.fixture
def small_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut batches of 3 or more, on two threads whatever the machine."""
    monkeypatch.setattr(parallel, "MIN_SPLIT", 3)
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")


@pytest.mark.usefixtures("small_split")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 9), st.integers(1, 500), st.sampled_from([np.uint8, np.uint16, np.int64]))
def test_take_matches_numpy(seed: int, n: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 200, 1000).astype(dtype)
    idx = rng.integers(0, a.size, n)
    got = parallel.take(a, idx)
    assert got.dtype == a.dtype
    np.testing.assert_array_equal(got, np.take(a, idx))
    # An index array of any shape gives that shape (the sampled pages of each VM).
    grid = rng.integers(0, a.size, (n, 3))
    np.testing.assert_array_equal(parallel.take(a, grid), np.take(a, grid))


@pytest.mark.usefixtures("small_split")
def test_fill_with_duplicates_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 50, 10_000)  # every index many times, in both halves
    a, b = np.zeros(60, np.int32), np.zeros(60, np.int32)
    parallel.fill(a, idx, 7)
    b[idx] = 7
    np.testing.assert_array_equal(a, b)
    grid = idx.reshape(-1, 4)
    c = np.zeros(60, np.int32)
    parallel.fill(c, grid, 7)
    np.testing.assert_array_equal(c, b)


def test_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_SPLIT", 3)
    monkeypatch.setenv("OVERCOMMIT_THREADS", "1")
    assert parallel.threads() == 1 and parallel._split(100) == 0
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    assert parallel.threads() == 2 and parallel._split(100) == 50
    assert parallel._split(2) == 0  # below MIN_SPLIT
    for bad in ("zero", "0", "-1", "65", "2.5"):  # not a count: refused at the CLI, and
        monkeypatch.setenv("OVERCOMMIT_THREADS", bad)  # a library caller gets the cores
        with pytest.raises(InputError, match="OVERCOMMIT_THREADS"):
            parallel.threads_setting()
        assert parallel.threads() == (2 if (os.cpu_count() or 1) >= 2 else 1)
    monkeypatch.setenv("OVERCOMMIT_THREADS", "8")
    assert parallel.threads_setting() == 8 and parallel.threads() == 2


def test_halves_run_on_the_other_thread(small_split: None) -> None:
    """The split is real: the second half is handed to the helper thread (which runs it,
    unless the caller is done with its own half first: then the caller does)."""
    seen: list[str] = []
    real = parallel._other()

    class Spy:
        def submit(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(fn.__name__)
            return real.submit(fn, *args, **kwargs)

    a = np.arange(100, dtype=np.int64)
    idx = np.arange(99, -1, -1)
    orig = parallel._other
    parallel._other = lambda: Spy()  # type: ignore[assignment,return-value]
    try:
        np.testing.assert_array_equal(parallel.take(a, idx), a[::-1])
        parallel.fill(a, idx[:10], -1)
    finally:
        parallel._other = orig  # type: ignore[method-assign]
    assert seen == ["_take", "_fill"]
    assert (a[90:] == -1).all() and (a[:90] == np.arange(90)).all()


def test_a_world_is_the_same_on_one_thread_and_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenth of the benchmark data center, every batch cut or none (its build's writes
    and its sampling periods' counts too): the same digest."""
    tenth = [f"vm_group[{i}].count=25" for i in range(4)]
    digests = []
    for threads in ("1", "2"):
        monkeypatch.setenv("OVERCOMMIT_THREADS", threads)
        monkeypatch.setattr(parallel, "MIN_SPLIT", 64)
        monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 1024)
        sim = Simulation.from_spec(load_scenario("scenarios/bench/dc-100x1000.toml", tenth))
        sim.step(40)
        digests.append(sim.digest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize("n", [0, 1, 7, (8 << 20) // 4 + 3, (1 << 20) * 5 + 1])
def test_full_matches_numpy(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    got = parallel.full(n, -1, np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.full(n, -1, np.int32))


def test_a_half_that_cuts_its_own_work_does_not_wait_on_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Work handed to the helper thread that asks for halves again runs them in place: the
    helper cannot wait on a task queued behind the one it is running."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    monkeypatch.setattr(parallel, "MIN_SPLIT", 3)
    a = np.arange(1000, dtype=np.int64)
    got: dict[int, np.ndarray] = {}

    def nested(lo: int, hi: int) -> None:
        got[lo] = parallel.take(a, np.arange(lo, hi)[::-1])

    # On a thread of its own, so that a deadlock fails the test instead of hanging it.
    runner = threading.Thread(target=parallel.halves,
                              args=(nested, 1000, parallel.MIN_SPLIT_BYTES), daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "the helper waited on itself"
    np.testing.assert_array_equal(got[0], a[:500][::-1])
    np.testing.assert_array_equal(got[500], a[500:][::-1])


def test_halves_cover_the_rows_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    calls: list[tuple[int, int]] = []
    parallel.halves(lambda a, b: calls.append((a, b)), 9, parallel.MIN_SPLIT_BYTES)
    assert sorted(calls) == [(0, 4), (4, 9)]
    calls.clear()
    parallel.halves(lambda a, b: calls.append((a, b)), 9, parallel.MIN_SPLIT_BYTES - 1)
    assert calls == [(0, 9)]  # too little to be worth a second thread


def test_spread_runs_every_piece_once_and_keeps_their_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces go to whichever thread is free: a slow first piece on one thread leaves the
    rest to the other, and the results still come back in piece order."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    bounds = parallel.even(1000, 10)
    assert bounds == [125 * j for j in range(9)]
    ran: list[tuple[int, int, str]] = []
    first_started = threading.Event()

    def piece(lo: int, hi: int) -> int:
        if lo == 0:
            first_started.set()
            threading.Event().wait(0.3)  # the first piece is slow
        else:
            first_started.wait(5)
        ran.append((lo, hi, threading.current_thread().name))
        return hi - lo

    got = parallel.spread(piece, bounds)
    assert got == [(lo, 125) for lo in bounds[:-1]]
    assert sorted((lo, hi) for lo, hi, _ in ran) == list(pairwise(bounds))
    slow = next(name for lo, _, name in ran if lo == 0)
    assert [name for lo, _, name in ran if lo != 0] == [name for lo, _, name in ran
                                                        if lo != 0 and name != slow]


def test_spread_stays_on_the_calling_thread_below_the_split(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    assert parallel.even(9, 10) == [0, 9]
    monkeypatch.setenv("OVERCOMMIT_THREADS", "1")
    assert parallel.even(1000, 10) == [0, 1000]
    names: list[str] = []
    got = parallel.spread(lambda lo, hi: names.append(threading.current_thread().name) or hi,
                          [0, 1000])
    assert got == [(0, 1000)] and names == [threading.current_thread().name]


def test_by_parity_runs_one_call_or_the_two_parts_side_by_side(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the split, fn(0, 1) on the caller; from it, fn(0, 2) and fn(1, 2) at once, the
    second on the helper (each waits for the other to start: one thread would hang)."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    me = threading.current_thread().name
    assert parallel.by_parity(lambda part, parts: (part, parts, me), 9, 10) == [(0, 1, me)]
    started = [threading.Event(), threading.Event()]

    def part_of(part: int, parts: int) -> tuple[int, int, str]:
        started[part].set()
        assert started[1 - part].wait(5)
        return part, parts, threading.current_thread().name

    got = parallel.by_parity(part_of, 1000, 10)
    assert got[0] == (0, 2, me) and got[1][:2] == (1, 2) and got[1][2] != me


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.integers(1, 12))
def test_weighed_pieces_cost_about_alike(costs: list[int], pieces: int) -> None:
    """Bounds ascend from 0 to n; each piece is at most a share of the cost plus one
    item's; nothing is cut below the split."""
    os.environ["OVERCOMMIT_THREADS"] = "2"
    try:
        ends = np.cumsum(costs)
        total = int(ends[-1])
        bounds = parallel.weighed(ends, 10, pieces)
    finally:
        del os.environ["OVERCOMMIT_THREADS"]
    n = len(costs)
    assert bounds[0] == 0 and bounds[-1] == n
    assert all(a < b for a, b in pairwise(bounds))
    if total < 10 or n < 2:
        assert bounds == [0, n]
        return
    assert len(bounds) - 1 <= pieces
    share = total / pieces
    for lo, hi in pairwise(bounds):
        assert sum(costs[lo:hi]) <= 2 * share + max(costs[lo:hi]) + 1


def test_an_error_in_a_piece_reaches_the_caller_after_the_others_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The error goes on only once the helper, which had taken up pieces, has ended them
    (it takes every piece left: none is claimed twice)."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    done: list[int] = []
    helper_began = threading.Event()

    def piece(lo: int, hi: int) -> None:
        if lo == 0:
            helper_began.wait(5)
            raise ValueError("piece 0")
        helper_began.set()
        threading.Event().wait(0.01)
        done.append(lo)

    with pytest.raises(ValueError, match="piece 0"):
        parallel.spread(piece, parallel.even(800, 10))
    assert sorted(done) == [100 * j for j in range(1, 8)]  # every other piece ran first
    assert parallel._other().submit(lambda: 1).result(timeout=5) == 1  # the helper is free


def test_a_part_the_helper_has_not_taken_up_runs_on_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the helper busy (another world's work), the caller done with its own part runs
    the helper's too instead of waiting for the helper to get to it: pair's second half,
    spread's pieces, a gather's half; the results are the same."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    monkeypatch.setattr(parallel, "MIN_SPLIT", 4)
    release = threading.Event()
    busy = parallel._other().submit(release.wait, 5)
    try:
        me = threading.current_thread().name
        names: list[str] = []
        got = parallel.pair(lambda: 1, lambda: names.append(threading.current_thread().name)
                            or 2)
        assert got == (1, 2) and names == [me]
        ran = parallel.spread(lambda lo, hi: (lo, threading.current_thread().name),
                              [0, 1, 2, 3])
        assert ran == [(lo, (lo, me)) for lo in (0, 1, 2)]
        a = np.arange(100, dtype=np.int64)
        np.testing.assert_array_equal(parallel.take(a, a[::-1].copy()), a[::-1])
        assert not busy.done()  # all of it while the helper was still busy
    finally:
        release.set()
        busy.result(timeout=5)


def test_beside_runs_on_the_helper_while_the_caller_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """parallel.beside: the work runs on the helper while the caller goes on, and is done
    once the caller has waited; with the helper busy the wait runs it on the caller (once,
    however often it is called); on one thread it runs at once."""
    monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    began, go_on = threading.Event(), threading.Event()
    where: list[str] = []

    def work(out: np.ndarray) -> None:
        where.append(threading.current_thread().name)
        began.set()
        go_on.wait(5)
        out[:] = 7

    out = np.zeros(4, np.int64)
    wait = parallel.beside(work, out)
    assert began.wait(5)  # started on the helper while the caller is here
    assert not out.any()
    go_on.set()
    wait()
    assert (out == 7).all() and where == [f"{parallel._HELPER_NAME}_0"]
    release = threading.Event()
    busy = parallel._other().submit(release.wait, 5)
    try:
        where.clear()
        out[:] = 0
        wait = parallel.beside(work, out)
        wait()
        assert (out == 7).all() and where == [threading.current_thread().name]
        wait()  # a second wait does nothing: the work is not run again
        assert where == [threading.current_thread().name]
    finally:
        release.set()
        busy.result(timeout=5)
    monkeypatch.setenv("OVERCOMMIT_THREADS", "1")
    where.clear()
    out[:] = 0
    parallel.beside(work, out)
    assert (out == 7).all() and where == [threading.current_thread().name]  # at once
