"""Snapshot: a frozen, column-wise view of the world for the console.

Every per-VM quantity is one numpy array (a copy: the engine goes on mutating its own), so a
snapshot of 100,000 VMs costs a few dozen vectorised operations and no Python per VM. The
VMView of a row is built only when something asks for it (`snap.vms[i]`, `snap.vm(id)`,
iteration), and then kept: a console showing 40 rows of a 1,000-VM table builds 40.
Hosts are few; their views are built at once from per-host sums (np.bincount).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from engine.commands import Command
from engine.memory.allocation import rho
from engine.memory.ksm import sysfs as ksm_sysfs
from engine.memory.states import STATE_NAMES
from engine.objectives import evaluate_objectives
from engine.spec import VMSpec
from engine.state import LOSS_CAUSES, GuestKind, Loc
from engine.state_tables import SHARING_MODES
from engine.views import HostView, VMView
from engine.world import World

TABLE_ENTRY_BYTES = 16  # ESX: 16 bytes per sharing-table entry
HINT_SLOT_BYTES = 4  # engine/hashtable.py HintTable: one 32-bit word a slot
KSM_RMAP_BYTES = 64
STATUSES = ("queued", "running", "stopped", "lost")  # status_code indexes this
Columns = dict[str, npt.NDArray[Any]]


def vm_columns(world: World) -> Columns:
    """Every numeric VMView field as an array over all VMs (read-only copies), plus
    host_index (-1: none), status_code (index into STATUSES) and lost_<cause>_s."""
    state = world.state
    vms, page, tick_s = state.vms, state.page_size, state.tick_s
    lc, kc = vms["loc_count"], vms["kind_count"]
    host = vms["host"].copy()
    running = host >= 0
    run_s = vms["running_s"]
    span = np.maximum(run_s, 1e-9)
    balloon_target = np.where(vms["balloon_forced"] >= 0, vms["balloon_forced"],
                              vms["balloon_target"])
    status = np.where(running, 1, np.where(vms["lost_vm"], 3, np.where(vms["started"], 2, 0)))
    resident = lc[:, Loc.PRIVATE] + lc[:, Loc.SHARED]
    cols: Columns = {
        "host_index": host,
        "status_code": status.astype(np.int8),
        "running": running,
        "price_per_hour": vms["price_per_hour"].astype(np.float64),
        "configured_bytes": vms["n_pages"] * page,
        "resident_bytes": resident * page,
        "private_bytes": lc[:, Loc.PRIVATE] * page,
        "shared_bytes": lc[:, Loc.SHARED] * page,
        "balloon_bytes": lc[:, Loc.BALLOONED] * page,
        "swapped_bytes": lc[:, Loc.SWAPPED] * page,
        "untouched_bytes": lc[:, Loc.UNTOUCHED] * page,
        "guest_free_bytes": kc[:, GuestKind.FREE] * page,
        # Without an allocation policy a running VM is entitled to its max.
        "target_bytes": np.where(running, vms["target_pages"] * page, 0),
        "min_bytes": vms["min_pages"] * page,
        "max_bytes": vms["max_pages"] * page,
        "shares": vms["shares"].copy(),
        "service_level": np.where(running, vms["service_tick"], 0.0),
        "service_level_avg": np.where(run_s > 0, vms["served_s"] / span, 0.0),
        "availability": 1.0 - vms["unavailable_s"] / span,
        "latency_s": vms["latency_s"].copy(),
        "sla_breaches": vms["sla_breaches"].copy(),
        "revenue": vms["revenue"].copy(),
        "penalties": vms["penalties"].copy(),
        "stalled_ops": vms["stalled_ops"].copy(),
        "first_touches": vms["first_touches"].copy(),
        "cow_breaks": vms["cow_breaks"].copy(),
        "cow_breaks_tick": vms["cow_breaks_tick"].copy(),
        "net_bytes_per_s": np.asarray(state.vm_net_bytes_per_s, np.float64).copy(),
        "zero_bytes": vms["zero_shared"] * page,
        "rho": np.where(running, rho(world), 0.0),
        "active_estimate": vms["active_estimate"].copy(),
        "active_true": vms["active_true"].copy(),
        "balloon_target_bytes": balloon_target * page,
        "balloon_driver": vms["balloon_driver"].copy(),
        "blocked": vms["blocked"].copy(),
        "guest_cache_bytes": kc[:, GuestKind.CACHE] * page,
        "guest_swapped_bytes": vms["guest_swapped_count"] * page,
        "guest_faults_per_s": vms["guest_faults_tick"] / tick_s,
        "swapins_per_s": vms["swapins_tick"] / tick_s,
        "double_paging": vms["double_paging"].copy(),
        "pops": vms["pops"].copy(),
        "throughput_per_s": (vms["ops_tick"] - vms["stalled_ops_tick"]
                             + vms["file_reads_tick"]) / tick_s,
        "file_hit_ratio": 1.0 - vms["file_misses_tick"] / np.maximum(vms["file_reads_tick"], 1),
        "bounces_per_s": vms["bounces_tick"] / tick_s,
        "remaps": vms["remaps"].copy(),
        "running_s": run_s.copy(),
    }
    for cause in LOSS_CAUSES:
        cols[f"lost_{cause}_s"] = vms[f"lost_{cause}_s"].copy()
    for arr in cols.values():
        arr.flags.writeable = False
    return cols


# VMView fields read straight from a column of the same name.
_DIRECT = tuple(name for name in VMView.__dataclass_fields__
                if name not in ("id", "host", "status", "tenant", "workload", "lost_s",
                                "sla_status"))


def _workload(spec: VMSpec) -> str:
    return spec.workload.kind if spec.app is None else f"{spec.workload.kind}:{spec.app}"


class VMRows(Sequence[VMView]):
    """The snapshot's VMs: a sequence of VMView built row by row on first use, over the
    columns (`columns`) that tables, sums and sorting should read instead."""

    def __init__(self, ids: tuple[str, ...], specs: tuple[VMSpec, ...],
                 host_ids: tuple[str, ...], columns: Columns) -> None:
        self.ids = ids
        self.specs = specs
        self.host_ids = host_ids
        self.columns = columns
        self._rows: dict[int, VMView] = {}
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> VMView: ...

    @overload
    def __getitem__(self, i: slice) -> list[VMView]: ...

    def __getitem__(self, i: int | slice) -> VMView | list[VMView]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.ids)
        if not 0 <= i < len(self.ids):
            raise IndexError(i)
        row = self._rows.get(i)
        if row is None:
            row = self._rows[i] = self._build(i, {n: self.columns[n][i].item() for n in
                                                  (*_DIRECT, "host_index", "status_code",
                                                   *(f"lost_{c}_s" for c in LOSS_CAUSES))})
        return row

    def __iter__(self) -> Iterator[VMView]:
        if len(self._rows) < len(self.ids):  # build the rest in one pass over the columns
            names = (*_DIRECT, "host_index", "status_code",
                     *(f"lost_{c}_s" for c in LOSS_CAUSES))
            lists = {n: self.columns[n].tolist() for n in names}
            for i in range(len(self.ids)):
                if i not in self._rows:
                    self._rows[i] = self._build(i, {n: lists[n][i] for n in names})
        return (self._rows[i] for i in range(len(self.ids)))

    def _build(self, i: int, values: dict[str, Any]) -> VMView:
        spec = self.specs[i]
        h = values.pop("host_index")
        lost = {c: values.pop(f"lost_{c}_s") for c in LOSS_CAUSES}
        return VMView(id=self.ids[i], host=self.host_ids[h] if h >= 0 else None,
                      status=STATUSES[values.pop("status_code")], tenant=spec.tenant,
                      workload=_workload(spec), lost_s=lost,
                      sla_status="breached" if values["sla_breaches"] else "ok", **values)

    def index_of(self, vm_id: str) -> int:
        """Row of a VM id (KeyError if there is none)."""
        if self._index is None:
            self._index = {vm_id: i for i, vm_id in enumerate(self.ids)}
        return self._index[vm_id]

    def __contains__(self, item: object) -> bool:
        """A VM id, or a VMView of this snapshot."""
        vm_id = item.id if isinstance(item, VMView) else item
        if not isinstance(vm_id, str):
            return False
        try:
            i = self.index_of(vm_id)
        except KeyError:
            return False
        return not isinstance(item, VMView) or self[i] == item


def host_views(world: World, cols: Columns) -> tuple[HostView, ...]:
    state = world.state
    hosts, page, tick_s = state.hosts, state.page_size, state.tick_s
    n = len(hosts)
    running = cols["running"]
    on = cols["host_index"][running]

    def per_host(name: str) -> list[int]:
        sums = np.bincount(on, weights=cols[name][running], minlength=n)
        return [int(x) for x in np.rint(sums)]  # exact: the sums stay below 2**53

    private, configured = per_host("private_bytes"), per_host("configured_bytes")
    guest_shared, balloon = per_host("shared_bytes"), per_host("balloon_bytes")
    swapped, zero = per_host("swapped_bytes"), per_host("zero_bytes")
    double, cow = per_host("double_paging"), per_host("cow_breaks_tick")
    n_vms = np.bincount(on, minlength=n).tolist()
    counters = state.sharing.hosts
    ksm_stats = ksm_sysfs(state)  # sysfs semantics (memory/ksm.py)
    reclaim = state.reclaim.hosts

    # Each per-host column as Python numbers at once (a column's tolist), not one numpy
    # scalar per host and field: 10,000 hosts' views in tens of ms.
    def ints(a: Any) -> list[int]:
        return np.asarray(a).astype(np.int64).tolist()  # type: ignore[no-any-return]

    def floats(a: Any) -> list[float]:
        return np.asarray(a).astype(np.float64).tolist()  # type: ignore[no-any-return]

    up, states = np.asarray(hosts.up, np.bool_).tolist(), ints(reclaim["mem_state"])
    frames, free, free_low = ints(hosts.n_frames), ints(hosts.free_count), ints(hosts.free_low)
    shared_frames_of, modes = ints(counters["shared_frames"]), ints(counters["mode"])
    unshared, volatile = ints(ksm_stats["pages_unshared"]), ints(ksm_stats["pages_volatile"])
    rmap_items, full_scans = ints(ksm_stats["rmap_items"]), ints(counters["full_scans"])
    skipped = ints(counters["ksm_pages_skipped"])
    hints, unstable = ints(counters["hint_count"]), ints(counters["unstable_count"])
    hint_slots = ints(state.sharing.hints.size)
    hashed_tick, compares_tick = ints(counters["hashed_tick"]), ints(counters["compares_tick"])
    hashed, compares = ints(counters["hashed"]), ints(counters["compares"])
    nic_used = floats(state.nic_used_bytes_per_s)
    idle_tax, compressed = floats(reclaim["idle_tax"]), ints(reclaim["compressed_pages"])
    swapin, swapout = ints(reclaim["swapin_tick"]), ints(reclaim["swapout_tick"])
    balloon_tick, bounce = ints(reclaim["balloon_tick"]), ints(reclaim["bounce_tick"])
    remaps, low_evictions = ints(reclaim["remaps"]), ints(reclaim["low_evictions"])
    out = []
    for h, host_id in enumerate(hosts.ids):
        spec = hosts.specs[h]
        memory = frames[h] * page
        shared_frames = shared_frames_of[h]
        sharing_pages = guest_shared[h] // page - shared_frames
        out.append(HostView(
            id=host_id,
            up=up[h],
            switch=spec.switch,
            memory_bytes=memory,
            free_bytes=free[h] * page,
            private_bytes=private[h],
            # Frames holding shared pages: whatever is in use but not private.
            shared_bytes=shared_frames * page,
            balloon_bytes=balloon[h],
            swapped_bytes=swapped[h],
            shared_saved_bytes=sharing_pages * page,
            state=STATE_NAMES[states[h]],
            configured_vm_bytes=configured[h],
            overcommit_ratio=configured[h] / memory if memory else 0.0,
            n_vms=n_vms[h],
            nic_capacity_bytes_per_s=spec.nic,
            nic_used_bytes_per_s=nic_used[h],
            sharing_mode=SHARING_MODES[modes[h]],
            pages_shared=shared_frames,
            pages_sharing=sharing_pages,
            pages_unshared=unshared[h],
            pages_volatile=volatile[h],
            full_scans=full_scans[h],
            pages_skipped=skipped[h],
            hints=hints[h],
            zero_shared_bytes=zero[h],
            guest_shared_bytes=guest_shared[h],
            cow_breaks_per_s=cow[h] / tick_s,
            # Shared-frame and KSM tree entries, plus the hint table's fixed slots.
            table_overhead_bytes=TABLE_ENTRY_BYTES * (shared_frames + unstable[h])
            + HINT_SLOT_BYTES * hint_slots[h],
            pages_hashed_per_s=hashed_tick[h] / tick_s,
            page_compares_per_s=compares_tick[h] / tick_s,
            pages_hashed_total=hashed[h],
            page_compares_total=compares[h],
            # KSM's general_profit: bytes saved minus its 64-byte rmap_item per tracked page.
            ksm_general_profit_bytes=sharing_pages * page - KSM_RMAP_BYTES * rmap_items[h],
            idle_tax=idle_tax[h],
            compressed_bytes=compressed[h] * page,
            free_low_bytes=free_low[h] * page,
            swapins_per_s=swapin[h] / tick_s,
            swapouts_per_s=swapout[h] / tick_s,
            balloon_change_bytes=balloon_tick[h] * page,
            double_paging=double[h],
            bounce_copies_per_s=bounce[h] / tick_s,
            remaps=remaps[h],
            low_evictions=low_evictions[h],
        ))
    return tuple(out)


@dataclass(frozen=True)
class Snapshot:
    scenario: str
    tick: int
    time_s: float
    tick_s: float
    hosts: tuple[HostView, ...]
    vms: VMRows
    revenue: float
    costs: float
    penalties: float
    profit: float
    history: dict[str, tuple[float, ...]]
    objectives: tuple[dict[str, Any], ...]
    # Commands accepted and waiting for the next tick (timeline entries not included).
    pending: tuple[Command, ...] = ()
    _hosts_by_id: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def columns(self) -> Columns:
        """The VMs' columns (vm_columns): what tables, sums and sorts should read."""
        return self.vms.columns

    def host(self, host_id: str) -> HostView:
        if not self._hosts_by_id:
            self._hosts_by_id.update((h.id, i) for i, h in enumerate(self.hosts))
        return self.hosts[self._hosts_by_id[host_id]]

    def vm(self, vm_id: str) -> VMView:
        return self.vms[self.vms.index_of(vm_id)]

    def pending_vms(self) -> frozenset[str]:
        """VMs that a queued command names (a new VM's own id for a placement)."""
        out = set()
        for cmd in self.pending:
            vm = getattr(cmd, "vm", None)
            out.add(vm if isinstance(vm, str) else getattr(vm, "id", ""))
        return frozenset(out - {""})


def snapshot(world: World) -> Snapshot:
    state = world.state
    cols = vm_columns(world)
    money = state.money
    return Snapshot(
        scenario=world.spec.scenario.name,
        tick=state.tick,
        time_s=state.time_s,
        tick_s=state.tick_s,
        hosts=host_views(world, cols),
        vms=VMRows(tuple(state.vms.ids), tuple(state.vms.specs), tuple(state.hosts.ids), cols),
        revenue=money.revenue,
        costs=money.costs,
        penalties=money.penalties,
        profit=money.profit,
        history={k: tuple(v) for k, v in world.history.items()},
        objectives=tuple(evaluate_objectives(world)),
        pending=tuple(world.pending),
    )
