"""Objectives: each metric measures what it says, scoped to a VM or host when asked."""

from typing import Any

import pytest

from engine import InputError, Simulation, parse_scenario
from tests.conftest import small_spec


def _sim(*objectives: dict[str, Any]) -> Simulation:
    data = small_spec()
    data["host"][1]["memory"] = "32MiB"
    data["objective"] = list(objectives)
    return Simulation.from_spec(parse_scenario(data))


def _values(sim: Simulation) -> list[float]:
    return [o["value"] for o in sim.snapshot().objectives]


def test_host_and_migration_metrics_follow_a_migration() -> None:
    sim = _sim({"metric": "vms_on_host", "host": "h1", "at_most": 0, "by": "30s"},
               {"metric": "downtime_s", "vm": "a", "at_most": 1.0, "by": "30s"},
               {"metric": "downtime_s", "vm": "b", "at_most": 0.0, "by": "30s"})
    sim.step(2)
    assert _values(sim)[0] == 2
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2"}).ok
    assert sim.submit({"kind": "stop_vm", "vm": "b"}).ok
    sim.step(28)
    on_h1, down_a, down_b = _values(sim)
    assert on_h1 == 0
    assert 0 < down_a == pytest.approx(sim.report()["migrations"][0]["downtime_s"])
    assert down_b == 0
    assert [o["status"] for o in sim.snapshot().objectives] == ["met", "met", "met"]


def test_service_level_and_swapins_see_a_forced_swap() -> None:
    sim = _sim({"metric": "service_level", "vm": "a", "at_least": 0.999, "by": "20s"},
               {"metric": "service_level", "vm": "c", "at_least": 0.999, "by": "20s"},
               {"metric": "swapins", "at_most": 0, "by": "20s"},
               {"metric": "lost_vms", "at_most": 0, "by": "20s"})
    assert sim.submit({"kind": "set_balloon_driver", "vm": "a", "enabled": False}).ok
    assert sim.submit({"kind": "set_swap_target", "vm": "a", "target": "6MiB"}).ok
    sim.step(20)
    service_a, service_c, swapins, lost = _values(sim)
    assert service_a < 0.999 and service_c == pytest.approx(1.0)
    assert swapins == sim.world.state.vms["swapins"].sum() > 0
    assert lost == 0
    assert [o["status"] for o in sim.snapshot().objectives] == ["failed", "met", "failed",
                                                                "met"]


def test_a_failed_host_loses_its_vms() -> None:
    sim = _sim({"metric": "lost_vms", "at_most": 0, "by": "5s"})
    assert sim.submit({"kind": "set_host_up", "host": "h2", "up": False}).ok
    sim.step(5)
    assert _values(sim) == [1]  # c
    assert sim.snapshot().objectives[0]["status"] == "failed"


@pytest.mark.parametrize(("objective", "field"), [
    ({"metric": "profit", "vm": "a", "at_least": 0, "by": "1s"}, "objective[0]"),
    ({"metric": "vms_on_host", "at_most": 0, "by": "1s"}, "objective[0]"),
    ({"metric": "vms_on_host", "host": "h9", "at_most": 0, "by": "1s"}, "objective[0].host"),
    ({"metric": "swapins", "vm": "zz", "at_most": 0, "by": "1s"}, "objective[0].vm"),
])
def test_bad_scopes_are_named(objective: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        _sim(objective)
    assert err.value.path == field
