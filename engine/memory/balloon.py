"""The balloon driver (ESX section 3.2): the guest itself decides what to give up.

Each VM's driver polls its target once per tick (ESX: once a second; its rate adapts by
the second, whatever the tick). Inflating, it
allocates guest pages and pins them; the hypervisor frees their frames. The guest gives up
free pages first, then page cache, then pages out its coldest process memory (guest
paging). A victim the hypervisor had already swapped out must be read back from the swap
file only for the guest to write it to its own disk: double paging, counted. Deflating
returns pinned pages to the guest's free list, unbacked until touched. The rate adapts:
it doubles every second while the guest has memory to spare and halves every second
while inflating forces guest paging. A balloon never holds more than `balloon_max` of the VM.
A tick longer than a poll inflates only until the drivers' next poll after their host is
back in high (where balloons stop growing), reckoned from each page's moment in the tick.
"""

from __future__ import annotations

import numpy as np

from engine import kernels
from engine.memory import inflate_loop
from engine.memory.balloon_polls import rate_bounds
from engine.memory.counts import count_moves, vm_of_sorted, waiting_pages
from engine.memory.guest import (
    ANON_COLD,
    ANON_HOT,
    I8,
    KIND_OF_CLASS,
    AtLocation,
    pick_balloon,
    pick_many,
    set_kind,
    unmap,
)
from engine.memory.states import thresholds
from engine.state import BALLOON_POLL_S, F64, I64, U8, Bool, GuestKind, Loc, State
from engine.world import World

_BALLOONED = AtLocation(Loc.BALLOONED)  # what a deflating driver gives back


def _before_high(state: State, need: F64, limited: Bool, victims: I64, owner: I64, cls: I8,
                 loc: U8) -> Bool:
    """Which victims a driver takes before the tick's inflation takes its host back to
    high: up to its first poll after the moment the host has `need` frames back.

    A tick runs its inflation at once, but the drivers inflate one page after another at
    their rates, the guests giving free pages first (which may have no frame), and the
    host climbs to high (where balloons stop growing) as soon as enough frames are back.
    Taken whole, a 5 s tick inflated five seconds' worth on a dip a 1 s tick recovers from
    within its second. At ticks of a poll or less, nothing is cut."""
    vms = state.vms
    n_hosts = len(state.hosts)
    order = np.lexsort((victims, cls, owner))  # each guest gives its pages class by class
    by_owner = owner[order]
    rank = np.arange(order.size) - np.searchsorted(by_owner, by_owner)
    at_s = np.empty(victims.size)
    at_s[order] = (rank + 1) / np.maximum(vms["balloon_rate"][by_owner], 1e-9)
    host = vms["host"][owner]
    frame = np.take(state.pages.frame, victims)
    frees = (loc == Loc.PRIVATE) | ((loc == Loc.SHARED) & (
        state.frames.refcount[np.maximum(frame, 0)] == 1))
    freeing = np.flatnonzero(frees & limited[owner])
    freeing = freeing[np.lexsort((at_s[freeing], host[freeing]))]  # by host, then time
    f_host = host[freeing]
    count = np.bincount(f_host, minlength=n_hosts)
    start = np.cumsum(count) - count
    need = np.ceil(need).astype(np.int64)
    back_s = np.full(n_hosts, np.inf)  # when the host has its frames back
    back_s[need <= 0] = 0.0
    reached = np.flatnonzero((need > 0) & (need <= count))
    back_s[reached] = at_s[freeing[start[reached] + need[reached] - 1]]
    stop_s = (np.floor(back_s / BALLOON_POLL_S) + 1.0) * BALLOON_POLL_S  # the driver's next poll
    keep: Bool = ~limited[owner] | (at_s <= stop_s[host])
    return keep


