"""Overhead memory takes frames: power-on, power-off, migration, reports, old saves."""

from typing import Any

import numpy as np

from engine import Simulation, parse_scenario
from engine.memory import overhead
from engine.state import Loc
from tests.conftest import small_spec

MiB = 1024**2


def _tight(overhead_frames: bool) -> Simulation:
    """Two idle VMs whose memory fits the 16 MiB host but not with 2.5 MiB of overhead."""
    data = small_spec()
    data["policy"]["memory"] = {"overhead_per_vm": "1MiB", "overhead_per_vcpu": "256KiB",
                                "overhead_frames": overhead_frames}
    data["policy"]["sharing"] = {"mode": "off"}
    for vm in data["vm"][:2]:
        vm.update(memory="7MiB", content={"resident": 0.93}, workload={"kind": "idle"})
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_overhead_frames_push_the_host_below_soft_and_ballooning_starts() -> None:
    backed = _tight(True)
    old = _tight(False)
    events = backed.step(1)
    old_events = old.step(1)
    assert any(e.kind == "host_state" and "high -> soft" in e.message for e in events)
    assert not any(e.kind == "host_state" for e in old_events)
    host, old_host = backed.snapshot().host("h1"), old.snapshot().host("h1")
    # Frame accounting: free + guest-resident + overhead = the host, to the page.
    report = backed.report()["hosts"][0]
    assert report["overhead_bytes"] == 2 * (MiB + 256 * 1024)
    assert report["esxtop"]["OVHD"] == 2.5
    vms = backed.world.state.vms
    resident = int((vms["loc_count"][:2, Loc.PRIVATE] + vms["loc_count"][:2, Loc.SHARED]).sum())
    assert host.free_bytes + resident * 4096 + report["overhead_bytes"] == 16 * MiB
    # Soft: the balloon starts at once, and by the end of the tick has given back enough
    # for the host to climb back (6 %: soft's 4 % and the hysteresis). The old accounting
    # leaves those frames free: nothing is reclaimed.
    assert any(e.kind == "host_state" and "soft -> high" in e.message for e in events)
    assert host.state == "high" and old_host.state == "high"
    assert host.free_bytes >= 0.06 * 16 * MiB
    assert host.balloon_bytes > 0 and old_host.balloon_bytes == 0
    backed.step(5)
    old.step(5)
    assert backed.snapshot().host("h1").balloon_bytes == host.balloon_bytes  # and stays
    assert old.snapshot().host("h1").balloon_bytes == 0
    assert old.report()["hosts"][0]["overhead_bytes"] == 0


def test_power_off_returns_overhead_and_a_migration_reserves_it_at_the_destination() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()), check=True)
    state = sim.world.state
    per_vm = 64 * 1024 // 4096
    free_h2 = int(state.hosts.free_count[1])
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", "max_rate": "10Mbit/s"}).ok
    sim.step(1)
    # Reservation stage: a's overhead frames are taken on h2 as the migration starts.
    assert int(state.vms["overhead_reserved"][0]) == per_vm
    assert int(state.vms["overhead_dst"][0]) == 1
    assert int(state.hosts.free_count[1]) < free_h2
    for _ in range(40):
        if not state.migrations[0].active:
            break
        sim.step(1)
    assert state.migrations[0].status == "done"
    assert int(state.vms["overhead_held"][0]) == per_vm
    assert int(state.vms["overhead_reserved"][0]) == 0
    held = state.overhead.frames[int(state.vms["overhead_offset"][0]):][:per_vm]
    assert np.all(held >= int(state.hosts.frame_offset[1]))  # now on h2's frames
    free_h1 = int(state.hosts.free_count[0])
    assert sim.submit({"kind": "stop_vm", "vm": "b"}).ok
    sim.step(1)
    assert int(state.vms["overhead_held"][1]) == 0
    assert int(state.hosts.free_count[0]) >= free_h1 + per_vm


def test_a_host_short_of_frames_backs_overhead_before_the_boot_goes_on() -> None:
    data = small_spec()
    data["host"][1]["memory"] = "4MiB"  # c (4 MiB) fills h2: no room for q's overhead
    data["vm"][2].update(content={"resident": 1.0})
    data["vm"][3].update(content={"resident": 0.2}, workload={"kind": "idle"})
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    assert sim.submit({"kind": "start_vm", "vm": "q", "host": "h2"}).ok
    events = sim.step(1)
    state = sim.world.state
    q = state.vms.index("q")
    assert state.vms["booting"][q] and state.vms["overhead_held"][q] < 16
    assert any(e.kind == "boot_stall" and "overhead" in e.message for e in events)
    assert sim.snapshot().vm("q").service_level < 1.0
    assert sim.submit({"kind": "stop_vm", "vm": "c"}).ok
    sim.step(2)
    assert int(state.vms["overhead_held"][q]) == 16 and not state.vms["booting"][q]


def test_a_save_from_before_overhead_frames_loads_and_backs_them() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()), check=True)
    sim.step(2)
    state = sim.world.state
    for v in range(len(state.vms)):  # a world of the old version: no overhead frames
        overhead.release(state, v)
    meta, arrays = sim.save_state()
    new_vm_arrays = ("ws_start", "booting", "boot_cursor", "boot_total", "boot_rate",
                     "boot_unique_base", "boot_started_s", "boot_stall_s_tick",
                     "boot_stall_s", "overhead_offset", "overhead_pages", "overhead_held",
                     "overhead_reserved", "overhead_dst", "phase_offset", "phase_count",
                     "phase_index", "phase_t0_s", "phase_period_s")
    dropped = {f"vms.{n}" for n in new_vm_arrays} | {"overhead.frames", "overhead.reserved"}
    old: dict[str, Any] = {k: v for k, v in arrays.items() if k not in dropped}
    loaded = Simulation.from_state((meta, old), check=True)
    cols = loaded.world.state.vms
    assert np.all(cols["overhead_held"] == 0) and np.all(cols["overhead_pages"] == 16)
    loaded.step(1)  # the boot phase takes the overhead frames now
    running = cols["host"] >= 0
    assert np.array_equal(cols["overhead_held"][running], cols["overhead_pages"][running])
    assert loaded.snapshot().vm("a").service_level > 0.9
