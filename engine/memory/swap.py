"""Hypervisor swapping (ESX section 3.3): the blunt instrument.

A swap daemon moves each VM toward its swap goal by choosing victims at random among its
private pages (the hypervisor cannot tell hot from cold), writing them asynchronously to
the VM's swap file (max - min pages) within the host's swap-disk bandwidth, after the
swap-ins of this tick have taken their share of it. Share before swap: each victim is
offered to page sharing first, and one that merges frees its frame without a disk write.
"""

from __future__ import annotations

import numpy as np

from engine.hashing import splitmix64
from engine.memory import frames as frame_alloc
from engine.memory.counts import vm_of_sorted
from engine.memory.guest import AtLocation, pick_many, unmap
from engine.memory.phase import shared_pages_per_host
from engine.memory.sharing import try_share
from engine.state import I64, Loc
from engine.world import World

_PRIVATE = AtLocation(Loc.PRIVATE)  # what the swap daemon evicts


def _compress(world: World, victims: I64, vm: I64, owner_host: I64
              ) -> tuple[I64, I64, I64]:
    """Compress what compresses (zero pages always), within each VM's cache; the rest is
    returned to be swapped (pages, VMs, hosts). Compressed pages share a cache frame two by
    two. Victims ascend, so their VMs too."""
    state = world.state
    policy = world.spec.policy.memory
    vms, p = state.vms, state.pages
    content = p.content[victims]
    fits = np.flatnonzero((content == 0) | (
        (splitmix64(content) % np.uint64(100)).astype(np.int64) < int(policy.compressible * 100)))
    room = np.maximum((2 * policy.compression_cache * vms["n_pages"]).astype(np.int64)
                      - vms["loc_count"][:, Loc.COMPRESSED], 0)
    # Rank of each compressible victim among its VM's: the first `room` of them go.
    fit_vm = vm[fits]
    rank = np.arange(fits.size) - np.searchsorted(fit_vm, np.arange(len(vms)))[fit_vm]
    chosen = np.zeros(victims.size, np.bool_)
    chosen[fits[rank < room[fit_vm]]] = True
    for h in np.flatnonzero(np.bincount(owner_host[chosen], minlength=len(state.hosts))).tolist():
        mine = np.flatnonzero(chosen & (owner_host == h))
        pages = victims[mine]
        frames = frame_alloc.allocate(state, np.full((pages.size + 1) // 2, h, np.int64))
        if np.any(frames < 0):  # no frame for the cache: swap them instead
            frame_alloc.release(state, frames[frames >= 0])
            chosen &= owner_host != h
            continue
        pair = np.repeat(frames, 2)[:pages.size]
        state.frames.refcount[frames] = np.bincount(
            np.arange(pages.size) // 2, minlength=frames.size).astype(np.int32)
        unmap(state, pages, Loc.COMPRESSED, vm[mine])
        p.frame[pages] = pair
        state.reclaim.hosts["compressed_pages"][h] += pages.size
    rest = np.flatnonzero(~chosen)
    return victims[rest], vm[rest], owner_host[rest]


def run_swap(world: World) -> None:
    state = world.state
    vms = state.vms
    reclaim = state.reclaim.hosts
    running = vms["host"] >= 0
    swapped = vms["loc_count"][:, Loc.SWAPPED]
    forced = np.where(vms["swap_forced"] >= 0, np.maximum(vms["swap_forced"] - swapped, 0), 0)
    goal = np.where(vms["swap_forced"] >= 0, forced, vms["swap_goal"])
    reclaim["swapout_tick"][:] = 0
    state.sharing.hosts["swap_shared_tick"][:] = 0
    world.evicted = swap_out(world, np.where(running, goal, 0))


def swap_out(world: World, goal: I64) -> tuple[I64, I64]:
    """Up to goal[v] random private pages of every VM v out of memory, within its swap
    file and the disk time left this tick: shared where they can be, compressed where
    they fit, the rest written to swap. Returns the pages that left guest memory
    (compressed or swapped, ascending) and their VMs."""
    state = world.state
    vms, hosts = state.vms, state.hosts
    reclaim = state.reclaim.hosts
    none = np.zeros(0, np.int64)
    swapped = vms["loc_count"][:, Loc.SWAPPED]
    file_room = np.maximum(vms["n_pages"] - vms["min_pages"] - swapped, 0)
    goal = np.minimum(goal, file_room)
    if not goal.any():
        return none, none
    host = np.maximum(vms["host"], 0)
    # Disk time left this tick after swap-ins, as pages; shared among VMs by their goals.
    page_s = state.page_size / hosts.swap_disk_bytes_per_s
    budget = np.maximum(state.tick_s - reclaim["disk_busy_s_tick"], 0) / page_s
    room = np.maximum(reclaim["swap_capacity_pages"] - reclaim["swapped_pages"], 0)
    budget = np.minimum(budget, room)
    wanted = np.bincount(host, weights=goal, minlength=len(hosts))
    share = np.minimum(1.0, budget / np.maximum(wanted, 1))[host]
    quota = np.floor(goal * share).astype(np.int64)
    if not quota.any():
        return none, none
    victims = pick_many(state, world.streams["swap"], quota, _PRIVATE)  # ascending
    owner = vm_of_sorted(vms, victims)
    owner_host = vms["host"][owner]
    # Share before swap, where the host shares pages at all.
    offer = state.sharing.hosts["mode"][owner_host] != 0
    counters = state.sharing.hosts
    if offer.any():
        before = shared_pages_per_host(state)
        shared = np.zeros(victims.size, np.bool_)
        shared[offer] = try_share(state, victims[offer])
        kept = np.flatnonzero(~shared)
        victims, owner, owner_host = victims[kept], owner[kept], owner_host[kept]
        added = np.maximum(shared_pages_per_host(state) - before, 0)
        counters["swap_shared_tick"] += added
        counters["swap_shared"] += added
    evicted, evicted_vm = victims, owner
    if world.spec.policy.memory.compression:
        victims, owner, owner_host = _compress(world, victims, owner, owner_host)
    unmap(state, victims, Loc.SWAPPED, owner)
    per_host = np.bincount(owner_host, minlength=len(hosts))
    reclaim["swapped_pages"] += per_host
    reclaim["swapout_tick"] += per_host
    reclaim["disk_busy_s_tick"] += per_host * page_s
    vms["swapouts"] += np.bincount(owner, minlength=len(vms))
    return evicted, evicted_vm
