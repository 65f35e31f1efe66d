"""Read-only views of the world: Report (JSON) for scripts; the console's Snapshot lives in
engine/snapshot.py (re-exported here).

The report's keys are a contract (DESIGN 2.5): fields may be added, never renamed or
dropped. Units are in the key names.
"""

from __future__ import annotations

from typing import Any

from engine.economy.report import economy_report
from engine.memory.report_fields import esxtop_overhead, host_fields, vm_fields
from engine.memory.sharing import hint_table_report
from engine.migration.report import migration_report
from engine.migration.wws import wws_pages
from engine.snapshot import Snapshot, VMRows, snapshot
from engine.views import HostView, VMView
from engine.world import World

__all__ = ["HostView", "Snapshot", "VMRows", "VMView", "report", "snapshot"]


_HOST_KEYS = ("id", "memory_bytes", "free_bytes", "state", "shared_saved_bytes",
              "balloon_bytes", "swapped_bytes", "up", "private_bytes", "shared_bytes",
              "configured_vm_bytes", "overcommit_ratio", "n_vms", "nic_capacity_bytes_per_s",
              "nic_used_bytes_per_s", "sharing_mode", "pages_shared", "pages_sharing",
              "pages_unshared", "pages_volatile", "full_scans", "pages_skipped", "hints",
              "zero_shared_bytes", "guest_shared_bytes",
              "cow_breaks_per_s", "table_overhead_bytes", "pages_hashed_per_s",
              "page_compares_per_s", "pages_hashed_total", "page_compares_total",
              "ksm_general_profit_bytes", "idle_tax", "compressed_bytes", "free_low_bytes",
              "swapins_per_s",
              "swapouts_per_s", "balloon_change_bytes", "double_paging", "bounce_copies_per_s",
              "remaps", "low_evictions")
_VM_KEYS = ("id", "host", "configured_bytes", "resident_bytes", "shared_bytes",
            "balloon_bytes", "swapped_bytes", "target_bytes", "shares", "running", "tenant",
            "workload", "private_bytes", "untouched_bytes", "guest_free_bytes", "min_bytes",
            "max_bytes", "status", "price_per_hour", "service_level", "stalled_ops",
            "first_touches", "cow_breaks",
            "net_bytes_per_s", "zero_bytes", "rho", "active_estimate", "active_true",
            "balloon_target_bytes", "balloon_driver", "blocked", "guest_cache_bytes",
            "guest_swapped_bytes", "guest_faults_per_s", "swapins_per_s", "double_paging",
            "pops", "throughput_per_s", "file_hit_ratio", "bounces_per_s", "remaps",
            "service_level_avg", "availability", "latency_s", "lost_s", "sla_breaches",
            "sla_status", "revenue", "penalties")


def _esxtop(h: HostView, page_size: int) -> dict[str, float]:
    """esxtop's memory counters for the host, in MB as esxtop prints them."""
    mb = 1024.0**2
    return {"SHRD": h.guest_shared_bytes / mb, "SHRDSVD": h.shared_saved_bytes / mb,
            "ZERO": h.zero_shared_bytes / mb,
            "MCTLSZ": h.balloon_bytes / mb, "SWCUR": h.swapped_bytes / mb,
            "SWR/s": h.swapins_per_s * page_size / mb, "SWW/s": h.swapouts_per_s * page_size / mb}


def report(world: World) -> dict[str, Any]:
    snap = snapshot(world)
    return {
        "scenario": snap.scenario,
        "seed": world.streams.seed,
        "ticks": snap.tick,
        "tick_s": snap.tick_s,
        "sim_time_s": snap.time_s,
        "hosts": [{**{k: getattr(h, k) for k in _HOST_KEYS}, **mem,
                   "esxtop": {**_esxtop(h, world.state.page_size), **esxtop_overhead(mem)},
                   "hint_table": hint_table_report(world.state, i)}
                  for i, (h, mem) in enumerate(zip(snap.hosts, host_fields(world),
                                                   strict=True))],
        "vms": [{**{k: getattr(v, k) for k in _VM_KEYS}, **mem,
                 "esxtop": esxtop_overhead(mem), "wws_pages": wws_pages(world.state, i)}
                for i, (v, mem) in enumerate(zip(snap.vms, vm_fields(world), strict=True))],
        "migrations": [migration_report(world, m) for m in world.state.migrations],
        "economy": economy_report(world),
        "objectives": list(snap.objectives),
    }
