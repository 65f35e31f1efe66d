"""Hypervisor swapping (ESX section 3.3): the blunt instrument.

A swap daemon moves each VM toward its swap goal by choosing victims at random among its
private pages (the hypervisor cannot tell hot from cold), writing them asynchronously to
the VM's swap file (max - min pages) within the host's swap-disk bandwidth, after the
swap-ins of this tick have taken their share of it. Share before swap: each victim is
offered to page sharing first, and one that merges frees its frame without a disk write.
"""

from __future__ import annotations

import numpy as np

from engine.memory.guest import INELIGIBLE, pick, unmap
from engine.memory.sharing import try_share
from engine.state import I64, Loc, State
from engine.world import World


def _private(state: State, pages: I64) -> I64:
    return np.where(state.pages.location[pages] == Loc.PRIVATE, 0, INELIGIBLE)


def run_swap(world: World) -> None:
    state = world.state
    vms, hosts = state.vms, state.hosts
    reclaim = state.reclaim.hosts
    rng = world.streams["swap"]
    running = vms["host"] >= 0
    swapped = vms["loc_count"][:, Loc.SWAPPED]
    file_room = np.maximum(vms["n_pages"] - vms["min_pages"] - swapped, 0)
    forced = np.where(vms["swap_forced"] >= 0, np.maximum(vms["swap_forced"] - swapped, 0), 0)
    goal = np.where(vms["swap_forced"] >= 0, forced, vms["swap_goal"])
    goal = np.where(running, np.minimum(goal, file_room), 0)
    reclaim["swapout_tick"][:] = 0
    if not goal.any():
        return
    host = np.maximum(vms["host"], 0)
    # Disk time left this tick after swap-ins, as pages; shared among VMs by their goals.
    page_s = state.page_size / hosts.swap_disk_bytes_per_s
    budget = np.maximum(state.tick_s - reclaim["disk_busy_s_tick"], 0) / page_s
    room = np.maximum(reclaim["swap_capacity_pages"] - reclaim["swapped_pages"], 0)
    budget = np.minimum(budget, room)
    wanted = np.bincount(host, weights=goal, minlength=len(hosts))
    share = np.minimum(1.0, budget / np.maximum(wanted, 1))[host]
    quota = np.floor(goal * share).astype(np.int64)
    for v in np.flatnonzero(quota).tolist():
        victims = pick(state, rng, v, int(quota[v]), _private)
        if victims.size == 0:
            continue
        h = int(vms["host"][v])
        if state.sharing.hosts["mode"][h] != 0:  # share before swap, where sharing is on
            victims = victims[~try_share(state, victims)]
        unmap(state, victims, Loc.SWAPPED)
        reclaim["swapped_pages"][h] += victims.size
        reclaim["swapout_tick"][h] += victims.size
        reclaim["disk_busy_s_tick"][h] += victims.size * page_s[h]
        vms["swapouts"][v] += victims.size
