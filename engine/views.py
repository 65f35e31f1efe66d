"""The console's read-only rows: one HostView per host, one VMView per VM (built on demand
from the snapshot's columns, engine/snapshot.py). Plain frozen data, units in the names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostView:
    id: str
    up: bool
    switch: str | None
    memory_bytes: int
    free_bytes: int
    private_bytes: int
    shared_bytes: int
    balloon_bytes: int
    swapped_bytes: int
    shared_saved_bytes: int
    state: str
    configured_vm_bytes: int
    overcommit_ratio: float
    n_vms: int
    nic_capacity_bytes_per_s: float
    nic_used_bytes_per_s: float
    # page sharing (esxtop SHRD/SHRDSVD/ZERO; KSM's /sys/kernel/mm/ksm names)
    sharing_mode: str
    pages_shared: int
    pages_sharing: int
    pages_unshared: int
    pages_volatile: int
    full_scans: int
    pages_skipped: int  # KSM smart scan: pages passed over (cumulative, sysfs pages_skipped)
    hints: int
    zero_shared_bytes: int
    guest_shared_bytes: int  # guest memory mapped to shared frames
    cow_breaks_per_s: float
    table_overhead_bytes: int
    pages_hashed_per_s: float
    page_compares_per_s: float
    pages_hashed_total: int
    page_compares_total: int
    ksm_general_profit_bytes: int
    # reclamation (ESX sections 3-7)
    idle_tax: float
    compressed_bytes: int  # guest pages held in the compression cache
    free_low_bytes: int
    swapins_per_s: float  # esxtop SWR/s, in pages
    swapouts_per_s: float  # esxtop SWW/s, in pages
    balloon_change_bytes: int  # inflated (+) or deflated (-) this tick
    double_paging: int
    bounce_copies_per_s: float
    remaps: int
    low_evictions: int


@dataclass(frozen=True)
class VMView:
    id: str
    host: str | None
    running: bool
    status: str  # queued (a request never started), running, stopped, or lost (failure)
    price_per_hour: float
    tenant: str
    workload: str
    configured_bytes: int
    resident_bytes: int
    private_bytes: int
    shared_bytes: int
    balloon_bytes: int
    swapped_bytes: int
    untouched_bytes: int
    guest_free_bytes: int
    target_bytes: int
    min_bytes: int
    max_bytes: int
    shares: int
    service_level: float  # share of this tick's demand served (engine/service.py)
    service_level_avg: float  # share of all demand served while contracted
    availability: float  # share of contracted time up (not paused, blocked or lost)
    latency_s: float
    lost_s: dict[str, float]  # cumulative lost service by cause, seconds
    sla_breaches: int
    sla_status: str  # ok, or breached (in some window)
    revenue: float
    penalties: float
    stalled_ops: int
    first_touches: int
    cow_breaks: int
    net_bytes_per_s: float
    zero_bytes: int  # shared pages holding zeros (esxtop ZERO)
    # allocation and reclamation
    rho: float  # adjusted shares-per-page ratio
    active_estimate: float
    active_true: float
    balloon_target_bytes: int
    balloon_driver: bool
    blocked: bool
    guest_cache_bytes: int
    guest_swapped_bytes: int  # paged out by the guest to its own disk
    guest_faults_per_s: float  # guest page-ins (guest paging caused by the balloon)
    swapins_per_s: float
    double_paging: int
    pops: int
    throughput_per_s: float  # page touches served, anonymous and file
    file_hit_ratio: float
    bounces_per_s: float
    remaps: int
    running_s: float  # seconds run since it was first placed (0: not run a tick yet)
