"""A migration as JSON-ready data: DESIGN 2.5's keys and QEMU query-migrate counters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from engine.migration.model import POSTCOPY, PRECOPY, Migration, table_of
from engine.state import Loc
from engine.world import World


def _remaining_pages(world: World, mig: Migration) -> int:
    table = table_of(world.state)
    row = mig.id
    status = int(table["status"][row])
    if status == PRECOPY:
        return int(table["list_len"][row] - table["cursor"][row])
    if status == POSTCOPY:
        vms = world.state.vms
        return int(vms["loc_count"][int(table["vm"][row]), Loc.REMOTE])
    return 0


def migration_report(world: World, mig: Migration) -> dict[str, Any]:
    """One migration, with DESIGN 2.5's keys and QEMU query-migrate style counters."""
    state = world.state
    table = table_of(state)
    row = mig.id
    c = {name: table[name][row].item() for name in (
        "start_s", "end_s", "downtime_s", "resume_s", "bytes_sent", "pages_sent",
        "zero_pages", "normal_pages", "dirty_pages_rate", "dirty_sync_count",
        "expected_downtime_s", "throttle", "xbzrle_hits", "xbzrle_misses", "xbzrle_bytes",
        "xbzrle_overflow", "stop_pages", "stop_bytes", "traps", "network_faults",
        "minor_faults", "pushed_pages", "stall_s", "content_mismatches", "passes",
        "bandwidth", "flow_rate", "xbzrle", "stun", "swap_read_pages", "swap_read_s")}
    end = c["end_s"] if c["end_s"] >= 0 else state.time_s
    total = end - c["start_s"]
    hits, misses = c["xbzrle_hits"], c["xbzrle_misses"]
    return {
        "id": row,
        "vm": state.vms.ids[mig.vm],
        "src": state.hosts.ids[mig.src],
        "dst": state.hosts.ids[mig.dst],
        "mode": mig.mode,
        "algorithm": mig.algorithm,
        "status": mig.status,
        "reason": mig.reason,
        "start_s": c["start_s"],
        "total_time_s": total,
        "downtime_s": c["downtime_s"],
        "setup_time_s": 0.0,
        "transferred_bytes": c["bytes_sent"],
        "remaining_bytes": _remaining_pages(world, mig) * state.page_size,
        "pages_sent": c["pages_sent"],
        "duplicate_pages": c["zero_pages"],
        "normal_pages": c["normal_pages"],
        "dirty_pages_rate": c["dirty_pages_rate"],
        "dirty_sync_count": c["dirty_sync_count"],
        "passes": c["passes"],
        "expected_downtime_s": c["expected_downtime_s"],
        "bandwidth_bytes_per_s": c["bandwidth"] if mig.algorithm == "qemu" else c["flow_rate"],
        "mbps": c["bytes_sent"] * 8 / 1e6 / max(total, 1e-9),
        "cpu_throttle_percentage": round(c["throttle"] * 100),
        "xbzrle": {"cache_size_bytes": world.spec.policy.migration.xbzrle_cache
                   if c["xbzrle"] else 0, "cache_hits": hits, "cache_misses": misses,
                   "cache_miss_rate": misses / (hits + misses) if hits + misses else 0.0,
                   "overflow": c["xbzrle_overflow"], "bytes": c["xbzrle_bytes"]},
        "stop_copy_pages": c["stop_pages"],
        "stop_copy_bytes": c["stop_bytes"],
        "dirty_log_traps": c["traps"],
        "network_faults": c["network_faults"],
        "minor_faults": c["minor_faults"],
        "pushed_pages": c["pushed_pages"],
        "stalled_s": c["stall_s"],
        # Pages read back from the source's swap before they could go, and the sender's
        # time waiting for them (engine/migration/swapread.py).
        "swap_read_pages": c["swap_read_pages"],
        "swap_read_s": c["swap_read_s"],
        "resume_time_s": c["resume_s"] - c["start_s"] if c["resume_s"] >= 0 else None,
        "content_mismatches": c["content_mismatches"],
        "rounds": [asdict(r) for r in mig.rounds],
    }

