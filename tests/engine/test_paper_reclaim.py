"""ESX Fig. 7 (idle tax), Fig. 2 (balloon vs configured) and Fig. 6 (sampling)."""

import pytest

from engine import Simulation
from tests.conftest import ROOT

PAPER = ROOT / "scenarios" / "paper"
MB = 1024.0**2


def test_fig7_idle_tax_moves_memory_to_the_busy_vm() -> None:
    sim = Simulation.from_file(PAPER / "esx-fig7-idle-tax.toml")
    sim.step(20 * 60)
    reads_20 = int(sim.world.state.vms["file_reads"][1])
    sim.step(10 * 60)
    before = sim.snapshot()
    throughput_tax0 = (int(sim.world.state.vms["file_reads"][1]) - reads_20) / 600
    assert before.vm("vm1-idle").resident_bytes / MB == pytest.approx(179, rel=0.10)
    assert before.vm("vm2-dbench").resident_bytes / MB == pytest.approx(179, rel=0.10)

    sim.step(20 * 60)
    reads_50 = int(sim.world.state.vms["file_reads"][1])
    sim.step(10 * 60)
    after = sim.snapshot()
    throughput_tax75 = (int(sim.world.state.vms["file_reads"][1]) - reads_50) / 600
    assert after.vm("vm1-idle").resident_bytes / MB < 130
    assert after.vm("vm2-dbench").resident_bytes / MB > 230
    gain = throughput_tax75 / throughput_tax0 - 1
    assert gain == pytest.approx(0.30, abs=0.10)
