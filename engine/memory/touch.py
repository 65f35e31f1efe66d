"""Guest page touches: the faults they take and the writes they make.

A workload hands in the pages read and written this tick (global page indices, duplicates
allowed). The common case, a resident page, costs a gather and a scatter; only the
faulting subset is deduplicated and revisited:
- untouched: the hypervisor maps a fresh zeroed frame (first touch);
- swapped by the hypervisor: a swap-in, a disk read at the host's swap latency;
- ballooned: the guest touched a page its balloon driver holds; the hypervisor "pops" it
  with a fresh zeroed frame (never another VM's) and the balloon shrinks;
- paged out by the guest to its virtual disk: a guest page-in (a disk read at the guest
  disk's latency) that brings the data back;
- a write to a shared page breaks copy-on-write into a private frame.
A touch that cannot get a frame (host out of memory, or a first touch past the VM's max)
stalls: not served this tick, and counted, as are touches of a VM blocked by the host.
Those that found no free frame wait (TouchResult.waiting): frames reclamation frees later
in the tick serve them (workloads/phase.py serve_waiting).

The big gathers use np.take: for one index array it does the same as `a[idx]` about a
fifth faster (no general fancy-indexing machinery), and these passes are most of a tick.
Selections by a mask use np.compress (or np.flatnonzero, then np.take for several arrays):
`a[mask]` gives the same, but branches on every element, several times slower when the
mask is neither nearly all false nor nearly all true (measured: 0.7 ms against 0.11 ms for
250k touches a fifth of which fault).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.arrays import unique_sorted
from engine.memory import fault_loop, kind_bits, recency, touch_loop
from engine.memory import frames as frame_alloc
from engine.memory.counts import count_moves, in_vms, vm_of_sorted
from engine.pagescale import fine_pages
from engine.state import I64, N_KIND, N_LOC, U64, WORD_SHIFT, Bool, GuestKind, Loc, State

COW_COPY_S = 10e-6  # a fault and a 4 KB copy (scaled to the simulated page: engine/pagescale)
# A faulting page's code for the per-VM counts: its location, plus _GUEST_OUT when the
# guest had paged it out.
_GUEST_OUT = fault_loop.GUEST_OUT
_CODES = 2 * _GUEST_OUT
_KIND_SHIFT = WORD_SHIFT["guest_kind"]
U16 = npt.NDArray[np.uint16]


@dataclass
class TouchResult:
    served_reads: I64  # per VM
    served_writes: I64
    stalled: I64
    # The touches that stalled for want of a frame (reads, writes, what the writes write):
    # frames reclamation frees later in the tick can still serve them.
    waiting: tuple[I64, I64, U64] | None = None


def _fault_in(state: State, pages: I64, kind: int) -> bool:
    """Give frames to non-resident touched pages (first touch, swap-in, pop, page-in);
    whether every one got its frame.

    A popped page goes straight to `kind`, the use the touch claims it for (_claim would
    otherwise find it free and move it again): the same counts, one pass fewer.
    """
    vms, hosts = state.vms, state.hosts
    pages = unique_sorted(pages)
    vm = vm_of_sorted(vms, pages)
    resident = vms["loc_count"][:, Loc.PRIVATE] + vms["loc_count"][:, Loc.SHARED]
    room = np.maximum(vms["max_pages"] - resident, 0)
    serve = fault_loop.fault_in if kernels.compiled() else _fault_in_numpy
    by_vm, complete, unzipped, popped, popped_vm, popped_kind = serve(state, pages, vm,
                                                                      room, kind)
    per_loc = by_vm[:, :N_LOC] + by_vm[:, _GUEST_OUT:_GUEST_OUT + N_LOC]
    vm_unzipped = per_loc[:, Loc.COMPRESSED]
    if vm_unzipped.any():  # the page leaves the cache: its half of a cache frame goes back
        frame_alloc.release(state, unzipped)
        state.reclaim.hosts["compressed_pages"] -= _per_host(state, vm_unzipped)
        vms["lost_swap_s_tick"] += vm_unzipped * vms["decompress_s"]
    # count_moves(state, vm, loc, Loc.PRIVATE), from the counts above.
    loc_count = vms["loc_count"]
    loc_count[:, Loc.PRIVATE] += per_loc.sum(axis=1)
    loc_count -= per_loc
    vm_popped = per_loc[:, Loc.BALLOONED]
    if vm_popped.any():
        count_moves(state, popped_vm, popped_kind, kind, "kind_count", N_KIND)
        if kind_bits.marks_kind(kind):
            kind_bits.mark(state, popped)
        vms["pops"] += vm_popped
    vms["first_touches"] += by_vm[:, Loc.UNTOUCHED]
    guest_in = by_vm[:, _GUEST_OUT:].sum(axis=1)
    vms["guest_swapped_count"] -= guest_in
    vms["guest_faults_tick"] += guest_in
    vms["lost_guest_paging_s_tick"] += guest_in * vms["guest_disk_latency_s"]
    vm_in = per_loc[:, Loc.SWAPPED]
    if vm_in.any():
        vms["swapins_tick"] += vm_in
        vms["swapins"] += vm_in
        reclaim = state.reclaim.hosts
        per_host = _per_host(state, vm_in)
        reclaim["swapped_pages"] -= per_host
        reclaim["swapin_tick"] += per_host
        latency = hosts.swap_latency_s
        page_s = state.page_size / hosts.swap_disk_bytes_per_s
        reclaim["disk_busy_s_tick"] += per_host * page_s
        vms["lost_swap_s_tick"] += vm_in * (latency + page_s)[np.maximum(vms["host"], 0)]
    return complete


def _fault_in_numpy(state: State, pages: I64, vm: I64, room: I64,
                    kind: int) -> tuple[I64, bool, I64, I64, I64, I64]:
    """fault_loop.fault_in as numpy passes: the same frames, fields and results."""
    vms, p = state.vms, state.pages
    loc = p.at("location", pages)
    swapped_by_guest = np.take(p.guest_swapped, pages)
    n_vms = len(vms)
    # Per VM, pages by (paged out by the guest, location): one pass for every counter.
    code = vm * _CODES + (swapped_by_guest * _GUEST_OUT + loc)
    by_vm = np.bincount(code, minlength=n_vms * _CODES).reshape(n_vms, _CODES)
    # Only a first touch (code 0: untouched, not paged out) grows the VM past its max;
    # data it had comes back regardless. A VM with room for all of them drops none.
    complete = True
    if (by_vm[:, 0] > room).any():
        first = (loc == Loc.UNTOUCHED) & ~swapped_by_guest
        rank = np.cumsum(first) - 1
        per_vm_first = np.bincount(vm[first], minlength=n_vms)
        start = np.cumsum(per_vm_first) - per_vm_first
        rank_in_vm = rank - start[vm]
        keep = np.flatnonzero(~first | (rank_in_vm < room[vm]))
        complete = False
        pages, vm, loc, swapped_by_guest, code = (np.take(a, keep) for a in (
            pages, vm, loc, swapped_by_guest, code))
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    if not ok.all():
        complete = False
        served = np.flatnonzero(ok)
        pages, vm, loc, swapped_by_guest, got, code = (np.take(a, served) for a in (
            pages, vm, loc, swapped_by_guest, got, code))
    if not complete:
        by_vm = np.bincount(code, minlength=n_vms * _CODES).reshape(n_vms, _CODES)
    unzipped = np.take(p.frame, np.compress(loc == Loc.COMPRESSED, pages)).astype(np.int64)
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    # First touches and pops get a zeroed frame; swap-ins, unzips and page-ins their data.
    fresh = (loc != Loc.SWAPPED) & (loc != Loc.COMPRESSED)
    if swapped_by_guest.any():
        fresh &= ~swapped_by_guest
        p.guest_swapped[np.compress(swapped_by_guest, pages)] = False
    p.content[np.compress(fresh, pages)] = 0
    is_popped = np.flatnonzero(loc == Loc.BALLOONED)
    popped = np.take(pages, is_popped)
    popped_kind = p.at("guest_kind", popped).astype(np.int64)
    p.guest_kind[popped] = kind
    return by_vm, complete, unzipped, popped, np.take(vm, is_popped), popped_kind


def _per_host(state: State, per_vm: I64) -> I64:
    """Per-VM counts summed over each VM's host (VMs with none may have no host)."""
    has = per_vm != 0
    return np.bincount(state.vms["host"][has], weights=per_vm[has],
                       minlength=len(state.hosts)).astype(np.int64)


