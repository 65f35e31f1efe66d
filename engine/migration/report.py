"""A migration as JSON-ready data: DESIGN 2.5's keys and QEMU query-migrate counters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from engine.migration.model import Migration
from engine.migration.postcopy import remaining as remaining_pages
from engine.world import World


def migration_report(world: World, mig: Migration) -> dict[str, Any]:
    """One migration, with DESIGN 2.5's keys and QEMU query-migrate style counters."""
    state = world.state
    page = state.page_size
    now = state.time_s
    end = mig.end_s if mig.end_s >= 0 else now
    remaining = 0
    if mig.status == "precopy":
        remaining = (mig.to_send.size - mig.cursor) * page
    elif mig.status == "postcopy":
        remaining = remaining_pages(world, mig) * page
    total = end - mig.start_s
    return {
        "id": mig.id,
        "vm": state.vms.ids[mig.vm],
        "src": state.hosts.ids[mig.src],
        "dst": state.hosts.ids[mig.dst],
        "mode": mig.mode,
        "algorithm": mig.algorithm,
        "status": mig.status,
        "reason": mig.reason,
        "start_s": mig.start_s,
        "total_time_s": total,
        "downtime_s": mig.downtime_s,
        "setup_time_s": 0.0,
        "transferred_bytes": mig.bytes_sent,
        "remaining_bytes": remaining,
        "pages_sent": mig.pages_sent,
        "duplicate_pages": mig.zero_pages,
        "normal_pages": mig.normal_pages,
        "dirty_pages_rate": mig.dirty_pages_rate,
        "dirty_sync_count": mig.dirty_sync_count,
        "expected_downtime_s": mig.expected_downtime_s,
        "mbps": mig.bytes_sent * 8 / 1e6 / max(total, 1e-9),
        "cpu_throttle_percentage": round(mig.throttle * 100),
        "xbzrle": {"cache_size_bytes": world.spec.policy.migration.xbzrle_cache if mig.xbzrle
                   else 0, "cache_hits": mig.xbzrle_hits, "cache_misses": mig.xbzrle_misses,
                   "bytes": mig.xbzrle_bytes},
        "stop_copy_pages": mig.stop_pages,
        "stop_copy_bytes": mig.stop_bytes,
        "dirty_log_traps": mig.traps,
        "network_faults": mig.network_faults,
        "minor_faults": mig.minor_faults,
        "pushed_pages": mig.pushed_pages,
        "resume_time_s": mig.resume_s - mig.start_s if mig.resume_s >= 0 else None,
        "content_mismatches": mig.content_mismatches,
        "rounds": [asdict(r) for r in mig.rounds],
    }
