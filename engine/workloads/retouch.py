"""Evicted pages the guest touches again before the tick ends.

A tick runs every touch before the swap daemon, so a page the daemon evicts leaves memory
at the end of the tick, where no touch can find it gone. A daemon running beside its
guests evicts throughout the tick, and a victim the guest touches before the tick ends
faults straight back in (its swap-out written for nothing, then a swap-in read) while the
daemon evicts another page in its place. Left out, a longer tick hid more of these: at the
swap storm's 5 s ticks fw and lb took 16-19 % fewer swap-ins a second than at 1 s ticks.

Event times, not sub-steps. The daemon's victims leave at uniform moments of the tick (a
steady daemon evicts as the faults come). A page's next touch follows its workload's
touch process: random access is a Poisson process at the page's rate, a sweep touches it
once a pass at a uniform phase (workloads/synthetic.py page_touch_rates), cached pages
get the file reads that hit them (workloads/filecache.py cached_page_rates). A victim
touched before the tick ends comes back at that moment, and the daemon's replacement for
it leaves then; each round's victims are a small share of the last's.
"""

from __future__ import annotations

import numpy as np

from engine.memory.swap import swap_out
from engine.memory.touch import apply_touches
from engine.state import F64, I64, U8, Bool, GuestKind, Loc, State
from engine.workloads.filecache import cached_page_rates
from engine.workloads.phase import active_vms
from engine.workloads.synthetic import page_touch_rates
from engine.world import World

# Rounds of replacements: each is the share of the last that is touched again before the
# tick ends, a few % to a few tens of % (hot pages), so a handful of rounds leave none.
_MAX_ROUNDS = 16


def _next_touch_s(state: State, rng: np.random.Generator, touching: Bool, cache_rate: F64,
                  pages: I64, vm: I64, kind: U8) -> F64:
    """Seconds from now to each page's next touch (inf for a page nothing touches)."""
    rate, swept = page_touch_rates(state, touching, pages, vm)
    cached = kind == GuestKind.CACHE
    rate = rate + np.where(cached, cache_rate[vm], 0.0)  # random hits: Poisson
    draw = rng.random(pages.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = np.where(swept & ~cached, draw, -np.log1p(-draw)) / rate
    return np.where(rate > 0, wait, np.inf)


def _fault_back(state: State, pages: I64, kind: U8) -> Bool:
    """The guest touches the evicted pages again: they fault back in (swap-in, or
    decompression), costed as any fault is. Whether each is back in memory (one that finds
    no free frame stays out: the touch comes again next tick)."""
    n = len(state.vms)
    for cached in (False, True):
        mine = np.compress((kind == GuestKind.CACHE) == cached, pages)
        if mine.size:
            # The touch itself was served and counted with the tick's others: only the
            # fault is new.
            apply_touches(state, mine, np.zeros(0, np.int64), np.zeros(0, np.uint64),
                          np.bincount(state.vms.vm_of_pages(mine), minlength=n),
                          np.zeros(n, np.int64),
                          kind=GuestKind.CACHE if cached else GuestKind.ANON,
                          hold_postcopy=False)
    loc = state.pages.at("location", pages)
    back: Bool = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    return back


def retouch_evicted(world: World) -> None:
    evicted = world.evicted
    world.evicted = None
    if evicted is None or evicted[0].size == 0:
        return
    state = world.state
    vms, p = state.vms, state.pages
    rng = world.streams["swap"]
    tick_s = state.tick_s
    # Blocked VMs touched nothing this tick; a VM in post-copy touches in the migration
    # phase, against its own pages' arrival.
    touching = active_vms(state) & ~vms["blocked"] & (vms["loc_count"][:, Loc.REMOTE] == 0)
    cache_rate = cached_page_rates(state, touching)
    pages, vm = evicted
    left_s = rng.random(pages.size) * tick_s
    for _ in range(_MAX_ROUNDS):
        kind = p.at("guest_kind", pages)
        back_s = left_s + _next_touch_s(state, rng, touching, cache_rate, pages, vm, kind)
        back = np.flatnonzero(back_s < tick_s)
        if back.size == 0:
            return
        came = np.flatnonzero(_fault_back(state, pages[back], kind[back]))
        came_s, came_vm = back_s[back][came], vm[back][came]
        pages, vm = swap_out(world, np.bincount(came_vm, minlength=len(vms)))
        if pages.size == 0:
            return
        # Each VM's replacements leave at the moments its victims came back, in order.
        order = np.lexsort((came_s, came_vm))
        came_s, came_vm = came_s[order], came_vm[order]
        rank = np.arange(vm.size) - np.searchsorted(vm, vm)  # vm ascends with the pages
        left_s = came_s[np.searchsorted(came_vm, vm) + rank]
