"""A tick's faults served in compiled loops (engine/kernels.py): frames for pages not
resident, and private copies of shared pages written to.

apply_touches (memory/touch.py) serves some fifteen thousand faults a tick on the data
center, and the numpy passes spend some 230 ns on each: a dozen gathers and scatters of
the faulting pages' fields, the frames' requests, bincounts for the per-VM counters. Here
the faulting pages go in page order through three passes: their words and guest-paging
flags read; the VM's room for a first touch checked, a frame popped from the host's stack
(memory/frame_loops.py's pop_frame) and the counter bumped; their frames, words, contents,
flags and the new frames' refcounts written (100 ns a page). The frames given, the stacks
and every field come out as the numpy passes leave them: the requests are served in the
same order.

What the loops do not do, the caller does after them with the counts they give: release
the frames the faults let go of (the compression cache's, the shared frames copied from),
and move the per-VM and per-host counters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.kernels import Kernel
from engine.memory.frame_loops import pop_frame
from engine.prefetch import prefetch
from engine.state import I32, I64, U64, WORD_SHIFT, Bool, Loc, State

U16 = npt.NDArray[np.uint16]

_KIND_SHIFT = WORD_SHIFT["guest_kind"]
_LOC_SHIFT = WORD_SHIFT["location"]
_KEEP_KIND = 0xFFFF & ~(0xFF << _LOC_SHIFT)  # a word's bits but its location's
_UNTOUCHED, _PRIVATE = int(Loc.UNTOUCHED), int(Loc.PRIVATE)
_SWAPPED, _BALLOONED, _COMPRESSED = int(Loc.SWAPPED), int(Loc.BALLOONED), int(Loc.COMPRESSED)
# A fault costs some 100 ns (below): a tenth of kernels.MIN_SPLIT of them is worth two
# threads.
_COST_OF_A_FAULT = 10
GUEST_OUT = 8  # added to a page's location in its code when the guest had paged it out


def of_part(vm: I64, host: I64, part: int, parts: int, mine: I64) -> int:
    """The positions of the items (of VMs `vm`) whose hosts h have h % parts == part, into
    `mine`; returns how many. A helper of the compiled loops (Kernel's `helpers`)."""
    n = 0
    for i in range(vm.size):
        if host[vm[i]] % parts == part:
            mine[n] = i
            n += 1
    return n


def _fault_loop(pages: I64, vm: I64, host: I64, room: I64, word: U16, guest_swapped: Bool,
                frame: I32, content: U64, kind: int, frame_offset: I64, low_frames: I64,
                free_low: I64, free_count: I64, stack_delta: I32, refcount: I32,
                by_vm: I64, unzipped: I64, popped: I64, popped_vm: I64,
                popped_kind: I64, part: int, parts: int) -> tuple[bool, int, int]:
    """Frames for the non-resident pages `pages` (ascending, distinct; of VMs `vm`), in
    order. A first touch (untouched, not paged out by the guest) takes one of its VM's
    `room` (decremented), and is refused when there is none; a page whose host has no free
    frame is refused. A page served is private, with content 0 unless its data comes back
    (swap-in, unzip, guest page-in), and counted in by_vm[vm, location (+ GUEST_OUT)]; a
    popped one takes guest kind `kind`. Returns (every page served, the old frames of the
    unzipped pages in `unzipped`, and the popped pages in `popped` with their VMs and old
    kinds).

    In three passes, not one: the pages' fields are read first, with no branch on what
    they hold, so the core keeps many of those cache misses in flight; then the frames
    are popped; then everything is written. One pass that branched on each word as it
    came, and stored as it went, took 250 ns a page on the data center; these three take
    some 100 (frame_loops.pop_frame says why its stores wait).

    Only the pages of hosts h with h % parts == part are served (another call serves the
    others, on another thread: no host's stack, frame or VM is the other's).
    """
    mine = np.empty(pages.size, np.int64)
    n = of_part(vm, host, part, parts, mine)
    w_at = np.empty(n, np.uint16)
    out_at = np.empty(n, np.bool_)
    for k in range(n):
        w_at[k] = word[pages[mine[k]]]
        out_at[k] = guest_swapped[pages[mine[k]]]
    got_at = np.empty(n, np.int32)
    complete = True
    n_popped = 0
    for i in range(n):
        v = vm[mine[i]]
        loc = (w_at[i] >> _LOC_SHIFT) & 0xFF
        got_at[i] = -1
        if loc == _UNTOUCHED and not out_at[i]:
            if room[v] <= 0:  # the VM is at its max: no new memory
                complete = False
                continue
            room[v] -= 1
        got = pop_frame(host[v], frame_offset, low_frames, free_low, free_count,
                        stack_delta, False)
        if got < 0:
            complete = False
            continue
        got_at[i] = got
        if loc == _BALLOONED:
            popped[n_popped] = pages[mine[i]]
            popped_vm[n_popped] = v
            popped_kind[n_popped] = (w_at[i] >> _KIND_SHIFT) & 0xFF
            n_popped += 1
        by_vm[v, loc + GUEST_OUT * out_at[i]] += 1
    n_unzipped = 0
    for i in range(n):
        got = got_at[i]
        if got < 0:
            continue
        refcount[got] = 1
        page = pages[mine[i]]
        w = w_at[i]
        loc = (w >> _LOC_SHIFT) & 0xFF
        if loc == _COMPRESSED:  # its half of a cache frame goes back
            unzipped[n_unzipped] = frame[page]
            n_unzipped += 1
        frame[page] = got
        if loc == _BALLOONED:
            word[page] = (kind << _KIND_SHIFT) | (_PRIVATE << _LOC_SHIFT)
        else:
            word[page] = (w & _KEEP_KIND) | (_PRIVATE << _LOC_SHIFT)
        if out_at[i]:
            guest_swapped[page] = False
        elif loc != _SWAPPED and loc != _COMPRESSED:  # first touch or pop: a zeroed frame
            content[page] = 0
    return complete, n_unzipped, n_popped


def _cow_loop(pages: I64, vm: I64, host: I64, word: U16, frame: I32, content: U64,
              frame_offset: I64, low_frames: I64, free_low: I64, free_count: I64,
              stack_delta: I32, refcount: I32, old: I64, broken: I64,
              zero: I64, part: int, parts: int) -> tuple[bool, int]:
    """Private frames for the shared pages `pages` (ascending, distinct; of VMs `vm`)
    written to, in order; a page whose host has no free frame keeps its shared one. The
    shared frames left go to `old`; per VM, the pages copied (`broken`) and those of them
    holding zeros (`zero`). Returns (every page served, how many were). In passes, as
    _fault_loop: the frames first, then the pages' fields read, then written; and, as it,
    only the pages of hosts h with h % parts == part."""
    mine = np.empty(pages.size, np.int64)
    n = of_part(vm, host, part, parts, mine)
    got_at = np.empty(n, np.int32)
    complete = True
    for j in range(n):
        got_at[j] = pop_frame(host[vm[mine[j]]], frame_offset, low_frames, free_low,
                              free_count, stack_delta, False)
        complete &= got_at[j] >= 0
    k = 0
    for j in range(n):  # no branch on what is read: the misses overlap
        i = mine[j]
        page = pages[i]
        served = got_at[j] >= 0
        old[k] = frame[page]  # kept only if served: k moves on
        k += served
        zero[vm[i]] += served & (content[page] == 0)
        broken[vm[i]] += served
    for j in range(n):
        if j + 16 < n:
            prefetch(word, pages[mine[j + 16]])
        got = got_at[j]
        if got >= 0:
            refcount[got] = 1
            page = pages[mine[j]]
            frame[page] = got
            word[page] = (word[page] & _KEEP_KIND) | (_PRIVATE << _LOC_SHIFT)
    return complete, k


def _samples() -> tuple[I64, I64, I32, U16, Bool, U64]:
    i64 = np.zeros(1, np.int64)
    return (np.zeros(0, np.int64), i64, np.zeros(1, np.int32), np.zeros(1, np.uint16),
            np.zeros(1, np.bool_), np.zeros(1, np.uint64))


def _fault_samples() -> list[tuple[Any, ...]]:
    none, i64, i32, u16, flags, u64 = _samples()
    return [(none, none, i64, i64, u16, flags, i32, u64, 1, i64, i64, i64, i64, i32, i32,
             np.zeros((1, 2 * GUEST_OUT), np.int64), none, none, none, none, 0, 1)]


def _cow_samples() -> list[tuple[Any, ...]]:
    none, i64, i32, u16, _, u64 = _samples()
    return [(none, none, i64, u16, i32, u64, i64, i64, i64, i64, i32, i32, none, i64, i64,
             0, 1)]


_FAULT = Kernel(_fault_loop, _fault_samples, helpers=(pop_frame, of_part))
_COW = Kernel(_cow_loop, _cow_samples, helpers=(pop_frame, of_part))


def fault_in(state: State, pages: I64, vm: I64, room: I64,
             kind: int) -> tuple[I64, bool, I64, I64, I64, I64]:
    """_fault_loop over `pages` (ascending, distinct) of VMs `vm`, each VM with `room`
    first touches left (used up in place): (the pages served per VM and code, as a
    (VMs, 2 * GUEST_OUT) array; whether every page was served; the unzipped pages' old
    frames; the popped pages, their VMs and their old guest kinds)."""
    p, hosts, frames = state.pages, state.hosts, state.frames
    n = pages.size
    by_vm = np.zeros((len(state.vms), 2 * GUEST_OUT), np.int64)
    pages, vm, room = (np.asarray(a, np.int64) for a in (pages, vm, room))

    def serve(part: int, parts: int) -> tuple[bool, I64, I64, I64, I64]:
        unzipped, popped, popped_vm, popped_kind = (np.empty(n, np.int64) for _ in range(4))
        # Plain ints: numba types an IntEnum (GuestKind) apart, and compiles again for it.
        complete, n_unzipped, n_popped = _FAULT(
            pages, vm, state.vms["host"], room, p.word, p.guest_swapped, p.frame, p.content,
            int(kind), hosts.frame_offset, hosts.low_frames, hosts.free_low, hosts.free_count,
            frames.free_stack_delta, frames.refcount, by_vm, unzipped, popped, popped_vm,
            popped_kind, part, parts)
        return (bool(complete), unzipped[:n_unzipped], popped[:n_popped],
                popped_vm[:n_popped], popped_kind[:n_popped])

    # Hosts by parity, a half on each thread (each serves its hosts' pages in page order,
    # so every stack gives the same frames to the same pages as one loop would). The
    # caller sorts the unzipped frames and counts the pops: their order does not matter.
    halves = parallel.by_parity(serve, n, kernels.MIN_SPLIT // _COST_OF_A_FAULT)
    complete = all(half[0] for half in halves)
    unzipped, popped, popped_vm, popped_kind = (
        np.concatenate(parts) for parts in zip(*(half[1:] for half in halves), strict=True))
    return by_vm, complete, unzipped, popped, popped_vm, popped_kind


def cow_break(state: State, pages: I64, vm: I64) -> tuple[bool, I64, I64, I64]:
    """_cow_loop over `pages` (ascending, distinct) of VMs `vm`: (whether every page was
    served, the shared frames they left, and per VM the pages copied and the zero pages
    among them). By hosts' parity on two threads, as fault_in: each half writes its own
    VMs' counts and its own part of the frames left (which the caller sorts)."""
    p, hosts, frames = state.pages, state.hosts, state.frames
    n_vms = len(state.vms)
    pages, vm = np.asarray(pages, np.int64), np.asarray(vm, np.int64)
    broken, zero = np.zeros(n_vms, np.int64), np.zeros(n_vms, np.int64)

    def serve(part: int, parts: int) -> tuple[bool, I64]:
        old = np.empty(pages.size, np.int64)
        complete, n = _COW(pages, vm, state.vms["host"], p.word, p.frame, p.content,
                           hosts.frame_offset, hosts.low_frames, hosts.free_low,
                           hosts.free_count, frames.free_stack_delta, frames.refcount, old,
                           broken, zero, part, parts)
        return bool(complete), old[:n]

    halves = parallel.by_parity(serve, pages.size, kernels.MIN_SPLIT // _COST_OF_A_FAULT)
    old = halves[0][1] if len(halves) == 1 else np.concatenate([h[1] for h in halves])
    return all(h[0] for h in halves), old, broken, zero
