"""The sharing phase: each host's scanner, by its mode (off, ESX or KSM)."""

from __future__ import annotations

from engine.memory.ksm import run_ksm
from engine.memory.sharing import run_esx
from engine.world import World


def run_sharing(world: World) -> None:
    counters = world.state.sharing.hosts
    counters["hashed_tick"][:] = 0
    counters["compares_tick"][:] = 0
    run_esx(world)
    run_ksm(world)
    counters["hashed"] += counters["hashed_tick"]
    counters["compares"] += counters["compares_tick"]
