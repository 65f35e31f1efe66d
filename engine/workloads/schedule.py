"""Workloads that change over time: phase schedules, set_workload, and the guest's allocator.

A VM whose workload lists `phases` has one row per phase in the phase table
(state.schedule), after a row for the workload itself at time 0: each gives the workload
columns while it runs (workloads/columns.py). The schedule phase of the tick picks, for
every VM whose workload runs, the last row that has started (time since the end of its
boot, modulo the cycle with `repeat`) and copies it into the VM's columns when it changes.
Time is simulated time only, so schedules repeat exactly and survive a save (the table is
rebuilt from the specs; the VM's row and start time are VM arrays).

A working set that shrinks or moves frees the pages it leaves: the guest puts them on its
free list (and a guest that zeroes freed memory, such as Windows' zero-page thread, zeroes
the resident ones). A working set lies at a fixed place in its region and grows back over
the same pages, so the guest reuses memory it freed (possibly zeroed, possibly shared by
now) before it touches pages it never used - the allocator the issue asks for, in the
simplest form a stack gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.memory.guest import set_kind
from engine.memory.touch import apply_touches
from engine.spec import VMSpec, WorkloadSpec
from engine.state import I64, GuestKind, Loc, State
from engine.state_tables import Schedule
from engine.workloads.columns import WORKLOAD_COLUMNS, workload_columns
from engine.workloads.images import boot_plan, regions
from engine.world import World


def _rows(spec: VMSpec, n_pages: int, page_size: int) -> tuple[list[float], list[dict[str,
                                                                                     Any]]]:
    """(start times, columns) of a VM's rows: the workload itself, then each phase."""
    wl = spec.workload
    layout = regions(spec, n_pages, page_size)
    starts, rows = [0.0], [workload_columns(wl, layout, page_size)]
    end: float | None = 0.0
    for phase in wl.phases:
        start = phase.at if phase.at is not None else end
        assert start is not None  # WorkloadSpec checked it
        starts.append(start)
        rows.append(workload_columns(wl.with_changes(phase), layout, page_size))
        end = None if phase.duration is None else start + phase.duration
    return starts, rows


def _period(wl: WorkloadSpec) -> float:
    if not wl.repeat:
        return 0.0
    end = 0.0
    for phase in wl.phases:
        start = phase.at if phase.at is not None else end
        end = start + (phase.duration or 0.0)
    return end


def rebuild(state: State) -> None:
    """The phase table from the VM specs (after a VM is defined, a workload set, a load).
    VMs without phases have no rows: their columns change only by command."""
    cols = state.vms
    starts: list[float] = []
    table: dict[str, list[Any]] = {c: [] for c in WORKLOAD_COLUMNS}
    cols["phase_count"][:] = 0
    for v, spec in enumerate(cols.specs):
        if not spec.workload.phases:
            continue
        s, rows = _rows(spec, int(cols["n_pages"][v]), state.page_size)
        cols["phase_offset"][v] = len(starts)
        cols["phase_count"][v] = len(s)
        cols["phase_period_s"][v] = _period(spec.workload)
        starts += s
        for row in rows:
            for c in WORKLOAD_COLUMNS:
                table[c].append(row[c])
    cols["phase_index"][:] = np.minimum(cols["phase_index"], np.maximum(cols["phase_count"] - 1,
                                                                       0))
    state.schedule = Schedule(np.array(starts, np.float64), {
        c: np.array(values, cols[c].dtype) for c, values in table.items()})


def current_rows(state: State, vms: I64) -> I64:
    """Row index (within each VM's rows) that should run now."""
    cols, sched = state.vms, state.schedule
    t = state.time_s - cols["phase_t0_s"][vms]
    period = cols["phase_period_s"][vms]
    t = np.where(period > 0, np.mod(t, np.where(period > 0, period, 1.0)), t)
    count = cols["phase_count"][vms]
    owner = np.repeat(np.arange(vms.size), count)
    rank = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    started = sched.start_s[np.repeat(cols["phase_offset"][vms], count) + rank] <= t[owner] + 1e-9
    return np.asarray(np.bincount(owner, weights=started, minlength=vms.size) - 1, np.int64)


