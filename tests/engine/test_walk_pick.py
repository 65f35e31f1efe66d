"""Page-cache picks where usable pages are scarce: the walk from a random point
(engine/memory/walk_pick.py) and the reads that use it (workloads/filecache.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Simulation, invariants, kernels, parse_scenario
from engine.memory import kind_bits, walk_pick
from engine.state import GuestKind, Loc, State
from engine.workloads import filecache
from tests.conftest import small_spec

KINDS = len(GuestKind)


def _world() -> State:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(2)
    return sim.world.state


def _recount(state: State) -> None:
    """Each VM's pages by guest kind and by location, counted anew after a test set them,
    and the pages free or cached marked anew (pages.free_or_cached)."""
    vms, p = state.vms, state.pages
    kind_bits.refresh(state, 0, len(p))
    owner = vms.vm_of_pages(np.arange(len(p)))
    vms["kind_count"][:] = np.bincount(owner * KINDS + p.guest_kind,
                                       minlength=len(vms) * KINDS).reshape(len(vms), -1)
    vms["loc_count"][:] = np.bincount(owner * len(Loc) + p.location,
                                      minlength=len(vms) * len(Loc)).reshape(len(vms), -1)


def _scarce(state: State, v: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """VM v made all process memory but 12 free pages it used before, 18 never used and 70
    cached ones, scattered: returns (free used, free never used, cached)."""
    p = state.pages
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    p.guest_kind[off:off + n] = GuestKind.ANON
    scattered = off + rng.choice(n, 100, replace=False)
    used, fresh, cached = scattered[:12], scattered[12:30], scattered[30:]
    p.guest_kind[scattered[:30]] = GuestKind.FREE
    p.location[used] = Loc.PRIVATE
    p.location[fresh] = Loc.UNTOUCHED
    p.guest_kind[cached] = GuestKind.CACHE
    p.location[cached] = Loc.PRIVATE
    _recount(state)
    return np.sort(used), np.sort(fresh), np.sort(cached)


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_every_miss_fills_a_page_free_ones_first(monkeypatch: pytest.MonkeyPatch,
                                                 mode: str) -> None:
    # 100 usable pages in 2,048 (a random probe of 4 a page wanted finds ~20): 20 hits read
    # 20 cached pages; 50 misses fill every free page (used ones, then never used) and 20
    # cached ones, never one just read.
    if mode == "numba" and not kernels.available():
        pytest.skip("numba not installed")
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    state = _world()
    vms = state.vms
    v = int(np.argmax(vms["n_pages"]))
    used, fresh, cached = _scarce(state, v, np.random.default_rng(5))
    hits = np.zeros(len(vms), np.int64)
    misses = np.zeros(len(vms), np.int64)
    hits[v], misses[v] = 20, 50
    hit, fill = filecache.pick_reads(state, np.random.default_rng(1), hits, misses)
    assert hit.size == 20 and np.isin(hit, cached).all()
    assert fill.size == 50 and np.unique(fill).size == 50
    assert np.isin(used, fill).all() and np.isin(fresh, fill).all()
    assert np.isin(fill, cached).sum() == 20 and not np.isin(hit, fill).any()
    # More misses than usable pages: every one left is filled, no process page.
    misses[v] = 500
    hit, fill = filecache.pick_reads(state, np.random.default_rng(2), hits, misses)
    assert fill.size == 80 and np.isin(fill, np.concatenate([used, fresh, cached])).all()


def test_the_walk_picks_as_a_window_of_its_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # A walk passes pages from its start (wrapping) until it has passed 4 usable pages a
    # page wanted; of those it takes the best classes, and of the cut-off class the first.
    monkeypatch.setenv(kernels.KERNELS_ENV, "numpy")
    state = _world()
    vms = state.vms
    v = int(np.argmax(vms["n_pages"]))
    off, n = int(vms["page_offset"][v]), int(vms["n_pages"][v])
    p = state.pages
    p.guest_kind[off:off + n] = GuestKind.ANON
    # Cached pages every 10 pages, free ones every 100 (at 5, 105, ...).
    p.guest_kind[off:off + n:10] = GuestKind.CACHE
    p.location[off:off + n:10] = Loc.PRIVATE
    p.guest_kind[off + 5:off + n:100] = GuestKind.FREE
    p.location[off + 5:off + n:100] = Loc.UNTOUCHED
    _recount(state)
    start = (1000 + 0.5) / n  # from position 1000: cached at 1000, 1010, ...; free at 1005
    picks = walk_pick.walk_take(state, np.array([v]), np.array([start]), np.array([5]), 4,
                                filecache._FILL_TABLE)
    # 20 usable pages passed: the cached ones at 1000..1170 and the free ones at 1005 and
    # 1105. Both free ones, then the first three cached ones.
    np.testing.assert_array_equal(picks, off + np.array([1000, 1005, 1010, 1020, 1105]))
    # Started near the end, the walk wraps to the VM's first pages.
    first = n - 15
    picks = walk_pick.walk_take(state, np.array([v]), np.array([(first + 0.5) / n]),
                                np.array([3]), 1, filecache._HIT_TABLE)
    order = (first + np.arange(n)) % n
    np.testing.assert_array_equal(picks, off + np.sort(order[order % 10 == 0][:3]))
    assert picks[0] == off  # it wrapped


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_compiled_walks_give_the_numpy_picks(monkeypatch: pytest.MonkeyPatch,
                                                 threads: str) -> None:
    # Random pages of every kind and location, at densities from scarce to common; walks
    # from random points with wants from 1 to more than a VM has, excluded pages, and the
    # best class each VM has (so compiled walks stop early): the same picks either way,
    # and the same as walks told nothing of the best class.
    if not kernels.available():
        pytest.skip("numba not installed")
    monkeypatch.setenv("OVERCOMMIT_THREADS", threads)
    state = _world()
    vms = state.vms
    rng = np.random.default_rng(8)
    n = len(state.pages)
    p = state.pages
    for trial in range(12):
        density = [0.01, 0.05, 0.3][trial % 3]
        p.guest_kind[:] = np.where(rng.random(n) < density,
                                   rng.choice([GuestKind.FREE, GuestKind.CACHE], n),
                                   rng.choice([GuestKind.ANON, GuestKind.DRIVER], n))
        p.location[:] = rng.choice(np.arange(len(Loc), dtype=np.uint8), n)
        if trial % 4 == 1:
            p.guest_kind[p.guest_kind == GuestKind.FREE] = GuestKind.ANON  # none free
        untouched = p.location == Loc.UNTOUCHED
        if trial % 4 == 2:  # every free page never used: the walks end on those
            p.location[p.guest_kind == GuestKind.FREE] = Loc.UNTOUCHED
            untouched = p.location == Loc.UNTOUCHED
        p.guest_kind[untouched] = GuestKind.FREE  # an untouched page is a free one
        _recount(state)
        if trial % 2:  # stale marks too (pages no longer free or cached): no pick changes
            p.free_or_cached |= rng.integers(0, 1 << 63, p.free_or_cached.size, np.uint64)
        vm = np.flatnonzero(vms["n_pages"] > 0)
        want = rng.choice([1, 3, 20, 100, 3000], vm.size)
        start = rng.random(vm.size)
        exclude = np.unique(rng.integers(0, n, n // 20))
        best = filecache.fill_best(vms)[vm]
        if trial % 4 == 2:
            assert (best == filecache._FREE).all()
        got = {}
        for mode in ("numpy", "numba"):
            monkeypatch.setenv(kernels.KERNELS_ENV, mode)
            for told in (False, True):
                got[mode, told] = walk_pick.walk_take(
                    state, vm, start, want, 4, filecache._FILL_TABLE, exclude,
                    filecache._CACHE, best if told else None)
            got[mode, "hit"] = walk_pick.walk_take(state, vm, start, want, 4,
                                                   filecache._HIT_TABLE)
        for key, picks in got.items():
            ref = got["numpy", key[1]] if key[1] == "hit" else got["numpy", False]
            np.testing.assert_array_equal(picks, ref, err_msg=str((trial, key)))
        fill = got["numpy", False]
        assert fill.size > 0 and not np.isin(fill, exclude[
            p.guest_kind[exclude] == GuestKind.CACHE]).any()


def test_an_untouched_page_off_the_free_list_is_caught() -> None:
    # The fill walks take a VM whose free pages are all untouched to have none it used
    # before (filecache.fill_best): that holds only while every untouched page is free.
    state = _world()
    assert invariants.check(state) == []
    page = int(np.flatnonzero(state.pages.location == Loc.UNTOUCHED)[0])
    state.pages.guest_kind[page] = GuestKind.CACHE
    _recount(state)
    assert invariants.check(state) == ["an untouched page is not on the guest's free list"]
