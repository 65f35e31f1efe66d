"""World state as structure-of-arrays: data only, no behaviour.

Guest pages of all VMs live in one flat set of arrays; VM v owns the slice
[vms.page_offset[v], vms.page_offset[v] + vms.n_pages[v]). Machine frames of all hosts live
in one flat set too; host h owns [hosts.frame_offset[h], ... + hosts.n_frames[h]), low
memory first. Frame ids are global, so "a page maps a frame of another host" is a range
check, and the free list of every host is a segment of one stack array.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import parallel
from engine.arrays import SegmentOf, sparse_zeros
from engine.hashing import name_key
from engine.pagescale import per_simulated_page
from engine.spec import HostSpec, SLASpec, VMSpec
from engine.state_tables import Money, Overhead, Reclaim, Schedule, Sharing
from engine.workloads.columns import workload_columns
from engine.workloads.images import regions

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

# Content ids: 0 is the zero page; ids with the top bit set come from a counter and are
# unique; the rest are hashes of (OS image or application, page number), so identical
# images give identical ids.
UNIQUE_CONTENT_BASE = 1 << 63


class Loc(IntEnum):
    UNTOUCHED = 0  # never touched since power-on: no frame, reads as zero
    PRIVATE = 1  # own machine frame
    SHARED = 2  # copy-on-write frame shared by content
    SWAPPED = 3  # in the hypervisor's swap file
    BALLOONED = 4  # pinned by the balloon driver; frame given back to the host
    REMOTE = 5  # post-copy: still at the migration source
    COMPRESSED = 6  # in the host's compression cache: two pages to a frame


N_LOC = len(Loc)


class GuestKind(IntEnum):
    """What the guest OS uses a guest-physical page for."""

    FREE = 0  # on the guest's free list (or never used)
    ANON = 1  # process memory of the workload's working set
    CACHE = 2  # the guest's page cache (file blocks, clean: dropped under pressure)
    DRIVER = 3  # pinned by the balloon driver (its frame went back to the hypervisor)


N_KIND = len(GuestKind)
# Causes of lost service, each a per-VM array "lost_<cause>_s_tick" (seconds this tick)
# and a cumulative "lost_<cause>_s". The first seven stall the vCPU (they add to
# stall_s_tick, which sets a closed-loop workload's pace).
LOSS_CAUSES = ("swap", "guest_paging", "page_cache", "cow", "dirty_log", "postcopy",
               "downtime", "memory_stall", "throttle", "nic")
STALL_CAUSES = LOSS_CAUSES[:7]
SAMPLE_PAGES = 100  # ESX: pages sampled per VM per period for the active-memory estimate
BALLOON_START_RATE = 1024.0  # 4 KiB pages/s; the driver adapts it (memory/balloon.py)
BALLOON_POLL_S = 1.0  # ESX's balloon driver polls its target once a second
RESIDENT_LOCS = (Loc.PRIVATE, Loc.SHARED)


SPARSE_PAGES = 1 << 20  # worlds smaller than this keep ordinary arrays


# A page's location and guest kind, the two fields every touch reads, share one 2-byte
# record, so a touch costs one cache miss for both instead of one each. The fields are
# strided views of the record (`pages.location`, `pages.guest_kind`); the hot path reads
# them together as one little-endian word (`pages.word`: location | kind << 8).
META_FIELDS = ("location", "guest_kind")
PAGE_META = np.dtype([("location", np.uint8), ("guest_kind", np.uint8)])
WORD_SHIFT = {name: 8 * i for i, name in enumerate(META_FIELDS)}
# The guest kinds the page cache's walks take pages of (memory/walk_pick.py), as bits.
FREE_OR_CACHED = (1 << GuestKind.FREE) | (1 << GuestKind.CACHE)


def free_or_cached_bits(word: npt.NDArray[np.uint16]) -> U64:
    """One bit a page of `word` (page i: bit i % 64 of element i // 64), set where its
    guest kind is free or cache, exactly; the bits past the last page clear."""
    kind = word >> np.uint16(WORD_SHIFT["guest_kind"])
    usable = (kind == GuestKind.FREE) | (kind == GuestKind.CACHE)
    packed = np.packbits(usable, bitorder="little")
    out = np.zeros(-(-word.size // 64), np.uint64)
    out.view(np.uint8)[:packed.size] = packed
    return out


def _all_set(n: int) -> U64:
    """free_or_cached_bits of n pages that are all free (a new world's)."""
    out = np.full(-(-n // 64), np.uint64(0xFFFF_FFFF_FFFF_FFFF), np.uint64)
    if n % 64:
        out[-1] = np.uint64((1 << (n % 64)) - 1)
    return out


@dataclass
class Pages:
    content: U64
    frame: I32
    guest_swapped: Bool  # the guest paged this page's data out to its virtual disk
    io_count: U8  # bounce copies of the page since it was last remapped (saturating)
    dirty: Bool  # migration dirty log: written for pre-copying VMs only (memory/touch.py)
    # The sampling period the guest last touched the page in, as a code (0 never;
    # memory/recency.py): the hypervisor's sample, the guest's recency (this period and
    # the last) and the true active set. Written by a touch without being read.
    touched: U8
    # The tick of the last write + 1, 0 never: a new world's array is all zeros, which
    # the OS maps lazily, so building the world does not write it (0.5 GiB on the
    # 1,000-VM data center, where a page is first written by its guest, not at boot).
    written_before: I32
    meta: npt.NDArray[np.void]  # location (Loc) and guest kind (GuestKind), see above
    # One bit a page (page i: bit i % 64 of element i // 64), set for every page whose
    # guest kind is free or cache, and perhaps for some that were and are no longer: the
    # page cache's walks (memory/walk_pick.py) pass only the pages set, a 64th of the
    # page records' bytes, and clear the bits they find stale. Every change of a page's
    # kind to free or cache sets its bit (memory/kind_bits.py; invariants.py checks it).
    # Derived from the kinds: not saved, rebuilt on load.
    free_or_cached: U64

    @classmethod
    def empty(cls, n: int) -> Pages:
        # Fields most pages never set (guest paging, I/O bounces, the dirty log of a
        # migration) in small-page zeros: only the parts written take memory (about
        # 0.2 GiB less on the 1,000-VM data center than huge-page zeros would hold).
        rare = sparse_zeros if n >= SPARSE_PAGES else np.zeros
        return cls(
            content=np.zeros(n, np.uint64),
            frame=parallel.full(n, -1, np.int32),
            guest_swapped=rare(n, np.bool_),
            io_count=rare(n, np.uint8),
            dirty=rare(n, np.bool_),
            touched=np.zeros(n, np.uint8),
            written_before=np.zeros(n, np.int32),
            meta=np.zeros(n, PAGE_META),
            free_or_cached=_all_set(n),  # every page starts free
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> Pages:
        """Pages from one array per field (as `arrays()` gives them)."""
        meta = np.zeros(len(arrays["content"]), PAGE_META)
        for name in META_FIELDS:
            meta[name] = arrays[name]
        return cls(meta=meta, free_or_cached=free_or_cached_bits(meta.view("<u2")),
                   **{k: v for k, v in arrays.items() if k not in META_FIELDS})

    @property
    def location(self) -> U8:
        return self.meta["location"]

    @property
    def guest_kind(self) -> U8:
        return self.meta["guest_kind"]

    @property
    def word(self) -> npt.NDArray[np.uint16]:
        """Each page's record as one word: location | guest kind << 8."""
        return self.meta.view("<u2")

    def at(self, name: str, idx: npt.NDArray[Any] | slice) -> U8:
        """Field `name` ("location" or "guest_kind") of pages `idx` (indices or a slice):
        one gather of their words. (np.take of a field's strided view would first copy
        the whole field, and indexing it is 3.5 times slower than this.)"""
        words = self.word[idx] if isinstance(idx, slice) else parallel.take(self.word, idx)
        return (words >> np.uint16(WORD_SHIFT[name])).astype(np.uint8)

    def __len__(self) -> int:
        return int(self.content.shape[0])

    def extend(self, n: int) -> int:
        """Append n fresh pages; return the offset of the first one."""
        start = len(self)
        more = Pages.empty(n).arrays()
        grown = Pages.from_arrays({k: np.concatenate([v, more[k]])
                                   for k, v in self.arrays().items()})
        for f in fields(self):
            setattr(self, f.name, getattr(grown, f.name))
        return start

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """One array per field (the record's fields as views of it), by name; not the
        derived free_or_cached bits."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("meta", "free_or_cached")}
        out.update({name: getattr(self, name) for name in META_FIELDS})
        return out


@dataclass
class Frames:
    refcount: I32  # guest pages mapping the frame; 0 = free
    # Per-host segments of free frames, the top at the end (memory/frames.py). Slot i
    # holds its frame's id minus i, so a new world's stacks (every frame in its own slot)
    # are all zeros: memory the OS maps lazily and the build never writes (0.4 GiB on the
    # 1,000-VM data center, nine tenths of which boot pops at once).
    free_stack_delta: I32

    def stack_at(self, slots: npt.NDArray[Any]) -> I64:
        """The frames in the given stack slots."""
        return np.asarray(np.take(self.free_stack_delta, slots) + slots, np.int64)

    def stack_run(self, lo: int, hi: int) -> I32:
        """The frames in stack slots lo..hi-1."""
        out = np.arange(lo, hi, dtype=np.int32)
        out += self.free_stack_delta[lo:hi]
        return out

    def put(self, slots: npt.NDArray[Any], frames: npt.NDArray[Any]) -> None:
        """Write frames into the given stack slots."""
        self.free_stack_delta[slots] = frames - slots

    def put_run(self, lo: int, frames: npt.NDArray[Any]) -> None:
        """Write frames into stack slots lo, lo + 1, ..."""
        self.free_stack_delta[lo:lo + frames.size] = frames - np.arange(
            lo, lo + frames.size, dtype=np.int32)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"refcount": self.refcount, "free_stack_delta": self.free_stack_delta}


@dataclass
class Hosts:
    ids: list[str]
    specs: list[HostSpec]
    frame_offset: I64
    n_frames: I64
    low_frames: I64
    free_count: I64  # all free frames
    free_low: I64  # of which low (below 4 GB)
    up: Bool
    cpus: F64
    idle_w: F64
    peak_w: F64
    capital_per_hour: F64
    swap_latency_s: F64
    swap_disk_bytes_per_s: F64
    _frame_index: SegmentOf | None = field(default=None, repr=False, compare=False)

    def index(self, host_id: str) -> int:
        return self.ids.index(host_id)

    def host_of_frames(self, frames: npt.NDArray[np.integer[Any]]) -> I64:
        """The host of each machine frame (hosts' frame ranges are contiguous and in
        order), by table (arrays.SegmentOf) while frame_offset stays the same array."""
        index = self._frame_index
        if index is None or index.starts is not self.frame_offset:
            end = int(self.frame_offset[-1] + self.n_frames[-1]) if len(self.ids) else 0
            index = self._frame_index = SegmentOf(self.frame_offset, end)
        return index(frames)

    def __len__(self) -> int:
        return len(self.ids)


# Per-VM arrays, all of length n_vms; VMs are only ever appended, never removed.
VM_ARRAY_DTYPES: dict[str, Any] = {
    "page_offset": np.int64,
    "n_pages": np.int64,
    "host": np.int64,  # -1 when not running
    "started": np.bool_,  # has been powered on at least once (else: a queued request)
    "shares": np.int64,
    "min_pages": np.int64,
    "max_pages": np.int64,
    "seq_cursor": np.int64,
    "loc_count": np.int64,  # (n_vms, N_LOC) pages by location
    "kind_count": np.int64,  # (n_vms, N_KIND) pages by guest kind
    "guest_swapped_count": np.int64,
    "reads": np.int64,  # cumulative counters from here on
    "writes": np.int64,
    "first_touches": np.int64,
    "cow_breaks": np.int64,
    "stalled_ops": np.int64,
    "stalled_ops_tick": np.int64,
    "ops_tick": np.int64,
    # workload parameters, copied from the spec so the tick never touches pydantic
    # (engine/workloads/columns.py); ws_start: first page of the working set in the VM
    "ws_start": np.int64,
    "reads_per_s": np.float64,
    "writes_per_s": np.float64,
    "ws_pages": np.int64,
    "hot_pages": np.int64,
    "hot_access": np.float64,
    "sequential": np.bool_,
    "zero_writes": np.float64,
    "cpu_util": np.float64,
    "vcpus": np.float64,
    "net_bytes_per_s": np.float64,
    "price_per_hour": np.float64,
    # page sharing
    "scan_credit": np.float64,
    "zero_shared": np.int64,  # shared pages holding the zero page
    "cow_breaks_tick": np.int64,
    "salt_tenant_key": np.uint64,  # salt if set, else the tenant
    "salt_own_key": np.uint64,  # salt if set, else the VM itself
    # allocation and reclamation (memory/allocation.py, balloon.py, swap.py)
    "target_pages": np.int64,  # allocation target
    "balloon_driver": np.bool_,  # a balloon driver is installed and enabled
    "balloon_target": np.int64,  # pages the driver is asked to hold
    "balloon_forced": np.int64,  # operator-forced balloon target, -1 = none
    "balloon_rate": np.float64,  # adaptive inflation rate, pages/s
    "swap_forced": np.int64,  # operator-forced swap target, -1 = none
    "swap_goal": np.int64,  # pages the policy wants swapped out now
    "blocked": np.bool_,  # stopped by the hypervisor in the low memory state
    # active-memory sampling (memory/sampling.py)
    "sample": np.int64,  # (n_vms, SAMPLE_PAGES) pages invalidated this period
    "active_slow": np.float64,
    "active_fast": np.float64,
    "active_estimate": np.float64,
    "active_true": np.float64,  # ground truth of the last period
    # guest page cache workloads (workloads/filecache.py)
    "dataset_pages": np.int64,
    "dataset_key": np.uint64,
    "file_reads_per_s": np.float64,
    "closed_loop": np.bool_,
    "speed": np.float64,  # closed-loop share of full speed this tick (workloads/phase.py)
    "guest_disk_latency_s": np.float64,
    "decompress_s": np.float64,
    # faults and service this tick, then cumulative
    "guest_faults_tick": np.int64,  # guest page-ins from its virtual disk
    "swapins_tick": np.int64,  # hypervisor swap-ins
    "file_misses_tick": np.int64,
    "file_reads_tick": np.int64,
    "stall_s_tick": np.float64,  # time the VM waited on faults this tick (sum of causes)
    "guest_faults": np.int64,
    "swapins": np.int64,
    "swapouts": np.int64,
    "pops": np.int64,  # ballooned pages touched and given back
    "double_paging": np.int64,
    "file_reads": np.int64,
    "file_misses": np.int64,
    "guest_evictions": np.int64,  # pages the guest paged out for the balloon
    "throttle": np.float64,  # vCPU throttle (migration auto-converge)
    "precopying": np.bool_,  # in a pre-copy migration: its writes are logged
    "daily_peak_h": np.float64,  # -1: flat demand
    "daily_trough": np.float64,
    "demand_scale": np.float64,  # this tick's share of peak demand
    "downtime_s": np.float64,  # cumulative time paused (migration stop-and-copy)
    # service, SLA and money (engine/service.py, economy/)
    "service_tick": np.float64,  # share of this tick's demand served
    "latency_s": np.float64,  # mean latency of an operation this tick
    "served_s": np.float64,  # cumulative: running seconds x service level
    "running_s": np.float64,  # cumulative seconds running
    "unavailable_s": np.float64,  # cumulative: down (paused, blocked, lost)
    "window_running_s": np.float64,  # the current SLA window
    "window_served_s": np.float64,
    "window_unavailable_s": np.float64,
    "window_revenue": np.float64,
    "sla_breaches": np.int64,
    "penalties": np.float64,
    "revenue": np.float64,
    "lost_vm": np.bool_,  # went down with a host or a failed post-copy
    "sla_availability": np.float64,
    "sla_performance": np.float64,
    "sla_availability_credit": np.float64,
    "sla_performance_credit": np.float64,
    # device I/O (memory/remap.py)
    "dma32": np.bool_,
    "io_pages_per_s": np.float64,
    "io_set_pages": np.int64,
    "bounces_tick": np.int64,
    "bounces": np.int64,
    "remaps": np.int64,
    # boot (memory/boot.py): positions of the boot plan written so far, of how many, at
    # what pace (0: as fast as memory allows); the VM's unique content ids start at base
    "booting": np.bool_,
    "boot_cursor": np.int64,
    "boot_total": np.int64,
    "boot_rate": np.float64,
    "boot_unique_base": np.uint64,
    "boot_started_s": np.float64,
    "boot_stall_s_tick": np.float64,  # share of the tick the boot waited for memory
    "boot_stall_s": np.float64,
    # overhead memory (memory/overhead.py): frames wanted, held, and reserved at the
    # destination of a migration; the VM's slots in the overhead frame table
    "overhead_offset": np.int64,
    "overhead_pages": np.int64,
    "overhead_held": np.int64,
    "overhead_reserved": np.int64,
    "overhead_dst": np.int64,  # host of the reservation, -1 none
    # workload schedule (workloads/schedule.py): the VM's rows in the phase table, the
    # current one, when its workload started (-1: not yet) and the cycle length (0: none)
    "phase_offset": np.int64,
    "phase_count": np.int64,
    "phase_index": np.int64,
    "phase_t0_s": np.float64,
    "phase_period_s": np.float64,
}


for _cause in LOSS_CAUSES:
    VM_ARRAY_DTYPES[f"lost_{_cause}_s_tick"] = np.float64
    VM_ARRAY_DTYPES[f"lost_{_cause}_s"] = np.float64

VM_ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "loc_count": (N_LOC,),
    "kind_count": (N_KIND,),
    "sample": (SAMPLE_PAGES,),
}


def _vm_row(spec: VMSpec, page_offset: int, n_pages: int, page_size: int,
            price_per_hour: float, sla: SLASpec) -> dict[str, Any]:
    wl = spec.workload
    contract = spec.sla or sla
    return {
        **workload_columns(wl, regions(spec, n_pages, page_size), page_size),
        "vcpus": spec.vcpus,
        "price_per_hour": price_per_hour,
        "target_pages": spec.max_bytes // page_size,
        "sla_availability": contract.availability,
        "sla_performance": contract.performance,
        "sla_availability_credit": contract.availability_credit,
        "sla_performance_credit": contract.performance_credit,
        "balloon_driver": spec.balloon_driver,
        "balloon_forced": -1,
        "balloon_rate": per_simulated_page(BALLOON_START_RATE, page_size),  # vmlife sets it
        "swap_forced": -1,
        "active_slow": 1.0,
        "active_fast": 1.0,
        "active_estimate": 1.0,
        "dataset_key": name_key("file", f"{spec.tenant}/{spec.app or spec.id}"),
        "speed": 1.0,
        "guest_disk_latency_s": spec.guest_disk_latency,
        "dma32": spec.dma32,
        "demand_scale": 1.0,
        "salt_tenant_key": name_key("salt", spec.salt or f"tenant:{spec.tenant}"),
        "salt_own_key": name_key("salt", spec.salt or f"vm:{spec.id}"),
        "page_offset": page_offset,
        "n_pages": n_pages,
        "host": -1,
        "shares": spec.shares_value,
        "min_pages": spec.min // page_size,
        "max_pages": spec.max_bytes // page_size,
        "overhead_dst": -1,
        "phase_t0_s": -1.0,
    }


@dataclass
class VMs:
    ids: list[str]
    specs: list[VMSpec]
    arrays: dict[str, npt.NDArray[Any]]
    _page_index: SegmentOf | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls) -> VMs:
        arrays: dict[str, npt.NDArray[Any]] = {
            name: np.zeros((0, *VM_ARRAY_SHAPES.get(name, ())), dtype)
            for name, dtype in VM_ARRAY_DTYPES.items()
        }
        return cls([], [], arrays)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.arrays[name]

    def __setitem__(self, name: str, value: npt.NDArray[Any]) -> None:
        # Supports `vms["x"] += ...`; the array is updated in place, dtype kept.
        self.arrays[name][...] = value
        if name == "page_offset":
            self._page_index = None

    def index(self, vm_id: str) -> int:
        return self.ids.index(vm_id)

    def extend(self, specs: list[VMSpec], page_offsets: list[int], n_pages: list[int],
               page_size: int, prices: list[float], sla: SLASpec) -> range:
        """Append VMs (all columns at once); returns their indices."""
        rows = [_vm_row(spec, off, n, page_size, price, sla) for spec, off, n, price in
                zip(specs, page_offsets, n_pages, prices, strict=True)]
        first = len(self.ids)
        for name, arr in self.arrays.items():
            new = np.zeros((len(rows), *arr.shape[1:]), arr.dtype)
            if name == "loc_count":
                new[:, Loc.UNTOUCHED] = n_pages
            elif name == "kind_count":
                new[:, GuestKind.FREE] = n_pages
            elif arr.ndim == 1:
                new[:] = [row.get(name, 0) for row in rows]
            self.arrays[name] = np.concatenate([arr, new])
        self.ids.extend(spec.id for spec in specs)
        self.specs.extend(specs)
        return range(first, len(self.ids))

    def append(self, spec: VMSpec, page_offset: int, n_pages: int, page_size: int,
               price_per_hour: float, sla: SLASpec) -> int:
        return self.extend([spec], [page_offset], [n_pages], page_size, [price_per_hour],
                           sla)[0]

    @property
    def running(self) -> Bool:
        return np.asarray(self.arrays["host"] >= 0)

    def vm_of_pages(self, pages: npt.NDArray[np.integer[Any]]) -> I64:
        """VM index of each global page index (VM slices are contiguous and ordered): what
        searchsorted over the VMs' first pages gives, by a table (arrays.SegmentOf) kept
        while the VMs' page offsets stay the same array (extend makes a new one)."""
        return self.page_index()(pages)

    def page_index(self) -> SegmentOf:
        """vm_of_pages' table (for compiled loops that look pages' VMs up themselves)."""
        offsets = self.arrays["page_offset"]
        index = self._page_index
        if index is None or index.starts is not offsets:
            end = int(offsets[-1] + self.arrays["n_pages"][-1]) if offsets.size else 0
            index = self._page_index = SegmentOf(offsets, end)
        return index


@dataclass
class State:
    page_size: int
    tick_s: float
    pages: Pages
    frames: Frames
    hosts: Hosts
    vms: VMs
    sharing: Sharing = field(default_factory=lambda: Sharing.empty(0, [], 1))
    reclaim: Reclaim = field(
        default_factory=lambda: Reclaim.empty(0, 0.75, [0.06, 0.04, 0.02, 0.01]))
    # engine.migration.model.MigrationTable (an empty list until the first migration)
    migrations: Any = field(default_factory=list)
    # This tick's writes of pre-copying VMs: (pages, whether each was dirty before), so the
    # migration phase can replay them at times within the tick. Empty between ticks.
    write_log: list[tuple[I64, Bool]] = field(default_factory=list)
    # This tick's touches of VMs in post-copy (reads, writes, their content, guest kind),
    # held back by the touch path for the migration phase to run in time with the pages'
    # arrival. Empty between ticks.
    held_touches: list[tuple[I64, I64, U64, int]] = field(default_factory=list)
    tick: int = 0
    next_unique_content: int = UNIQUE_CONTENT_BASE
    money: Money = field(default_factory=Money)
    overhead: Overhead = field(default_factory=Overhead.empty)
    layout_seed: int = 0  # the scenario seed: scatters calibrated content (memory/layout.py)
    schedule: Schedule = field(default_factory=Schedule.empty)
    # The code of the sampling period this tick's touches belong to (they write it into
    # `pages.touched`), and of the one before, which the guest still counts as recent
    # (memory/recency.py; set by the sampling phase, derived from the tick on load).
    touch_code: int = 1
    previous_code: int = 0
    nic_used_bytes_per_s: F64 = field(default_factory=lambda: np.zeros(0))
    vm_net_bytes_per_s: F64 = field(default_factory=lambda: np.zeros(0))

    @property
    def time_s(self) -> float:
        return self.tick * self.tick_s
