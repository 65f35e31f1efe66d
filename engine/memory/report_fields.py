"""The memory model's report fields (engine/report.py adds them to each host and VM).

Per host: overhead memory (esxtop OVHD), sharing by path - pages the background scan
shared against pages the swap daemon shared before swapping them (esxtop has no name for
the second; ESX counts both in SHRD) - and KSM's sysfs counters under their sysfs names.
Per VM: overhead, boot progress and stalls, the workload phase and the guest layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.memory.ksm import KSM
from engine.memory.ksm import sysfs as ksm_sysfs
from engine.memory.overhead import per_host
from engine.workloads.images import regions
from engine.world import World

MB = 1024.0**2


def host_fields(world: World) -> list[dict[str, Any]]:
    state = world.state
    page, tick_s = state.page_size, state.tick_s
    counters = state.sharing.hosts
    held = per_host(state)
    wanted = per_host(state, wanted=True)
    ksm = ksm_sysfs(state)
    out = []
    for h in range(len(state.hosts)):
        fields: dict[str, Any] = {
            "overhead_bytes": int(held[h]) * page,
            "overhead_wanted_bytes": int(wanted[h]) * page,
            "sharing_by_path": {
                "background_scan_pages": int(counters["scan_shared"][h]),
                "share_before_swap_pages": int(counters["swap_shared"][h]),
                "background_scan_pages_per_s": int(counters["scan_shared_tick"][h]) / tick_s,
                "share_before_swap_pages_per_s": int(counters["swap_shared_tick"][h]) / tick_s,
            },
        }
        if counters["mode"][h] == KSM or int(ksm["rmap_items"][h]):
            fields["ksm"] = {name: int(values[h]) for name, values in ksm.items()}
        out.append(fields)
    return out


def vm_fields(world: World) -> list[dict[str, Any]]:
    state = world.state
    cols, page = state.vms, state.page_size
    out = []
    for v, spec in enumerate(cols.specs):
        layout = regions(spec, int(cols["n_pages"][v]), page)
        total = int(cols["boot_total"][v])
        out.append({
            "overhead_bytes": int(cols["overhead_held"][v]) * page,
            "overhead_wanted_bytes": int(cols["overhead_pages"][v]) * page,
            "booting": bool(cols["booting"][v]),
            "boot_progress": float(cols["boot_cursor"][v] / total) if total else 1.0,
            "boot_stall_s": float(cols["boot_stall_s"][v]),
            "workload_phase": int(cols["phase_index"][v]) if cols["phase_count"][v] else None,
            "working_set_start_bytes": int(cols["ws_start"][v]) * page,
            "working_set_bytes": int(cols["ws_pages"][v]) * page,
            "regions_bytes": {name: int(getattr(layout, name)[1]) * page
                              for name in ("os", "app", "heap")},
        })
    return out


def esxtop_overhead(fields: dict[str, Any]) -> dict[str, float]:
    """esxtop's OVHD (MB) for a host or VM report entry."""
    return {"OVHD": float(np.float64(fields["overhead_bytes"]) / MB)}
