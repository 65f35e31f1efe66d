"""A migration's reads of pages its source swapped out (engine/migration/swapread.py): the
sender waits for each read, once per read-ahead cluster for the disk's latency, in
pre-copy, in the stop-and-copy and in post-copy, whatever the tick's length. Before,
swapped pages went at the network's speed."""

from typing import Any

import numpy as np
import pytest

from engine import Simulation, parse_scenario
from engine.memory.guest import unmap
from engine.state import Loc
from tests.conftest import small_spec

PAGES = 8192  # the 32 MiB VM's
CONTENT = {"zero": 0.0, "os": 0.2, "app": 0.1, "private": 0.7, "resident": 1.0}
# The hosts' swap disk (spec defaults): 100 MB/s, 5 ms a read that starts a cluster.
TRANSFER_S, LATENCY_S = 4096 / 100e6, 0.005
BLOCK = np.arange(1024)  # 128 whole clusters of 8 pages
SCATTERED = np.arange(0, PAGES, 8)  # one page of each cluster


def _world(tick_s: float = 1.0, workload: dict[str, Any] | None = None) -> Simulation:
    data = small_spec()
    data["scenario"]["tick_s"] = tick_s
    for host in data["host"]:
        host.update(memory="160MiB", nic="1Gbit/s")
    data["vm"][0].update(memory="32MiB", workload=workload or {"kind": "idle"},
                         content=CONTENT)
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(round(2 / tick_s))
    return sim


def _swap_out(sim: Simulation, local: np.ndarray) -> None:
    """The source swaps these pages of VM a out (as its swap daemon would), those of
    them it holds privately."""
    state = sim.world.state
    v = state.vms.ids.index("a")
    pages = int(state.vms["page_offset"][v]) + local
    pages = pages[state.pages.location[pages] == Loc.PRIVATE]
    assert pages.size >= 0.99 * local.size
    unmap(state, pages, Loc.SWAPPED)
    state.reclaim.hosts["swapped_pages"][int(state.vms["host"][v])] += pages.size


def _migrate(sim: Simulation, **options: Any) -> dict[str, Any]:
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", **options}).ok
    for _ in range(round(120 / sim.world.state.tick_s)):
        sim.step(1)
        if not sim.world.state.migrations[-1].active:
            break
    m: dict[str, Any] = sim.report()["migrations"][-1]
    assert m["status"] == "done" and m["content_mismatches"] == 0
    return m


def _run(swapped: np.ndarray, tick_s: float = 1.0, workload: dict[str, Any] | None = None,
         **options: Any) -> dict[str, Any]:
    sim = _world(tick_s, workload)
    _swap_out(sim, swapped)
    return _migrate(sim, **options)


@pytest.mark.parametrize("tick_s", [1.0, 0.5])
def test_a_precopy_waits_for_each_read_back_from_swap_once_a_cluster(tick_s: float) -> None:
    # QEMU walks memory in address order: a block of 1,024 swapped pages waits for the
    # disk's latency once per 8-page cluster, the same number scattered one a cluster
    # once per page. The wire carries the same bytes either way.
    base = _run(np.zeros(0, np.int64), tick_s, algorithm="qemu")
    block = _run(BLOCK, tick_s, algorithm="qemu")
    scattered = _run(SCATTERED, tick_s, algorithm="qemu")
    block_s = 1024 * TRANSFER_S + 128 * LATENCY_S  # 0.68 s
    scattered_s = 1024 * (TRANSFER_S + LATENCY_S)  # 5.16 s
    for m, reads_s in ((block, block_s), (scattered, scattered_s)):
        assert m["swap_read_pages"] == 1024
        assert m["swap_read_s"] == pytest.approx(reads_s, rel=1e-6)
        assert m["total_time_s"] - base["total_time_s"] == pytest.approx(reads_s, rel=0.01)
        assert m["transferred_bytes"] == base["transferred_bytes"]
    assert base["swap_read_pages"] == 0 and base["swap_read_s"] == 0.0


def test_the_stop_and_copy_reads_the_swapped_pages_it_sends() -> None:
    # An idle VM: QEMU stops once the rest of its pass fits the downtime limit, and that
    # rest - the last 256 pages, swapped out - is read back while the VM is paused.
    base = _run(np.zeros(0, np.int64), algorithm="qemu")
    tail = _run(np.arange(PAGES - 256, PAGES), algorithm="qemu")
    assert tail["stop_copy_pages"] >= 256
    reads_s = 256 * TRANSFER_S + 32 * LATENCY_S
    assert tail["downtime_s"] - base["downtime_s"] == pytest.approx(reads_s, rel=1e-6)


def test_xen_first_round_order_reads_every_swapped_page_alone() -> None:
    # Xen's first round goes in its pseudo-random page order: no two pages it sends in
    # turn share a cluster, so a block of swapped pages costs as much as scattered ones.
    base = _run(np.zeros(0, np.int64), algorithm="xen")
    for swapped in (BLOCK, SCATTERED):
        m = _run(swapped, algorithm="xen")
        assert m["swap_read_s"] == pytest.approx(1024 * (TRANSFER_S + LATENCY_S), rel=1e-6)
        assert m["total_time_s"] - base["total_time_s"] == pytest.approx(m["swap_read_s"],
                                                                         rel=0.02)


