"""The balloon driver (ESX section 3.2): the guest itself decides what to give up.

Each VM's driver polls its target once per tick (ESX: once a second). Inflating, it
allocates guest pages and pins them; the hypervisor frees their frames. The guest gives up
free pages first, then page cache, then pages out its coldest process memory (guest
paging). A victim the hypervisor had already swapped out must be read back from the swap
file only for the guest to write it to its own disk: double paging, counted. Deflating
returns pinned pages to the guest's free list, unbacked until touched. The rate adapts:
it doubles while the guest has memory to spare and halves when inflating forces guest
paging. A balloon never holds more than `balloon_max` of the VM.
"""

from __future__ import annotations

import numpy as np

from engine.memory.guest import (
    ANON_COLD,
    ANON_HOT,
    INELIGIBLE,
    balloon_class,
    pick,
    set_kind,
    unmap,
)
from engine.state import I64, GuestKind, Loc, State
from engine.world import World


def _ballooned(state: State, pages: I64) -> I64:
    return np.where(state.pages.location[pages] == Loc.BALLOONED, 0, INELIGIBLE)


def inflate(state: State, rng: np.random.Generator, v: int, k: int) -> int:
    """Take up to k pages of VM v into its balloon; returns how many it took."""
    vms, p = state.vms, state.pages
    victims = pick(state, rng, v, k, balloon_class)
    if victims.size == 0:
        return 0
    cls = balloon_class(state, victims)
    paged_out = victims[(cls == ANON_COLD) | (cls == ANON_HOT)]
    double = paged_out[p.location[paged_out] == Loc.SWAPPED]
    if double.size:
        h = int(vms["host"][v])
        vms["double_paging"][v] += double.size
        vms["swapins"][v] += double.size
        state.reclaim.hosts["swapin_tick"][h] += double.size
        state.reclaim.hosts["disk_busy_s_tick"][h] += (
            double.size * state.page_size / state.hosts.swap_disk_bytes_per_s[h])
    unmap(state, victims, Loc.BALLOONED)
    # Data the guest keeps goes to its disk; free and cache pages are simply dropped.
    dropped = victims[(cls != ANON_COLD) & (cls != ANON_HOT)]
    p.content[dropped] = 0
    p.guest_swapped[paged_out] = True
    vms["guest_swapped_count"][v] += paged_out.size
    vms["guest_evictions"][v] += paged_out.size
    set_kind(state, victims, GuestKind.DRIVER)
    policy_rate = vms["balloon_rate"][v]
    vms["balloon_rate"][v] = policy_rate / 2 if paged_out.size else policy_rate * 2
    return int(victims.size)


def deflate(state: State, rng: np.random.Generator, v: int, k: int) -> int:
    victims = pick(state, rng, v, k, _ballooned)
    if victims.size == 0:
        return 0
    p = state.pages
    vm = state.vms.vm_of_pages(victims)
    p.location[victims] = Loc.UNTOUCHED
    from engine.memory.touch import count_moves

    count_moves(state, vm, np.full(victims.size, Loc.BALLOONED), Loc.UNTOUCHED)
    set_kind(state, victims, GuestKind.FREE)
    return int(victims.size)


def run_balloon(world: World) -> None:
    state = world.state
    vms = state.vms
    policy = world.spec.policy.memory
    rng = world.streams["swap"]
    running = vms["host"] >= 0
    target = np.where(vms["balloon_forced"] >= 0, vms["balloon_forced"], vms["balloon_target"])
    target = np.minimum(target, (policy.balloon_max * vms["n_pages"]).astype(np.int64))
    target = np.where(running & vms["balloon_driver"], target, 0)
    current = vms["loc_count"][:, Loc.BALLOONED]
    vms["balloon_rate"] = np.clip(vms["balloon_rate"], policy.balloon_min_rate,
                                  policy.balloon_max_rate)
    step = np.maximum((vms["balloon_rate"] * state.tick_s).astype(np.int64), 1)
    moved = state.reclaim.hosts["balloon_tick"]
    moved[:] = 0
    for v in np.flatnonzero(target != current).tolist():
        h = int(vms["host"][v])
        if target[v] > current[v]:
            got = inflate(state, rng, v, int(min(target[v] - current[v], step[v])))
            moved[max(h, 0)] += got
        else:
            # A stopped VM's balloon is gone with its memory; deflation is never limited.
            moved[max(h, 0)] -= deflate(state, rng, v, int(current[v] - target[v]))
    vms["balloon_rate"] = np.clip(vms["balloon_rate"], policy.balloon_min_rate,
                                  policy.balloon_max_rate)
