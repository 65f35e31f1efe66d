"""What ksmd's batches reach (mm/ksm.c): pages not present cost a batch nothing, and smart
scan passes over pages that keep not merging, for longer and longer."""

from typing import Any

import numpy as np

from engine import Simulation, parse_scenario, persistence
from engine.memory import ksm_scan
from engine.state import Loc
from tests.conftest import small_spec

IDLE = {"kind": "idle"}


def _ksm(resident: float, smart: bool, pages_to_scan: int = 100,
         private: float = 0.1) -> Simulation:
    data = small_spec()
    data["host"][0]["memory"] = "40MiB"
    # Ten batches of `pages_to_scan` a tick.
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": pages_to_scan,
                                 "ksm_sleep": "100ms", "share_force_salting": 0,
                                 "ksm_smart_scan": smart}
    # `private` of the pages unique besides a tenth always unique: they never merge.
    mix: dict[str, Any] = {"zero": 0.0, "os": 0.5 - private / 2, "app": 0.4 - private / 2,
                           "private": private + 0.1, "resident": resident}
    data["vm"] = [{"id": f"v{i}", "host": "h1", "memory": "4MiB", "app": "web",
                   "content": mix, "workload": IDLE} for i in range(4)]
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_a_page_that_never_merges_is_visited_less_and_less() -> None:
    # should_skip_rmap_item: processed at its first four visits, then skipped 1, 2, 4 and
    # then 8 visits at a time (skip_age), the age held capped at 9.
    sim = _ksm(1.0, True)
    state = sim.world.state
    page = int(np.flatnonzero(state.pages.location == Loc.PRIVATE)[0])
    processed = [visit for visit in range(1, 42)
                 if not ksm_scan.visit(state, np.array([page]))[0]]
    assert processed == [1, 2, 3, 4, 6, 9, 14, 23, 32, 41]
    assert int(state.sharing.ksm_age[page]) & 15 == 9


def test_a_batch_walks_past_pages_not_present() -> None:
    # Half of each VM never touched: a tick's ten batches still hand over 1,000 pages (all
    # private at first, so all hashed), covering some 2,000 positions of the 4,096.
    sim = _ksm(0.5, False)
    sim.step(1)
    hosts = sim.world.state.sharing.hosts
    assert int(hosts["hashed_tick"][0]) == 1000
    assert int(hosts["full_scans"][0]) == 0
    assert 1900 < int(hosts["ksm_cursor"][0]) < 2100


def test_smart_scan_skips_what_never_merges_and_so_scans_more_often() -> None:
    # Mostly unique pages, scanned over and over: with smart scan the full scans come
    # faster (skipped pages cost nothing) and pages_skipped counts them; what merges is the
    # same, found in the first scans, before any page is old enough to be skipped.
    on, off = _ksm(1.0, True, private=0.5), _ksm(1.0, False, private=0.5)
    on.step(60)
    off.step(60)
    h_on, h_off = on.snapshot().host("h1"), off.snapshot().host("h1")
    assert h_on.pages_skipped > 10_000 and h_off.pages_skipped == 0
    assert h_on.full_scans > 1.5 * h_off.full_scans
    assert h_on.pages_sharing == h_off.pages_sharing > 500
    assert on.report()["hosts"][0]["pages_skipped"] == h_on.pages_skipped


def test_a_save_keeps_the_pages_ages() -> None:
    sim = _ksm(1.0, True)
    sim.step(20)
    loaded = Simulation(persistence.from_plain(*sim.save_state(), "<save>"), check=True)
    np.testing.assert_array_equal(loaded.world.state.sharing.ksm_age,
                                  sim.world.state.sharing.ksm_age)
    sim.step(10)
    loaded.step(10)
    assert loaded.digest() == sim.digest()
