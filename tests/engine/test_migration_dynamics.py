"""Live migration dynamics: QEMU's loop, auto-converge, XBZRLE, post-copy in time, and
results that do not depend on the tick length. Each test shows a behaviour the first
migration model got wrong (its notes in MECHANISMS sections 9a and 10)."""

from typing import Any

import pytest

from engine import Simulation, parse_scenario
from tests.conftest import small_spec

MiB = 1024**2
CONTENT = {"zero": 0.0, "os": 0.2, "app": 0.1, "private": 0.7, "resident": 1.0}


def _world(workload: dict[str, Any], memory: str = "8MiB", nic: str = "1Gbit/s",
           tick_s: float = 1.0) -> Simulation:
    data = small_spec()
    data["scenario"]["tick_s"] = tick_s
    for host in data["host"]:
        host.update(memory="160MiB", nic=nic)
    data["vm"][0].update(memory=memory, workload=workload, content=CONTENT)
    return Simulation.from_spec(parse_scenario(data))


def _migrate(sim: Simulation, max_ticks: int = 60, **options: Any) -> dict[str, Any]:
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", **options}).ok
    for _ in range(max_ticks):
        sim.step(1)
        if not sim.world.state.migrations[-1].active:
            break
    return sim.report()["migrations"][-1]


# -- QEMU's loop ------------------------------------------------------------------------

def test_qemu_switches_over_mid_pass_once_the_pending_bytes_fit() -> None:
    # 64 MiB at 100 Mbit/s: a whole pass takes 5.4 s. Few pages get dirty, so the pages
    # left fit 0.3 s x the bandwidth well before the pass ends, and QEMU completes then.
    sim = _world({"reads_per_s": 100, "writes_per_s": 50}, memory="64MiB")
    m = _migrate(sim, algorithm="qemu", max_rate="100Mbit/s")
    full_pass_s = 64 * MiB / (100e6 / 8)
    assert m["status"] == "done" and m["passes"] == 0
    assert m["total_time_s"] < full_pass_s - 0.1
    assert m["content_mismatches"] == 0


def test_qemu_final_copy_is_uncapped_and_resumes_in_a_millisecond() -> None:
    runs = {algorithm: _migrate(_world({"kind": "idle"}, nic="10Gbit/s"), algorithm=algorithm)
            for algorithm in ("qemu", "xen")}
    qemu, xen = runs["qemu"], runs["xen"]
    # The CPU state and the tail cross at the path's 10 Gbit/s, not at the 128 MiB/s cap.
    assert qemu["downtime_s"] < 0.005
    assert qemu["downtime_s"] < qemu["stop_copy_bytes"] / (128 * MiB) + 0.001
    assert xen["downtime_s"] > 0.020  # Xen's activation


def test_postcopy_without_a_bandwidth_cap_is_faster_than_one_at_the_precopy_rate() -> None:
    totals = {}
    for cap in (0, "128MiB/s"):
        sim = _world({"reads_per_s": 2000, "writes_per_s": 500}, memory="64MiB",
                     nic="10Gbit/s")
        m = _migrate(sim, algorithm="qemu", mode="postcopy", max_postcopy_rate=cap)
        assert m["status"] == "done" and m["pages_sent"] == 64 * MiB // 4096
        totals[cap] = m["total_time_s"]
    assert totals[0] < totals["128MiB/s"] / 4


def test_auto_converge_must_throttle_harder_when_the_writes_cost_little_cpu() -> None:
    # The same 4,000 writes/s over 8 MiB, faster than the 50 Mbit/s copy: throttling takes
    # CPU time away, which slows a CPU-bound writer at once but one that computes 10 % of
    # its time only once the throttle passes 90 %.
    runs = {}
    for cpu in (1.0, 0.1):
        sim = _world({"reads_per_s": 0, "writes_per_s": 4000, "hot_access": 0.0,
                      "cpu_util": cpu}, nic="100Mbit/s")
        runs[cpu] = _migrate(sim, max_ticks=90, algorithm="qemu", max_rate="50Mbit/s",
                             auto_converge=True)
    busy, light = runs[1.0], runs[0.1]
    assert busy["status"] == "done" and light["status"] == "done"
    assert busy["cpu_throttle_percentage"] <= 70
    assert light["cpu_throttle_percentage"] >= 90
    assert light["dirty_sync_count"] > busy["dirty_sync_count"]
    assert light["passes"] > busy["passes"]
    assert light["total_time_s"] > busy["total_time_s"]


def test_xbzrle_hits_only_pages_sent_before_and_counts_overflows() -> None:
    hot = {"reads_per_s": 0, "writes_per_s": 3000, "hot_set": "2MiB", "hot_access": 0.95}
    runs = {}
    for changed in (0.02, 0.9):
        sim = _world({**hot, "changed_fraction": changed}, memory="16MiB", nic="100Mbit/s")
        runs[changed] = _migrate(sim, algorithm="qemu", max_rate="20Mbit/s", xbzrle=True,
                                 downtime_limit="50ms")
    small, large = runs[0.02]["xbzrle"], runs[0.9]["xbzrle"]
    assert small["cache_hits"] > 0 and small["cache_misses"] > 0
    # A delta of 2 % of a page is ~100 bytes, against the 4 KiB page a miss sends.
    assert small["bytes"] < small["cache_hits"] * 0.1 * 4096
    assert small["overflow"] < small["cache_hits"] * 0.01
    # Deltas of most of a page often overflow and go as whole pages.
    assert large["overflow"] > large["cache_hits"] * 0.2
    # Nothing hits in the first pass: the cache only holds pages sent before.
    sim = _world({**hot, "changed_fraction": 0.02}, memory="16MiB", nic="100Mbit/s")
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", "algorithm": "qemu",
                       "max_rate": "20Mbit/s", "xbzrle": True}).ok
    sim.step(3)  # 16 MiB at 20 Mbit/s: the first pass is still running
    first = sim.report()["migrations"][0]
    assert first["passes"] == 0 and first["xbzrle"]["cache_hits"] == 0


