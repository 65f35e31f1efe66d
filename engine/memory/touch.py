"""Guest page touches: the faults they take and the writes they make.

A workload hands in the pages read and written this tick (global page indices, duplicates
allowed). First touch of an untouched page maps a fresh zeroed frame; a write to a shared
page breaks copy-on-write into a private frame. A touch that cannot get a frame (host out
of memory, or the VM at its max) stalls: it is not served this tick and is counted, which
is what the service model charges the VM for. Only the faulting subset is ever deduplicated
or revisited, so the common case (a resident page) costs a gather and a scatter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import runs, unique_sorted
from engine.memory import frames as frame_alloc
from engine.memory.content import unique_content
from engine.state import I64, Bool, Loc, State


@dataclass
class TouchResult:
    served_reads: I64  # per VM
    served_writes: I64
    stalled: I64


def _move(state: State, vm: I64, old: int, new: int) -> None:
    counts = np.bincount(vm, minlength=len(state.vms))
    loc_count = state.vms["loc_count"]
    loc_count[:, old] -= counts
    loc_count[:, new] += counts


def _first_touch(state: State, pages: I64) -> None:
    """Map zeroed frames for untouched pages, within each VM's max and the host's free."""
    vms, p = state.vms, state.pages
    pages = unique_sorted(pages)
    vm = vms.vm_of_pages(pages)
    # Rank of each page within its VM (pages are sorted, so VMs are contiguous).
    _, starts, lengths = runs(vm)
    rank = np.arange(pages.size) - np.repeat(starts, lengths)
    resident = vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED]
    ok = rank < np.maximum(vms["max_pages"] - resident, 0)[vm]
    pages, vm = pages[ok], vm[ok]
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    pages, vm, got = pages[ok], vm[ok], got[ok]
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    p.content[pages] = 0
    _move(state, vm, Loc.UNTOUCHED, Loc.PRIVATE)
    vms["first_touches"] += np.bincount(vm, minlength=len(vms))


def _cow_break(state: State, pages: I64) -> None:
    vms, p = state.vms, state.pages
    pages = unique_sorted(pages)
    vm = vms.vm_of_pages(pages)
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    pages, vm, got = pages[ok], vm[ok], got[ok]
    old = p.frame[pages]
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    frame_alloc.release(state, old)
    _move(state, vm, Loc.SHARED, Loc.PRIVATE)
    vms["zero_shared"] -= np.bincount(vm[p.content[pages] == 0], minlength=len(vms))
    broken = np.bincount(vm, minlength=len(vms))
    vms["cow_breaks"] += broken
    vms["cow_breaks_tick"] += broken


def apply_touches(state: State, read_pages: I64, write_pages: I64, write_zero: Bool,
                  reads_per_vm: I64, writes_per_vm: I64) -> TouchResult:
    p, n_vms = state.pages, len(state.vms)
    state.vms["cow_breaks_tick"][:] = 0
    faulted_r = p.location[read_pages] == Loc.UNTOUCHED
    loc_w = p.location[write_pages]
    faulted_w = loc_w != Loc.PRIVATE  # untouched, or shared (copy-on-write)
    fr_pages = read_pages[faulted_r]
    fw_pages = write_pages[faulted_w]
    stalled_r = stalled_w = np.zeros(n_vms, np.int64)
    if fr_pages.size or fw_pages.size:
        fw_loc = loc_w[faulted_w]
        _first_touch(state, np.concatenate([fr_pages, fw_pages[fw_loc == Loc.UNTOUCHED]]))
        _cow_break(state, fw_pages[fw_loc == Loc.SHARED])
        still_r = fr_pages[p.location[fr_pages] == Loc.UNTOUCHED]
        still_w = p.location[fw_pages] != Loc.PRIVATE
        stalled_r = np.bincount(state.vms.vm_of_pages(still_r), minlength=n_vms)
        stalled_w = np.bincount(state.vms.vm_of_pages(fw_pages[still_w]), minlength=n_vms)
        if still_w.any():
            keep = np.ones(write_pages.size, np.bool_)
            keep[np.flatnonzero(faulted_w)[still_w]] = False
            write_pages, write_zero = write_pages[keep], write_zero[keep]

    new_content = unique_content(state, write_pages.size)
    new_content[write_zero] = 0
    p.content[write_pages] = new_content
    p.dirty[write_pages] = True
    p.written_at[write_pages] = state.tick
    # A stalled touch still counts as the guest using the page: it is accessed and the
    # guest no longer considers it free, even though the hypervisor could not back it.
    p.accessed[read_pages] = True
    p.accessed[write_pages] = True
    for touched in (read_pages, write_pages):
        newly_used = touched[p.guest_free[touched]]
        if newly_used.size:
            newly_used = unique_sorted(newly_used)
            p.guest_free[newly_used] = False
            state.vms["guest_free_count"] -= np.bincount(state.vms.vm_of_pages(newly_used),
                                                         minlength=n_vms)
    return TouchResult(reads_per_vm - stalled_r, writes_per_vm - stalled_w,
                       stalled_r + stalled_w)
