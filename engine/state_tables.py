"""The world's per-host mechanism tables and its money ledger, beside the page, frame,
host and VM arrays of engine/state.py: page-sharing tables and counters (memory/sharing.py,
ksm.py, share_ops.py), reclamation state per host (memory/states.py, swap.py, remap.py)
and the running totals of revenue, costs and penalties (economy/). Data only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.hashtable import FrameKeys, HintTable, RegionMap, U64Map

I32 = npt.NDArray[np.int32]
U64 = npt.NDArray[np.uint64]

SHARING_MODES = ("off", "esx", "ksm")
# Per-host sharing counters (all int64 unless listed in _FLOAT_HOST_SHARING).
HOST_SHARING_ARRAYS = (
    "mode",  # index into SHARING_MODES
    "shared_frames",  # frames currently shared (KSM: pages_shared)
    "hint_count",  # ESX hints in the table (occupied slots; a stale one counts until found)
    "hint_hits",  # cumulative: a scanned page matched a valid hint and both were shared
    "hint_stale",  # cumulative: matched a hint whose page was written or changed since
    "hint_misses",  # cumulative: no entry (no shared frame, no hint) for the page's key
    "hint_overwrites",  # cumulative: a new hint took the slot of another key's hint
    "unstable_count",  # KSM unstable-tree entries of the current generation
    "ksm_cursor",  # position of the KSM scan in the host's page order
    "ksm_gen",  # generation of the unstable tree (bumped at each full scan)
    "full_scans",
    "volatile_this_scan",
    "volatile_last_scan",
    "hashed",  # cumulative CPU cost counters: pages hashed or checksummed
    "compares",  # full page compares / tree comparisons
    "hashed_tick",
    "compares_tick",
    "ksm_credit",
    # KSM's sysfs counters that are not derived from the frames (mm/ksm.c): rmap_items
    # (pages ksmd tracks) and pages_unshared (tracked pages in an unstable tree)
    "ksm_rmap_items",
    "ksm_unshared",
    "ksm_pages_skipped",  # cumulative: pages smart scan passed over (sysfs pages_skipped)
    # pages that became shared, by the background scan and by share-before-swap
    "scan_shared",
    "swap_shared",
    "scan_shared_tick",
    "swap_shared_tick",
)
_FLOAT_HOST_SHARING = {"ksm_credit"}
# KSM smart scan (sharing.ksm_age): the age past which a page's skips stop growing, and the
# most skips it is given at once (mm/ksm.c skip_age).
KSM_MAX_AGE = 9
KSM_MAX_SKIPS = 8


@dataclass
class Sharing:
    """Page-sharing tables and counters; keys mix content, salt and host (memory/share_ops).

    stable: shared frames (ESX shared entries, KSM stable tree), key -> frame, aux content.
    hints: ESX hints, a fixed-size table per host: key -> guest page and when it was hashed.
    unstable: KSM unstable trees, one region per host (hashtable.RegionMap), key -> guest
    page; a host's region is emptied when its full scan ends.
    frame_keys: the stable key each shared frame is shared under (sparse: a bit per frame
    and a map of the shared ones; `frame_key` gives it as one key per frame, 0 = not shared).
    ksm_scanned_at: per page, 1 + the tick KSM last checksummed it (0 never); only once any
    host has used KSM, to spare the memory otherwise. ksm_unstable: per page, whether its
    last scan left it in an unstable tree (sysfs pages_unshared counts these). ksm_age:
    per page, smart scan's age (low four bits: the scans it was visited unmerged, capped at
    9, past which the kernel's skips no longer grow) and the skips it has left (high four).
    """

    stable: U64Map
    hints: HintTable
    unstable: U64Map
    frame_keys: FrameKeys
    hosts: dict[str, npt.NDArray[Any]]
    salting: int
    ksm_scanned_at: I32 | None = None
    ksm_unstable: npt.NDArray[np.bool_] | None = None
    ksm_age: npt.NDArray[np.uint8] | None = None
    # Per host, scan positions per page handed over in its last KSM pass: where the next
    # pass starts looking (memory/ksm_scan.py reach). A speed hint only, never saved: the
    # positions a pass covers do not depend on it.
    ksm_reach_hint: npt.NDArray[np.float64] | None = field(default=None, compare=False,
                                                           repr=False)

    @classmethod
    def empty(cls, n_frames: int, modes: list[int], salting: int,
              hint_slots: npt.NDArray[np.int64] | None = None) -> Sharing:
        """`hint_slots`: the hint table's slots per host (policy.sharing.hint_table times
        the host's frames); 16 per host when not given."""
        hosts = {name: np.zeros(len(modes), np.float64 if name in _FLOAT_HOST_SHARING
                                else np.int64) for name in HOST_SHARING_ARRAYS}
        hosts["mode"][:] = modes
        slots = np.full(len(modes), 16, np.int64) if hint_slots is None else hint_slots
        return cls(U64Map(), HintTable(slots), RegionMap(np.full(len(modes), 16, np.int64)),
                   FrameKeys(n_frames), hosts, salting)

    @property
    def frame_key(self) -> U64:
        """One key per frame, 0 where not shared: a whole new array of n_frames (for tests
        and checks on small worlds; saves hold the shared frames and their keys)."""
        return self.frame_keys.dense()