def test_postcopy_starts_after_a_number_of_passes_or_at_a_time() -> None:
    workload = {"reads_per_s": 500, "writes_per_s": 2000, "hot_set": "1MiB"}
    sim = _world(workload, memory="16MiB", nic="100Mbit/s")
    m = _migrate(sim, mode="hybrid", postcopy_after_passes=2)
    assert m["status"] == "done" and len(m["rounds"]) == 2 and m["network_faults"] >= 0
    sim = _world(workload, memory="16MiB", nic="100Mbit/s")
    m = _migrate(sim, algorithm="qemu", max_rate="20Mbit/s", postcopy_after=2.5)
    assert m["status"] == "done" and m["resume_time_s"] == pytest.approx(2.5, abs=0.05)


# -- post-copy in time ------------------------------------------------------------------

def _postcopy(workload: dict[str, Any], memory: str, nic: str, **options: Any
              ) -> tuple[dict[str, Any], list[int], list[int], int]:
    """Bytes sent and guest operations per tick of a post-copy, and operations per tick
    before it."""
    sim = _world(workload, memory=memory, nic=nic)
    sim.step(3)
    vms = sim.world.state.vms
    ops = vms["reads"][0] + vms["writes"][0]
    sim.step(1)
    before = int(vms["reads"][0] + vms["writes"][0] - ops)
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", "mode": "postcopy",
                       **options}).ok
    sent, done, was = [], [], 0
    for _ in range(30):
        ops = vms["reads"][0] + vms["writes"][0]
        sim.step(1)
        mig = sim.world.state.migrations[0]
        sent.append(mig.bytes_sent - was)
        done.append(int(vms["reads"][0] + vms["writes"][0] - ops))
        was = mig.bytes_sent
        if not mig.active:
            break
    return sim.report()["migrations"][0], sent, done, before


def test_postcopy_faults_and_push_share_the_link_and_the_vm_works_less_while_it_waits() -> None:
    workload = {"reads_per_s": 20000, "writes_per_s": 8000, "hot_access": 0.0}
    m, sent, done, before = _postcopy(workload, "32MiB", "100Mbit/s")
    assert m["status"] == "done" and m["network_faults"] > 1000
    link_bytes = 100e6 / 8
    page = 4096 + 8
    # The first tick also carries the CPU state; at most one page is on the wire across a
    # tick boundary.
    assert sent[0] <= link_bytes + 256 * 1024 + page
    assert all(s <= link_bytes + page for s in sent[1:])
    # Every fault stalls the vCPU: far fewer operations run until the memory is there.
    assert done[0] < 0.2 * before
    assert m["stalled_s"] > 1.0


def test_prepaging_pushes_ahead_of_a_sequential_workload_and_push_only_does_not() -> None:
    # A sweep over a 2 MiB working set in 64 MiB (3 %): pre-paging re-centres the push on
    # each fault, so the sweep mostly finds its pages there; the push without pre-paging
    # goes through memory in Xen's pseudo-random order.
    workload = {"reads_per_s": 2000, "writes_per_s": 500, "order": "sequential",
                "working_set": "2MiB"}
    faults = {}
    for prepaging in (True, False):
        m, *_ = _postcopy(workload, "64MiB", "100Mbit/s", prepaging=prepaging)
        assert m["status"] == "done" and m["pages_sent"] == 64 * MiB // 4096
        faults[prepaging] = (m["network_faults"], m["minor_faults"])
    network, minor = faults[True]
    assert network < 0.2 * (network + minor)
    assert faults[False][0] > 3 * network


# -- the tick length --------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["xen", "qemu"])
def test_results_do_not_depend_on_the_tick_length(algorithm: str) -> None:
    # A hot megabyte rewritten all the time: every round's dirty set is the same, so the
    # runs at different tick lengths must agree on everything the migration measures.
    workload = {"reads_per_s": 1000, "writes_per_s": 40000, "hot_set": "1MiB",
                "hot_access": 1.0}
    runs = {}
    for tick in (1.0, 0.1, 0.01):
        sim = _world(workload, memory="16MiB", nic="100Mbit/s", tick_s=tick)
        runs[tick] = _migrate(sim, max_ticks=int(10 / tick), algorithm=algorithm,
                              max_rate="50Mbit/s" if algorithm == "qemu" else None)
    for tick in (0.1, 0.01):
        for key in ("total_time_s", "transferred_bytes", "downtime_s"):
            assert runs[tick][key] == pytest.approx(runs[1.0][key], rel=0.02), (tick, key)
