"""The overcommit sweep has an interior profit peak (a fast subset of the full day)."""

from engine import Simulation, load_scenario
from tests.conftest import ROOT

SWEEP = ROOT / "scenarios" / "economy" / "overcommit-sweep.toml"


def _profit(hosts: int) -> tuple[float, float]:
    spec = load_scenario(SWEEP, [f"host_group[0].count={hosts}", "scenario.tick_s=120"])
    sim = Simulation.from_spec(spec)
    sim.step(120)  # 4 hours, into the daily peak
    snap = sim.snapshot()
    service = sum(v.service_level_avg for v in snap.vms) / len(snap.vms)
    return snap.profit, service


def test_profit_rises_with_overcommit_then_falls() -> None:
    loose, packed, crammed = _profit(12), _profit(8), _profit(5)
    assert packed[0] > loose[0]  # sharing and idle memory absorb the first squeeze
    assert packed[0] > crammed[0]  # then swapping and SLA credits dominate
    assert crammed[1] < packed[1] <= loose[1]  # service falls as memory runs out
