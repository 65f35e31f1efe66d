"""A workload spec -> the per-VM array values the tick reads (state.VMs columns).

Used when a VM is defined, when its workload schedule moves to another phase, and when a
set_workload command changes it, so all three give a VM the same columns for the same
workload. An idle workload keeps its footprint but touches, computes and sends nothing.
"""

from __future__ import annotations

from typing import Any

from engine.spec import WorkloadSpec
from engine.workloads.images import Regions

# The columns a workload sets (engine/state.py VM_ARRAY_DTYPES), in a fixed order.
WORKLOAD_COLUMNS = (
    "reads_per_s", "writes_per_s", "ws_start", "ws_pages", "hot_pages", "hot_access",
    "sequential", "zero_writes", "cpu_util", "net_bytes_per_s", "dataset_pages",
    "file_reads_per_s", "closed_loop", "io_pages_per_s", "io_set_pages", "daily_peak_h",
    "daily_trough",
)


def working_set(wl: WorkloadSpec, layout: Regions, page_size: int) -> tuple[int, int]:
    """(first page, pages) of the working set within the VM: `offset` into its region,
    `working_set` long (default: the rest of the region), kept inside the VM."""
    n = layout.memory[1]
    start, size = layout.of(wl.region)
    off = min(wl.offset // page_size, size)
    room = max(size - off, 1)
    ws = room if wl.working_set is None else max(1, min(wl.working_set // page_size, room))
    ws = min(ws, n)
    return min(start + off, n - ws), ws


def workload_columns(wl: WorkloadSpec, layout: Regions, page_size: int) -> dict[str, Any]:
    idle = wl.kind == "idle"
    ws_start, ws = working_set(wl, layout, page_size)
    hot = ws if wl.hot_set is None else max(1, min(wl.hot_set // page_size, ws))
    return {
        "reads_per_s": 0.0 if idle else wl.reads_per_s,
        "writes_per_s": 0.0 if idle else wl.writes_per_s,
        "ws_start": ws_start,
        "ws_pages": ws,
        "hot_pages": hot,
        "hot_access": wl.hot_access,
        "sequential": wl.order == "sequential",
        "zero_writes": wl.zero_writes,
        "cpu_util": 0.0 if idle else wl.cpu_util,
        "net_bytes_per_s": 0.0 if idle else wl.net,
        "dataset_pages": (wl.dataset or 0) // page_size,
        "file_reads_per_s": 0.0 if idle else wl.file_reads_per_s,
        "closed_loop": wl.closed_loop,
        "io_pages_per_s": 0.0 if idle else wl.io_pages_per_s,
        "io_set_pages": max(1, min(wl.io_set, ws * page_size) // page_size),
        "daily_peak_h": -1.0 if wl.daily_peak_hour is None else wl.daily_peak_hour,
        "daily_trough": wl.daily_trough,
    }
