"""Active-memory estimates by statistical sampling (ESX section 5.3).

Each period (`sample_period` of VM time) the hypervisor invalidates n = 100 random pages
of every VM and counts how many the guest touches before the period ends: f = t / n.
Three averages are kept: a slow EWMA, a fast EWMA, and the fast one updated with the
partial count of the current period; the estimate is their maximum, so it rises within a
period or two of a working-set increase and decays slowly after a decrease. The true
active fraction (distinct pages touched in the period / configured pages) is kept beside
it, for reports, not for the allocation policy. No pass over all pages clears anything:
the touch codes are per period (memory/recency.py).
"""

from __future__ import annotations

import numpy as np

from engine import kernels
from engine.memory import recency, sample_loop
from engine.state import SAMPLE_PAGES
from engine.world import World


def _new_samples(world: World) -> None:
    vms = world.state.vms
    rng = world.streams["sampling"]
    draws = rng.random((len(vms), SAMPLE_PAGES))
    vms["sample"] = vms["page_offset"][:, None] + (draws * vms["n_pages"][:, None]).astype(
        np.int64)


def run_sampling(world: World) -> None:
    state = world.state
    vms = state.vms
    n = recency.period_ticks(world.spec.policy.memory.sample_period, state.tick_s)
    policy = world.spec.policy.memory
    period = recency.period_of(state.tick, n)
    if state.tick == 0:
        _new_samples(world)
        state.pages.touched[:] = 0
        recency.set_period(state, 1)
        return
    # Stale touch codes are reset a slice a tick (memory/recency.py).
    sweep = n * recency.SWEEP_PERIODS
    recency.sweep_slice(state, (state.tick - 1) % sweep, sweep)
    if len(vms) == 0:
        return
    if kernels.compiled():  # the samples' marks read in one loop (sample_loop.py)
        hits = sample_loop.count_touched(vms["sample"], state.pages.touched, state.touch_code)
    else:
        hits = np.count_nonzero(recency.touched_now(state, vms["sample"]), axis=1)
    touched = hits / SAMPLE_PAGES
    slow, fast = vms["active_slow"], vms["active_fast"]
    if state.tick % n == 0:
        vms["active_slow"] = slow + policy.ewma_slow * (touched - slow)
        vms["active_fast"] = fast + policy.ewma_fast * (touched - fast)
        vms["active_estimate"] = np.maximum(vms["active_slow"], vms["active_fast"])
        counts = recency.count_per_vm(state, period)
        vms["active_true"] = counts / np.maximum(vms["n_pages"], 1)
        recency.set_period(state, period + 1)
        _new_samples(world)
        return
    # Within a period, a rise shows before the period ends: the fast average as it would
    # be with the partial count.
    current = fast + policy.ewma_fast * (touched - fast)
    vms["active_estimate"] = np.maximum.reduce([vms["active_slow"], fast, current])
