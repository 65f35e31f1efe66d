"""The guest's page picking: `take` against a per-VM reference, and the balloon's picker
(class and location carried in its sort keys) against the generic one."""

import numpy as np
import pytest

from engine import Simulation, kernels, parse_scenario
from engine.memory.guest import (
    INELIGIBLE,
    KIND_OF_CLASS,
    balloon_class,
    balloon_class_loc,
    pick_balloon,
    pick_many,
    take,
)
from engine.state import GuestKind, Loc, State
from tests.conftest import small_spec


def _take_reference(vm: np.ndarray, pages: np.ndarray, cls: np.ndarray,
                    want: np.ndarray) -> np.ndarray:
    """Per VM, in candidate order: best classes first, the first ones within a class."""
    chosen = []
    for v in range(want.size):
        mine = np.flatnonzero(vm == v)
        left = int(want[v])
        for c in range(INELIGIBLE):
            of_class = mine[cls[mine] == c][:max(left, 0)]
            chosen.extend(pages[of_class].tolist())
            left -= of_class.size
    return np.unique(np.array(chosen, np.int64))


@pytest.mark.parametrize("seed", range(12))
def test_take_matches_a_per_vm_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    m = rng.integers(0, 40, n) * (rng.random(n) < 0.8)  # some VMs without candidates
    vm = np.repeat(np.arange(n), m)
    pages = rng.integers(0, 30, vm.size) + 100 * vm  # duplicates within a VM
    # Pages of equal number share a class, as the pages they stand for do.
    page_cls = rng.integers(0, INELIGIBLE + 1, 100 * n)
    cls = page_cls[pages].astype(np.int8 if seed % 2 else np.int64)
    want = rng.integers(0, 50, n)
    assert np.array_equal(take(vm, pages, cls, want), _take_reference(vm, pages, cls, want))


def _generic_pick(state: State, rng: np.random.Generator, want: np.ndarray,
                  classes: object) -> np.ndarray:
    """The picks of guest.probe and take by `classes` (numpy), VMs left short scanned."""
    from engine.memory.guest import _scan_short, probe

    vm, cand = probe(state, rng, want, 3)
    return _scan_short(state, rng, want, take(vm, cand, classes(state, cand), want), classes)  # type: ignore[operator]


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_picks_at_a_location_are_the_generic_picks(monkeypatch: pytest.MonkeyPatch,
                                                   mode: str) -> None:
    """The swap daemon's and a deflating driver's picks (guest.pick_many: the compiled
    probe, or numpy's, and a VM left short scanned for its location in one pass) are the
    generic ones by their class (a plain function: every page classed, then each class
    found)."""
    from engine.memory import guest
    from engine.memory.balloon import _BALLOONED
    from engine.memory.swap import _PRIVATE

    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    scans = []
    scan = guest.AtLocation.scan
    monkeypatch.setattr(guest.AtLocation, "scan",
                        lambda at, state, pages: scans.append(at.loc) or scan(at, state, pages))
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(10)
    state = sim.world.state
    p = state.pages
    rng = np.random.default_rng(3)
    some = rng.choice(p.location.size, p.location.size // 8, replace=False)
    p.location[some] = Loc.BALLOONED
    for at in (_BALLOONED, _PRIVATE):
        for want_each in (1, 30, 300, 3000):
            want = np.full(len(state.vms), want_each, np.int64)
            want[0] = 0
            picked = pick_many(state, np.random.default_rng(want_each), want, at)
            assert np.array_equal(picked, _generic_pick(
                state, np.random.default_rng(want_each), want,
                lambda state, pages, at=at: at(state, pages)))
            assert picked.size > 0 and (p.location[picked] == at.loc).all()
            assert np.array_equal(np.unique(picked), picked)
    assert Loc.BALLOONED in scans  # ballooned pages too few for the probes: VMs scanned


def test_the_balloon_picker_picks_what_the_generic_one_does_with_class_and_location() -> None:
    data = small_spec()
    data["vm"][1]["workload"] = {"kind": "idle"}
    sim = Simulation.from_spec(parse_scenario(data))
    sim.step(20)
    state = sim.world.state
    p = state.pages
    # A mix of locations and kinds, some ineligible (post-copy pages at the source).
    rng = np.random.default_rng(5)
    some = rng.choice(p.location.size, p.location.size // 10, replace=False)
    p.location[some[:some.size // 2]] = Loc.REMOTE
    p.guest_kind[some[some.size // 2:]] = GuestKind.CACHE
    for want_each in (1, 30, 300, 3000):
        want = np.full(len(state.vms), want_each, np.int64)
        generic = _generic_pick(state, np.random.default_rng(want_each), want, balloon_class)
        pages, cls, loc = pick_balloon(state, np.random.default_rng(want_each), want)
        assert np.array_equal(pages, generic)
        assert pages.size > 0
        expect_cls, expect_loc = balloon_class_loc(state, pages)
        assert np.array_equal(cls, expect_cls) and np.array_equal(loc, p.location[pages])
        assert np.array_equal(loc, expect_loc) and (cls < INELIGIBLE).all()
        assert np.array_equal(KIND_OF_CLASS[cls], p.guest_kind[pages])


def test_hosts_and_low_memory_of_frames_by_table_match_their_ranges() -> None:
    from engine.memory import frames as frame_alloc

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    hosts = sim.world.state.hosts
    hosts.low_frames[0] = 0  # a host without low memory
    frames = np.arange(int(hosts.n_frames.sum()))
    owner = np.repeat(np.arange(len(hosts)), hosts.n_frames)
    assert np.array_equal(hosts.host_of_frames(frames), owner)
    assert np.array_equal(hosts.host_of_frames(frames[::-1]), owner[::-1])  # any order
    low = frames - hosts.frame_offset[owner] < hosts.low_frames[owner]
    assert np.array_equal(frame_alloc.is_low(hosts, frames), low)
    assert low.any() and not low.all() and not low[owner == 0].any()


def test_a_whole_vm_scan_by_slice_picks_what_a_scan_by_index_does() -> None:
    from engine.memory.balloon import _BALLOONED
    from engine.memory.guest import _by_class
    from engine.memory.swap import _PRIVATE

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(10)
    state = sim.world.state
    p = state.pages
    off, n = int(state.vms["page_offset"][0]), int(state.vms["n_pages"][0])
    rng = np.random.default_rng(2)
    p.location[off + rng.choice(n, n // 20, replace=False)] = Loc.BALLOONED
    for classes in (_BALLOONED, _PRIVATE, balloon_class):
        for k in (1, n // 40, n // 10, n):
            by_index = _by_class(state, np.random.default_rng(k), np.arange(off, off + n), k,
                                 classes)
            by_slice = _by_class(state, np.random.default_rng(k), slice(off, off + n), k,
                                 classes)
            assert by_index.size > 0 and np.array_equal(by_slice, by_index)
