"""Guest page touches: the faults they take and the writes they make.

A workload hands in the pages each VM reads and writes this tick (global page indices,
duplicates allowed). First touch of an untouched page maps a fresh zeroed frame; a write to
a shared page breaks copy-on-write into a private frame. A touch that cannot get a frame
(host out of memory, or the VM at its max) stalls: it is not served this tick and is
counted, which is what the service model later charges the VM for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.memory import frames as frame_alloc
from engine.memory.content import unique_content
from engine.state import I64, Bool, Loc, State


@dataclass
class TouchResult:
    served_reads: I64  # per VM
    served_writes: I64
    stalled: I64


def _move(state: State, pages: I64, vm: I64, old: int, new: int) -> None:
    counts = np.bincount(vm, minlength=len(state.vms))
    loc_count = state.vms["loc_count"]
    loc_count[:, old] -= counts
    loc_count[:, new] += counts


def _first_touch(state: State, pages: I64) -> None:
    """Map zeroed frames for untouched pages, within each VM's max and the host's free."""
    vms, p = state.vms, state.pages
    pages = np.unique(pages)
    vm = vms.vm_of_pages(pages)
    # Rank of each page within its VM (pages are sorted, so VMs are contiguous).
    starts = np.searchsorted(vm, vm, side="left")
    rank = np.arange(pages.size) - starts
    resident = vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED]
    room = np.maximum(vms["max_pages"] - resident, 0)
    ok = rank < room[vm]
    pages, vm = pages[ok], vm[ok]
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    pages, vm, got = pages[ok], vm[ok], got[ok]
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    p.content[pages] = 0
    _move(state, pages, vm, Loc.UNTOUCHED, Loc.PRIVATE)
    vms["first_touches"] += np.bincount(vm, minlength=len(vms))


def _cow_break(state: State, pages: I64) -> None:
    vms, p = state.vms, state.pages
    pages = np.unique(pages)
    vm = vms.vm_of_pages(pages)
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    pages, vm, got = pages[ok], vm[ok], got[ok]
    old = p.frame[pages]
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    frame_alloc.release(state, old)
    _move(state, pages, vm, Loc.SHARED, Loc.PRIVATE)
    vms["cow_breaks"] += np.bincount(vm, minlength=len(vms))


def apply_touches(state: State, read_vm: I64, read_pages: I64, write_vm: I64,
                  write_pages: I64, write_zero: Bool) -> TouchResult:
    p, n_vms = state.pages, len(state.vms)
    loc_r = p.location[read_pages]
    loc_w = p.location[write_pages]
    untouched = np.concatenate([read_pages[loc_r == Loc.UNTOUCHED],
                                write_pages[loc_w == Loc.UNTOUCHED]])
    if untouched.size:
        _first_touch(state, untouched)
    shared_w = write_pages[loc_w == Loc.SHARED]
    if shared_w.size:
        _cow_break(state, shared_w)
    if untouched.size or shared_w.size:
        loc_r = p.location[read_pages]
        loc_w = p.location[write_pages]
        ok_r = (loc_r == Loc.PRIVATE) | (loc_r == Loc.SHARED)
        ok_w = loc_w == Loc.PRIVATE
        read_pages, read_vm_ok = read_pages[ok_r], read_vm[ok_r]
        write_pages, write_vm_ok, write_zero = write_pages[ok_w], write_vm[ok_w], write_zero[ok_w]
    else:
        read_vm_ok, write_vm_ok = read_vm, write_vm
        # Pages in other locations (swapped, ballooned, remote) are handled by the
        # mechanisms that own them before this point; here everything left is resident.
    new_content = unique_content(state, write_pages.size)
    new_content[write_zero] = 0
    p.content[write_pages] = new_content
    p.dirty[write_pages] = True
    p.written_at[write_pages] = state.tick
    touched = np.concatenate([read_pages, write_pages])
    p.accessed[touched] = True
    newly_used = touched[p.guest_free[touched]]
    if newly_used.size:
        newly_used = np.unique(newly_used)
        p.guest_free[newly_used] = False
        state.vms["guest_free_count"] -= np.bincount(state.vms.vm_of_pages(newly_used),
                                                     minlength=n_vms)
    served_r = np.bincount(read_vm_ok, minlength=n_vms)
    served_w = np.bincount(write_vm_ok, minlength=n_vms)
    total = np.bincount(read_vm, minlength=n_vms) + np.bincount(write_vm, minlength=n_vms)
    return TouchResult(served_r, served_w, total - served_r - served_w)
