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
from engine.ranges import MAX_PER_S
from engine.savemodel import SaveMeta
from engine.state import (
    N_KIND,
    N_LOC,
    UNIQUE_CONTENT_BASE,
    VM_ARRAY_DTYPES,
    VM_ARRAY_SHAPES,
    Loc,
    Pages,
)
from engine.state_tables import HOST_RECLAIM_ARRAYS, HOST_SHARING_ARRAYS, SHARING_MODES

Arrays = dict[str, npt.NDArray[Any]]

# Per-VM columns that are indices or sizes in pages, or rates the workload draws from.
_RATE_COLUMNS = ("reads_per_s", "writes_per_s", "file_reads_per_s", "io_pages_per_s")


def check_arrays(meta: SaveMeta, arrays: Arrays) -> None:
    spec = meta.scenario
    page = spec.scenario.page_size
    n_pages = sum(v.memory // page for v in meta.vm_specs)
    host_specs = spec.all_hosts()
    host_frames = np.array([h.memory // page for h in host_specs], np.int64)
    n_frames, n_hosts, n_vms = int(host_frames.sum()), len(host_specs), len(meta.vm_specs)

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

    empty = Pages.empty(0)
    for field, proto in empty.arrays().items():
        name = f"pages.{field}"
        if field == "accessed_prev" and name not in arrays:
            continue  # older saves: rebuilt empty
        get(name, (n_pages,), proto.dtype)
    within("pages.location", arrays["pages.location"], 0, N_LOC - 1)
    within("pages.guest_kind", arrays["pages.guest_kind"], 0, N_KIND - 1)
    within("pages.frame", arrays["pages.frame"], -1, n_frames - 1)
    within("pages.written_at", arrays["pages.written_at"], -1, meta.tick)
    content = arrays["pages.content"]
    unique = content[content >= np.uint64(UNIQUE_CONTENT_BASE)]
    if unique.size and int(unique.max()) >= meta.next_unique_content:
        raise ValueError("pages.content: unique content ids from after next_unique_content")

    within("frames.refcount", get("frames.refcount", (n_frames,), np.int32), 0, n_pages)
    within("frames.free_stack", get("frames.free_stack", (n_frames,), np.int32), 0,
           n_frames - 1)
    get("sharing.frame_key", (n_frames,), np.uint64)

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
    if "sharing.ksm_scanned_at" in arrays:
        within("sharing.ksm_scanned_at", get("sharing.ksm_scanned_at", (n_pages,), np.int32),
               -1, meta.tick)

    _check_vms(meta, arrays, get, within, page, n_hosts)
    _check_migrations(meta, arrays, get, within)


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
    segments of one-word entries, (tick + 1) << 32 | page, 0 when empty."""
    size, entry = arrays.get("sharing.hints.size"), arrays["sharing.hints.entry"]
    if size is None or size.shape != (n_hosts,) or size.dtype.kind not in "iu":
        raise ValueError("array sharing.hints.size: expected one size per host")
    if np.any(size < 16) or np.any(size & (size - 1)) or int(size.sum()) > 2**33:
        raise ValueError("array sharing.hints.size: expected powers of two")
    if entry.dtype != np.uint64 or entry.shape != (int(size.sum()),):
        raise ValueError("array sharing.hints.entry: expected a uint64 entry per slot")
    used = entry[entry != 0]
    if used.size and (int((used & np.uint64(0xFFFFFFFF)).max()) >= n_pages
                      or int((used >> np.uint64(32)).max()) > tick + 1):
        raise ValueError("array sharing.hints.entry: a hint of a page or tick out of range")


def _check_vms(meta: SaveMeta, arrays: Arrays, get: Any, within: Any, page: int,
               n_hosts: int) -> None:
    n_vms = len(meta.vm_specs)
    cols = {name: get(f"vms.{name}", (n_vms, *VM_ARRAY_SHAPES.get(name, ())), dtype)
            for name, dtype in VM_ARRAY_DTYPES.items()}
    n_pages = np.array([v.memory // page for v in meta.vm_specs], np.int64)
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
    vms = arrays["vms.host"]
    n_pages = arrays["vms.n_pages"]
    n_hosts = arrays["hosts.up"].size
    active_by_vm: dict[int, str] = {}
    # Models built from the dataclasses at import (engine/savemodel.py): typed as Any here.
    migrations: list[Any] = list(meta.migrations)
    money: Any = meta.money
    for i, mig in enumerate(migrations):
        where = f"migration {i}"
        if mig.id != i:
            raise ValueError(f"{where}: id {mig.id}, expected {i} (ids count from 0)")
        if mig.vm >= vms.size or mig.src >= n_hosts or mig.dst >= n_hosts:
            raise ValueError(f"{where}: names a VM or host that does not exist")
        if mig.src == mig.dst:
            raise ValueError(f"{where}: its destination is its source")
        active = mig.status in ("precopy", "stopcopy", "postcopy")
        n = int(n_pages[mig.vm])
        for name in ("to_send", "sent_content", "at_dest", "in_cache", "pushed"):
            arr = arrays.get(f"migration.{i}.{name}")
            if arr is None or arr.ndim != 1:
                raise ValueError(f"array migration.{i}.{name} is missing")
            if name != "to_send" and arr.size not in ((n,) if active else (0, n)):
                raise ValueError(f"array migration.{i}.{name}: expected {n} entries")
        to_send = arrays[f"migration.{i}.to_send"]
        off = int(arrays["vms.page_offset"][mig.vm])
        within(f"migration.{i}.to_send", to_send, off, off + n - 1)
        if not active:
            continue  # a finished migration's arrays may be given back (engine/retention.py)
        if mig.cursor > to_send.size:
            raise ValueError(f"{where}: cursor {mig.cursor} is past its {to_send.size} pages")
        if mig.vm in active_by_vm:
            raise ValueError(f"{where}: a second active migration of VM {mig.vm}")
        active_by_vm[mig.vm] = mig.status
        host = mig.dst if mig.status == "postcopy" else mig.src
        if vms[mig.vm] != host:
            raise ValueError(f"{where}: its VM does not run where a {mig.status} migration "
                             "has it")
    precopying = arrays["vms.precopying"].astype(bool)
    expected = np.zeros(vms.size, bool)
    expected[[v for v, s in active_by_vm.items() if s == "precopy"]] = True
    if not np.array_equal(precopying, expected):
        raise ValueError("array vms.precopying: disagrees with the pre-copy migrations")
    remote_vm = np.unique(np.searchsorted(arrays["vms.page_offset"], np.flatnonzero(
        arrays["pages.location"] == Loc.REMOTE), side="right") - 1)
    if any(active_by_vm.get(int(v)) != "postcopy" for v in remote_vm):
        raise ValueError("pages.location: remote pages of a VM not in post-copy")
    if money.migration_bytes != sum(m.bytes_sent for m in migrations):
        raise ValueError("money.migration_bytes: disagrees with the migrations' bytes sent")
