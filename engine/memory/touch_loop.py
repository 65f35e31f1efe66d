"""The first look at a tick's touches in one compiled loop (engine/kernels.py).

For each touch, apply_touches gathers the page's word (location and guest kind), tests
whether it faults, marks the page touched this period, and later tests whether the touch
changes the page's guest kind: a gather, a scatter and some six passes of temporaries over
every touch, a third of a million a tick on the data center. Here each touch's page is
read and marked in one go, with its tests: the loop gives the words, the positions of the
touches that fault, and the pages whose kind changes among those that do not.

It marks only the touches that do not fault: a faulting touch may stall (no frame), and a
stalled touch has not touched its page; apply_touches marks the faulting ones it serves
once their faults are done. Every mark stores the same code, so the order of the marks
(and which thread makes one) cannot matter. A touch that does not fault keeps its guest
kind through the faults of the others (only a faulting page is given a frame or popped
from the balloon, and a popped page faults for reads and writes alike).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.state import I32, I64, U8, WORD_SHIFT, Loc

U16 = npt.NDArray[np.uint16]

_LOC_SHIFT = WORD_SHIFT["location"]
_KIND_SHIFT = WORD_SHIFT["guest_kind"]
_PRIVATE, _SHARED = int(Loc.PRIVATE), int(Loc.SHARED)


def _front_loop(pages: I64, word: U16, touched: U8, code: int, kind: int, writes: bool,
                written_before: I32, stamp: int, w_out: U16, fault_at: I64, changed: I64,
                first: int, stop: int) -> tuple[int, int]:
    """Touches first..stop-1: their words into w_out; the positions of those that fault
    (a write to a page not private, a read of one neither private nor shared) into
    fault_at, and the pages of the others whose kind is not `kind` into `changed`, both
    from index `first` on; the others' pages marked with `code` (and, writes, their
    written_before set to `stamp`). Returns how many of each."""
    n_fault = first
    n_changed = first
    for i in range(first, stop):
        if i + 16 < stop:
            ahead = pages[i + 16]
            prefetch(word, ahead)
            prefetch(touched, ahead)
            if writes:
                prefetch(written_before, ahead)
        page = pages[i]
        w = word[page]
        w_out[i] = w
        loc = (w >> _LOC_SHIFT) & 0xFF
        if loc != _PRIVATE and (writes or loc != _SHARED):
            fault_at[n_fault] = i
            n_fault += 1
            continue
        touched[page] = code
        if writes:
            written_before[page] = stamp
        if ((w >> _KIND_SHIFT) & 0xFF) != kind:
            changed[n_changed] = page
            n_changed += 1
    return n_fault - first, n_changed - first


def _front_samples() -> list[tuple[Any, ...]]:
    none = np.zeros(0, np.int64)
    return [(none, np.zeros(1, np.uint16), np.zeros(1, np.uint8), 1, 0, writes,
             np.zeros(1, np.int32), 1, np.zeros(0, np.uint16), none, np.zeros(0, np.int64),
             0, 0)
            for writes in (False, True)]


_FRONT = Kernel(_front_loop, _front_samples)
_NO_STAMPS = np.zeros(1, np.int32)


def front(pages: I64, word: U16, touched: U8, code: int, kind: int,
          written_before: I32 | None = None, stamp: int = 0) -> tuple[U16, I64, I64]:
    """(words, positions of the faulting touches ascending, pages whose kind changes among
    the others, duplicates possible) of `pages`, the others marked touched with `code`;
    given `written_before`, the touches are writes and the others' pages are stamped.
    Cut in pieces taken by two threads (parallel.spread): each piece writes its own part
    of the outputs (and the same value into the pages' marks and stamps)."""
    pages = np.asarray(pages, np.int64)
    n = pages.size
    w_out = np.empty(n, np.uint16)
    fault_at = np.empty(n, np.int64)
    changed = np.empty(n, np.int64)
    writes = written_before is not None
    # Plain ints: numba types an IntEnum (GuestKind) apart, and compiles again for it.
    args = (pages, word, touched, int(code), int(kind), writes,
            written_before if writes else _NO_STAMPS, stamp, w_out, fault_at, changed)
    parts = parallel.spread(lambda lo, hi: _FRONT(*args, lo, hi),
                            parallel.even(n, kernels.MIN_SPLIT))
    if len(parts) == 1:
        f, c = parts[0][1]
        return w_out, fault_at[:f], changed[:c]
    return (w_out, np.concatenate([fault_at[lo:lo + f] for lo, (f, _) in parts]),
            np.concatenate([changed[lo:lo + c] for lo, (_, c) in parts]))
