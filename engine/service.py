"""Service quality: what each VM's workload lost this tick, and why.

Every mechanism that makes a guest wait charges its cause: hypervisor swap-ins at disk
latency, guest paging caused by the balloon, page-cache misses, copy-on-write breaks,
dirty-logging traps, post-copy network faults, migration downtime. Touches that could
not run at all (no memory, or blocked in the low state) lose their share of the tick,
CPU throttling its share, and a NIC shared with other flows the part of the demand it
could not carry. The service level of the tick is the share of it not lost; the latency
of an operation is a base latency plus the waiting spread over the operations served.
"""

from __future__ import annotations

import numpy as np

from engine.state import LOSS_CAUSES
from engine.workloads.phase import count_stalls
from engine.world import World


def run_service(world: World) -> None:
    state = world.state
    vms = state.vms
    tick_s = state.tick_s
    running = vms["host"] >= 0
    nominal = vms["demand_scale"] * (vms["reads_per_s"] + vms["writes_per_s"] + np.where(
        vms["dataset_pages"] > 0, vms["file_reads_per_s"], 0.0))
    per_op_s = 1.0 / np.maximum(nominal * vms["speed"], 1e-9)
    stalled = np.minimum(vms["stalled_ops_tick"] * per_op_s, tick_s)
    stalled += vms["boot_stall_s_tick"]  # a boot waiting for memory (memory/boot.py)
    vms["lost_memory_stall_s_tick"] = np.where(vms["blocked"], tick_s, np.minimum(stalled,
                                                                                 tick_s))
    vms["lost_throttle_s_tick"] = vms["throttle"] * tick_s
    demand = vms["net_bytes_per_s"] * vms["demand_scale"]
    carried = np.where(demand > 0, state.vm_net_bytes_per_s / np.maximum(demand, 1e-9), 1.0)
    vms["lost_nic_s_tick"] = np.clip(1.0 - carried, 0.0, 1.0) * tick_s
    count_stalls(vms)

    lost = np.sum([vms[f"lost_{cause}_s_tick"] for cause in LOSS_CAUSES], axis=0)
    service = np.where(running, np.clip(1.0 - lost / tick_s, 0.0, 1.0), 0.0)
    vms["service_tick"] = service
    done = vms["ops_tick"] - vms["stalled_ops_tick"] + vms["file_reads_tick"]
    base = world.spec.policy.sla.base_latency
    vms["latency_s"] = np.where(running, base + vms["stall_s_tick"] / np.maximum(done, 1), 0.0)
    for cause in LOSS_CAUSES:
        vms[f"lost_{cause}_s"] += np.where(running, vms[f"lost_{cause}_s_tick"], 0.0)

    # Availability: paused by a migration, blocked by the host, or lost with a host.
    down = np.where(vms["blocked"], tick_s, vms["lost_downtime_s_tick"])
    contracted = running | vms["lost_vm"]
    down = np.where(vms["lost_vm"] & ~running, tick_s, np.minimum(down, tick_s))
    vms["running_s"] += np.where(contracted, tick_s, 0.0)
    vms["served_s"] += service * tick_s
    vms["unavailable_s"] += np.where(contracted, down, 0.0)
    vms["window_running_s"] += np.where(contracted, tick_s, 0.0)
    vms["window_served_s"] += service * tick_s
    vms["window_unavailable_s"] += np.where(contracted, down, 0.0)
