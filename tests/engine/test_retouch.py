"""Swap victims the guest touches again before the tick ends (workloads/retouch.py)."""

from typing import Any

import numpy as np
import pytest

from engine import Simulation, parse_scenario
from engine.memory.swap import swap_out
from engine.state import Loc
from engine.workloads import retouch
from tests.conftest import small_spec

N_EVICT = 600
TICK_S = 5.0
WS_PAGES = 2048  # 8 MiB of 4 KiB pages
TOUCHES_PER_S = 400.0


def _world() -> Simulation:
    """Two 8 MiB VMs touching all their pages, 400 times a second: a at random, b in a
    sweep; 5 s ticks."""
    data = small_spec()
    data["scenario"]["tick_s"] = TICK_S
    data["policy"]["sharing"] = {"mode": "off"}
    for vm, order in ((0, "uniform"), (1, "sequential")):
        data["vm"][vm]["content"] = {"resident": 1.0}
        data["vm"][vm]["workload"] = {"reads_per_s": TOUCHES_PER_S, "writes_per_s": 0,
                                      "working_set": "8MiB", "hot_access": 0.0,
                                      "order": order}
    data["host"][0]["memory"] = "32MiB"
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(2)
    vms = sim.world.state.vms
    assert (vms["speed"][:2] == 1.0).all() and (vms["throttle"][:2] == 0).all()
    assert (vms["ws_pages"][:2] == WS_PAGES).all()
    return sim


def _evict(sim: Simulation) -> tuple[Any, Any]:
    vms = sim.world.state.vms
    goal = np.zeros(len(vms), np.int64)
    goal[:2] = N_EVICT
    sim.world.state.reclaim.hosts["disk_busy_s_tick"][:] = 0
    pages, vm = swap_out(sim.world, goal)
    # The daemon's random picks can fall a little short (the rest would follow next tick).
    assert (np.bincount(vm, minlength=len(vms))[:2] > 0.8 * N_EVICT).all()
    return pages, vm


def test_a_victim_comes_back_if_touched_between_its_eviction_and_the_tick_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """600 pages of each VM leave at uniform moments of a 5 s tick; each page is touched
    r = 400 / 2048 times a second. Random access (Poisson): a page left at u comes back
    with probability 1 - exp(-r (T - u)), on average 1 - (1 - exp(-rT)) / (rT) = 0.362.
    A sweep reaches it at a uniform phase of its 5.12 s pass: on average rT / 2 = 0.488.
    Those pages fault straight back in (swap-ins); here the daemon takes no others."""
    sim = _world()
    vms = sim.world.state.vms
    monkeypatch.setattr(retouch, "swap_out",
                        lambda world, goal: (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    sim.world.evicted = _evict(sim)
    out = vms["loc_count"][:2, Loc.SWAPPED].copy()
    before = vms["swapins"][:2].copy()
    retouch.retouch_evicted(sim.world)
    back = vms["swapins"][:2] - before
    x = TOUCHES_PER_S / WS_PAGES * TICK_S
    p = np.array([1 - (1 - np.exp(-x)) / x, x / 2])
    sigma = np.sqrt(out * p * (1 - p))
    assert np.all(np.abs(back - out * p) < 4 * sigma), (back, out * p)
    assert (vms["loc_count"][:2, Loc.SWAPPED] == out - back).all()
    assert sim.world.evicted is None


def test_the_daemon_evicts_others_in_place_of_those_that_came_back() -> None:
    """Every page that came back is replaced by another victim (which may come back in
    turn): the disk writes each victim and reads back each one that came back, and the
    VMs end the tick with about as many pages out as the daemon took first."""
    sim = _world()
    vms = sim.world.state.vms
    sim.world.evicted = _evict(sim)
    out = vms["loc_count"][:2, Loc.SWAPPED].copy()
    ins, outs = vms["swapins"][:2].copy(), vms["swapouts"][:2].copy()
    retouch.retouch_evicted(sim.world)
    came_back = vms["swapins"][:2] - ins
    replaced = vms["swapouts"][:2] - outs
    assert (came_back > 0.3 * out).all()
    assert (vms["loc_count"][:2, Loc.SWAPPED] == out - came_back + replaced).all()
    # Each round's random picks can fall a little short, as the first did.
    assert (replaced <= came_back).all() and (replaced > 0.9 * came_back).all()


def test_blocked_and_idle_vms_touch_nothing_again() -> None:
    sim = _world()
    vms = sim.world.state.vms
    vms["blocked"][0] = True
    vms["reads_per_s"][1] = 0.0
    sim.world.evicted = _evict(sim)
    before = vms["swapins"][:2].copy()
    retouch.retouch_evicted(sim.world)
    assert (vms["swapins"][:2] == before).all()


def test_a_swap_storm_swaps_alike_at_5s_and_1s_ticks() -> None:
    """The swap storm's first 10 minutes. With the daemon's victims out only from the end
    of the tick, a 5 s tick hid the touches its victims get in the rest of it: fw and lb
    took 12 % and 17 % fewer swap-ins than at 1 s ticks and served 12 % and 16 % more."""
    from tests.engine.test_reclaim import _at_5s_and_1s
    coarse, fine = _at_5s_and_1s("04-the-swap-storm", 600)
    for vm in ("fw", "lb", "etl"):
        v = fine.index(vm)
        assert fine["swapins"][v] > 50_000  # a storm at both
        assert coarse["swapins"][v] == pytest.approx(fine["swapins"][v], rel=0.06), vm
        assert coarse["served_s"][v] == pytest.approx(fine["served_s"][v], rel=0.08), vm
