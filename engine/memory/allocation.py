"""Allocation targets: shares, min, max and the idle memory tax (ESX sections 5-6).

Memory is revoked first from the VM with the lowest adjusted shares-per-page ratio
    rho = S / (P * (f + k * (1 - f))),   k = 1 / (1 - tau),
where P is the VM's allocation, f its estimated active fraction and tau the host's idle
tax rate. Revoking from the lowest rho until the host fits equalises rho among the VMs
that lose memory, so the targets are P_i = clip(S_i / (rho* c_i), min_i, max_i) with
c_i = f_i + k (1 - f_i), for the one rho* per host at which they add up to what the host
can give: its memory less the high free-memory threshold and VMs' overhead, plus what
page sharing saves. rho* is found by bisection on all hosts at once. Targets are
recomputed every `balance_period` and right after anything that changes them.
"""

from __future__ import annotations

import numpy as np

from engine.memory.overhead import per_host
from engine.memory.states import high_threshold
from engine.state import Loc
from engine.world import World

_ITERATIONS = 64


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
    vms, hosts = state.vms, state.hosts
    running = vms["host"] >= 0
    host = np.maximum(vms["host"], 0)
    tau = np.minimum(state.reclaim.hosts["idle_tax"], 0.99)
    k = 1.0 / (1.0 - tau[host])
    f = np.clip(vms["active_estimate"], 0.0, 1.0)
    cost = f + k * (1.0 - f)  # pages of an idle VM cost k times an active one's
    shares = np.maximum(vms["shares"].astype(np.float64), 1e-9)
    lo = np.minimum(vms["min_pages"], vms["max_pages"]).astype(np.float64)
    hi = vms["max_pages"].astype(np.float64)
    avail = available_pages(world)

    # Only running VMs count; their columns are taken once, and each step reuses buffers
    # (np.minimum of np.maximum is np.clip, without its dispatch: the same values).
    on = np.flatnonzero(running)
    host_on, shares_on, cost_on = host[on], shares[on], cost[on]
    lo_on, hi_on = lo[on], hi[on]
    alloc = np.empty(on.size)
    n_hosts = len(hosts)

    def total(rho: np.ndarray) -> np.ndarray:
        np.multiply(np.take(rho, host_on), cost_on, out=alloc)
        np.divide(shares_on, alloc, out=alloc)
        np.maximum(alloc, lo_on, out=alloc)
        np.minimum(alloc, hi_on, out=alloc)
        return np.bincount(host_on, weights=alloc, minlength=n_hosts)

    # Bisection on log(rho): a larger rho gives every VM less.
    log_lo = np.full(n_hosts, -60.0)
    log_hi = np.full(n_hosts, 60.0)
    for _ in range(_ITERATIONS):
        mid = (log_lo + log_hi) / 2
        too_much = total(np.exp(mid)) > avail
        log_lo = np.where(too_much, mid, log_lo)
        log_hi = np.where(too_much, log_hi, mid)
    rho = np.exp(log_hi)
    targets = np.clip(shares / (rho[host] * cost), lo, hi)
    return np.where(running, np.floor(targets), 0).astype(np.int64)


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
