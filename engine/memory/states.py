"""Free-memory states of a host (ESX section 6.3): high, soft, hard, low.

A host drops to a lower state when free memory falls below that state's threshold (soft
4 %, hard 2 %, low 1 % of memory by default) and climbs back only after free memory
exceeds the threshold by `hysteresis` (so soft -> high needs 6 %). The state picks the
reclamation: high, none beyond sharing; soft, balloon (swap only where the balloon
cannot); hard, swap; low, swap and block VMs above their target. State changes are events.

A tick judges free memory twice: after its touches, for how hard reclamation works this
tick (pressure_states), and at its end, after balloons and swap, for the host's state
(settle_host_states). A tick's touches all come before its reclamation, but in a host the
balloons inflate beside the guests from the moment free memory falls under soft: the
pressure is judged on the lowest free memory of the tick with them doing so, not on the
dip after the touches, which deepens with the tick's length.

The vSphere 6 variant derives the thresholds from minFree, a sliding scale of host memory
(6 % of the first 4 GB, 4 % of the next 8, 2 % of the next 16, 1 % of the rest): high
400 %, clear 100 %, soft 64 %, hard 32 %, low 16 % of minFree. "clear" (large pages break,
sharing steps up) is reported as high.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.memory.balloon_polls import rate_bounds, schedule
from engine.state import BALLOON_POLL_S, F64, I64, GuestKind, Loc, VMs
from engine.state_tables import MEM_STATE_NAMES
from engine.world import World

HIGH, SOFT, HARD, LOW = range(4)
STATE_NAMES = MEM_STATE_NAMES
GIB = 1024**3


_MIN_FREE_BANDS = ((4 * GIB, 0.06), (8 * GIB, 0.04), (16 * GIB, 0.02), (np.inf, 0.01))


def min_free_bytes(memory_bytes: npt.ArrayLike) -> F64:
    """vSphere 6 minFree: 6 % of the first 4 GB, 4 % of the next 8, 2 % of the next 16,
    1 % of the rest (of one host's memory, or of each of an array's, all at once)."""
    left = np.asarray(memory_bytes, np.float64)
    total = np.zeros_like(left)
    for size, share in _MIN_FREE_BANDS:
        part = np.minimum(left, size)
        total += part * share
        left = left - part
    return total


def thresholds(world: World) -> npt.NDArray[np.float64]:
    """(n_hosts, 3) free fractions below which a host enters soft, hard and low."""
    hosts = world.state.hosts
    if world.spec.policy.memory.states == "vsphere6":
        memory = hosts.n_frames * world.state.page_size
        min_free = min_free_bytes(memory) / np.maximum(memory, 1)
        return np.stack([0.64 * min_free, 0.32 * min_free, 0.16 * min_free], axis=1)
    _, soft, hard, low = world.state.reclaim.thresholds
    return np.tile([soft, hard, low], (len(hosts), 1))


def high_threshold(world: World) -> npt.NDArray[np.float64]:
    hosts = world.state.hosts
    if world.spec.policy.memory.states == "vsphere6":
        memory = hosts.n_frames * world.state.page_size
        return np.asarray(4.0 * min_free_bytes(memory) / np.maximum(memory, 1), np.float64)
    return np.full(len(hosts), world.state.reclaim.thresholds[0])


def free_fraction(world: World) -> npt.NDArray[np.float64]:
    hosts = world.state.hosts
    return np.asarray(hosts.free_count / np.maximum(hosts.n_frames, 1), np.float64)


def _climbed(world: World, new: I64, free: F64, below: F64, entered: I64) -> I64:
    """`new` raised state by state where free memory is above the state's own entry
    threshold plus hysteresis."""
    gap = world.spec.policy.memory.hysteresis
    rows = np.arange(new.size)
    for _ in range(3):
        exit_at = below[rows, np.maximum(new - 1, 0)] + gap
        rising = (new > HIGH) & (entered < new) & (free >= exit_at)
        if not rising.any():
            break
        new[rising] -= 1
    return new


def _frames_back(vms: VMs, pages: F64) -> F64:
    """The frames each VM's balloon frees by taking `pages` more: the guest gives its free
    pages first, at random, and of those only the ones it used before hold a frame (a
    never-touched page is a free one); then cached and process pages, which do."""
    free = vms["kind_count"][:, GuestKind.FREE].astype(np.float64)
    used = np.maximum(free - vms["loc_count"][:, Loc.UNTOUCHED], 0.0)
    of_free = np.minimum(pages, free)
    frames: F64 = of_free * used / np.maximum(free, 1.0) + (pages - of_free)
    return frames


def _stepped(world: World, current: I64, free: F64 | None = None,
             below: F64 | None = None) -> I64:
    """From `current`, the state free memory (a fraction: now, or `free`) puts each host
    in: down to the deepest state whose entry threshold it is under, or up past thresholds
    it clears by the hysteresis. `below`: thresholds(world), if at hand."""
    free = free_fraction(world) if free is None else free
    below = thresholds(world) if below is None else below  # soft, hard, low entry
    entered = (free[:, None] < below).sum(axis=1)
    return _climbed(world, np.maximum(current, entered), free, below, entered)


def pressure_states(world: World, waiting: I64) -> I64:
    """The state each host reclaims in this tick (from the state the host is in): the one
    free memory is in at its lowest in the tick, had the balloons inflated beside the
    touches from the moment it fell under soft (lowest_free). `waiting`: per VM, the
    pages its touches still wait for a frame for (0 for VMs not running)."""
    current = world.state.reclaim.hosts["mem_state"]
    before = world.free_before_touches
    world.free_before_touches = None
    hosts, vms = world.state.hosts, world.state.vms
    below = thresholds(world)
    soft = below[:, 0] * hosts.n_frames
    # Under soft at some moment of the tick: soft at least, however far the balloons
    # brought it back. Where none is, its lowest is now (the touches only take frames).
    fell = hosts.free_count < soft
    if before is None or not fell.any():  # (before: None where no workload ran)
        return _stepped(world, current, below=below)
    started = np.where(fell, np.maximum(current, SOFT), current)
    short = np.bincount(np.maximum(vms["host"], 0), weights=waiting,
                        minlength=len(hosts)).astype(np.float64)
    lowest = lowest_free(world, before, current, short, soft)
    return _stepped(world, started, lowest / np.maximum(hosts.n_frames, 1), below)


def balloon_size(vms: VMs, balloon_max: float) -> I64:
    """The balloon that makes each guest see its target as its memory (at most
    `balloon_max` of it)."""
    cap = (balloon_max * vms["n_pages"]).astype(np.int64)
    size: I64 = np.clip(vms["n_pages"] - vms["target_pages"], 0, cap)
    return size


def lowest_free(world: World, before: I64, current: I64, short: F64, soft: F64) -> F64:
    """Each host's lowest free frames in this tick with its balloons inflating beside the
    touches, from its free frames `before` the touches, the state `current` it was in and
    the frames its touches are `short` of (still waiting for one), and its `soft`
    threshold in frames; never below 0.

    The touches take frames at a steady rate over the tick: free memory falls from
    `before` to what they left less what they lack. Balloons inflate from the moment it is
    under soft (at once in a host in soft or deeper already) until each holds what its
    VM's target leaves it, poll by poll to the end of the tick, each driver's rate
    doubling after a poll its guest gave from free and cached pages and halving after one
    that made it page (balloon_polls.py schedule). Counted to the first poll only, a 5 s
    tick of Fig. 7's cache fill judged the host hard and forced 50 MB of the idle VM out
    to swap, which five 1 s ticks never do. Within a poll both go at steady rates, so free
    memory is lowest where the balloons start or at the end of a poll."""
    state = world.state
    hosts, vms = state.hosts, state.vms
    tick_s = state.tick_s
    after = hosts.free_count - short
    before = np.maximum(before, after)
    took_per_s = (before - after) / tick_s  # frames a second the touches took
    start_s = np.where((current > HIGH) | (before <= soft), 0.0,
                       np.clip((before - soft) / np.maximum(took_per_s, 1e-12), 0.0, tick_s))
    at_start = np.where(start_s > 0, soft, before)
    host = np.maximum(vms["host"], 0)
    balloon_max = world.spec.policy.memory.balloon_max
    size = np.where(vms["balloon_forced"] >= 0,  # the operator's size, else the policy's
                    np.minimum(vms["balloon_forced"], balloon_max * vms["n_pages"]),
                    balloon_size(vms, balloon_max))
    want = np.where((vms["host"] >= 0) & vms["balloon_driver"],
                    np.maximum(size - vms["loc_count"][:, Loc.BALLOONED], 0), 0)
    kinds = vms["kind_count"]
    takes = schedule(vms["balloon_rate"], want,
                     kinds[:, GuestKind.FREE] + kinds[:, GuestKind.CACHE],
                     vms["n_pages"] - vms["loc_count"][:, Loc.BALLOONED], tick_s - start_s[host],
                     rate_bounds(state, world.spec.policy.memory))
    # Within a poll the balloons and the touches both go at steady rates: free memory is
    # lowest where the balloons start or at the end of a poll.
    lowest_seen = at_start.astype(np.float64)
    inflated = np.zeros(len(vms))
    last = takes.shape[0] - 1
    for k in range(last + 1):
        inflated += takes[k]
        back = np.bincount(host, _frames_back(vms, inflated), minlength=len(hosts))
        if k == last:  # the tick's end: exactly what the touches left
            at_end = after + back
        else:
            end_s = start_s + np.minimum((k + 1) * BALLOON_POLL_S, tick_s - start_s)
            at_end = at_start - took_per_s * (end_s - start_s) + back
        lowest_seen = np.minimum(lowest_seen, at_end)
    lowest: F64 = np.maximum(np.where(after >= soft, after, lowest_seen), 0.0)
    return lowest


def settle_host_states(world: World, pressure: I64 | None = None) -> None:
    """Each host's state at the end of the tick, after balloons and swap.

    A tick's touches all come before its reclamation, so free memory in between (what
    `pressure` was judged on) is lower than at any moment of a tick in which the two run
    side by side, as in a host whose swap daemon runs beside its guests; the longer the
    tick, the lower. Falling under soft there is real: reclamation starts at that
    moment, and the host is in soft from then. Deeper states need free memory still
    under their threshold at the end of the tick, after that reclamation has run, as it
    would be between ticks; so blocking (low) does not depend on the tick's length.
    Climbing back goes by free memory at the end, with the hysteresis.
    """
    hosts = world.state.hosts
    current = world.state.reclaim.hosts["mem_state"]
    started = current if pressure is None else np.maximum(current, np.minimum(pressure, SOFT))
    settled = _stepped(world, started.copy())
    free = free_fraction(world)
    for old, new in ((current, started), (started, settled)):
        changed = np.flatnonzero(new != old)
        if changed.size:
            world.state.reclaim.realloc = True  # free memory crossed a threshold
        for h in changed.tolist():
            world.emit("host_state", f"{hosts.ids[h]} memory state {STATE_NAMES[old[h]]} -> "
                       f"{STATE_NAMES[new[h]]} ({free[h]:.1%} free)", host=hosts.ids[h])
    current[:] = settled


def update_host_states(world: World) -> None:
    """The host states from free memory now (what the end of a tick does)."""
    settle_host_states(world)