def _hold(state: State, held: Bool, read_pages: I64, write_pages: I64, write_content: U64,
          kind: int) -> tuple[I64, I64, U64]:
    """Post-copy: a VM with pages still at a migration source makes its touches in the
    migration phase, in time with the pages' arrival (engine/migration/postcopy.py)."""
    held_r, held_w = in_vms(state.vms, held, read_pages), in_vms(state.vms, held, write_pages)
    state.held_touches.append((np.compress(held_r, read_pages), np.compress(held_w, write_pages),
                               np.compress(held_w, write_content), kind))
    return (np.compress(~held_r, read_pages), np.compress(~held_w, write_pages),
            np.compress(~held_w, write_content))


def _cow_break(state: State, pages: I64) -> bool:
    """Private copies of shared pages written to; whether every one got its frame."""
    vms = state.vms
    pages = unique_sorted(pages)
    vm = vm_of_sorted(vms, pages)
    if kernels.compiled():
        complete, old, broken, zero = fault_loop.cow_break(state, pages, vm)
    else:
        complete, old, broken, zero = _cow_break_numpy(state, pages, vm)
    frame_alloc.release(state, old)
    loc_count = vms["loc_count"]  # count_moves(state, vm, Loc.SHARED, Loc.PRIVATE)
    loc_count[:, Loc.SHARED] -= broken
    loc_count[:, Loc.PRIVATE] += broken
    vms["zero_shared"] -= zero
    vms["cow_breaks"] += broken
    vms["cow_breaks_tick"] += broken
    vms["lost_cow_s_tick"] += broken * COW_COPY_S * fine_pages(state.page_size)
    return complete


