"""The compiled KSM pass (memory/ksm_pass.py, page after page) against the array passes
(ksm._scan_pass with OVERCOMMIT_KERNELS=numpy), on passes made to hold the cases where a
loop that writes the trees as it goes and passes that group pages by key could part:

- an entry of the pages' key in the unstable tree that is no longer valid, and two
  unchanged pages of that key: they make a KSM page, and the old entry is what the key
  keeps (the loop put the first page in over it, then took it out);
- a page that is itself its key's entry (its VM's scan positions moved within a full
  scan): it is that entry only, wherever it falls in the pass, changed or not.

Each pass runs from the same state both ways, and the worlds must have the same digest
(frames, counters, free stacks, and the trees by their entries).
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest

from engine import Simulation, kernels
from engine.hashtable import RegionMap
from engine.memory import ksm, share_ops
from engine.state import Loc
from tests.conftest import alike_ksm_sim

_CONTENT = np.uint64(0xC0FFEE_0000_1234)  # no other page has it


def _world() -> tuple[Simulation, np.ndarray]:
    """Four alike VMs under KSM, scanned for a few ticks; host h1's private pages that are
    not zero pages, the first of which will be made alike."""
    sim = alike_ksm_sim(3)
    state = sim.world.state
    vm = np.flatnonzero(state.vms["host"] == 0)
    pages = np.concatenate([np.arange(int(state.vms["page_offset"][v]),
                                      int(state.vms["page_offset"][v] + state.vms["n_pages"][v]))
                            for v in vm])
    private = pages[(state.pages.location[pages] == Loc.PRIVATE)
                    & (state.pages.content[pages] != 0)]
    assert private.size > 10
    return sim, private


def _alike(sim: Simulation, pages: list[int], changed: tuple[int, ...] = ()) -> None:
    """`pages` get one content, and were scanned last tick and not written since (except
    `changed`, written since)."""
    state = sim.world.state
    scanned = state.sharing.ksm_scanned_at
    assert scanned is not None
    for page in pages:
        state.pages.content[page] = _CONTENT
        scanned[page] = state.tick  # tick + 1 of the last scan: the tick before
        state.pages.written_before[page] = state.tick + 5 if page in changed else 0


def _key(sim: Simulation, page: int) -> np.ndarray:
    state = sim.world.state
    at = np.array([page])
    return share_ops.sharing_keys(state, at, state.vms.vm_of_pages(at))


def _entry(sim: Simulation, key: np.ndarray, page: int) -> None:
    """The unstable tree of host h1 holds `key` -> `page`, left there by its last scan."""
    trees = ksm._unstable_trees(sim.world.state)
    trees.put_in(key, np.array([page]), np.array([0]))
    state = sim.world.state
    assert state.sharing.ksm_unstable is not None
    if not state.sharing.ksm_unstable[page]:
        state.sharing.ksm_unstable[page] = True
        state.sharing.hosts["ksm_unshared"][0] += 1


def _both_ways(sim: Simulation, monkeypatch: pytest.MonkeyPatch,
               handed: list[int]) -> dict[str, Simulation]:
    """One pass over `handed` (host h1's pages, in this order), numpy then compiled."""
    out = {}
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        run = copy.deepcopy(sim)
        state = run.world.state
        pages = np.array(handed, np.int64)
        ksm._scan_pass(state, run.spec.policy.sharing, pages, np.zeros(pages.size, np.int64),
                       state.vms.vm_of_pages(pages))
        out[mode] = run
    assert out["numba"].digest() == out["numpy"].digest()
    return out


def _tree_value(sim: Simulation, key: np.ndarray) -> int:
    trees = sim.world.state.sharing.unstable
    assert isinstance(trees, RegionMap)
    found, value = trees.get_in(key, np.array([0]))
    return int(value[0]) if found[0] else -1


@pytest.mark.parametrize("n_alike", [2, 3, 5])
def test_a_stale_entry_of_the_key_stays_when_two_pages_pair(monkeypatch: pytest.MonkeyPatch,
                                                            n_alike: int) -> None:
    sim, private = _world()
    alike = private[:n_alike].tolist()
    stale = int(private[-1])  # a private page of other content: not a partner
    _alike(sim, alike)
    key = _key(sim, alike[0])
    _entry(sim, key, stale)
    runs = _both_ways(sim, monkeypatch, alike)
    for run in runs.values():
        p = run.world.state.pages
        assert (p.location[alike] == Loc.SHARED).all()
        assert np.unique(p.frame[alike]).size == 1  # one KSM page for all of them
        assert _tree_value(run, key) == stale


@pytest.mark.parametrize("order", ["entry first", "entry last"])
@pytest.mark.parametrize("entry_changed", [False, True])
def test_a_page_that_is_its_keys_entry_is_that_entry_only(monkeypatch: pytest.MonkeyPatch,
                                                         order: str,
                                                         entry_changed: bool) -> None:
    sim, private = _world()
    entry, other = int(private[0]), int(private[1])
    _alike(sim, [entry, other], changed=(entry,) if entry_changed else ())
    key = _key(sim, entry)
    _entry(sim, key, entry)
    handed = [entry, other] if order == "entry first" else [other, entry]
    runs = _both_ways(sim, monkeypatch, handed)
    for run in runs.values():
        p = run.world.state.pages
        # The other page found the entry as its partner: one KSM page of the two.
        assert (p.location[[entry, other]] == Loc.SHARED).all()
        assert p.frame[entry] == p.frame[other]
        assert _tree_value(run, key) == -1


@pytest.mark.parametrize("entry_changed", [False, True])
def test_an_entry_rescanned_alone_stays_in_the_tree(monkeypatch: pytest.MonkeyPatch,
                                                    entry_changed: bool) -> None:
    sim, private = _world()
    entry = int(private[0])
    _alike(sim, [entry], changed=(entry,) if entry_changed else ())
    key = _key(sim, entry)
    _entry(sim, key, entry)
    runs = _both_ways(sim, monkeypatch, [entry])
    for run in runs.values():
        sharing = run.world.state.sharing
        assert run.world.state.pages.location[entry] == Loc.PRIVATE
        assert _tree_value(run, key) == entry
        assert sharing.ksm_unstable is not None
        # Unchanged, it is the entry its scan leaves in the tree; changed, only checksummed.
        assert bool(sharing.ksm_unstable[entry]) == (not entry_changed)


def test_the_pass_leaves_its_kept_maps_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps a thread keeps from pass to pass (ksm_pass._maps) are empty after every
    pass, in a world whose chains fill (two sharers a KSM page), so that KSM pages are
    made, pages walk on past full entries and stale entries are noted; and the passes
    over a run agree with the array passes'."""
    from engine.memory import ksm_pass
    from engine.scenario import parse_scenario
    from tests.conftest import small_spec

    monkeypatch.setenv("OVERCOMMIT_THREADS", "1")
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": 2000, "ksm_sleep": "1s",
                                 "share_force_salting": 0, "ksm_max_page_sharing": 2}
    same = {"memory": "4MiB", "app": "web",
            "content": {"zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 1.0}}
    data["vm"] = [{"id": v, "host": host, **same}
                  for v, host in (("a", "h1"), ("b", "h1"), ("c", "h1"), ("d", "h2"))]
    real, seen = ksm_pass._PASS, {"new": 0, "stale": 0, "walked": 0}
    names = inspect.signature(ksm_pass._pass_loop).parameters

    maps = (("new", "new_key", "new_frame"), ("stale", "stale_slot", "stale_page"),
            ("walked", "walked_key", "walked_to"))

    def checked(*args: object) -> None:
        a = {name: np.asarray(arg) for name, arg in zip(names, args, strict=True)}
        # Values are kept only under a key: zeroed here, a value after the pass shows
        # that its key was set in the pass.
        for _, _, value in maps:
            a[value][:] = 0
        real(*args)
        for label, key, value in maps:
            assert not a[key].any(), key
            seen[label] += int(a[value].any())

    digests = {}
    for mode in ("numba", "numpy"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        monkeypatch.setattr(ksm_pass, "_PASS", checked)
        sim = Simulation.from_spec(parse_scenario(data), check=True)
        sim.step(12)
        digests[mode] = sim.digest()
    assert min(seen.values()) > 0, seen
    assert digests["numba"] == digests["numpy"]