MEM_STATE_NAMES = ("high", "soft", "hard", "low")
# Per-host reclamation arrays (memory/states.py, swap.py, remap.py).
HOST_RECLAIM_ARRAYS: dict[str, Any] = {
    "mem_state": np.int64,  # index into MEM_STATE_NAMES, with hysteresis
    "idle_tax": np.float64,  # tau
    "swapped_pages": np.int64,
    "compressed_pages": np.int64,
    "swap_capacity_pages": np.int64,
    "swapin_tick": np.int64,
    "swapout_tick": np.int64,
    "disk_busy_s_tick": np.float64,  # swap disk seconds asked this tick, with the backlog
    "balloon_tick": np.int64,  # pages ballooned (+) or released (-) this tick
    "next_balance_tick": np.int64,
    "bounce_tick": np.int64,  # bounce-buffer copies this tick
    "bounces": np.int64,
    "remaps": np.int64,  # pages moved into low memory
    "low_evictions": np.int64,  # cold pages moved out of low memory to make room
}


@dataclass
class Reclaim:
    hosts: dict[str, npt.NDArray[Any]]
    thresholds: list[float]  # free fractions: high, soft, hard, low
    realloc: bool = True  # reallocate at the next tick (a parameter changed)

    @classmethod
    def empty(cls, n_hosts: int, tax: float, thresholds: list[float]) -> Reclaim:
        hosts = {name: np.zeros(n_hosts, dtype) for name, dtype in HOST_RECLAIM_ARRAYS.items()}
        hosts["idle_tax"][:] = tax
        return cls(hosts, list(thresholds))


@dataclass
class Money:
    revenue: float = 0.0
    costs: float = 0.0
    penalties: float = 0.0
    revenue_tick: float = 0.0
    costs_tick: float = 0.0
    penalties_tick: float = 0.0
    power_cost: float = 0.0  # the parts of costs
    capital_cost: float = 0.0
    network_cost: float = 0.0
    migration_bytes: int = 0  # migration traffic billed so far

    @property
    def profit(self) -> float:
        return self.revenue - self.costs - self.penalties


@dataclass
class Overhead:
    """Frames that back VMs' overhead memory (memory/overhead.py). VM v owns the slots
    [vms.overhead_offset[v], + vms.overhead_pages[v]) of both arrays: `frames` holds its
    overhead frames on its host (the first overhead_held), `reserved` those reserved for it
    at a migration's destination (the first overhead_reserved)."""

    frames: I32
    reserved: I32

    @classmethod
    def empty(cls) -> Overhead:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int32))

    def extend(self, n: int) -> int:
        start = self.frames.size
        self.frames = np.concatenate([self.frames, np.full(n, -1, np.int32)])
        self.reserved = np.concatenate([self.reserved, np.full(n, -1, np.int32)])
        return start


@dataclass
class Schedule:
    """Workload phase table (workloads/schedule.py), rebuilt from the VM specs: row r
    starts `start_s[r]` seconds into its VM's workload and sets `columns[...][r]`. VM v owns
    rows [vms.phase_offset[v], + vms.phase_count[v])."""

    start_s: npt.NDArray[np.float64]
    columns: dict[str, npt.NDArray[Any]]

    @classmethod
    def empty(cls) -> Schedule:
        return cls(np.zeros(0), {})