def _cow_break_numpy(state: State, pages: I64, vm: I64) -> tuple[bool, I64, I64, I64]:
    """fault_loop.cow_break as numpy passes: the same frames, fields and results."""
    vms, p = state.vms, state.pages
    got = frame_alloc.allocate(state, vms["host"][vm])
    ok = got >= 0
    pages, vm, got = pages[ok], vm[ok], got[ok]
    old = np.take(p.frame, pages).astype(np.int64)
    p.frame[pages] = got
    p.location[pages] = Loc.PRIVATE
    zero = np.bincount(vm[p.content[pages] == 0], minlength=len(vms)).astype(np.int64)
    return bool(ok.all()), old, np.bincount(vm, minlength=len(vms)).astype(np.int64), zero


def _claim(state: State, read_pages: I64, w_r: U16, write_pages: I64, w_w: U16,
           kind: int, found: list[I64] | None = None) -> None:
    """The guest now uses the touched pages as `kind` (anonymous memory or page cache);
    `w_r`, `w_w`: their words (location | kind << 8) as they are now. `found`: more pages
    of another kind, found by the caller (duplicates allowed)."""
    changed = np.concatenate([*(found or []), *(
        np.compress((w >> np.uint16(_KIND_SHIFT)).astype(np.uint8) != kind, pages)
        for pages, w in ((read_pages, w_r), (write_pages, w_w)))])
    if changed.size:
        changed = unique_sorted(changed)
        vm = vm_of_sorted(state.vms, changed)
        p = state.pages
        count_moves(state, vm, p.at("guest_kind", changed), kind, "kind_count", N_KIND)
        p.guest_kind[changed] = kind
        if kind_bits.marks_kind(kind):
            kind_bits.mark(state, changed)


def _write_content(content: U64, pages: I64, values: U64) -> None:
    content[pages] = values  # of a page written twice, the later content stays


