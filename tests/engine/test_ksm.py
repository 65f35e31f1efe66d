"""KSM whatever the batch size: two scans to merge, 256 users a page, sysfs counters; and
the report telling the background scan from share-before-swap."""

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Simulation, invariants, parse_scenario
from engine.hashtable import RegionMap
from engine.state import Loc
from tests.conftest import small_spec

IDLE = {"kind": "idle"}


def _ksm(vms: list[dict[str, Any]], pages_to_scan: int, **sharing: Any) -> Simulation:
    data = small_spec()
    # One batch a tick: sleep 1 s between batches of `pages_to_scan`.
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": pages_to_scan,
                                 "ksm_sleep": "1s", "share_force_salting": 0, **sharing}
    data["vm"] = [{"host": "h1", "workload": IDLE, **vm} for vm in vms]
    return Simulation.from_spec(parse_scenario(data), check=True)


def _ksm_report(sim: Simulation) -> dict[str, int]:
    return dict(sim.report()["hosts"][0]["ksm"])


def test_a_pair_merges_in_the_second_scan_when_a_scan_fits_in_one_batch() -> None:
    same = {"memory": "256KiB", "app": "web",
            "content": {"zero": 0, "os": 0.5, "app": 0.5, "private": 0, "resident": 1.0}}
    sim = _ksm([{"id": "a", **same}, {"id": "b", **same}], pages_to_scan=1000)
    sim.step(1)  # scan 1: every page is new (its checksum is stored): volatile
    ksm = _ksm_report(sim)
    assert ksm["full_scans"] == 1 and ksm["pages_shared"] == 0
    assert ksm["pages_volatile"] == ksm["rmap_items"] == 128
    sim.step(1)  # scan 2: unchanged, found in the unstable tree: merged
    ksm = _ksm_report(sim)
    assert ksm["full_scans"] == 2
    assert ksm["pages_shared"] == 64 and ksm["pages_sharing"] == 64
    assert ksm["pages_volatile"] == 0 and ksm["pages_unshared"] == 0


def test_a_ksm_page_takes_256_users_and_the_rest_chain_in_the_same_batch() -> None:
    zeros = {"zero": 1.0, "os": 0, "app": 0, "private": 0, "resident": 1.0}
    sim = _ksm([{"id": "z", "memory": "2400KiB", "content": zeros}], pages_to_scan=1000)
    sim.step(2)
    state = sim.world.state
    frames = state.pages.frame[:600]
    assert np.all(state.pages.location[:600] == Loc.SHARED)
    users = np.sort(np.bincount(frames)[np.unique(frames)])
    assert users.tolist() == [88, 256, 256]  # 600 = 256 + 256 + 88, all in scan 2
    ksm = _ksm_report(sim)
    assert ksm["pages_shared"] == 3 and ksm["pages_sharing"] == 597


def test_pages_unshared_is_the_current_count_not_reset_by_a_new_scan() -> None:
    unique = {"zero": 0, "os": 0, "app": 0, "private": 1.0, "resident": 1.0}
    sim = _ksm([{"id": "u", "memory": "1200KiB", "content": unique}], pages_to_scan=100)
    sim.step(3)  # scan 1 (three batches of 100): tracked, volatile
    ksm = _ksm_report(sim)
    assert (ksm["full_scans"], ksm["pages_volatile"], ksm["pages_unshared"]) == (1, 300, 0)
    sim.step(3)  # scan 2: unchanged, alone in the unstable tree
    assert _ksm_report(sim)["pages_unshared"] == 300
    sim.step(1)  # a third of scan 3: the others are still where scan 2 left them
    ksm = _ksm_report(sim)
    assert (ksm["full_scans"], ksm["pages_unshared"], ksm["pages_volatile"]) == (2, 300, 0)
    assert sim.snapshot().host("h1").pages_unshared == 300


