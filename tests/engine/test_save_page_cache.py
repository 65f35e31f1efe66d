"""A world whose databases read through their page cache saves and loads: page-cache
content ids stay out of the unique range (a save's check refuses unique ids from after
next_unique_content, and a dataset block must never alias a page written with unique
content)."""

import numpy as np

from engine import Simulation, persistence
from engine.scenario import load_scenario
from engine.state import UNIQUE_CONTENT_BASE, GuestKind


def test_a_world_with_page_caches_saves_and_loads() -> None:
    sim = Simulation.from_spec(load_scenario("scenarios/campaign/03-the-idle-tax.toml"))
    sim.step(60)
    p, vms = sim.world.state.pages, sim.world.state.vms
    assert int(vms["file_reads"].sum()) > 0  # the page caches were read and filled
    cached = p.content[p.guest_kind == GuestKind.CACHE]
    dataset = cached[cached != 0]
    assert dataset.size > 1000 and int(dataset.max()) < UNIQUE_CONTENT_BASE
    loaded = persistence.from_plain(*sim.save_state(), "level3.toml")  # every check on
    assert np.array_equal(loaded.state.pages.content, p.content)
    resumed = Simulation(loaded, check=True)
    straight = Simulation.from_state(sim.save_state(), check=True)
    resumed.step(3)
    straight.step(3)
    assert resumed.digest() == straight.digest()