def apply_touches(state: State, read_pages: I64, write_pages: I64, write_content: U64,
                  reads_per_vm: I64, writes_per_vm: I64, kind: int = GuestKind.ANON,
                  blocked: Bool | None = None, hold_postcopy: bool = True) -> TouchResult:
    p, vms, n_vms = state.pages, state.vms, len(state.vms)
    if blocked is not None and blocked.any():
        keep_r = ~in_vms(vms, blocked, read_pages)
        keep_w = ~in_vms(vms, blocked, write_pages)
        read_pages, write_pages = np.compress(keep_r, read_pages), np.compress(keep_w, write_pages)
        write_content = np.compress(keep_w, write_content)
    held = vms["loc_count"][:, Loc.REMOTE] > 0
    if hold_postcopy and held.any():
        read_pages, write_pages, write_content = _hold(state, held, read_pages, write_pages,
                                                       write_content, kind)
        reads_per_vm = np.where(held, 0, reads_per_vm)
        writes_per_vm = np.where(held, 0, writes_per_vm)
    # Each touched page's location and guest kind in one read of its word (state.Pages:
    # one cache miss a touch); the faulting pages' are read again once their faults are
    # served. The compiled loop (touch_loop.py) also marks the touches that do not fault,
    # stamps such writes and tests their kinds as it reads; the faulting touches served
    # are marked, stamped and tested at the end, as the numpy passes do every touch.
    word = p.word
    in_loop = kernels.compiled()
    if in_loop:
        code = state.touch_code
        w_r, fr_at, changed_r = touch_loop.front(read_pages, word, p.touched, code, kind)
        w_w, fw_at, changed_w = touch_loop.front(write_pages, word, p.touched, code, kind,
                                                 p.written_before, state.tick + 1)
    else:
        w_r = parallel.take(word, read_pages)
        w_w = parallel.take(word, write_pages)
        loc_r = w_r.astype(np.uint8)
        fr_at = np.flatnonzero((loc_r != Loc.PRIVATE) & (loc_r != Loc.SHARED))
        fw_at = np.flatnonzero(w_w.astype(np.uint8) != Loc.PRIVATE)  # or shared: copy-on-write
    waiting = None
    # The faulting touches served: their pages and words once served.
    served_fr = served_fw = np.zeros(0, np.int64)
    words_fr = words_fw = np.zeros(0, np.uint16)
    if fr_at.size or fw_at.size:
        fr_pages = np.take(read_pages, fr_at)
        fw_pages = np.take(write_pages, fw_at)
        fw_shared = np.take(w_w, fw_at).astype(np.uint8) == Loc.SHARED
        missing = np.concatenate([fr_pages, np.compress(~fw_shared, fw_pages)])
        # Pages still at a migration source are never faulted in here. Held touches are
        # gone already (see _hold): only an unheld caller can touch one.
        remote = bool(held.any()) and not hold_postcopy
        if remote:
            missing = missing[p.at("location", missing) != Loc.REMOTE]
        complete = _fault_in(state, missing, kind)
        complete &= _cow_break(state, np.compress(fw_shared, fw_pages))
        served_fr, served_fw = fr_pages, fw_pages
        words_fr, words_fw = np.take(word, fr_pages), np.take(word, fw_pages)
        w_r[fr_at] = words_fr
        w_w[fw_at] = words_fw
        if remote or not complete:  # some touches still fault: they stall
            loc_fr = words_fr.astype(np.uint8)
            still_r = (loc_fr != Loc.PRIVATE) & (loc_fr != Loc.SHARED)
            loc_fw = words_fw.astype(np.uint8)
            still_w = loc_fw != Loc.PRIVATE
            served_fr, words_fr = served_fr[~still_r], words_fr[~still_r]
            served_fw, words_fw = served_fw[~still_w], words_fw[~still_w]
            if not complete:
                wait_r = fr_at[still_r & (loc_fr != Loc.REMOTE)]
                wait_w = fw_at[still_w & (loc_fw != Loc.REMOTE)]
                waiting = (read_pages[wait_r], write_pages[wait_w], write_content[wait_w])
            if still_r.any():
                keep = np.ones(read_pages.size, np.bool_)
                keep[fr_at[still_r]] = False
                read_pages, w_r = np.compress(keep, read_pages), np.compress(keep, w_r)
            if still_w.any():
                keep = np.ones(write_pages.size, np.bool_)
                keep[fw_at[still_w]] = False
                write_pages, w_w = np.compress(keep, write_pages), np.compress(keep, w_w)
                write_content = np.compress(keep, write_content)

    # The writes' content, on the helper thread while the rest goes on here: nothing
    # below reads or writes a page's content.
    content_written = parallel.beside(_write_content, p.content, write_pages, write_content)
    if vms["precopying"].any():
        # The dirty log is kept only for pre-copying VMs (a migration clears its VM's
        # bits when it starts): the other VMs' bits are never written, so their part of
        # the array is never mapped (0.12 GiB on the 1,000-VM data center).
        logged = np.compress(in_vms(vms, vms["precopying"], write_pages), write_pages)
        state.write_log.append((logged, p.dirty[logged].copy()))
        p.dirty[logged] = True
    if in_loop:
        parallel.fill(p.written_before, served_fw, state.tick + 1)
        recency.mark(state, np.concatenate([served_fr, served_fw]))
        _claim(state, served_fr, words_fr, served_fw, words_fw, kind, [changed_r, changed_w])
    else:
        parallel.fill(p.written_before, write_pages, state.tick + 1)
        recency.mark(state, read_pages)
        recency.mark(state, write_pages)
        _claim(state, read_pages, w_r, write_pages, w_w, kind)
    content_written()
    served_r = np.bincount(vms.vm_of_pages(read_pages), minlength=n_vms) if (
        read_pages.size != int(reads_per_vm.sum())) else reads_per_vm
    served_w = np.bincount(vms.vm_of_pages(write_pages), minlength=n_vms) if (
        write_pages.size != int(writes_per_vm.sum())) else writes_per_vm
    return TouchResult(served_r, served_w,
                       reads_per_vm - served_r + writes_per_vm - served_w, waiting)
