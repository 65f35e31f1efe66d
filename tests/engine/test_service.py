"""Service quality, SLA and money: who loses what, and why."""

import pytest

from engine import Simulation, parse_scenario
from tests.conftest import small_spec

MiB = 1024**2


def _world(**policy: object) -> Simulation:
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "off"}
    data["policy"].update(policy)
    data["host"][1]["memory"] = "32MiB"
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_a_hard_swapped_vm_loses_service_to_swap_at_disk_latency() -> None:
    sim = _world()
    assert sim.submit({"kind": "set_balloon_driver", "vm": "a", "enabled": False}).ok
    assert sim.submit({"kind": "set_swap_target", "vm": "a", "target": 6 * MiB}).ok
    sim.step(10)
    vms = sim.world.state.vms
    before = float(vms["lost_swap_s"][0])
    swapins = int(vms["swapins"][0])
    sim.step(10)
    lost = float(vms["lost_swap_s"][0]) - before
    faults = int(vms["swapins"][0]) - swapins
    host = sim.world.state.hosts
    per_fault = host.swap_latency_s[0] + 4096 / host.swap_disk_bytes_per_s[0]
    assert faults > 0
    assert lost == pytest.approx(faults * per_fault, rel=1e-6)  # in proportion to faults
    view = sim.snapshot().vm("a")
    assert max(view.lost_s, key=view.lost_s.get) == "swap"
    assert view.service_level < 1.0


def test_migration_downtime_is_unavailability() -> None:
    sim = _world()
    sim.step(2)
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2"}).ok
    sim.step(10)
    mig = sim.report()["migrations"][0]
    view = sim.snapshot().vm("a")
    assert mig["status"] == "done"
    assert view.lost_s["downtime"] == pytest.approx(mig["downtime_s"])
    assert view.availability == pytest.approx(1 - mig["downtime_s"] / 12)


def test_a_precopy_takes_nic_share_from_colocated_vms() -> None:
    data = small_spec()
    data["host"][1]["memory"] = "32MiB"
    data["host"][0]["nic"] = "100Mbit/s"
    data["vm"][1]["workload"]["net"] = "1Gbit/s"  # b wants more than the NIC
    sim = Simulation.from_spec(parse_scenario(data))
    sim.step(2)
    alone = sim.snapshot().vm("b").net_bytes_per_s
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", "min_rate": "50Mbit/s",
                       "max_rate": "50Mbit/s"}).ok
    sim.step(1)
    shared = sim.snapshot().vm("b")
    assert shared.net_bytes_per_s == pytest.approx(alone / 2, rel=0.01)
    assert shared.lost_s["nic"] > 0 and shared.service_level < 0.6


def test_sla_breach_costs_a_credit_and_money_is_conserved() -> None:
    sim = _world(sla={"window": "20s", "availability": 0.999, "availability_credit": 0.5})
    total = 0.0
    for tick in range(40):
        if tick == 5:
            assert sim.submit({"kind": "set_host_up", "host": "h1", "up": False}).ok
        events = sim.step(1)
        m = sim.world.state.money
        total += m.revenue_tick - m.costs_tick - m.penalties_tick
        if tick == 19:
            assert any(e.kind == "sla_breach" and e.vm == "a" for e in events)
    snap = sim.snapshot()
    assert snap.penalties > 0
    assert snap.profit == pytest.approx(total, rel=1e-9)
    assert snap.vm("a").sla_breaches >= 1 and snap.vm("a").availability < 0.999
    economy = sim.report()["economy"]
    breakdown = economy["costs_breakdown"]
    assert sum(breakdown.values()) == pytest.approx(economy["costs"])


def test_a_vms_own_sla_window_closes_on_its_own_schedule() -> None:
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "off"}
    data["host"][1]["memory"] = "32MiB"
    data["vm"][0]["sla"] = {"window": "10s"}  # a; b keeps the policy's hour
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    for vm in ("a", "b"):
        assert sim.submit({"kind": "set_balloon_driver", "vm": vm, "enabled": False}).ok
        assert sim.submit({"kind": "set_swap_target", "vm": vm, "target": 6 * MiB}).ok
    sim.step(20)
    a, b = sim.snapshot().vm("a"), sim.snapshot().vm("b")
    assert a.service_level_avg < 0.95 and b.service_level_avg < 0.95  # both miss
    assert a.sla_breaches == 2 and a.penalties > 0  # two 10 s windows closed
    assert b.sla_breaches == 0 and b.penalties == 0  # its hour has not
