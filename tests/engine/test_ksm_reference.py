"""KSM's pass against ksmd done literally: one page after the other. Both ways of doing the
pass are checked: the compiled loop (memory/ksm_pass.py) and the grouped array passes.

The reference below walks the pages of a tick in ksmd's order and runs cmp_and_merge_page
for each (stable-tree search along the chain, checksum, unstable-tree search or insert),
with the same trees and counters. From the same world, one tick of run_ksm and one tick
of the reference must map every page to the same frame and leave the same counters, trees
and per-page KSM state, whether the tick's scan wraps or not.
"""

import copy
from typing import Any

import numpy as np
import pytest

from engine import Simulation, kernels, parse_scenario
from engine.memory import ksm, share_ops
from engine.state import Loc, State
from tests.conftest import small_spec


def _world(pages_to_scan: int, max_sharing: int, zero_pages: bool, smart: bool,
           resident: float) -> Simulation:
    data = small_spec()
    data["host"][0]["memory"] = "40MiB"
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": pages_to_scan,
                                 "ksm_sleep": "100ms", "ksm_max_page_sharing": max_sharing,
                                 "ksm_use_zero_pages": zero_pages, "share_force_salting": 0,
                                 "ksm_smart_scan": smart}
    # Pages never touched are not present: a batch walks past them at no cost.
    mix = {"zero": 0.3, "os": 0.4, "app": 0.2, "private": 0.1, "resident": resident}
    # Writers make pages volatile, some of them zero pages that match merged zero pages.
    hot = {"reads_per_s": 50, "writes_per_s": 300, "zero_writes": 0.5}
    data["vm"] = [{"id": f"v{i}", "host": "h1", "memory": "4MiB", "app": "web",
                   "content": mix, "workload": hot if i % 2 else {"kind": "idle"}}
                  for i in range(4)]
    return Simulation.from_spec(parse_scenario(data), check=True)


def _scan_order(state: State, h: int, cursor: int, n: int) -> list[int]:
    vms = state.vms
    pages = [p for v in np.flatnonzero(vms["host"] == h).tolist()
             for p in range(int(vms["page_offset"][v]), int(vms["page_offset"][v]
                                                           + vms["n_pages"][v]))]
    return [pages[(cursor + i) % len(pages)] for i in range(n)]


def _page_keys(state: State) -> tuple[np.ndarray, np.ndarray]:
    """Every page's sharing key and its stable-chain keys. A key is a function of the page's
    content and VM, which no merge changes: computed once a tick, not once a page (the
    reference spent most of its time hashing one page at a time)."""
    pages = np.arange(len(state.pages.content), dtype=np.int64)
    keys = share_ops.sharing_keys(state, pages, state.vms.vm_of_pages(pages))
    chained = share_ops.chain_key(np.repeat(keys, ksm._MAX_CHAIN),
                                  np.tile(np.arange(ksm._MAX_CHAIN, dtype=np.int64), pages.size))
    return keys, chained.reshape(pages.size, ksm._MAX_CHAIN)


