"""A save holds the specs of the VMs that are not the scenario's own only (schema 4): a
command changed them or placed them since. The others come back from the scenario as it
expands them; saves of every VM's spec (schema 3 and older) still load."""

from __future__ import annotations

from typing import Any

import pytest

from engine import InputError, Simulation, parse_scenario, persistence
from tests.conftest import before_schema_5, small_spec


def _world() -> Simulation:
    data = small_spec(vm_group=[{"id": "g", "count": 3, "memory": "2MiB", "hosts": ["h2"],
                                 "workload": {"kind": "idle"}}])
    sim = Simulation.from_spec(parse_scenario(data), seed=4)
    sim.step(3)
    return sim


def _loaded(meta: dict[str, Any], arrays: dict[str, Any]) -> Simulation:
    return Simulation(persistence.from_plain(meta, arrays, "run.toml"), check=True)


def test_a_world_as_its_scenario_made_it_saves_no_vm_specs() -> None:
    sim = _world()
    meta, arrays = sim.save_state()
    assert meta["vm_specs"] == [] and meta["vm_specs_at"] == []
    loaded = _loaded(meta, arrays)
    assert loaded.world.state.vms.specs == sim.world.state.vms.specs
    assert loaded.digest() == sim.digest()
    # And the loaded world, made from the scenario too, saves none either.
    assert loaded.save_state()[0]["vm_specs_at"] == []


def test_changed_and_placed_vms_are_saved_and_come_back() -> None:
    sim = _world()
    for command in ({"kind": "set_workload", "vm": "g1", "reads_per_s": 50},
                    {"kind": "place_vm", "vm": {"id": "new", "host": "h2", "memory": "1MiB"}}):
        assert sim.submit(command).ok, command
    sim.step(2)
    specs = sim.world.state.vms.specs
    meta, arrays = sim.save_state()
    g1, new = specs.index(next(s for s in specs if s.id == "g1")), len(specs) - 1
    assert meta["vm_specs_at"] == [g1, new]
    assert [v["id"] for v in meta["vm_specs"]] == ["g1", "new"]
    loaded = _loaded(meta, arrays)
    assert loaded.world.state.vms.specs == specs
    assert loaded.world.state.vms.specs[g1].workload.reads_per_s == 50
    assert loaded.digest() == sim.digest()
    loaded.step(2)
    sim.step(2)
    assert loaded.digest() == sim.digest()


def test_a_save_with_every_vm_spec_still_loads() -> None:
    """Schema 3 and older: vm_specs lists every VM, and there is no vm_specs_at."""
    sim = _world()
    meta, arrays = sim.save_state()
    arrays = before_schema_5(arrays)
    meta["schema_version"] = 3
    del meta["vm_specs_at"]
    meta["vm_specs"] = [v.model_dump(mode="json", exclude_none=True)
                        for v in sim.world.state.vms.specs]
    loaded = _loaded(meta, arrays)
    assert loaded.world.state.vms.specs == sim.world.state.vms.specs
    assert loaded.digest() == sim.digest()


@pytest.mark.parametrize(("at", "expected"), [
    ([9], "must follow them"), ([1, 0], "ascend"), ([0, 0], "ascend"), ([], "one index")])
def test_vm_specs_at_that_do_not_fit_are_refused(at: list[int], expected: str) -> None:
    sim = _world()
    meta, arrays = sim.save_state()
    own = sim.world.spec.all_vms()
    meta["vm_specs"] = [own[0].model_dump(mode="json", exclude_none=True)] * max(len(at), 1)
    meta["vm_specs_at"] = at
    with pytest.raises(InputError) as info:
        persistence.from_plain(meta, arrays, "run.toml")
    assert expected in info.value.expected