@pytest.mark.parametrize("tick_s", [1.0, 0.5])
def test_postcopy_push_and_faults_wait_for_the_source_swap(tick_s: float) -> None:
    # The push reads a swapped block back a cluster at a time; a network fault on a page
    # the source swapped out waits for the disk's latency besides the round trip (once a
    # cluster: the clusters read are kept from tick to tick).
    base = _run(np.zeros(0, np.int64), tick_s, algorithm="qemu", mode="postcopy")
    pushed = _run(BLOCK, tick_s, algorithm="qemu", mode="postcopy")
    block_s = 1024 * TRANSFER_S + 128 * LATENCY_S
    assert pushed["swap_read_s"] == pytest.approx(block_s, rel=1e-6)
    assert pushed["total_time_s"] - base["total_time_s"] == pytest.approx(block_s, rel=0.01)
    reader = {"reads_per_s": 2000, "writes_per_s": 0}
    near = _run(np.zeros(0, np.int64), tick_s, reader, algorithm="qemu", mode="postcopy")
    far = _run(np.arange(PAGES), tick_s, reader, algorithm="qemu", mode="postcopy")
    assert far["swap_read_pages"] >= 0.99 * PAGES and far["network_faults"] > 100
    assert near["stalled_s"] / near["network_faults"] < 0.001
    assert far["stalled_s"] / far["network_faults"] > LATENCY_S
    # The faults move the push's pivot about, its two sides going in turn, but each
    # cluster waits for the latency once: its first read brings the rest.
    clusters = -(-far["swap_read_pages"] // 8)
    assert far["swap_read_s"] == pytest.approx(
        far["swap_read_pages"] * TRANSFER_S + clusters * LATENCY_S, rel=0.01)


def test_a_sender_waiting_for_swap_leaves_the_link_to_the_others() -> None:
    # h1's 100 Mbit/s NIC carries VM b's service traffic (100 Mbit/s asked) and a's
    # migration. Sent at the network's pace, the two share it half and half; a sender
    # waiting for each page it reads back sends 2.5 MB/s at most, and b gets the rest.
    def b_rate(swapped: np.ndarray) -> float:
        data = small_spec()
        for host in data["host"]:
            host.update(memory="160MiB", nic="100Mbit/s", swap_disk="4MiB/s")
        data["vm"][0].update(memory="32MiB", workload={"kind": "idle"}, content=CONTENT)
        data["vm"][1]["workload"]["net"] = "100Mbit/s"
        sim = Simulation.from_spec(parse_scenario(data), check=True)
        sim.step(2)
        _swap_out(sim, swapped)
        assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2",
                           "algorithm": "qemu"}).ok
        sim.step(3)
        assert sim.world.state.migrations[-1].active
        return float(sim.world.state.vm_net_bytes_per_s[sim.world.state.vms.index("b")])

    link = 100e6 / 8
    assert b_rate(np.zeros(0, np.int64)) == pytest.approx(link / 2, rel=0.01)
    # A block of swapped pages: 1 ms to read each from the 4 MiB/s disk, 5 ms for each
    # cluster of 8; QEMU's 4,104 bytes a page (header) capped at 128 MiB/s between reads.
    read_s = 4096 / (4 * 1024**2) + 0.005 / 8
    sender = 1 / (1 / (128 * 1024**2) + read_s / 4104)
    assert b_rate(np.arange(PAGES)) == pytest.approx(link - sender, rel=0.01)


def test_a_save_from_before_the_read_counters_loads_and_goes_on_reading() -> None:
    # A save mid-migration without the table's newer columns (pages read back, the
    # sender's wait, the clusters read) loads, verified, with none counted, and goes on: it
    # reads the rest and ends as the one never saved, less what the old save had counted.
    sim = _world()
    _swap_out(sim, SCATTERED)
    assert sim.submit({"kind": "migrate", "vm": "a", "to": "h2", "algorithm": "qemu"}).ok
    sim.step(2)
    meta, arrays = sim.save_state()
    counted = int(arrays["migrations.swap_read_pages"][-1])
    assert 0 < counted < SCATTERED.size
    for name in ("swap_read_pages", "swap_read_s", "read_s_per_byte", "pages.swap_read"):
        del arrays[f"migrations.{name}"]
    old = Simulation.from_state((meta, arrays), verify=True)
    runs = []
    for run in (sim, old):
        while run.world.state.migrations[-1].active:
            run.step(1)
        runs.append(run.report()["migrations"][-1])
    assert runs[1]["status"] == "done" and runs[1]["total_time_s"] == runs[0]["total_time_s"]
    assert runs[1]["swap_read_pages"] == runs[0]["swap_read_pages"] - counted


def test_pages_a_full_destination_cannot_hold_are_written_to_its_swap_disk() -> None:
    # A 32 MiB VM moved to a 24 MiB host: what its frames cannot hold goes to its swap,
    # written at its disk's 100 MB/s (as the swap daemon's swap-outs are counted).
    data = small_spec()
    data["host"][0].update(memory="64MiB")
    data["host"][1].update(memory="24MiB")
    data["vm"][0].update(memory="32MiB", workload={"kind": "idle"}, content=CONTENT)
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(2)
    m = _migrate(sim, algorithm="qemu")
    disk = sim.world.state.reclaim.hosts
    out = int(disk["swapped_pages"][1])
    assert m["status"] == "done" and out > 1000
    assert disk["swapout_tick"][1] == out
    assert disk["disk_busy_s_tick"][1] == pytest.approx(out * TRANSFER_S)