def test_the_report_tells_the_background_scan_from_share_before_swap() -> None:
    data = small_spec()
    data["vm"][0].update(content={"zero": 0.5, "os": 0, "app": 0, "private": 0.5,
                                  "resident": 1.0}, workload=IDLE)
    data["vm"][1].update(workload=IDLE)
    data["policy"]["sharing"] = {"mode": "esx", "pages_per_s_per_vm": 0}  # no scan
    swap_only = Simulation.from_spec(parse_scenario(data), check=True)
    assert swap_only.submit({"kind": "set_swap_target", "vm": "a", "target": "4MiB"}).ok
    swap_only.step(3)
    paths = swap_only.report()["hosts"][0]["sharing_by_path"]
    assert paths["background_scan_pages"] == 0 and paths["share_before_swap_pages"] > 100
    data["policy"]["sharing"] = {"mode": "esx", "pages_per_s_per_vm": 500,
                                 "pages_per_s_per_host": 1000}
    scan_only = Simulation.from_spec(parse_scenario(data), check=True)
    scan_only.step(3)
    paths = scan_only.report()["hosts"][0]["sharing_by_path"]
    assert paths["background_scan_pages"] > 100 and paths["share_before_swap_pages"] == 0
    host = scan_only.snapshot().host("h1")
    assert paths["background_scan_pages"] == host.guest_shared_bytes // 4096


def test_pages_to_scan_counts_4k_pages_so_coarse_pages_scan_the_same_bytes() -> None:
    unique = {"zero": 0, "os": 0, "app": 0, "private": 1.0, "resident": 1.0}
    scanned = {}
    for page_size in ("4KiB", "64KiB"):
        data = small_spec()
        data["scenario"]["page_size"] = page_size
        data["host"][0]["memory"] = "128MiB"
        # 100 4 KiB pages a batch, ten batches a second: 4,096,000 bytes a second, that is
        # 6.25 64 KiB pages a batch.
        data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": 100,
                                     "ksm_sleep": "100ms", "share_force_salting": 0}
        data["vm"] = [{"id": "u", "host": "h1", "memory": "64MiB", "content": unique,
                       "workload": IDLE}]
        sim = Simulation.from_spec(parse_scenario(data), check=True)
        state = sim.world.state
        sim.step(1)
        first = int(state.sharing.hosts["ksm_cursor"][0])
        sim.step(15)
        scanned[page_size] = (first, int(state.sharing.hosts["ksm_cursor"][0]) * state.page_size)
    assert scanned["4KiB"] == (1000, 16 * 4_096_000)
    # Whole batches cover whole pages: 62 pages the first second (the half page's credit is
    # kept); after 16 s the bytes agree to within one batch (409,600 bytes).
    assert scanned["64KiB"][0] == 62
    assert 16 * 4_096_000 - 409_600 <= scanned["64KiB"][1] <= 16 * 4_096_000


