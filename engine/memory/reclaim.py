"""Reclamation policy: from targets and the host's memory state to balloon and swap goals.

A VM above its target has `over` pages to give back. The balloon is sized so the guest
sees its target as its memory (configured - target, at most `balloon_max`): a VM
ballooned to X then behaves like one configured with X. In the high state balloons only
shrink; in the soft state they grow to that size, and the swap daemon takes what the
balloon cannot: VMs without a driver, or whose balloon is at its maximum. In the hard
and low states the swap daemon forces the rest beyond what the balloon can inflate by its
next poll (a second: the host needs the memory now, whatever the tick's length), and in
the low state VMs above target are blocked until they are back at it.

The goals follow the state free memory is in after this tick's touches (memory/states.py
pressure_states) and make room for the touches still waiting for a frame; the host's
state then settles at the end of the tick (settle_states), and blocking goes by that
state: judged between the touches and the reclamation, a longer tick would block VMs
longer than any moment of the tick warrants.
"""

from __future__ import annotations

import numpy as np

from engine.memory.counts import waiting_pages
from engine.memory.states import HARD, HIGH, LOW, balloon_size, pressure_states, settle_host_states
from engine.state import BALLOON_POLL_S, I64, Bool, Loc, VMs
from engine.world import World


def _over(vms: VMs, running: Bool) -> I64:
    """Pages each running VM holds above its target."""
    resident = vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED]
    return np.where(running, np.maximum(resident - vms["target_pages"], 0), 0)


def run_reclaim_policy(world: World) -> None:
    state = world.state
    vms = state.vms
    policy = world.spec.policy.memory
    running = vms["host"] >= 0
    # Touches waiting for frames (workloads/phase.py serve_waiting) will be resident once
    # served: reclamation makes room for them too.
    waiting = np.where(running, waiting_pages(world), 0)
    world.reclaim_states = pressure_states(world, waiting)
    mem_state = world.reclaim_states[np.maximum(vms["host"], 0)]
    over = _over(vms, running) + waiting
    ballooned = vms["loc_count"][:, Loc.BALLOONED]
    cap = (policy.balloon_max * vms["n_pages"]).astype(np.int64)
    driver = vms["balloon_driver"]

    reclaiming = mem_state > HIGH
    size = balloon_size(vms, policy.balloon_max)
    vms["balloon_target"] = np.where(reclaiming & driver, size, np.minimum(ballooned, size))
    balloon_room = np.where(driver, np.maximum(cap - ballooned, 0), 0)
    # What the balloon cannot take (no driver, or at its cap) is for the swap daemon.
    cannot = np.maximum(over - balloon_room, 0)
    # The balloon's next poll, not the whole tick: counting on five seconds of balloon, a
    # 5 s tick of the flash crowd swapped nothing while its host ran out of memory, then
    # fell to low and blocked every VM on it for a tick (never at 1 s ticks).
    step = (vms["balloon_rate"] * min(state.tick_s, BALLOON_POLL_S)).astype(np.int64)
    forced = np.maximum(over - np.where(driver, np.minimum(step, balloon_room), 0), 0)
    goal = np.where(mem_state >= HARD, forced, cannot)
    vms["swap_goal"] = np.where(reclaiming, goal, 0)


def settle_states(world: World) -> None:
    """After balloons and swap: each host's state at the end of the tick, and the VMs it
    blocks in the low state, those still above their target (until they are back at it)."""
    state = world.state
    settle_host_states(world, world.reclaim_states)
    world.reclaim_states = None
    vms = state.vms
    running = vms["host"] >= 0
    mem_state = state.reclaim.hosts["mem_state"][np.maximum(vms["host"], 0)]
    vms["blocked"] = running & (mem_state == LOW) & (_over(vms, running) > 0)
