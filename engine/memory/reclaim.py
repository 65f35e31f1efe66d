"""Reclamation policy: from targets and the host's memory state to balloon and swap goals.

A VM above its target has `over` pages to give back. The balloon is sized so the guest
sees its target as its memory (configured - target, at most `balloon_max`): a VM
ballooned to X then behaves like one configured with X. In the high state balloons only
shrink; in the soft state they grow to that size, and the swap daemon takes what the
balloon cannot: VMs without a driver, or whose balloon is at its maximum. In the hard
and low states the swap daemon forces the rest beyond what the balloon can inflate this
tick, and in the low state VMs above target are blocked until they are back at it.
"""

from __future__ import annotations

import numpy as np

from engine.memory.states import HARD, HIGH, LOW, update_host_states
from engine.state import Loc
from engine.world import World


def run_reclaim_policy(world: World) -> None:
    update_host_states(world)
    state = world.state
    vms = state.vms
    policy = world.spec.policy.memory
    running = vms["host"] >= 0
    mem_state = state.reclaim.hosts["mem_state"][np.maximum(vms["host"], 0)]
    resident = vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED]
    over = np.where(running, np.maximum(resident - vms["target_pages"], 0), 0)
    ballooned = vms["loc_count"][:, Loc.BALLOONED]
    cap = (policy.balloon_max * vms["n_pages"]).astype(np.int64)
    driver = vms["balloon_driver"]

    reclaiming = mem_state > HIGH
    size = np.clip(vms["n_pages"] - vms["target_pages"], 0, cap)
    vms["balloon_target"] = np.where(reclaiming & driver, size, np.minimum(ballooned, size))
    balloon_room = np.where(driver, np.maximum(cap - ballooned, 0), 0)
    # What the balloon cannot take (no driver, or at its cap) is for the swap daemon.
    cannot = np.maximum(over - balloon_room, 0)
    step = (vms["balloon_rate"] * state.tick_s).astype(np.int64)
    forced = np.maximum(over - np.where(driver, np.minimum(step, balloon_room), 0), 0)
    goal = np.where(mem_state >= HARD, forced, cannot)
    vms["swap_goal"] = np.where(reclaiming, goal, 0)
    vms["blocked"] = running & (mem_state == LOW) & (over > 0)
