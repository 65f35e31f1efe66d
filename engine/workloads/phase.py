"""The workload phase: every running VM touches its pages for one tick.

Anonymous reads and writes come first, then reads through the guest page cache. A
closed-loop workload issues its next operation when the last is done, so it runs at the
share of full speed that its waits on faults leave it (guest page-ins, swap-ins, cache
misses): 1 / (1 + nominal rate x wait per operation). The wait of a page-cache read is
known from the tick's start (a read misses with probability 1 - cached / dataset, and a
miss waits for the guest's disk); the other waits, met only as the touches find their
pages, are last tick's per operation. So a cold cache slows the workload in its first
tick, not one tick later: with the pace one tick behind, dbench's first tick in the
idle-tax experiment (esx-fig7) ran at its full 20,000 reads a second where its misses let
about 1,900 through, a tick's worth whatever the tick's length (its cache after 4 s:
19,447 pages at 0.5 s ticks, 21,840 at 1 s; now 11,975 and 11,962).
"""

from __future__ import annotations

import numpy as np

from engine.memory.content import unique_content
from engine.memory.touch import apply_touches
from engine.state import F64, LOSS_CAUSES, STALL_CAUSES, Bool, GuestKind, State, VMs
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
    other_wait = _other_wait_per_op(vms)  # from last tick's counts, before they are cleared
    world.free_before_touches = state.hosts.free_count.copy()
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
    vms["speed"] = closed_loop_speed(vms, other_wait)
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


def count_stalls(vms: VMs) -> None:
    """After the tick's faults are all counted (service phase): the time each VM waited."""
    vms["stall_s_tick"] = np.sum([vms[f"lost_{cause}_s_tick"] for cause in STALL_CAUSES], axis=0)


def _other_wait_per_op(vms: VMs) -> F64:
    """Last tick's wait per operation done on all but page-cache misses and post-copy faults
    (a post-copy fault's wait already cut that tick's work: engine/migration/postcopy.py);
    0 for a VM that did nothing."""
    done = vms["ops_tick"] - vms["stalled_ops_tick"] + vms["file_reads_tick"]
    waiting = (vms["stall_s_tick"] - vms["lost_postcopy_s_tick"]
               - vms["lost_page_cache_s_tick"])
    wait: F64 = np.where(done > 0, np.maximum(waiting, 0.0) / np.maximum(done, 1), 0.0)
    return wait


def closed_loop_speed(vms: VMs, other_wait: F64) -> F64:
    """Each closed-loop VM's share of its nominal rates this tick, 1 / (1 + nominal x wait
    per operation), within [0.01, 1]; 1 for the others. `other_wait`: the wait per
    operation on all but page-cache misses (_other_wait_per_op)."""
    file_rate = vms["demand_scale"] * np.where(vms["dataset_pages"] > 0,
                                               vms["file_reads_per_s"], 0.0)
    nominal = vms["demand_scale"] * (vms["reads_per_s"] + vms["writes_per_s"]) + file_rate
    cached = vms["kind_count"][:, GuestKind.CACHE]
    miss_p = 1.0 - np.minimum(1.0, cached / np.maximum(vms["dataset_pages"], 1))
    file_share = np.where(nominal > 0, file_rate / np.maximum(nominal, 1e-9), 0.0)
    wait = other_wait + file_share * miss_p * vms["guest_disk_latency_s"]
    speed: F64 = np.where(vms["closed_loop"], np.clip(1.0 / (1.0 + nominal * wait), 0.01, 1.0),
                          1.0)
    return speed


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
