"""The workload phase: every running VM touches its pages for one tick.

Anonymous reads and writes come first, then reads through the guest page cache. A
closed-loop workload's pace for the next tick is the share of this tick it spent working
rather than waiting on faults (guest page-ins, swap-ins, cache misses).
"""

from __future__ import annotations

import numpy as np

from engine.memory.content import unique_content
from engine.memory.touch import apply_touches
from engine.state import LOSS_CAUSES, STALL_CAUSES, Bool, State
from engine.workloads.filecache import run_file_reads
from engine.workloads.synthetic import generate
from engine.world import World

PER_TICK = ("guest_faults_tick", "swapins_tick", "file_misses_tick", "file_reads_tick",
            "stall_s_tick", "cow_breaks_tick",
            *(f"lost_{cause}_s_tick" for cause in LOSS_CAUSES))


def active_vms(state: State) -> Bool:
    """The VMs whose workloads run this tick: on a host that is up, and booted (a booting
    VM runs its boot, memory/boot.py, not its workload)."""
    vms = state.vms
    host = vms["host"]
    active: Bool = (host >= 0) & state.hosts.up[np.maximum(host, 0)] & ~vms["booting"]
    return active


def run_workloads(world: World) -> None:
    state = world.state
    vms = state.vms
    for name in PER_TICK:
        vms[name][:] = 0
    state.write_log.clear()
    state.reclaim.hosts["swapin_tick"][:] = 0
    # The swap disk is one queue: what the last tick asked of it beyond the tick's length
    # (a migration's reads of swapped pages, the swap-ins of touches that waited for
    # frames: all after the daemon took what was left) is still queued, and the daemon
    # gets what is left after it. Not capped at a tick: a cap would forget more at short
    # ticks than at long ones.
    busy = state.reclaim.hosts["disk_busy_s_tick"]
    np.maximum(busy - state.tick_s, 0.0, out=busy)
    active = active_vms(state)
    hour = (state.time_s / 3600.0) % 24.0
    wave = (1.0 + np.cos(2 * np.pi * (hour - vms["daily_peak_h"]) / 24.0)) / 2.0
    vms["demand_scale"] = np.where(vms["daily_peak_h"] >= 0,
                                   vms["daily_trough"] + (1 - vms["daily_trough"]) * wave, 1.0)
    touches = generate(state, world.streams["workload"], active)
    content = unique_content(state, touches.write_pages.size)
    content[touches.write_zero] = 0
    result = apply_touches(state, touches.read_pages, touches.write_pages, content,
                           touches.reads_per_vm, touches.writes_per_vm,
                           blocked=vms["blocked"])
    run_file_reads(world, active)
    world.waiting_touches = (result.waiting, vms["stalled_ops_tick"] > 0)
    vms["reads"] += result.served_reads
    vms["writes"] += result.served_writes
    vms["stalled_ops"] += result.stalled
    vms["stalled_ops_tick"] = result.stalled
    vms["ops_tick"] = result.served_reads + result.served_writes + result.stalled
    vms["guest_faults"] += vms["guest_faults_tick"]


def pace(world: World) -> None:
    """After the tick's faults are all counted (service phase): next tick's pace."""
    state = world.state
    vms = state.vms
    vms["stall_s_tick"] = np.sum([vms[f"lost_{cause}_s_tick"] for cause in STALL_CAUSES], axis=0)
    nominal = vms["demand_scale"] * (vms["reads_per_s"] + vms["writes_per_s"] + np.where(
        vms["dataset_pages"] > 0, vms["file_reads_per_s"], 0.0))
    done = vms["ops_tick"] - vms["stalled_ops_tick"] + vms["file_reads_tick"]
    working_s = done / np.maximum(nominal, 1e-9)
    # A post-copy fault's wait already cut this tick's work (engine/migration/postcopy.py).
    waiting = vms["stall_s_tick"] - vms["lost_postcopy_s_tick"]
    speed = working_s / np.maximum(working_s + waiting, 1e-12)
    vms["speed"] = np.where(vms["closed_loop"] & (done > 0), np.clip(speed, 0.01, 1.0), 1.0)


def serve_waiting(world: World) -> None:
    """After reclamation: touches that stalled for want of a frame take the frames balloons
    and the swap daemon have freed since. In a host whose daemon runs beside its guests, a
    fault waits only until the daemon frees a frame; a tick runs every touch before any
    reclamation, and without this a longer tick would stall more of them."""
    if world.waiting_touches is None:  # no workload ran this tick
        return
    waiting, was_stalling = world.waiting_touches
    world.waiting_touches = None
    state = world.state
    vms = state.vms
    if waiting is not None:
        reads, writes, content = waiting
        n = len(vms)
        reads_per_vm = np.bincount(vms.vm_of_pages(reads), minlength=n)
        writes_per_vm = np.bincount(vms.vm_of_pages(writes), minlength=n)
        result = apply_touches(state, reads, writes, content, reads_per_vm, writes_per_vm)
        served = result.served_reads + result.served_writes
        vms["reads"] += result.served_reads
        vms["writes"] += result.served_writes
        vms["stalled_ops"] -= served
        vms["stalled_ops_tick"] -= served
    host = vms["host"]
    for v in np.flatnonzero((vms["stalled_ops_tick"] > 0) & ~was_stalling).tolist():
        h = int(host[v])
        reason = ("it is blocked until it is back at its target" if vms["blocked"][v] else
                  "no free memory for it" if state.hosts.free_count[h] == 0 else
                  "it has reached its max")
        world.emit("memory_stall", f"{vms.ids[v]} stalls on {state.hosts.ids[h]}: {reason}",
                   vm=vms.ids[v], host=state.hosts.ids[h])
