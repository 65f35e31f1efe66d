import pytest

from engine import Simulation, parse_scenario
from tests.conftest import small_spec


def test_money_is_conserved_tick_by_tick() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    total = 0.0
    for _ in range(20):
        sim.step(1)
        m = sim.world.state.money
        total += m.revenue_tick - m.costs_tick - m.penalties_tick
    assert sim.snapshot().profit == pytest.approx(total, rel=1e-12)
    assert sim.snapshot().revenue > 0 and sim.snapshot().costs > 0


def test_revenue_scales_with_running_vms() -> None:
    spec = parse_scenario(small_spec())
    busy, quiet = Simulation.from_spec(spec), Simulation.from_spec(spec)
    quiet.submit({"kind": "stop_vm", "vm": "a"})
    busy.step(10)
    quiet.step(10)
    gib_hours = 8 / 1024 * 10 / 3600  # vm a: 8 MiB; the stop applies at the start of tick 0
    expected_gap = spec.policy.economy.revenue_per_gib_hour * gib_hours
    assert busy.snapshot().revenue - quiet.snapshot().revenue == pytest.approx(
        expected_gap, rel=0.01)


def test_service_traffic_shares_a_host_nic_fairly() -> None:
    data = small_spec()
    data["host"][0]["nic"] = "100Mbit/s"
    data["vm"][0]["workload"]["net"] = "80Mbit/s"
    data["vm"][1]["workload"]["net"] = "30Mbit/s"
    sim = Simulation.from_spec(parse_scenario(data))
    sim.step(1)
    snap = sim.snapshot()
    # Max-min fair: b's 30 Mbit/s fits under the 50 Mbit/s fair share; a gets the rest.
    assert snap.vm("b").net_bytes_per_s == pytest.approx(30e6 / 8)
    assert snap.vm("a").net_bytes_per_s == pytest.approx(70e6 / 8)
    assert snap.host("h1").nic_used_bytes_per_s == pytest.approx(100e6 / 8)


def test_sla_windows_follow_a_replaced_spec_and_the_tick_length() -> None:
    import numpy as np

    from engine.economy.billing import _window_ticks
    from engine.spec import SLASpec

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    world = sim.world
    first = _window_ticks(world)
    assert _window_ticks(world) is first  # unchanged specs: kept
    specs = world.state.vms.specs
    window = float(first[0]) * world.state.tick_s * 2
    specs[0] = specs[0].model_copy(update={"sla": SLASpec(window=window)})
    again = _window_ticks(world)
    assert again[0] == 2 * first[0] and np.array_equal(again[1:], first[1:])
    world.state.tick_s *= 2
    assert _window_ticks(world)[0] == first[0]
