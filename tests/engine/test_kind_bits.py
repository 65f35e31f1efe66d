"""The marks of the pages free or cached (state.Pages.free_or_cached, memory/kind_bits.py)
that the page cache's walks pass instead of every page record."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Simulation, invariants, kernels, parse_scenario
from engine.memory import kind_bits, walk_pick
from engine.memory.touch import apply_touches
from engine.state import GuestKind, Loc, State, free_or_cached_bits
from engine.workloads import filecache
from tests.conftest import small_spec

MODES = ["numba", "numpy"]


def _world(steps: int = 2) -> State:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(steps)
    return sim.world.state


def _marked(state: State) -> np.ndarray:
    n = len(state.pages)
    return np.unpackbits(state.pages.free_or_cached.view(np.uint8), bitorder="little")[:n]


def _free_or_cached(state: State) -> np.ndarray:
    kind = state.pages.guest_kind
    return (kind == GuestKind.FREE) | (kind == GuestKind.CACHE)


def _use(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    if mode == "numba" and not kernels.available():
        pytest.skip("numba not installed")
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)


def test_a_new_world_marks_exactly_its_free_and_cached_pages() -> None:
    # Every page starts free; a boot's pages are marked anew from what it wrote, and a
    # save's from its kinds.
    state = _world(0)
    assert np.array_equal(state.pages.free_or_cached, free_or_cached_bits(state.pages.word))
    assert not _free_or_cached(state).all()  # the boot made some pages process memory
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(5)
    loaded = Simulation.from_state(sim.save_state()).world.state
    assert np.array_equal(loaded.pages.free_or_cached, free_or_cached_bits(loaded.pages.word))


@pytest.mark.parametrize("mode", MODES)
def test_mark_and_refresh(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    # mark sets the pages' bits and no others; refresh recomputes a range from the kinds
    # exactly, its edges mid-element, and leaves the pages outside it as they were.
    _use(monkeypatch, mode)
    state = _world()
    p = state.pages
    n = len(p)
    p.free_or_cached[:] = 0
    pages = np.array([0, 63, 64, 65, 130, n - 1, 65], np.int64)
    kind_bits.mark(state, pages)
    assert np.array_equal(np.flatnonzero(_marked(state)), np.unique(pages))
    rng = np.random.default_rng(3)
    p.guest_kind[:] = rng.choice(np.arange(len(GuestKind), dtype=np.uint8), n)
    p.free_or_cached[:] = rng.integers(0, 1 << 63, p.free_or_cached.size, np.uint64)
    before = _marked(state).copy()
    lo, hi = 37, n - 91
    kind_bits.refresh(state, lo, hi)
    after = _marked(state)
    assert np.array_equal(after[lo:hi], _free_or_cached(state)[lo:hi])
    assert np.array_equal(after[:lo], before[:lo]) and np.array_equal(after[hi:], before[hi:])


def _squeezed_caches() -> dict:
    """small_spec with two databases reading through page caches squeezed by their working
    sets on an overcommitted host (balloons, swap), their pages not a multiple of 64."""
    data = small_spec()
    data["host"][0]["memory"] = "12MiB"
    db = {"reads_per_s": 300, "writes_per_s": 100, "working_set": "5MiB",
          "dataset": "16MiB", "file_reads_per_s": 400, "closed_loop": True}
    data["vm"][0].update(memory="6148KiB", workload=db)  # 1,537 pages
    data["vm"][1].update(memory="8MiB", workload={**db, "working_set": "7MiB"})
    # Powered off and on again: its pages all free at once, then its boot's.
    data["timeline"] = [{"at": "40s", "kind": "stop_vm", "vm": "b"},
                        {"at": "45s", "kind": "start_vm", "vm": "b", "host": "h1"}]
    return data


def test_every_change_to_free_or_cache_is_marked_over_a_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Page caches filling, balloons inflating and deflating, workloads writing, a VM
    # powered off and on: each tick starts with exactly the free and cached pages marked,
    # and ends with each of them marked (invariants.py), and the walks ran.
    walked = []
    take = walk_pick.walk_take

    def spy(state: State, vm: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        walked.append(vm.size)
        return take(state, vm, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(walk_pick, "walk_take", spy)
    sim = Simulation.from_spec(parse_scenario(_squeezed_caches()))
    state = sim.world.state
    assert int(state.vms["page_offset"][1]) % 64  # the second VM's first element is shared
    # Booted VMs of 1,537 and 2,048 pages, the second's records not from a whole element.
    assert np.array_equal(state.pages.free_or_cached, free_or_cached_bits(state.pages.word))
    ballooned = 0
    for _ in range(60):
        kind_bits.refresh(state, 0, len(state.pages))  # a page made free or cached now
        sim.step(1)                                    # is caught if left unmarked
        assert invariants.check(state) == []
        ballooned = max(ballooned, int(state.vms["loc_count"][:, Loc.BALLOONED].sum()))
    assert sum(walked) > 20 and int(state.vms["file_misses"].sum()) > 1000
    assert ballooned > 0


def test_a_walk_clears_the_stale_marks_it_passes_in_elements_all_its_vms() -> None:
    # Marks of pages no longer free or cached change no pick; the walk clears those it
    # passes, but not in a 64-page element it shares with another VM (the other thread
    # may be walking that one).
    if not kernels.available():
        pytest.skip("numba not installed")
    state = _world()
    vms, p = state.vms, state.pages
    v = int(np.argmax(vms["n_pages"]))
    off, n = int(vms["page_offset"][v]), int(vms["n_pages"][v])
    p.guest_kind[off:off + n] = GuestKind.ANON
    p.guest_kind[off + 10:off + n:50] = GuestKind.CACHE
    kind_bits.refresh(state, 0, len(p))
    vms["kind_count"][v] = np.bincount(p.guest_kind[off:off + n], minlength=len(GuestKind))
    exact = _marked(state).copy()
    picks_exact = walk_pick.walk_take(state, np.array([v]), np.array([0.0]), np.array([10**6]),
                                      4, filecache._HIT_TABLE)
    p.free_or_cached[:] = np.uint64(0xFFFF_FFFF_FFFF_FFFF)  # every page marked
    picks = walk_pick.walk_take(state, np.array([v]), np.array([0.0]), np.array([10**6]), 4,
                                filecache._HIT_TABLE)
    assert np.array_equal(picks, picks_exact)
    assert picks.size == (n - 10 + 49) // 50
    marked = _marked(state)
    own_lo, own_hi = -(-off // 64) * 64, (off + n) // 64 * 64
    # Its whole elements: exactly the cached pages marked again.
    assert np.array_equal(marked[own_lo:own_hi], exact[own_lo:own_hi])
    # The elements it shares with its neighbours keep their marks.
    assert marked[off:own_lo].all() and marked[own_hi:off + n].all()
    assert marked[:off].all() and marked[off + n:].all()  # other VMs' untouched


@pytest.mark.parametrize("mode", MODES)
def test_touches_that_make_pages_cached_mark_them(monkeypatch: pytest.MonkeyPatch,
                                                 mode: str) -> None:
    # Process memory the guest reuses for its page cache, and ballooned pages a page-cache
    # read pops: each is marked as the touch makes it cached.
    _use(monkeypatch, mode)
    sim = Simulation.from_spec(parse_scenario(_squeezed_caches()))
    sim.step(30)
    state = sim.world.state
    p = state.pages
    anon = np.flatnonzero((p.guest_kind == GuestKind.ANON) & (p.location == Loc.PRIVATE))[:40]
    ballooned = np.flatnonzero(p.location == Loc.BALLOONED)[:40]
    assert anon.size == 40 and ballooned.size > 0
    pages = np.sort(np.concatenate([anon, ballooned]))
    p.free_or_cached[:] = 0  # no page marked: the touches must mark theirs
    kind_bits.mark(state, np.flatnonzero(_free_or_cached(state)))
    n = len(state.vms)
    apply_touches(state, np.zeros(0, np.int64), pages, np.arange(1, pages.size + 1,
                                                                 dtype=np.uint64),
                  np.zeros(n, np.int64), np.bincount(state.vms.vm_of_pages(pages), minlength=n),
                  kind=GuestKind.CACHE)
    made = pages[p.guest_kind[pages] == GuestKind.CACHE]
    assert np.isin(anon, made).all() and np.isin(ballooned, made).any()
    assert _marked(state)[made].all()
    assert invariants.check(state) == []
