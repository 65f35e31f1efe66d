"""Workloads over time: phase schedules, set_workload on every field, the guest allocator."""

from typing import Any

import numpy as np

from engine import Simulation, parse_scenario
from engine.state import GuestKind, Loc
from tests.conftest import small_spec

BUSY = {"kind": "synthetic", "reads_per_s": 2000, "writes_per_s": 500}


def _idle_busy_idle() -> Simulation:
    data = small_spec()
    data["policy"]["memory"].update({"idle_tax": 0.75, "sample_period": "10s",
                                     "balance_period": "5s"})
    data["policy"]["sharing"] = {"mode": "off"}
    data["host"][0]["memory"] = "12MiB"
    data["vm"] = [
        # a idles, is busy from 150 s, idles again from 300 s.
        {"id": "a", "host": "h1", "memory": "8MiB", "content": {"resident": 0.7},
         "workload": {"kind": "idle", "working_set": "6MiB", "phases": [
             {"at": "150s", **BUSY}, {"at": "300s", "kind": "idle"}]}},
        # b needs all its memory once a is idle again.
        {"id": "b", "host": "h1", "memory": "8MiB", "content": {"resident": 0.7},
         "workload": {**BUSY, "working_set": "6MiB",
                      "phases": [{"at": "300s", "working_set": "8MiB"}]}},
    ]
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_an_idle_busy_idle_schedule_moves_memory_there_and_back() -> None:
    sim = _idle_busy_idle()
    seen: dict[int, tuple[int, int]] = {}
    for t in (150, 300, 440):
        sim.step(t - sim.tick)
        a = sim.snapshot().vm("a")
        seen[t] = (a.target_bytes, a.resident_bytes)
    (t_idle, r_idle), (t_busy, r_busy), (t_back, r_back) = seen[150], seen[300], seen[440]
    # The idle tax takes an idle VM's target down, its activity brings it back.
    assert t_busy > 1.4 * t_idle and t_back < 0.7 * t_busy
    # The allocation follows: up by touching, down by reclamation once b needs memory.
    assert r_busy > r_idle and abs(r_busy - t_busy) < 0.1 * t_busy
    assert r_back < 0.7 * r_busy and abs(r_back - t_back) < 0.05 * t_back
    report = sim.report()["vms"]
    assert report[0]["workload_phase"] == 2 and report[1]["workload_phase"] == 1


def test_a_schedule_survives_a_save_and_repeats_exactly() -> None:
    data = small_spec()
    data["vm"][0]["workload"] = {**BUSY, "repeat": True, "phases": [
        {"duration": "4s", "kind": "idle", "working_set": "1MiB"},
        {"duration": "3s", "working_set": "6MiB", "order": "sequential"}]}
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(9)
    assert sim.report()["vms"][0]["workload_phase"] == 1  # idle again: 7 s cycle, t = 9
    loaded = Simulation.from_state(sim.save_state(), check=True)
    events = sim.step(12)
    loaded.step(12)
    assert loaded.digest() == sim.digest()
    starts = [e.time_s for e in events if e.kind == "workload_phase"]
    assert starts == [11.0, 14.0, 18.0]  # busy at 4 s of each 7 s cycle, idle at 0


def test_set_workload_changes_every_workload_field() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()), check=True)
    change: dict[str, Any] = {
        "reads_per_s": 10, "writes_per_s": 20, "working_set": "2MiB", "hot_set": "1MiB",
        "hot_access": 0.5, "order": "sequential", "zero_writes": 0.25, "cpu_util": 0.7,
        "net": "8Mbit/s", "dataset": "4MiB", "file_reads_per_s": 30, "closed_loop": True,
        "io_pages_per_s": 40, "io_set": "512KiB", "daily_peak_hour": 13,
        "daily_trough": 0.2, "region": "memory", "offset": "1MiB"}
    assert sim.submit({"kind": "set_workload", "vm": "a", **change}).ok
    sim.step(1)
    cols = sim.world.state.vms
    expected = {"reads_per_s": 10, "writes_per_s": 20, "ws_pages": 512, "hot_pages": 256,
                "hot_access": 0.5, "sequential": True, "zero_writes": 0.25, "cpu_util": 0.7,
                "net_bytes_per_s": 1e6, "dataset_pages": 1024, "file_reads_per_s": 30,
                "closed_loop": True, "io_pages_per_s": 40, "io_set_pages": 128,
                "daily_peak_h": 13, "daily_trough": 0.2, "ws_start": 256}
    assert {k: cols[k][0] for k in expected} == expected
    assert sim.world.state.vms.specs[0].workload.order == "sequential"  # saved with the VM
    # The workload's kind and a preset; a working set that does not fit is refused.
    assert sim.submit({"kind": "set_workload", "vm": "a", "workload_kind": "idle"}).ok
    assert sim.submit({"kind": "set_workload", "vm": "b", "preset": "mmuncher"}).ok
    bad = sim.submit({"kind": "set_workload", "vm": "a", "offset": "7MiB"})
    assert not bad.ok and "region" in bad.reason
    sim.step(1)
    assert cols["reads_per_s"][0] == 0 and cols["writes_per_s"][1] == 60000


def test_memory_a_guest_frees_is_reused_before_memory_it_never_touched() -> None:
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "esx", "pages_per_s_per_vm": 400,
                                 "pages_per_s_per_host": 800}
    data["vm"][0].update(guest_os="windows", content={"resident": 0.1},
                         workload={"reads_per_s": 2000, "writes_per_s": 2000,
                                   "working_set": "4MiB"})
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    state = sim.world.state
    p, cols = state.pages, state.vms
    sim.step(10)
    freed = slice(256, 1024)  # the working set shrinks from 4 MiB to 1 MiB
    assert np.all(p.location[freed] == Loc.PRIVATE)
    assert sim.submit({"kind": "set_workload", "vm": "a", "working_set": "1MiB"}).ok
    sim.step(1)
    # Windows zeroes what it frees: on the free list, zero, and shared by the scanner.
    assert np.all(p.guest_kind[freed] == GuestKind.FREE) and np.all(p.content[freed] == 0)
    sim.step(10)
    assert np.count_nonzero(p.location[freed] == Loc.SHARED) > 200
    touched_before, cow_before = int(cols["first_touches"][0]), int(cols["cow_breaks"][0])
    assert sim.submit({"kind": "set_workload", "vm": "a", "working_set": "4MiB"}).ok
    sim.step(10)
    # Growing again reuses the freed (zeroed, shared) pages: copy-on-write breaks, and no
    # page it never touched.
    assert int(cols["first_touches"][0]) == touched_before
    assert int(cols["cow_breaks"][0]) > cow_before + 200
    assert np.all(p.guest_kind[freed] == GuestKind.ANON)
