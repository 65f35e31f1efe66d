"""The sharing phase: each host's scanner, by its mode (off, ESX or KSM).

Pages that become shared here are counted per host as shared by the background scan
(`scan_shared`), apart from those the swap daemon shares before swapping them
(`swap_shared`, memory/swap.py).
"""

from __future__ import annotations

import numpy as np

from engine.memory.ksm import run_ksm
from engine.memory.sharing import start_esx
from engine.state import I64, Loc, State
from engine.world import World


def shared_pages_per_host(state: State) -> I64:
    """Guest pages mapped to shared frames, per host."""
    vms = state.vms
    running = vms["host"] >= 0
    return np.bincount(vms["host"][running], weights=vms["loc_count"][running, Loc.SHARED],
                       minlength=len(state.hosts)).astype(np.int64)


def run_sharing(world: World) -> None:
    counters = world.state.sharing.hosts
    counters["hashed_tick"][:] = 0
    counters["compares_tick"][:] = 0
    before = shared_pages_per_host(world.state)
    # ESX's hosts and KSM's are apart: ESX's scan decides on the helper thread while KSM's
    # pass runs, and its decisions are made in the world before KSM's own (the order
    # the two scans had one after the other; memory/sharing.py start_esx).
    finish_esx = start_esx(world)
    try:
        run_ksm(world, before_writes=finish_esx)
    finally:
        finish_esx()
    counters["scan_shared_tick"] = np.maximum(shared_pages_per_host(world.state) - before, 0)
    counters["scan_shared"] += counters["scan_shared_tick"]
    counters["hashed"] += counters["hashed_tick"]
    counters["compares"] += counters["compares_tick"]