def inflate(state: State, rng: np.random.Generator, want: I64,
            until_high: tuple[F64, Bool] | None = None) -> I64:
    """Take up to want[v] pages of every VM v into its balloon; returns pages taken per VM.
    `until_high`: per host, the frames it needs back to climb to high, and which VMs'
    balloons stop growing there (see _before_high)."""
    vms, p = state.vms, state.pages
    n = len(vms)
    victims, cls, loc = pick_balloon(state, rng, want)  # ascending, with class and location
    if victims.size == 0:
        return np.zeros(n, np.int64)
    owner = vm_of_sorted(vms, victims)
    if until_high is not None and state.tick_s > BALLOON_POLL_S:
        kept = np.flatnonzero(_before_high(state, *until_high, victims, owner, cls, loc))
        victims, owner = np.take(victims, kept), np.take(owner, kept)
        cls, loc = np.take(cls, kept), np.take(loc, kept)
        if victims.size == 0:
            return np.zeros(n, np.int64)
    out = (cls == ANON_COLD) | (cls == ANON_HOT)
    double = out & (loc == Loc.SWAPPED)
    if double.any():
        per_vm = np.bincount(owner[double], minlength=n)
        vms["double_paging"] += per_vm
        vms["swapins"] += per_vm
        hosts = state.hosts
        per_host = np.bincount(vms["host"][owner[double]], minlength=len(hosts))
        state.reclaim.hosts["swapin_tick"] += per_host
        state.reclaim.hosts["disk_busy_s_tick"] += (
            per_host * state.page_size / hosts.swap_disk_bytes_per_s)
    if kernels.compiled():  # the same, in one loop (inflate_loop.py)
        evicted, got = inflate_loop.apply(state, victims, owner, cls, loc)
    else:
        unmap(state, victims, Loc.BALLOONED, owner, loc)
        # Data the guest keeps goes to its disk; free and cache pages are simply dropped.
        p.content[np.compress(~out, victims)] = 0
        p.guest_swapped[np.compress(out, victims)] = True
        evicted = np.bincount(np.compress(out, owner), minlength=n)
        # A victim's class tells its kind: each class but INELIGIBLE belongs to one kind.
        set_kind(state, victims, GuestKind.DRIVER, owner, np.take(KIND_OF_CLASS, cls))
        got = np.bincount(owner, minlength=n)
    vms["guest_swapped_count"] += evicted
    vms["guest_evictions"] += evicted
    rate = vms["balloon_rate"]
    # The driver adapts once a poll, a second (ESX): a tick of several seconds halves or
    # doubles it as often. Adapted per tick, 5 s ticks halved it a fifth as fast as 1 s
    # ticks while the guest had to page: the campaign's balloon level paged 40 % more.
    factor = 2.0 ** min(state.tick_s / BALLOON_POLL_S, 1000.0)  # finite for any tick
    vms["balloon_rate"] = np.where(evicted > 0, rate / factor,
                                   np.where(got > 0, rate * factor, rate))
    return got


def deflate(state: State, rng: np.random.Generator, want: I64) -> I64:
    victims = pick_many(state, rng, want, _BALLOONED)
    n = len(state.vms)
    if victims.size == 0:
        return np.zeros(n, np.int64)
    vm = vm_of_sorted(state.vms, victims)  # victims ascend
    state.pages.location[victims] = Loc.UNTOUCHED
    count_moves(state, vm, np.full(victims.size, Loc.BALLOONED), Loc.UNTOUCHED)
    set_kind(state, victims, GuestKind.FREE, vm)
    return np.bincount(vm, minlength=n)


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
    vms["balloon_rate"] = np.clip(vms["balloon_rate"], *rate_bounds(state, policy))
    step = np.maximum((vms["balloon_rate"] * state.tick_s).astype(np.int64), 1)
    grow = np.where(target > current, np.minimum(target - current, step), 0)
    # Deflation runs at four times the inflation rate: giving memory back is cheap.
    shrink = np.where(target < current, np.minimum(current - target, 4 * step), 0)
    moved = np.zeros(len(vms), np.int64)
    host = np.maximum(vms["host"], 0)
    if grow.any():
        # Frames each host needs back to climb from soft to high (its touches waiting for
        # a frame will take theirs first); a balloon the operator set is not the policy's.
        hosts = state.hosts
        climb = thresholds(world)[:, 0] + policy.hysteresis
        need = (climb * hosts.n_frames - hosts.free_count
                + np.bincount(host, weights=waiting_pages(world), minlength=len(hosts)))
        moved += inflate(state, rng, grow, (need, vms["balloon_forced"] < 0))
    if shrink.any():
        moved -= deflate(state, rng, shrink)
    state.reclaim.hosts["balloon_tick"][:] = np.bincount(host, weights=moved,
                                                         minlength=len(state.hosts))
    vms["balloon_rate"] = np.clip(vms["balloon_rate"], *rate_bounds(state, policy))
