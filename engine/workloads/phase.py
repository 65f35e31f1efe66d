"""The workload phase: every running VM touches its pages for one tick."""

from __future__ import annotations

import numpy as np

from engine.memory.content import unique_content
from engine.memory.touch import apply_touches
from engine.workloads.synthetic import generate
from engine.world import World


def run_workloads(world: World) -> None:
    state = world.state
    vms = state.vms
    host = vms["host"]
    active = (host >= 0) & state.hosts.up[np.maximum(host, 0)]
    touches = generate(state, world.streams["workload"], active)
    content = unique_content(state, touches.write_pages.size)
    content[touches.write_zero] = 0
    result = apply_touches(state, touches.read_pages, touches.write_pages, content,
                           touches.reads_per_vm, touches.writes_per_vm,
                           blocked=vms["blocked"])
    was_stalling = vms["stalled_ops_tick"] > 0
    vms["reads"] += result.served_reads
    vms["writes"] += result.served_writes
    vms["stalled_ops"] += result.stalled
    vms["stalled_ops_tick"][:] = result.stalled
    vms["ops_tick"][:] = result.served_reads + result.served_writes + result.stalled
    for v in np.flatnonzero((result.stalled > 0) & ~was_stalling).tolist():
        h = int(host[v])
        world.emit("memory_stall",
                   f"{vms.ids[v]} stalls: no free memory for it on {state.hosts.ids[h]}"
                   if state.hosts.free_count[h] == 0 else
                   f"{vms.ids[v]} stalls: it has reached its max",
                   vm=vms.ids[v], host=state.hosts.ids[h])
