"""Free-memory states of a host (ESX section 6.3): high, soft, hard, low.

A host drops to a lower state when free memory falls below that state's threshold (soft
4 %, hard 2 %, low 1 % of memory by default) and climbs back only after free memory
exceeds the threshold by `hysteresis` (so soft -> high needs 6 %). The state picks the
reclamation: high, none beyond sharing; soft, balloon (swap only where the balloon
cannot); hard, swap; low, swap and block VMs above their target. State changes are events.

A tick judges free memory twice: after its touches, for what reclamation does this tick
(a host can cross a threshold and climb back within one tick: both are events), and at
the end, after balloons and swap, for the state the host is in from then on.

The vSphere 6 variant derives the thresholds from minFree, a sliding scale of host memory
(6 % of the first 4 GB, 4 % of the next 8, 2 % of the next 16, 1 % of the rest): high
400 %, clear 100 %, soft 64 %, hard 32 %, low 16 % of minFree. "clear" (large pages break,
sharing steps up) is reported as high.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.state import F64, I64
from engine.state_tables import MEM_STATE_NAMES
from engine.world import World

HIGH, SOFT, HARD, LOW = range(4)
STATE_NAMES = MEM_STATE_NAMES
GIB = 1024**3


def min_free_bytes(memory_bytes: float) -> float:
    """vSphere 6 minFree: 6 % of the first 4 GB, 4 % of the next 8, 2 % of the next 16,
    1 % of the rest."""
    total, left = 0.0, float(memory_bytes)
    for size, share in ((4 * GIB, 0.06), (8 * GIB, 0.04), (16 * GIB, 0.02), (np.inf, 0.01)):
        part = min(left, size)
        total += part * share
        left -= part
        if left <= 0:
            break
    return total


def thresholds(world: World) -> npt.NDArray[np.float64]:
    """(n_hosts, 3) free fractions below which a host enters soft, hard and low."""
    hosts = world.state.hosts
    if world.spec.policy.memory.states == "vsphere6":
        memory = hosts.n_frames * world.state.page_size
        min_free = np.array([min_free_bytes(m) for m in memory]) / np.maximum(memory, 1)
        return np.stack([0.64 * min_free, 0.32 * min_free, 0.16 * min_free], axis=1)
    _, soft, hard, low = world.state.reclaim.thresholds
    return np.tile([soft, hard, low], (len(hosts), 1))


def high_threshold(world: World) -> npt.NDArray[np.float64]:
    hosts = world.state.hosts
    if world.spec.policy.memory.states == "vsphere6":
        memory = hosts.n_frames * world.state.page_size
        return 4.0 * np.array([min_free_bytes(m) for m in memory]) / np.maximum(memory, 1)
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


def pressure_states(world: World) -> I64:
    """The state each host reclaims in this tick: the state it ends the last tick in, or
    deeper where this tick's touches have taken free memory under a threshold (or higher
    where free memory climbed past one). Its changes are events (the host did cross)."""
    current = world.state.reclaim.hosts["mem_state"]
    free = free_fraction(world)
    below = thresholds(world)  # soft, hard, low entry thresholds
    # The deepest state whose entry threshold free memory is under.
    entered = (free[:, None] < below).sum(axis=1)
    pressure = _climbed(world, np.maximum(current, entered), free, below, entered)
    _changed(world, current, pressure, free)
    return pressure


def _changed(world: World, old: I64, new: I64, free: F64) -> None:
    hosts = world.state.hosts
    changed = np.flatnonzero(new != old)
    if changed.size:
        world.state.reclaim.realloc = True  # free memory crossed a threshold
    for h in changed.tolist():
        world.emit("host_state", f"{hosts.ids[h]} memory state {STATE_NAMES[old[h]]} -> "
                   f"{STATE_NAMES[new[h]]} ({free[h]:.1%} free)", host=hosts.ids[h])


def settle_host_states(world: World, pressure: I64) -> None:
    """Each host's state at the end of the tick's reclamation: the state it reclaimed in,
    climbing back (with hysteresis) where balloons and the swap daemon have given free
    memory back since. A tick's touches all come before its reclamation, so free memory
    in between is lower than at any moment of a tick in which both run side by side,
    and the longer the tick, the lower; the host's state from here on (blocking, reports,
    the next tick) goes by free memory at the end of the tick, which does not."""
    free = free_fraction(world)
    below = thresholds(world)
    entered = (free[:, None] < below).sum(axis=1)
    settled = _climbed(world, pressure.copy(), free, below, entered)
    _changed(world, pressure, settled, free)
    world.state.reclaim.hosts["mem_state"][:] = settled


def update_host_states(world: World) -> None:
    """The host states from free memory now, in one step (what a tick does when nothing
    reclaims between its touches and its end)."""
    settle_host_states(world, pressure_states(world))
