"""Read-only views of the world: Snapshot for the console, Report (JSON) for scripts.

The report's keys are a contract (DESIGN 2.5): fields may be added, never renamed or
dropped. Units are in the key names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.economy.report import economy_report
from engine.memory.allocation import rho
from engine.memory.ksm import sysfs as ksm_sysfs
from engine.memory.report_fields import esxtop_overhead, host_fields, vm_fields
from engine.memory.states import STATE_NAMES
from engine.migration.report import migration_report
from engine.migration.wws import wws_pages
from engine.objectives import evaluate_objectives
from engine.state import LOSS_CAUSES, GuestKind, Loc
from engine.state_tables import SHARING_MODES
from engine.world import World

TABLE_ENTRY_BYTES = 16  # ESX: 16 bytes per sharing-table entry
KSM_RMAP_BYTES = 64


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


@dataclass(frozen=True)
class Snapshot:
    scenario: str
    tick: int
    time_s: float
    tick_s: float
    hosts: tuple[HostView, ...]
    vms: tuple[VMView, ...]
    revenue: float
    costs: float
    penalties: float
    profit: float
    history: dict[str, tuple[float, ...]]
    objectives: tuple[dict[str, Any], ...]

    def host(self, host_id: str) -> HostView:
        return next(h for h in self.hosts if h.id == host_id)

    def vm(self, vm_id: str) -> VMView:
        return next(v for v in self.vms if v.id == vm_id)


def _vm_views(world: World) -> list[VMView]:
    state = world.state
    vms, page = state.vms, state.page_size
    lc = vms["loc_count"]
    ratios = rho(world)
    balloon_target = np.where(vms["balloon_forced"] >= 0, vms["balloon_forced"],
                              vms["balloon_target"])
    out = []
    for v, spec in enumerate(vms.specs):
        h = int(vms["host"][v])
        running = h >= 0
        resident = int(lc[v, Loc.PRIVATE] + lc[v, Loc.SHARED])
        max_bytes = int(vms["max_pages"][v]) * page
        out.append(VMView(
            id=vms.ids[v],
            host=state.hosts.ids[h] if running else None,
            running=running,
            status="running" if running else "lost" if vms["lost_vm"][v] else (
                "stopped" if vms["started"][v] else "queued"),
            price_per_hour=float(vms["price_per_hour"][v]),
            tenant=spec.tenant,
            workload=spec.workload.kind if spec.app is None else f"{spec.workload.kind}:{spec.app}",
            configured_bytes=int(vms["n_pages"][v]) * page,
            resident_bytes=resident * page,
            private_bytes=int(lc[v, Loc.PRIVATE]) * page,
            shared_bytes=int(lc[v, Loc.SHARED]) * page,
            balloon_bytes=int(lc[v, Loc.BALLOONED]) * page,
            swapped_bytes=int(lc[v, Loc.SWAPPED]) * page,
            untouched_bytes=int(lc[v, Loc.UNTOUCHED]) * page,
            guest_free_bytes=int(vms["kind_count"][v, GuestKind.FREE]) * page,
            # Without an allocation policy a running VM is entitled to its max.
            target_bytes=int(vms["target_pages"][v]) * page if running else 0,
            min_bytes=int(vms["min_pages"][v]) * page,
            max_bytes=max_bytes,
            shares=int(vms["shares"][v]),
            service_level=float(vms["service_tick"][v]) if running else 0.0,
            service_level_avg=float(vms["served_s"][v] / max(vms["running_s"][v], 1e-9))
            if vms["running_s"][v] > 0 else 0.0,
            availability=1.0 - float(vms["unavailable_s"][v] / max(vms["running_s"][v], 1e-9)),
            latency_s=float(vms["latency_s"][v]),
            lost_s={cause: float(vms[f"lost_{cause}_s"][v]) for cause in LOSS_CAUSES},
            sla_breaches=int(vms["sla_breaches"][v]),
            sla_status="breached" if vms["sla_breaches"][v] else "ok",
            revenue=float(vms["revenue"][v]),
            penalties=float(vms["penalties"][v]),
            stalled_ops=int(vms["stalled_ops"][v]),
            first_touches=int(vms["first_touches"][v]),
            cow_breaks=int(vms["cow_breaks"][v]),
            net_bytes_per_s=float(state.vm_net_bytes_per_s[v]),
            zero_bytes=int(vms["zero_shared"][v]) * page,
            rho=float(ratios[v]) if running else 0.0,
            active_estimate=float(vms["active_estimate"][v]),
            active_true=float(vms["active_true"][v]),
            balloon_target_bytes=int(balloon_target[v]) * page,
            balloon_driver=bool(vms["balloon_driver"][v]),
            blocked=bool(vms["blocked"][v]),
            guest_cache_bytes=int(vms["kind_count"][v, GuestKind.CACHE]) * page,
            guest_swapped_bytes=int(vms["guest_swapped_count"][v]) * page,
            guest_faults_per_s=int(vms["guest_faults_tick"][v]) / state.tick_s,
            swapins_per_s=int(vms["swapins_tick"][v]) / state.tick_s,
            double_paging=int(vms["double_paging"][v]),
            pops=int(vms["pops"][v]),
            throughput_per_s=float(vms["ops_tick"][v] - vms["stalled_ops_tick"][v]
                                   + vms["file_reads_tick"][v]) / state.tick_s,
            file_hit_ratio=1.0 - int(vms["file_misses_tick"][v]) / max(
                int(vms["file_reads_tick"][v]), 1),
            bounces_per_s=int(vms["bounces_tick"][v]) / state.tick_s,
            remaps=int(vms["remaps"][v]),
        ))
    return out


def _host_views(world: World, vm_views: list[VMView]) -> list[HostView]:
    state = world.state
    hosts, page = state.hosts, state.page_size
    per_host: dict[str, list[VMView]] = {h: [] for h in hosts.ids}
    for vm in vm_views:
        if vm.host is not None:
            per_host[vm.host].append(vm)
    codes = state.reclaim.hosts["mem_state"]
    counters = state.sharing.hosts
    ksm_stats = ksm_sysfs(state)  # sysfs semantics (memory/ksm.py)
    reclaim = state.reclaim.hosts
    out = []
    for h, host_id in enumerate(hosts.ids):
        spec = hosts.specs[h]
        mine = per_host[host_id]
        memory = int(hosts.n_frames[h]) * page
        free = int(hosts.free_count[h]) * page
        private = sum(v.private_bytes for v in mine)
        configured = sum(v.configured_bytes for v in mine)
        shared_frames = int(counters["shared_frames"][h])
        sharing_pages = sum(v.shared_bytes for v in mine) // page - shared_frames
        out.append(HostView(
            id=host_id,
            up=bool(hosts.up[h]),
            switch=spec.switch,
            memory_bytes=memory,
            free_bytes=free,
            private_bytes=private,
            # Frames holding shared pages: whatever is in use but not private.
            shared_bytes=shared_frames * page,
            balloon_bytes=sum(v.balloon_bytes for v in mine),
            swapped_bytes=sum(v.swapped_bytes for v in mine),
            shared_saved_bytes=sharing_pages * page,
            state=STATE_NAMES[int(codes[h])],
            configured_vm_bytes=configured,
            overcommit_ratio=configured / memory if memory else 0.0,
            n_vms=len(mine),
            nic_capacity_bytes_per_s=spec.nic,
            nic_used_bytes_per_s=float(state.nic_used_bytes_per_s[h]),
            sharing_mode=SHARING_MODES[int(counters["mode"][h])],
            pages_shared=shared_frames,
            pages_sharing=sharing_pages,
            pages_unshared=int(ksm_stats["pages_unshared"][h]),
            pages_volatile=int(ksm_stats["pages_volatile"][h]),
            full_scans=int(counters["full_scans"][h]),
            hints=int(counters["hint_count"][h]),
            zero_shared_bytes=sum(v.zero_bytes for v in mine),
            guest_shared_bytes=sum(v.shared_bytes for v in mine),
            cow_breaks_per_s=sum(int(state.vms["cow_breaks_tick"][state.vms.index(v.id)])
                                 for v in mine) / state.tick_s,
            table_overhead_bytes=TABLE_ENTRY_BYTES * (
                shared_frames + int(counters["hint_count"][h])
                + int(counters["unstable_count"][h])),
            pages_hashed_per_s=int(counters["hashed_tick"][h]) / state.tick_s,
            page_compares_per_s=int(counters["compares_tick"][h]) / state.tick_s,
            pages_hashed_total=int(counters["hashed"][h]),
            page_compares_total=int(counters["compares"][h]),
            # KSM's general_profit: bytes saved minus its 64-byte rmap_item per tracked page.
            ksm_general_profit_bytes=sharing_pages * page - KSM_RMAP_BYTES * int(
                ksm_stats["rmap_items"][h]),
            idle_tax=float(reclaim["idle_tax"][h]),
            compressed_bytes=int(reclaim["compressed_pages"][h]) * page,
            free_low_bytes=int(hosts.free_low[h]) * page,
            swapins_per_s=int(reclaim["swapin_tick"][h]) / state.tick_s,
            swapouts_per_s=int(reclaim["swapout_tick"][h]) / state.tick_s,
            balloon_change_bytes=int(reclaim["balloon_tick"][h]) * page,
            double_paging=sum(v.double_paging for v in mine),
            bounce_copies_per_s=int(reclaim["bounce_tick"][h]) / state.tick_s,
            remaps=int(reclaim["remaps"][h]),
            low_evictions=int(reclaim["low_evictions"][h]),
        ))
    return out


def snapshot(world: World) -> Snapshot:
    vm_views = _vm_views(world)
    money = world.state.money
    return Snapshot(
        scenario=world.spec.scenario.name,
        tick=world.state.tick,
        time_s=world.state.time_s,
        tick_s=world.state.tick_s,
        hosts=tuple(_host_views(world, vm_views)),
        vms=tuple(vm_views),
        revenue=money.revenue,
        costs=money.costs,
        penalties=money.penalties,
        profit=money.profit,
        history={k: tuple(v) for k, v in world.history.items()},
        objectives=tuple(evaluate_objectives(world)),
    )


_HOST_KEYS = ("id", "memory_bytes", "free_bytes", "state", "shared_saved_bytes",
              "balloon_bytes", "swapped_bytes", "up", "private_bytes", "shared_bytes",
              "configured_vm_bytes", "overcommit_ratio", "n_vms", "nic_capacity_bytes_per_s",
              "nic_used_bytes_per_s", "sharing_mode", "pages_shared", "pages_sharing",
              "pages_unshared", "pages_volatile", "full_scans", "hints", "zero_shared_bytes",
              "guest_shared_bytes",
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
                   "esxtop": {**_esxtop(h, world.state.page_size), **esxtop_overhead(mem)}}
                  for h, mem in zip(snap.hosts, host_fields(world), strict=True)],
        "vms": [{**{k: getattr(v, k) for k in _VM_KEYS}, **mem,
                 "esxtop": esxtop_overhead(mem), "wws_pages": wws_pages(world.state, i)}
                for i, (v, mem) in enumerate(zip(snap.vms, vm_fields(world), strict=True))],
        "migrations": [migration_report(world, m) for m in world.state.migrations],
        "economy": economy_report(world),
        "objectives": list(snap.objectives),
    }
