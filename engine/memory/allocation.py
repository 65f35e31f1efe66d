"""Allocation targets: shares, min, max and the idle memory tax (ESX sections 5-6).

Memory is revoked first from the VM with the lowest adjusted shares-per-page ratio
    rho = S / (P * (f + k * (1 - f))),   k = 1 / (1 - tau),
where P is the VM's allocation, f its estimated active fraction and tau the host's idle
tax rate. Revoking from the lowest rho until the host fits equalises rho among the VMs
that lose memory, so the targets are P_i = clip(S_i / (rho* c_i), min_i, max_i) with
c_i = f_i + k (1 - f_i), for the one rho* per host at which they add up to what the host
can give: its memory less the high free-memory threshold and VMs' overhead, plus what
page sharing saves. rho* is solved exactly on all hosts at once (fill_level). Targets are
recomputed every `balance_period` and right after anything that changes them.
"""

from __future__ import annotations

import numpy as np

from engine.memory.overhead import per_host
from engine.memory.states import high_threshold
from engine.state import F64, I64, Loc
from engine.world import World


def available_pages(world: World) -> np.ndarray:
    state = world.state
    hosts, vms = state.hosts, state.vms
    running = vms["host"] >= 0
    host = np.maximum(vms["host"], 0)
    # Overhead (backed or still to be) is not the VMs' to use, nor what a migration
    # reserved for a VM on its way in.
    overhead = per_host(state, wanted=True)
    shared = vms["loc_count"][:, Loc.SHARED]
    saved = (np.bincount(host[running], weights=shared[running], minlength=len(hosts))
             - state.sharing.hosts["shared_frames"])
    usable = hosts.n_frames * (1.0 - high_threshold(world)) - overhead + saved
    return np.asarray(np.maximum(usable, 0.0), np.float64)


def compute_targets(world: World) -> np.ndarray:
    state = world.state
    vms = state.vms
    on = np.flatnonzero(vms["host"] >= 0)  # only running VMs hold a target
    host = vms["host"][on]
    tau = np.minimum(state.reclaim.hosts["idle_tax"], 0.99)
    k = 1.0 / (1.0 - tau[host])
    f = np.clip(vms["active_estimate"][on], 0.0, 1.0)
    cost = f + k * (1.0 - f)  # pages of an idle VM cost k times an active one's
    shares = np.maximum(vms["shares"][on].astype(np.float64), 1e-9)
    lo = np.minimum(vms["min_pages"][on], vms["max_pages"][on]).astype(np.float64)
    hi = vms["max_pages"][on].astype(np.float64)
    per_x = shares / cost  # a VM's pages per unit of 1/rho, before clipping
    x = fill_level(host, per_x, lo, hi, available_pages(world))
    targets = np.zeros(len(vms), np.int64)
    targets[on] = np.floor(np.minimum(np.maximum(per_x * x[host], lo), hi))
    return targets


def fill_level(host: I64, per_x: F64, lo: F64, hi: F64, avail: F64) -> F64:
    """Per host, the largest x = 1/rho* at which its VMs' clip(per_x * x, lo, hi) add up to
    no more than avail: inf where every VM's hi fits, 0 where even the lo's do not.

    The sum is piecewise linear in x, bending where a VM leaves its lo (x = lo / per_x)
    and reaches its hi (x = hi / per_x). Those bends, sorted within each host, give the
    sum at each bend by running sums of what each bend changes (the pages held at lo or
    hi, and the slope); x* lies on the segment before the first bend past avail. There
    the VMs held at a bound and the rising ones are counted again, VM by VM, so x* does
    not depend on how the sort ordered equal bends, and one division gives it exactly.
    """
    m, n_hosts = host.size, avail.size
    x = np.full(n_hosts, np.inf)
    if m == 0:
        return x
    leave_lo, reach_hi = lo / per_x, hi / per_x
    bend_x = np.concatenate([leave_lo, reach_hi])
    bend_host = np.concatenate([host, host])
    # Sorted by host, then x: the bends in x's order, then a stable sort of that by host,
    # as small integers (numpy sorts those stably by radix, in one pass: two comparison
    # argsorts of 200,000 keys took 14 ms a tick on the 100,000-VM world).
    by_x = np.argsort(bend_x)
    host_type = np.uint16 if n_hosts <= 1 << 16 else np.int64
    order = by_x[np.argsort(bend_host[by_x].astype(host_type), kind="stable")]
    b_host = bend_host[order]
    # At its lo bend a VM stops adding lo and starts adding per_x * x; at its hi bend it
    # stops adding per_x * x and adds hi from then on.
    held = np.concatenate([-lo, hi]).astype(np.int64)[order]
    slope = np.concatenate([per_x, -per_x])[order]
    starts = np.flatnonzero(np.r_[True, b_host[1:] != b_host[:-1]])
    lengths = np.diff(np.r_[starts, 2 * m])
    # Before each bend: pages held at a bound and the slope (exclusive running sums,
    # started anew at each host).
    held_before = np.cumsum(held) - held
    held_before -= np.repeat(held_before[starts], lengths)
    held_before += np.bincount(host, weights=lo, minlength=n_hosts).astype(np.int64)[b_host]
    slope_before = np.cumsum(slope) - slope
    slope_before -= np.repeat(slope_before[starts], lengths)
    b_x = bend_x[order]
    past = np.flatnonzero(held_before + slope_before * b_x > avail[b_host])
    if past.size == 0:
        return x
    first = past[np.r_[True, b_host[past[1:]] != b_host[past[:-1]]]]
    end = np.full(n_hosts, np.inf)  # where the segment of x* ends, per host
    end[b_host[first]] = b_x[first]
    at = end[host]
    rising = (leave_lo < at) & (reach_hi >= at)
    held_vm = np.where(leave_lo >= at, lo, np.where(reach_hi < at, hi, 0.0))
    held_h = np.bincount(host, weights=held_vm, minlength=n_hosts)
    slope_h = np.bincount(host, weights=np.where(rising, per_x, 0.0), minlength=n_hosts)
    h = b_host[first]
    # A host past avail already at x = 0 (its lo's alone) has no rising VM there: x* = 0.
    x[h] = np.maximum(np.where(slope_h[h] > 0, avail[h] - held_h[h], 0.0)
                      / np.where(slope_h[h] > 0, slope_h[h], 1.0), 0.0)
    return x


def rho(world: World) -> np.ndarray:
    """Each VM's adjusted shares-per-page ratio at its current allocation (for views)."""
    state = world.state
    vms = state.vms
    host = np.maximum(vms["host"], 0)
    tau = np.minimum(state.reclaim.hosts["idle_tax"], 0.99)[host]
    f = np.clip(vms["active_estimate"], 0.0, 1.0)
    pages = np.maximum(vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED], 1)
    return np.asarray(vms["shares"] / (pages * (f + (1 - f) / (1 - tau))), np.float64)


def run_allocation(world: World) -> None:
    state = world.state
    reclaim = state.reclaim
    period = max(1, round(world.spec.policy.memory.balance_period / state.tick_s))
    due = state.tick >= int(reclaim.hosts["next_balance_tick"].min())
    if not (due or reclaim.realloc):
        return
    state.vms["target_pages"] = compute_targets(world)
    reclaim.hosts["next_balance_tick"][:] = state.tick + period
    reclaim.realloc = False
