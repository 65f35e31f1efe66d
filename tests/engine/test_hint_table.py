"""The ESX hint table has a fixed size: it never grows, a collision forgets the older hint,
and a write to a hinted page kills its hint (engine/hashtable.py HintTable)."""

import numpy as np

from engine import Simulation, invariants, parse_scenario
from engine.hashtable import HintTable
from engine.memory.sharing import try_share
from engine.memory.touch import apply_touches
from engine.state import Loc
from tests.conftest import small_spec

IMAGE_ONLY = {"zero": 0.1, "os": 0.6, "app": 0.3, "private": 0.0, "resident": 1.0}


def _world(hint_table: float, busy: bool = False) -> Simulation:
    data = small_spec()
    data["host"][0]["memory"] = "24MiB"
    data["policy"]["sharing"] = {"mode": "esx", "share_force_salting": 0,
                                 "hint_table": hint_table, "pages_per_s_per_vm": 400,
                                 "pages_per_s_per_host": 800}
    for vm in data["vm"][:2]:
        vm.update(content=IMAGE_ONLY, tenant=vm["id"])
        vm["workload"] = ({"reads_per_s": 100, "writes_per_s": 40, "working_set": "2MiB"}
                          if busy else {"kind": "idle"})
    data["vm"][1]["host"] = "h1"
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_a_long_run_with_a_tiny_table_stays_bounded_and_still_shares() -> None:
    sim = _world(hint_table=0.005, busy=True)  # 6144 frames on h1 -> 32 slots
    state = sim.world.state
    table = state.sharing.hints
    slots = table.size.copy()
    assert slots[0] == 32
    peak = 0
    for _ in range(30):
        sim.step(100)
        peak = max(peak, int(state.sharing.hosts["hint_count"].max()))
        assert table.entry.nbytes == 4 * int(slots.sum())  # never reallocated
    assert peak <= 32
    counters = state.sharing.hosts
    # The scanner went on recording hints over forgotten ones, matching fresh twins.
    assert counters["hint_overwrites"][0] > 100
    assert counters["hint_hits"][0] > 0
    assert counters["hint_stale"][0] > 0  # the workloads rewrite hinted pages
    # The OS and application images of the two VMs still end up shared.
    host = sim.snapshot().host("h1")
    assert host.shared_saved_bytes > 0.3 * 16 * 1024**2
    assert sim.report()["hosts"][0]["hint_table"]["slots"] == 32


def test_the_table_is_sized_to_the_hosts_frames_by_default() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    frames = sim.world.state.hosts.n_frames
    assert np.array_equal(sim.world.state.sharing.hints.size, frames)  # 4096: a power of 2


def _twins(sim: Simulation, k: int) -> tuple[int, int]:
    state = sim.world.state
    vms, p = state.vms, state.pages
    a0, b0 = int(vms["page_offset"][0]), int(vms["page_offset"][1])
    b = slice(b0, b0 + int(vms["n_pages"][1]))
    a = a0 + k
    return a, b0 + int(np.flatnonzero(p.content[b] == p.content[a])[0])


def test_a_write_kills_the_hint_even_when_the_content_comes_out_the_same() -> None:
    sim = _world(hint_table=1.0)
    state = sim.world.state
    p = state.pages
    a, twin = _twins(sim, 7)
    try_share(state, np.array([a]))
    assert state.sharing.hosts["hint_count"][0] == 1
    state.tick += 1  # the guest writes the page in a later tick, with the same bytes
    n = len(state.vms)
    apply_touches(state, np.zeros(0, np.int64), np.array([a]), p.content[[a]].copy(),
                  np.zeros(n, np.int64), np.bincount([0], minlength=n))
    assert not try_share(state, np.array([twin])).any()
    assert state.sharing.hosts["hint_stale"][0] == 1
    assert p.location[a] == Loc.PRIVATE
    # The twin took the slot: scanning a now finds it and shares both.
    assert try_share(state, np.array([a])).all()
    assert p.frame[a] == p.frame[twin]
    assert state.sharing.hosts["hint_hits"][0] == 1
    assert invariants.check(state) == []


def test_a_collision_overwrites_the_older_hint() -> None:
    sim = _world(hint_table=0.001)  # 16 slots per host
    state = sim.world.state
    table = state.sharing.hints
    from engine.memory.share_ops import sharing_keys

    vms = state.vms
    a0 = int(vms["page_offset"][0])
    pages = a0 + np.arange(200, dtype=np.int64)
    pages = pages[state.pages.location[pages] == Loc.PRIVATE]
    keys = sharing_keys(state, pages, vms.vm_of_pages(pages))
    slots = table.slot(keys, np.zeros(pages.size, np.int64))
    _, first = np.unique(keys, return_index=True)
    # Two distinct keys that land in the same slot.
    by_slot: dict[int, int] = {}
    pair = None
    for i in np.sort(first).tolist():
        s = int(slots[i])
        if s in by_slot and keys[by_slot[s]] != keys[i]:
            pair = (int(pages[by_slot[s]]), int(pages[i]))
            break
        by_slot.setdefault(s, i)
    assert pair is not None
    older, newer = pair
    try_share(state, np.array([older]))
    try_share(state, np.array([newer]))
    assert state.sharing.hosts["hint_overwrites"][0] == 1
    _, hinted, _ = table.read(table.slot(keys[pages == newer], np.zeros(1, np.int64)))
    assert int(hinted[0]) == newer
    assert invariants.check(state) == []


def test_occupied_per_host_counts_each_hosts_region() -> None:
    """One count per host's region, empty regions and regions of different sizes alike."""
    table = HintTable(np.array([16, 100, 16, 5000], np.int64))
    rng = np.random.default_rng(4)
    slot = rng.choice(table.capacity, 900, replace=False)
    table.write(slot, rng.integers(0, 1000, slot.size), np.zeros(slot.size, np.int64))
    expected = np.bincount(table.host_of(slot), minlength=4)
    assert table.occupied_per_host().tolist() == expected.tolist()
    table.clear(slot[:300])
    expected = np.bincount(table.host_of(slot[300:]), minlength=4)
    assert table.occupied_per_host().tolist() == expected.tolist()
