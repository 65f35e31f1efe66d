"""What a balloon's victims become, in one compiled loop (engine/kernels.py): what
balloon.inflate does with guest.unmap and guest.set_kind in numpy passes.

A victim leaves guest memory for the balloon: its frame (if it had one) goes back, its
location and kind become BALLOONED and the driver's, the per-VM and per-host counters
move, the data the guest keeps is paged out to its disk (its anonymous pages) and the rest
dropped (content zero). In numpy passes that is some thirty calls over the victims: on
the data center some 6,700 victims a tick, up to 90,000 when hosts fall into the soft
state. Most of their cost is the misses on four page arrays; the loop asks for a victim's
lines 16 ahead, so its misses overlap (without the hints the loop was no faster than the
passes; with them the inflation takes 0.25-0.35 ms less a tick). The frames go back after
the loop, in one frames.release, as unmap gave them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel
from engine.memory import frames as frame_alloc
from engine.memory.guest import ANON_COLD, ANON_HOT, I8, KIND_OF_CLASS
from engine.prefetch import prefetch
from engine.state import I64, U8, WORD_SHIFT, GuestKind, Loc, State

_KIND_OF_CLASS = np.asarray(KIND_OF_CLASS, np.int64)


def _inflate_loop(victims: I64, owner: I64, cls: I8, loc: U8, word: npt.NDArray[np.uint16],
                  frame: npt.NDArray[np.int32], content: npt.NDArray[np.uint64],
                  guest_swapped: npt.NDArray[np.bool_], kind_of_class: I64, vm_host: I64,
                  loc_count: npt.NDArray[np.int64], kind_count: npt.NDArray[np.int64],
                  zero_shared: I64, compressed_pages: I64, swapped_pages: I64,
                  evicted: I64, got: I64, dropped: I64, loc_shift: int, kind_shift: int,
                  shared: int, compressed: int, swapped: int, ballooned: int, driver: int,
                  anon_cold: int, anon_hot: int) -> int:
    """Each victim (with its VM, balloon class and location) ballooned; the frames they
    held go into `dropped`, whose count is returned."""
    n_dropped = 0
    as_ballooned = (ballooned << loc_shift) | (driver << kind_shift)
    n = victims.size
    for i in range(n):
        if i + 16 < n:  # a victim ahead: the lines it will read and write (misses overlap)
            ahead = victims[i + 16]
            prefetch(frame, ahead)
            prefetch(content, ahead)
            prefetch(word, ahead)
            prefetch(guest_swapped, ahead)
        page, v, c, lc = victims[i], owner[i], cls[i], np.int64(loc[i])
        if lc == shared and content[page] == 0:
            zero_shared[v] -= 1  # the zero page's sharers are counted per VM
        f = frame[page]
        if f >= 0:
            dropped[n_dropped] = f
            n_dropped += 1
        frame[page] = -1
        if lc == compressed:
            compressed_pages[vm_host[v]] -= 1
        elif lc == swapped:
            swapped_pages[vm_host[v]] -= 1
        loc_count[v, lc] -= 1
        loc_count[v, ballooned] += 1
        if c in (anon_cold, anon_hot):  # paged out to the guest's disk
            guest_swapped[page] = True
            evicted[v] += 1
        else:  # free or cache pages: dropped
            content[page] = 0
        kind_count[v, kind_of_class[c]] -= 1
        kind_count[v, driver] += 1
        word[page] = as_ballooned
        got[v] += 1
    return n_dropped


def _samples() -> list[tuple[Any, ...]]:
    i64 = np.zeros(0, np.int64)
    two = np.zeros((1, 1), np.int64)
    return [(i64, i64, np.zeros(0, np.int8), np.zeros(0, np.uint8), np.zeros(0, np.uint16),
             np.zeros(0, np.int32), np.zeros(0, np.uint64), np.zeros(0, np.bool_), i64, i64,
             two, two, i64, i64, i64, i64, i64, i64, 0, 8, 1, 2, 3, 4, 5, 2, 3)]


_INFLATE = Kernel(_inflate_loop, _samples)


def apply(state: State, victims: I64, owner: I64, cls: I8, loc: U8) -> tuple[I64, I64]:
    """The victims ballooned (guest.unmap to BALLOONED, the content of those not paged out
    dropped, guest.set_kind to the driver's); returns (pages paged out, pages taken) per
    VM."""
    vms, p, hosts = state.vms, state.pages, state.reclaim.hosts
    n = len(vms)
    evicted, got = np.zeros(n, np.int64), np.zeros(n, np.int64)
    dropped = np.empty(victims.size, np.int64)
    k = _INFLATE(np.asarray(victims, np.int64), np.asarray(owner, np.int64),
                 np.asarray(cls, np.int8), np.asarray(loc, np.uint8), p.word, p.frame,
                 p.content, p.guest_swapped, _KIND_OF_CLASS,
                 np.asarray(vms["host"], np.int64), vms["loc_count"], vms["kind_count"],
                 vms["zero_shared"], hosts["compressed_pages"], hosts["swapped_pages"],
                 evicted, got, dropped, WORD_SHIFT["location"], WORD_SHIFT["guest_kind"],
                 int(Loc.SHARED), int(Loc.COMPRESSED), int(Loc.SWAPPED), int(Loc.BALLOONED),
                 int(GuestKind.DRIVER), ANON_COLD, ANON_HOT)
    frame_alloc.release(state, dropped[:k])
    return evicted, got