def _cmp_and_merge_page(state: State, policy: Any, h: int, page: int,
                        page_keys: tuple[np.ndarray, np.ndarray]) -> None:
    p, sharing = state.pages, state.sharing
    c = sharing.hosts
    scanned, flagged = sharing.ksm_scanned_at, sharing.ksm_unstable
    assert scanned is not None and flagged is not None
    loc = int(p.location[page])
    if loc not in (Loc.PRIVATE, Loc.SHARED):
        if scanned[page] > 0:  # tick + 1 of the last scan, 0 never
            c["ksm_rmap_items"][h] -= 1
            c["ksm_unshared"][h] -= int(flagged[page])
            if state.sharing.ksm_age is not None:
                state.sharing.ksm_age[page] = 0  # the rmap_item goes, and its age
        scanned[page], flagged[page] = 0, False
        return
    c["ksm_rmap_items"][h] += int(scanned[page] == 0)
    if loc == Loc.SHARED:
        scanned[page] = state.tick + 1
        return
    c["ksm_unshared"][h] -= int(flagged[page])
    flagged[page] = False
    c["hashed_tick"][h] += 1
    one = np.array([page])
    all_keys, all_chained = page_keys
    key = all_keys[one]
    content = int(p.content[page])
    limit = policy.ksm_max_page_sharing
    if policy.ksm_use_zero_pages and content == 0:
        limit = 1 << 60
    prev = int(scanned[page]) - 1
    scanned[page] = state.tick + 1
    # stable_tree_search along the chain: each entry read in one lookup of all the chain's
    # keys (the walk only reads, so reading them up front changes nothing), then walked
    # entry by entry as ksmd does.
    chained = all_chained[page]
    found, fr, aux = sharing.stable.get(chained)
    match = found & (aux == content)
    match[match] = sharing.frame_keys.get(fr[match]) == chained[match]
    free = ksm._MAX_CHAIN
    for d in range(ksm._MAX_CHAIN):
        f = int(fr[d])
        if not (match[d] and state.frames.refcount[f] > 0):
            free = d
            break
        if state.frames.refcount[f] < limit:
            share_ops.merge(state, one, np.array([f]))
            return
    if prev < 0 or p.written_before[page] > prev + 1:  # the checksum changed: volatile
        c["volatile_this_scan"][h] += int(prev >= 0)
        return
    if free >= ksm._MAX_CHAIN:
        return
    trees = sharing.unstable
    region = np.array([h])
    found, val = trees.get_in(key, region)
    q = int(val[0])
    valid = (found[0] and q != page and p.location[q] == Loc.PRIVATE
             and int(p.content[q]) == content
             and all_keys[q] == key[0])
    if valid:  # try_to_merge_two_pages, stable_tree_insert
        stable_key = share_ops.chain_key(key, free)
        share_ops.promote(state, np.array([q]), stable_key)
        frame = int(p.frame[q])
        share_ops.merge(state, one, np.array([frame]))
        sharing.stable.put(stable_key, np.array([frame]), np.array([content], np.uint64))
        trees.delete_in(key, region)
        c["unstable_count"][h] -= 1
        c["ksm_unshared"][h] -= int(flagged[q])
        flagged[q] = False
        return
    trees.put_in(key, np.array([page]), region)
    c["unstable_count"][h] += int(not found[0])
    c["ksm_unshared"][h] += 1
    flagged[page] = True


def _skip_age(age: int) -> int:
    return 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8


def _should_skip(state: State, h: int, page: int) -> bool:
    """mm/ksm.c should_skip_rmap_item for a present page that is not a KSM page (its age
    held capped at 9, past which skip_age does not change)."""
    if state.sharing.ksm_age is None:
        state.sharing.ksm_age = np.zeros(len(state.pages.content), np.uint8)
    byte = int(state.sharing.ksm_age[page])
    age, left = byte & 15, byte >> 4
    skip = False
    if age >= 3:
        if left == 0:
            left = _skip_age(age)
        else:
            left -= 1
            skip = True
    state.sharing.ksm_age[page] = min(age + 1, 9) | (left << 4)
    if skip:  # remove_rmap_item_from_tree
        c, flagged = state.sharing.hosts, state.sharing.ksm_unstable
        c["ksm_unshared"][h] -= int(flagged[page])
        flagged[page] = False
        c["ksm_pages_skipped"][h] += 1
    return skip


def _reference_tick(sim: Simulation) -> None:
    """run_ksm's tick, page by page and batch by batch: a batch hands `pages_to_scan`
    pages to cmp_and_merge_page, walking past pages not present and pages smart scan
    skips, and ends where the full scan does."""
    state, policy = sim.world.state, sim.spec.policy.sharing
    c = state.sharing.hosts
    h = 0
    c["ksm_credit"][h] += state.tick_s / policy.ksm_sleep
    batches = int(c["ksm_credit"][h])
    c["ksm_credit"][h] -= batches
    total = int(state.vms["n_pages"][state.vms["host"] == h].sum())
    per = policy.ksm_pages_to_scan
    page_keys = _page_keys(state)
    order = _scan_order(state, h, 0, total)
    for _ in range(batches):
        budget = per
        cursor = int(c["ksm_cursor"][h]) % total
        while budget > 0:
            page = order[cursor]
            cursor += 1
            loc = int(state.pages.location[page])
            present = loc in (Loc.PRIVATE, Loc.SHARED)
            skip = (present and loc == Loc.PRIVATE and policy.ksm_smart_scan
                    and _should_skip(state, h, page))
            if not skip:
                _cmp_and_merge_page(state, policy, h, page, page_keys)
                budget -= int(present)
            if cursor == total:
                break
        c["ksm_cursor"][h] = cursor
        if cursor == total:  # the full scan ends, and with it the batch
            c["ksm_cursor"][h] = 0
            c["full_scans"][h] += 1
            c["ksm_gen"][h] += 1
            c["volatile_last_scan"][h] = c["volatile_this_scan"][h]
            c["volatile_this_scan"][h] = 0
            c["unstable_count"][h] = 0
            state.sharing.unstable.clear(np.array([h]))