def run_schedule(world: World) -> None:
    state = world.state
    cols = state.vms
    if state.schedule.start_s.size == 0:
        return
    # A workload starts when its boot ends (the end of that tick): not before.
    t0 = cols["phase_t0_s"]
    vms = np.flatnonzero((cols["phase_count"] > 0) & (t0 >= 0) & (t0 <= state.time_s + 1e-9)
                         & (cols["host"] >= 0))
    if vms.size == 0:
        return
    row = current_rows(state, vms)
    moved = row != cols["phase_index"][vms]
    vms, row = vms[moved], row[moved]
    if vms.size == 0:
        return
    apply_row(state, vms, row)
    state.reclaim.realloc = True
    for v, r in zip(vms.tolist(), row.tolist(), strict=True):
        what = "its base workload" if r == 0 else f"phase {r} of {int(cols['phase_count'][v]) - 1}"
        world.emit("workload_phase", f"{cols.ids[v]} workload: {what}", vm=cols.ids[v])


def apply_row(state: State, vms: I64, row: I64) -> None:
    """Copy rows of the phase table into the VMs' columns."""
    cols, sched = state.vms, state.schedule
    idx = cols["phase_offset"][vms] + row
    old_start, old_ws = cols["ws_start"][vms].copy(), cols["ws_pages"][vms].copy()
    for c in WORKLOAD_COLUMNS:
        cols[c][vms] = sched.columns[c][idx]
    cols["phase_index"][vms] = row
    free_left_behind(state, vms, old_start, old_ws)


def set_columns(state: State, v: int, values: dict[str, Any]) -> None:
    """A VM's workload columns, set directly (a VM without a schedule)."""
    cols = state.vms
    vms = np.array([v])
    old_start, old_ws = cols["ws_start"][vms].copy(), cols["ws_pages"][vms].copy()
    for c in WORKLOAD_COLUMNS:
        cols[c][v] = values[c]
    free_left_behind(state, vms, old_start, old_ws)


def free_left_behind(state: State, vms: I64, old_start: I64, old_ws: I64) -> None:
    """Pages of the old working set outside the new one go back to the guest's free list
    (zeroed by a guest that zeroes freed memory)."""
    cols, p = state.vms, state.pages
    new_start, new_ws = cols["ws_start"][vms], cols["ws_pages"][vms]
    old_end, new_end = old_start + old_ws, new_start + new_ws
    # At most two ranges per VM: below the new working set and above it.
    lo = np.stack([old_start, np.maximum(old_start, new_end)], axis=1).ravel()
    hi = np.stack([np.minimum(old_end, new_start), old_end], axis=1).ravel()
    length = np.maximum(hi - lo, 0)
    if not length.any():
        return
    vm = np.repeat(np.repeat(vms, 2), length)
    rank = np.arange(vm.size) - np.repeat(np.cumsum(length) - length, length)
    pages = cols["page_offset"][vm] + np.repeat(lo, length) + rank
    anon = p.at("guest_kind", pages) == GuestKind.ANON
    pages, vm = pages[anon], vm[anon]
    zeroes = np.array([boot_plan(cols.specs[int(v)]).zero_freed for v in vms.tolist()])
    zeroing = np.zeros(len(cols), np.bool_)
    zeroing[vms] = zeroes
    loc = p.at("location", pages)
    resident = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    write = resident & zeroing[vm]
    if write.any():
        n = len(cols)
        apply_touches(state, np.zeros(0, np.int64), pages[write],
                      np.zeros(int(write.sum()), np.uint64), np.zeros(n, np.int64),
                      np.bincount(vm[write], minlength=n), kind=GuestKind.FREE)
    # Pages it could not zero (no frame for a copy-on-write break) are freed all the same.
    rest = pages[p.at("guest_kind", pages) == GuestKind.ANON]
    if rest.size:
        set_kind(state, rest, GuestKind.FREE)
