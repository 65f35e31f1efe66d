"""Every shipped scenario's world, some minutes in, survives a save's load with every check
on: a mechanism that leaves a value the save checks refuse (an id in the wrong range, an
infinite rate) would make players' saves of it unloadable. The console's fork and
checkpoint take the trusted path, which does not check, so only this catches it."""

from pathlib import Path

import pytest

from engine import Simulation, persistence
from engine.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("*.toml")
                   if "bench" not in p.parts and not p.name.endswith(".sweep.toml"))
# A tenth of the VMs, one a host, on hosts of a quarter the memory: they still fill them
# (hypervisor swap, compression), and the every-tick checks walk a quarter of the frames.
TENTH = [f"vm_group[{i}].count=25" for i in range(4)] + [
    f"host_group[{i}].{field}" for i in range(3) for field in ("memory=1GiB",
                                                               "low_memory=256MiB")]


@pytest.mark.parametrize(("path", "overrides"), [
    *((path, []) for path in SCENARIOS),
    ("scenarios/bench/dc-100x1000.toml", TENTH),  # every mechanism at once, a tenth of it
], ids=[*SCENARIOS, "dc-100x1000 (a tenth)"])
def test_a_save_some_minutes_in_loads_with_every_check(path: str,
                                                       overrides: list[str]) -> None:
    sim = Simulation.from_spec(load_scenario(ROOT / path, overrides))
    sim.step(120)
    loaded = Simulation(persistence.from_plain(*sim.save_state(), path), check=True)
    loaded.step(1)  # with every check again after the tick
    sim.step(1)
    assert loaded.digest() == sim.digest()
    if overrides:  # the cut data center still reclaims: its swap is in the save
        assert sim.world.state.reclaim.hosts["swapped_pages"].sum() > 0