def _table(table: Any) -> dict[int, tuple[int, int]]:
    keys, vals, aux = table.items()
    return dict(zip(keys.tolist(), zip(vals.tolist(), aux.tolist(), strict=True), strict=True))


def _kill_second_zero_ksm_page(sim: Simulation) -> None:
    """Entry 1 of the zero page's chain goes (as when its frame is freed), entries 2.. stay:
    new KSM pages take index 1, then pages go on to the live ones after it."""
    state = sim.world.state
    zero = np.flatnonzero((state.pages.content == 0) & (state.pages.location == Loc.SHARED))
    key = share_ops.sharing_keys(state, zero[:1], state.vms.vm_of_pages(zero[:1]))
    assert state.sharing.stable.get(share_ops.chain_key(key, 2))[0][0]
    assert state.sharing.stable.delete(share_ops.chain_key(key, 1)) == 1


@pytest.mark.parametrize(("pages_to_scan", "max_sharing", "zero_pages", "kill_at", "smart",
                          "resident"),
                         [(300, 256, False, -1, True, 1.0), (700, 4, False, 5, True, 0.8),
                          (500, 2, True, -1, False, 0.9), (200, 8, False, 6, True, 1.0)])
@pytest.mark.parametrize("mode", ["numba", "numpy"])  # memory/ksm_pass.py, or array passes
def test_one_tick_of_the_pass_is_ksmd_page_by_page(pages_to_scan: int, max_sharing: int,
                                                    zero_pages: bool, kill_at: int,
                                                    smart: bool, resident: float, mode: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    sim = _world(pages_to_scan, max_sharing, zero_pages, smart, resident)
    for i in range(12):  # 4,096 pages, 2,000-7,000 a tick: wraps inside some ticks
        sim.step(1)  # a whole tick (writes, COW breaks, its own KSM pass)
        if i == kill_at:
            _kill_second_zero_ksm_page(sim)
        sim.world.state.sharing.hosts["hashed_tick"][:] = 0
        ref = copy.deepcopy(sim)
        ksm.run_ksm(sim.world)
        _reference_tick(ref)
        a, b = sim.world.state, ref.world.state
        np.testing.assert_array_equal(a.pages.location, b.pages.location)
        np.testing.assert_array_equal(a.pages.frame, b.pages.frame)
        np.testing.assert_array_equal(a.frames.refcount, b.frames.refcount)
        np.testing.assert_array_equal(a.sharing.ksm_scanned_at, b.sharing.ksm_scanned_at)
        np.testing.assert_array_equal(a.sharing.ksm_unstable, b.sharing.ksm_unstable)
        if smart:
            np.testing.assert_array_equal(a.sharing.ksm_age, b.sharing.ksm_age)
        for name, col in a.sharing.hosts.items():
            if name != "compares_tick":
                np.testing.assert_array_equal(col, b.sharing.hosts[name], err_msg=name)
        assert _table(a.sharing.stable) == _table(b.sharing.stable)
        assert _table(a.sharing.unstable) == _table(b.sharing.unstable)
    assert int(sim.world.state.sharing.hosts["full_scans"][0]) >= 3
    # Smart scan skipped pages (and so did the reference), or never did with it off.
    assert (int(sim.world.state.sharing.hosts["ksm_pages_skipped"][0]) > 0) == smart
    assert sim.snapshot().host("h1").pages_sharing > 0
