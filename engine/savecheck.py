"""A save's arrays checked against its (already validated) plain data, before the world is
rebuilt from them: every array present, of a numeric dtype, of the shape the scenario
implies, its indices in range and its floats finite; the hash tables not full (a lookup in
a full open-addressing table never ends); the migrations consistent with the VMs they
move. What this lets through, engine/invariants.py then checks on the rebuilt world.

Each check raises ValueError naming the array; persistence turns it into an InputError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import budgets
from engine.hashtable import DELETED, EMPTY
from engine.migration.model import CODED, COLUMNS, NEWER_COLUMNS, POSTCOPY, PRECOPY
from engine.ranges import MAX_PER_S
from engine.savemodel import (
    FRAME_KEY_FRAMES,
    FRAME_KEY_KEYS,
    FREE_STACK_DELTA,
    KSM_SCANNED,
    MigrationsPlain,
    SaveMeta,
)
from engine.state import (
    N_KIND,
    N_LOC,
    UNIQUE_CONTENT_BASE,
    VM_ARRAY_DTYPES,
    VM_ARRAY_SHAPES,
    Loc,
    Pages,
)
from engine.state_tables import (
    HOST_RECLAIM_ARRAYS,
    HOST_SHARING_ARRAYS,
    KSM_MAX_AGE,
    KSM_MAX_SKIPS,
    SHARING_MODES,
)

Arrays = dict[str, npt.NDArray[Any]]

# Per-VM columns that are indices or sizes in pages, or rates the workload draws from.
# Migration columns where infinity means "none" (no post-copy cap, no post-copy time).
# Unlimited: a post-copy rate of 0 in a command is an infinite cap, which a migration in
# post-copy also runs its round under (switchover.py), and a round opened under it keeps.
_MAY_BE_INFINITE = frozenset({"postcopy_rate", "postcopy_after_s", "round_rate", "round_cap"})
# Fields a save from before them lacks (engine/migration/arena.py Arena.load fills them).
_NEWER_ARENA_FIELDS: dict[str, tuple[str, ...]] = {"pages": ("swap_read",)}
_ARENAS = {"pages": ("sent", "at_dest", "pushed"), "lists": ("entry",),
           "cache": ("page", "age"), "dirty": ("page",)}
_RATE_COLUMNS = ("reads_per_s", "writes_per_s", "file_reads_per_s", "io_pages_per_s")


def check_arrays(meta: SaveMeta, arrays: Arrays) -> None:
    spec = meta.scenario
    page = spec.scenario.page_size
    n_pages = sum(v.memory // page for v in meta.all_vm_specs())
    host_specs = spec.all_hosts()
    host_frames = np.array([h.memory // page for h in host_specs], np.int64)
    n_frames, n_hosts = int(host_frames.sum()), len(host_specs)
    n_vms = len(meta.all_vm_specs())

    for name in arrays:
        if arrays[name].dtype.kind not in "biuf":
            raise ValueError(f"array {name}: expected numbers, got dtype {arrays[name].dtype}")

    def get(name: str, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
        if name not in arrays:
            raise ValueError(f"array {name} is missing")
        arr = arrays[name]
        if arr.shape != shape:
            raise ValueError(f"array {name}: expected shape {shape}, got {arr.shape}")
        want = np.dtype(dtype)
        if arr.dtype != want:
            raise ValueError(f"array {name}: expected {want}, got {arr.dtype}")
        if want.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"array {name}: holds a non-finite number")
        return arr

    def within(name: str, arr: npt.NDArray[Any], lo: float, hi: float) -> None:
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"array {name}: values must lie in [{lo:g}, {hi:g}]")

    old_form = meta.schema_version < 5  # written ticks and free stacks as the values
    empty = Pages.empty(0)
    for field, proto in empty.arrays().items():
        name = f"pages.{field}"
        if field == "touched" and name not in arrays:
            # Older saves: rebuilt from their accessed bits (engine/persistence.py).
            get("pages.accessed", (n_pages,), np.bool_)
            if "pages.accessed_prev" in arrays:
                get("pages.accessed_prev", (n_pages,), np.bool_)
            continue
        if field == "written_before" and old_form:
            within("pages.written_at", get("pages.written_at", (n_pages,), np.int32), -1,
                   meta.tick)
            continue
        get(name, (n_pages,), proto.dtype)
    within("pages.location", arrays["pages.location"], 0, N_LOC - 1)
    within("pages.guest_kind", arrays["pages.guest_kind"], 0, N_KIND - 1)
    within("pages.frame", arrays["pages.frame"], -1, n_frames - 1)
    if not old_form:
        within("pages.written_before", arrays["pages.written_before"], 0, meta.tick + 1)
    content = arrays["pages.content"]
    unique = content[content >= np.uint64(UNIQUE_CONTENT_BASE)]
    if unique.size and int(unique.max()) >= meta.next_unique_content:
        raise ValueError("pages.content: unique content ids from after next_unique_content")

    within("frames.refcount", get("frames.refcount", (n_frames,), np.int32), 0, n_pages)
    if old_form:
        within("frames.free_stack", get("frames.free_stack", (n_frames,), np.int32), 0,
               n_frames - 1)
    else:  # each slot's frame minus the slot
        delta = get(FREE_STACK_DELTA, (n_frames,), np.int32)
        within(FREE_STACK_DELTA, delta + np.arange(n_frames, dtype=np.int32), 0, n_frames - 1)
    _check_frame_keys(meta, arrays, get, n_frames)

    free = get("hosts.free_count", (n_hosts,), np.int64)
    within("hosts.free_count", free - host_frames, -np.inf, 0)
    within("hosts.free_count", free, 0, np.inf)
    free_low = get("hosts.free_low", (n_hosts,), np.int64)
    within("hosts.free_low", free - free_low, 0, np.inf)
    within("hosts.free_low", free_low, 0, np.inf)
    get("hosts.up", (n_hosts,), np.bool_)
    n_links = 2 * (len(spec.links) + n_hosts)
    get("net.link_up", (n_links,), np.bool_)
    within("net.link_capacity", get("net.link_capacity", (n_links,), np.float64), 0, 1e12)
    within("net.nic", get("net.nic", (n_hosts,), np.float64), 0, 1e15)
    within("net.vm", get("net.vm", (n_vms,), np.float64), 0, 1e15)

    for key in HOST_SHARING_ARRAYS:
        if f"sharing.hosts.{key}" in arrays:  # counters added later start at zero
            get(f"sharing.hosts.{key}", (n_hosts,),
                np.float64 if key == "ksm_credit" else np.int64)
    within("sharing.hosts.mode", arrays["sharing.hosts.mode"], 0, len(SHARING_MODES) - 1)
    for key, dtype in HOST_RECLAIM_ARRAYS.items():
        get(f"reclaim.hosts.{key}", (n_hosts,), dtype)
    within("reclaim.hosts.mem_state", arrays["reclaim.hosts.mem_state"], 0, 3)
    within("reclaim.hosts.idle_tax", arrays["reclaim.hosts.idle_tax"], 0, 0.99)
    for name, vals_hi in (("stable", n_frames - 1), ("hints", n_pages - 1),
                          ("unstable", None)):
        if name == "hints" and "sharing.hints.entry" in arrays:
            _check_hint_table(arrays, n_hosts, n_pages, meta.tick)
        else:
            _check_table(arrays, f"sharing.{name}", vals_hi, n_pages)
    if KSM_SCANNED in arrays:
        within(KSM_SCANNED, get(KSM_SCANNED, (n_pages,), np.int32), 0, meta.tick + 1)
    if "sharing.ksm_age" in arrays:  # smart scan's age (low 4 bits) and skips left (high)
        age = get("sharing.ksm_age", (n_pages,), np.uint8)
        within("sharing.ksm_age (age)", age & 15, 0, KSM_MAX_AGE)
        within("sharing.ksm_age (skips)", age >> 4, 0, KSM_MAX_SKIPS)
    if "sharing.ksm_scanned_at" in arrays:  # saves before schema 3
        within("sharing.ksm_scanned_at", get("sharing.ksm_scanned_at", (n_pages,), np.int32),
               -1, meta.tick)

    _check_vms(meta, arrays, get, within, page, n_hosts)
    _check_migrations(meta, arrays, get, within)


def _check_frame_keys(meta: SaveMeta, arrays: Arrays, get: Any, n_frames: int) -> None:
    """The shared frames' keys: since schema 3 the shared frames, strictly increasing and
    in range, and as many nonzero keys; before, one key per frame (0 = not shared)."""
    if meta.schema_version < 3:
        get("sharing.frame_key", (n_frames,), np.uint64)
        return
    for name in (FRAME_KEY_FRAMES, FRAME_KEY_KEYS):
        if name not in arrays:
            raise ValueError(f"array {name} is missing")
    n = arrays[FRAME_KEY_FRAMES].shape
    if len(n) != 1:
        raise ValueError(f"array {FRAME_KEY_FRAMES}: expected one dimension, got shape {n}")
    frames = get(FRAME_KEY_FRAMES, n, np.int32)
    keys = get(FRAME_KEY_KEYS, n, np.uint64)
    if np.any(frames[1:] <= frames[:-1]):
        raise ValueError(f"array {FRAME_KEY_FRAMES}: frames must be strictly increasing")
    if frames.size and (int(frames[0]) < 0 or int(frames[-1]) >= n_frames):
        raise ValueError(f"array {FRAME_KEY_FRAMES}: frames must lie in [0, {n_frames - 1}]")
    if np.any(keys == 0):
        raise ValueError(f"array {FRAME_KEY_KEYS}: a shared frame's key is 0")


def _check_table(arrays: Arrays, prefix: str, vals_hi: int | None, n_pages: int) -> None:
    keys = arrays.get(f"{prefix}.keys")
    vals = arrays.get(f"{prefix}.vals")
    aux = arrays.get(f"{prefix}.aux")
    if keys is None or vals is None or aux is None:
        raise ValueError(f"arrays {prefix}.keys/vals/aux are missing")
    cap = keys.size
    if not (keys.ndim == vals.ndim == aux.ndim == 1 and vals.size == aux.size == cap):
        raise ValueError(f"arrays {prefix}: keys, vals and aux must be 1-D of one length")
    if cap < 16 or cap & (cap - 1) or keys.dtype.kind != "u" or vals.dtype.kind != "i":
        raise ValueError(f"arrays {prefix}: expected a power-of-two table of uint64 keys")
    if np.count_nonzero(keys == EMPTY) == 0:
        raise ValueError(f"arrays {prefix}: a full table (no empty slot)")
    live = vals[keys > DELETED]
    hi = vals_hi if vals_hi is not None else (1 << 62)
    if live.size and (live.min() < 0 or live.max() > hi):
        raise ValueError(f"array {prefix}.vals: values out of range")
    if vals_hi is None and live.size and int((live & ((1 << 40) - 1)).max()) >= n_pages:
        raise ValueError(f"array {prefix}.vals: a page out of range")


def _check_hint_table(arrays: Arrays, n_hosts: int, n_pages: int, tick: int) -> None:
    """ESX's fixed-size hint table (engine/hashtable.py HintTable): per-host power-of-two
    segments of 32-bit entries, tag << 29 | page + 1, 0 when empty."""
    size, entry = arrays.get("sharing.hints.size"), arrays["sharing.hints.entry"]
    if size is None or size.shape != (n_hosts,) or size.dtype.kind not in "iu":
        raise ValueError("array sharing.hints.size: expected one size per host")
    if np.any(size < 16) or np.any(size & (size - 1)) or int(size.sum()) > 2**33:
        raise ValueError("array sharing.hints.size: expected powers of two")
    if entry.dtype != np.uint32 or entry.shape != (int(size.sum()),):
        raise ValueError("array sharing.hints.entry: expected a uint32 entry per slot")
    used = entry[entry != 0]
    if used.size and int((used & np.uint32((1 << 29) - 1)).max()) > n_pages:
        raise ValueError("array sharing.hints.entry: a hint of a page out of range")


def _check_vms(meta: SaveMeta, arrays: Arrays, get: Any, within: Any, page: int,
               n_hosts: int) -> None:
    n_vms = len(meta.all_vm_specs())
    cols = {name: get(f"vms.{name}", (n_vms, *VM_ARRAY_SHAPES.get(name, ())), dtype)
            for name, dtype in VM_ARRAY_DTYPES.items()}
    n_pages = np.array([v.memory // page for v in meta.all_vm_specs()], np.int64)
    if not np.array_equal(cols["n_pages"], n_pages):
        raise ValueError("array vms.n_pages: does not match the VMs' memory")
    offsets = np.concatenate([[0], np.cumsum(n_pages)[:-1]]).astype(np.int64)
    if not np.array_equal(cols["page_offset"], offsets):
        raise ValueError("array vms.page_offset: VM slices must follow each other")
    within("vms.host", cols["host"], -1, n_hosts - 1)
    within("vms.loc_count", cols["loc_count"], 0, np.inf)
    within("vms.kind_count", cols["kind_count"], 0, np.inf)
    for name in _RATE_COLUMNS:
        within(f"vms.{name}", cols[name], 0, MAX_PER_S)
    within("vms.shares", cols["shares"], 0, 10**12)
    within("vms.min_pages", cols["min_pages"], 0, np.inf)
    within("vms.max_pages", cols["max_pages"] - cols["min_pages"], 0, np.inf)
    within("vms.max_pages", cols["max_pages"] - n_pages, -np.inf, 0)
    within("vms.ws_pages", cols["ws_pages"], 1, np.inf)
    within("vms.ws_pages", cols["ws_pages"] - np.maximum(n_pages, 1), -np.inf, 0)
    within("vms.hot_pages", cols["hot_pages"], 1, np.inf)
    within("vms.hot_pages", cols["hot_pages"] - cols["ws_pages"], -np.inf, 0)
    within("vms.seq_cursor", cols["seq_cursor"], 0, np.inf)
    within("vms.io_set_pages", cols["io_set_pages"], 1, np.inf)
    within("vms.dataset_pages", cols["dataset_pages"], 0, 2**40)
    for name in ("hot_access", "zero_writes", "cpu_util", "throttle", "demand_scale",
                 "daily_trough", "speed"):
        within(f"vms.{name}", cols[name], 0, 1)
    within("vms.daily_peak_h", cols["daily_peak_h"], -1, 24)
    for name in ("balloon_forced", "swap_forced"):
        within(f"vms.{name}", cols[name] - n_pages, -np.inf, 0)
        within(f"vms.{name}", cols[name], -1, np.inf)
    within("vms.balloon_target", cols["balloon_target"] - n_pages, -np.inf, 0)
    within("vms.balloon_rate", cols["balloon_rate"], 0, 1e9)
    # Sampled pages: global page indices (a VM not yet sampled holds zeros).
    within("vms.sample", cols["sample"], 0, max(int(n_pages.sum()) - 1, 0))
    for name, arr in cols.items():
        if arr.dtype.kind == "f":
            within(f"vms.{name}", arr, -1e18, 1e18)
    problem = budgets.touches_problem(float(budgets.vm_touches_per_s(cols).sum()),
                                      meta.scenario.scenario.tick_s)
    if problem:
        raise ValueError(f"arrays vms.*_per_s: {problem}")


def _check_migrations(meta: SaveMeta, arrays: Arrays, get: Any, within: Any) -> None:
    """The migration table (engine/migration/model.py): every column present with one
    entry per migration, codes and indices in range, each active migration's regions
    inside its arenas, at most one active migration per VM, and the VMs, the dirty-log
    flags and the remote pages agreeing with them. A save from before the table holds
    only records; engine/migration/model.py `from_old_saves` reads (or refuses) those."""
    plain: Any = meta.migrations
    if not isinstance(plain, MigrationsPlain):
        # Records of a save from before the table: none can still be running.
        _check_active(meta, arrays, np.zeros(0, np.int64), np.zeros(0, np.int64),
                      sum(int(m.get("bytes_sent", 0)) for m in plain))
        return
    vms_host, n_pages = arrays["vms.host"], arrays["vms.n_pages"]
    n_vms, n_hosts, n = arrays["vms.host"].size, arrays["hosts.up"].size, plain.n
    cols: dict[str, npt.NDArray[Any]] = {}
    for name, (dtype, _) in COLUMNS.items():
        key = f"migrations.{name}"
        if key not in arrays and name in NEWER_COLUMNS:  # a save from before the column
            cols[name] = np.full(n, COLUMNS[name][1], np.dtype(dtype))
            continue
        if key not in arrays:
            raise ValueError(f"array {key} is missing")
        arr = arrays[key]
        if arr.shape != (n,) or arr.dtype != np.dtype(dtype):
            raise ValueError(f"array {key}: expected {n} entries of {np.dtype(dtype)}")
        if arr.dtype.kind == "f" and (np.isnan(arr).any() or np.isneginf(arr).any()):
            raise ValueError(f"array {key}: holds a non-finite number")
        if arr.dtype.kind == "f" and name not in _MAY_BE_INFINITE and np.isinf(arr).any():
            raise ValueError(f"array {key}: holds a non-finite number")
        cols[name] = arr
    for name, codes in CODED.items():
        within(f"migrations.{name}", cols[name], 0, len(codes) - 1)
    within("migrations.vm", cols["vm"], 0, n_vms - 1)
    for name in ("throttle", "changed_fraction"):
        within(f"migrations.{name}", cols[name], 0.0, 1.0)
    for name, (dtype, fill) in COLUMNS.items():
        if name not in CODED and np.dtype(dtype).kind in "if" and fill == 0:
            within(f"migrations.{name}", cols[name], 0, np.inf)  # counters, rates, times
    within("migrations.src", cols["src"], 0, n_hosts - 1)
    within("migrations.dst", cols["dst"], 0, n_hosts - 1)
    if np.any(cols["src"] == cols["dst"]):
        raise ValueError("array migrations.dst: a migration's destination is its source")
    arenas = {}
    for arena, fields in _ARENAS.items():
        sizes = set()
        for field in fields + _NEWER_ARENA_FIELDS.get(arena, ()):
            key = f"migrations.{arena}.{field}"
            if field not in fields and key not in arrays:
                continue  # a save from before the field
            if key not in arrays or arrays[key].ndim != 1:
                raise ValueError(f"array {key} is missing")
            sizes.add(arrays[key].size)
        if len(sizes) != 1:
            raise ValueError(f"arrays migrations.{arena}.*: of different lengths")
        arenas[arena] = sizes.pop()
    for i, arena in enumerate(_ARENAS):
        if plain.live[i] > arenas[arena]:
            raise ValueError(f"migrations.live: more live entries than the {arena} arena holds")
    active = np.flatnonzero(cols["status"] <= POSTCOPY)
    vm = cols["vm"][active]
    if np.unique(vm).size != vm.size:
        raise ValueError("array migrations.vm: a VM with two active migrations")
    pages_of = n_pages[vm] if active.size else np.zeros(0, np.int64)
    for base, length, arena in (("page_base", pages_of, "pages"),
                                ("list_base", cols["list_len"][active], "lists"),
                                ("cache_base", cols["cache_slots"][active], "cache"),
                                ("dirty_base", cols["dirty_len"][active], "dirty")):
        start = cols[base][active]
        used = start >= 0
        if np.any(start[used] + length[used] > arenas[arena]):
            raise ValueError(f"array migrations.{base}: a region outside its arena")
    if np.any(cols["cursor"][active] > cols["list_len"][active]):
        raise ValueError("array migrations.cursor: past the end of its send list")
    for name in ("lists.entry", "dirty.page"):
        within(f"migrations.{name}", arrays[f"migrations.{name}"], -1,
               int(n_pages.max()) - 1 if n_pages.size else 0)
    status = cols["status"][active]
    where = np.where(status == POSTCOPY, cols["dst"][active], cols["src"][active])
    if np.any(vms_host[vm] != where):
        raise ValueError("array migrations.vm: a VM does not run where its migration has it")
    _check_active(meta, arrays, vm[status == PRECOPY], vm[status == POSTCOPY],
                  int(cols["bytes_sent"].sum()))


def _check_active(meta: SaveMeta, arrays: Arrays, precopy_vms: npt.NDArray[np.int64],
                  postcopy_vms: npt.NDArray[np.int64], bytes_sent: int) -> None:
    """The VMs' dirty-log flags, remote pages and billed bytes agree with the migrations."""
    precopying = arrays["vms.precopying"].astype(bool)
    expected = np.zeros(precopying.size, bool)
    expected[precopy_vms] = True
    if not np.array_equal(precopying, expected):
        raise ValueError("array vms.precopying: disagrees with the pre-copy migrations")
    remote_vm = np.unique(np.searchsorted(arrays["vms.page_offset"], np.flatnonzero(
        arrays["pages.location"] == Loc.REMOTE), side="right") - 1)
    if not np.isin(remote_vm, postcopy_vms).all():
        raise ValueError("pages.location: remote pages of a VM not in post-copy")
    money: Any = meta.money
    if money.migration_bytes != bytes_sent:
        raise ValueError("money.migration_bytes: disagrees with the migrations' bytes sent")
