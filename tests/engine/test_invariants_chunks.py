"""The invariant check reads the pages a chunk at a time: any chunk size finds the same
violations, wherever in the page arrays they are, and none on a sound world."""

from collections.abc import Callable

import numpy as np
import pytest

from engine import Simulation, invariants
from engine.state import GuestKind, Loc, State
from tests.conftest import alike_ksm_sim


def _world() -> Simulation:
    """Shared, private, untouched and zero pages on two hosts."""
    return alike_ksm_sim(6, content={"zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2,
                                     "resident": 0.8})


def _last(state: State, loc: Loc) -> int:
    return int(np.flatnonzero(state.pages.location == loc)[-1])


def _untouched_content(state: State) -> None:
    state.pages.content[_last(state, Loc.UNTOUCHED)] = 99


def _unmapped_frame(state: State) -> None:
    state.pages.frame[_last(state, Loc.UNTOUCHED)] = 5


def _kind_of_ballooned(state: State) -> None:
    state.pages.guest_kind[_last(state, Loc.PRIVATE)] = GuestKind.DRIVER


def _shared_as_private(state: State) -> None:
    page = _last(state, Loc.SHARED)
    state.pages.location[page] = Loc.PRIVATE
    state.vms["loc_count"][:, Loc.SHARED] -= np.bincount(
        state.vms.vm_of_pages(np.array([page])), minlength=len(state.vms))
    state.vms["loc_count"][:, Loc.PRIVATE] += np.bincount(
        state.vms.vm_of_pages(np.array([page])), minlength=len(state.vms))


def _refcount(state: State) -> None:
    state.frames.refcount[state.pages.frame[_last(state, Loc.PRIVATE)]] += 1


def _ksm_flag(state: State) -> None:
    assert state.sharing.ksm_unstable is not None
    state.sharing.ksm_unstable[_last(state, Loc.PRIVATE)] ^= True


def _bad_frame(state: State) -> None:
    """A resident page past the middle maps no frame: later chunks' frames are not counted."""
    resident = np.flatnonzero(state.pages.location == Loc.PRIVATE)
    state.pages.frame[resident[resident.size // 2]] = -3


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("corrupt", [
    _untouched_content, _unmapped_frame, _kind_of_ballooned, _shared_as_private, _refcount,
    _ksm_flag, _bad_frame])
def test_any_chunk_size_finds_the_same_violations(corrupt: Callable[[State], None],
                                                  threads: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks checked one after the other or several at once (on any machine: the core
    count is set) add up to the check of one chunk."""
    sim = _world()
    state = sim.world.state
    assert len(state.pages) > 4 * 7
    monkeypatch.setattr(invariants.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(invariants, "_MAX_THREADS", threads)
    monkeypatch.setattr(invariants, "CHUNK_PAGES", 7)  # chunks cut VMs anywhere
    assert invariants.check(state) == []
    corrupt(state)
    small = invariants.check(state)
    monkeypatch.setattr(invariants, "CHUNK_PAGES", 1 << 22)  # one chunk: the whole array
    assert small and invariants.check(state) == small


@pytest.mark.parametrize("layout", ["dense", "hosts far apart", "scattered", "mixed"])
def test_frame_counts_match_add_at_however_the_frames_lie(layout: str) -> None:
    """_count_into counts by a bincount over a dense span, a sort of many frames lying
    far apart (VMs on distant hosts) and add.at for a few scattered ones: the counts are
    those of add.at, repeats included."""
    rng = np.random.default_rng(len(layout))
    n_frames = 50_000_000
    near = rng.integers(1000, 1000 + 60_000, 70_000)
    far = rng.integers(40_000_000, 40_000_000 + 60_000, 50_000)
    scattered = rng.integers(0, n_frames, 30_000)
    frames = {"dense": near, "hosts far apart": np.concatenate([near, far, near[:9]]),
              "scattered": scattered,
              "mixed": np.concatenate([far, scattered[:20_000], near, scattered])}[layout]
    counts = np.zeros(n_frames, np.int32)
    invariants._count_into(counts, frames)
    expected = np.zeros(n_frames, np.int32)
    np.add.at(expected, frames, 1)
    assert np.array_equal(counts, expected)


@pytest.mark.parametrize("interleaved", [False, True])
def test_a_chunks_frames_counted_host_by_host_add_up_to_add_at(interleaved: bool) -> None:
    """A chunk's frames counted by its checking thread, host by host (in runs, or by a
    mask a host when a post-copy interleaves two), plus the frames left over (a page far
    off its host, a stopped VM's page): the counts of add.at."""
    rng = np.random.default_rng(9)
    n_hosts, per_host = 6, 2_000_000
    host = np.repeat(np.array([3, 0, 5, -1, 2]), 30_000)
    if interleaved:
        host = rng.permutation(host)
    frames = np.where(host >= 0, host * per_host, 0) + rng.integers(0, per_host, host.size)
    frames[::997] = rng.integers(0, n_hosts * per_host, frames[::997].size)  # off their host
    offset = np.arange(n_hosts) * per_host
    counted, distinct, left = invariants._count_by_host(frames, host, offset,
                                                        np.full(n_hosts, per_host))
    assert distinct is not None  # many runs of a host, or many left over: sorted
    counts = np.zeros(n_hosts * per_host, np.int32)
    for lo, c in counted:
        counts[lo:lo + c.size] += c
    if distinct is not None:
        counts[distinct[0]] += distinct[1]
    invariants._count_into(counts, left)
    expected = np.zeros(n_hosts * per_host, np.int32)
    np.add.at(expected, frames, 1)
    assert np.array_equal(counts, expected)
    assert left.size <= invariants._SCATTERED  # few enough for add.at