def test_a_ksm_world_saved_and_loaded_continues_bit_identically() -> None:
    same = {"memory": "4MiB", "app": "web",
            "content": {"zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 1.0}}
    vms = [{"id": "a", **same}, {"id": "b", **same}]
    straight = _ksm(vms, pages_to_scan=500)
    straight.step(10)
    first = _ksm(vms, pages_to_scan=500)
    first.step(6)  # in the second full scan: the unstable tree holds pages
    assert len(first.world.state.sharing.unstable) > 0
    resumed = Simulation.from_state(first.save_state())
    resumed.step(4)
    assert resumed.digest() == straight.digest()
    assert _ksm_report(resumed) == _ksm_report(straight)


def test_the_invariants_catch_shared_frames_bits_and_keys_that_disagree() -> None:
    same = {"memory": "1MiB", "app": "web",
            "content": {"zero": 0, "os": 0.5, "app": 0.5, "private": 0, "resident": 1.0}}
    sim = _ksm([{"id": "a", **same}, {"id": "b", **same}], pages_to_scan=1000)
    sim.step(2)
    state = sim.world.state
    assert invariants.check(state) == []
    keys = state.sharing.frame_keys
    frame = int(keys.items()[0][0])
    keys.bits[frame >> 3] ^= np.uint8(1 << (frame & 7))  # the key stays, its bit goes
    assert "the shared frames' bits disagree with their keys" in invariants.check(state)
    keys.bits[frame >> 3] ^= np.uint8(1 << (frame & 7))
    keys.set(np.array([frame]), np.array([12345], np.uint64))  # another key
    assert invariants.check(state) == [
        "a stable sharing entry points at a frame shared under another key"]


def test_the_unstable_trees_are_per_host_cleared_at_a_full_scan_and_grow_only_if_full() -> None:
    trees = RegionMap(np.array([16, 16, 64]))
    keys = np.arange(2, 15, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    trees.put_in(keys, np.arange(13), np.full(13, 0))  # 13 > 3/4 of 16: region 0 doubles
    trees.put_in(keys[:5], np.arange(100, 105), np.full(5, 2))  # same keys, other host
    assert trees.size.tolist() == [32, 16, 64] and len(trees) == 18
    found, val = trees.get_in(keys, np.zeros(13, np.int64))
    assert found.all() and val.tolist() == list(range(13))
    found, val = trees.get_in(keys, np.full(13, 2))
    assert found.tolist() == [True] * 5 + [False] * 8 and val[:5].tolist() == list(range(100, 105))
    assert trees.delete_in(keys[:3], np.zeros(3, np.int64)) == 3
    assert not trees.get_in(keys[:3], np.zeros(3, np.int64))[0].any()
    trees.clear(np.array([0]))
    assert len(trees) == 5 and not trees.get_in(keys, np.zeros(13, np.int64))[0].any()
    assert trees.get_in(keys[:5], np.full(5, 2))[0].all()
    saved = RegionMap.from_arrays(trees.to_arrays("t"), "t")
    assert isinstance(saved, RegionMap) and saved.items_in()[0].tolist() == (
        trees.items_in()[0].tolist())
    saved.put_in(keys[3:5], np.array([7, 8]), np.full(2, 2))  # present: overwritten in place
    assert len(saved) == len(trees) == 5
    assert saved.get_in(keys[3:5], np.full(2, 2))[1].tolist() == [7, 8]


def test_a_save_with_one_unstable_table_for_all_hosts_moves_its_current_entries_in() -> None:
    from engine.hashtable import U64Map
    from engine.memory.ksm import _unstable_trees

    same = {"memory": "4MiB", "app": "web",
            "content": {"zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 1.0}}
    sim = _ksm([{"id": "a", **same}, {"id": "b", **same}], pages_to_scan=500)
    sim.step(6)
    state = sim.world.state
    trees = state.sharing.unstable
    assert isinstance(trees, RegionMap) and len(trees) > 0
    keys, pages, _ = trees.items_in()
    # The older format: key hashed with the generation, page | generation << 40, content.
    gen = int(state.sharing.hosts["ksm_gen"][0])
    old = U64Map()
    stale = np.array([pages[0] | (gen - 1) << 40])  # an earlier scan's entry: dropped
    old.put(np.concatenate([keys ^ np.uint64(gen + 1), np.array([7], np.uint64)]),
            np.concatenate([pages | gen << 40, stale]),
            state.pages.content[np.concatenate([pages, pages[:1]])])
    state.sharing.unstable = old
    moved = _unstable_trees(state)
    assert sorted(moved.items_in()[1].tolist()) == sorted(pages.tolist())
    assert sorted(moved.items_in()[0].tolist()) == sorted(keys.tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=0, max_size=80), st.integers(0, 2**32 - 1))
def test_per_host_counts_over_a_pass_agree_with_a_bincount(hosts: list[int], seed: int) -> None:
    """A pass's per-host counts (segment sums over its host-after-host layout, empty hosts
    among them) are the bincounts of the hosts of the positions counted, also for a
    sub-array of the pass (the candidates, whose hosts ascend too)."""
    from engine.memory.ksm_front import HostRuns

    n_hosts = 7
    host = np.sort(np.array(hosts, np.int64))
    rng = np.random.default_rng(seed)
    runs = HostRuns(host, n_hosts)
    mask = rng.random(host.size) < 0.4
    np.testing.assert_array_equal(runs.count(mask), np.bincount(host[mask], minlength=n_hosts))
    at = np.flatnonzero(mask)
    np.testing.assert_array_equal(runs.count_at(at), np.bincount(host[at], minlength=n_hosts))
    sub = HostRuns(host[at], n_hosts)
    inner = rng.random(at.size) < 0.5
    np.testing.assert_array_equal(np.diff(sub.bounds), np.bincount(host[at], minlength=n_hosts))
    np.testing.assert_array_equal(sub.count(inner),
                                  np.bincount(host[at][inner], minlength=n_hosts))
