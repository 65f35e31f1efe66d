"""A tick's device I/O pages in one compiled loop (engine/kernels.py).

run_io's numpy passes read each I/O page's word for its location, mark the resident
ones touched, read their frames, find each frame's host to tell low from high memory,
count the bounces per VM and per host, sort the bounced pages to add their copies to
their I/O counts, and read the counts and the words again for the pages due to be
remapped: some fifteen passes over the 25,000 I/O pages a tick of the data center, each
a random read or write over GiB of page arrays. Here each page is read once, its lines
asked for 16 pages ahead: the io phase took 0.98 ms a tick against 1.35 (side by side,
2026-12-06).

A resident page's frame lies on its VM's host (an invariant engine/invariants.py checks),
so the VM's host tells the frame's low range without a search. A page's I/O count rises
one bounce at a time, stopping at 255, as the numpy passes add a page's copies at once
and clip; a count only rises in the loop, so a page that reaches the threshold is past it
at the end too (the caller sorts the pages it gives and drops repeats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.state import I32, I64, U8

U16 = npt.NDArray[np.uint16]


def _io_loop(pages: I64, vm: I64, word: U16, touched: U8, code: int, frame: I32,
             vm_host: I64, frame_offset: I64, low_frames: I64, io_count: U8,
             threshold: int, loc_shift: int, private: int, shared: int, per_vm: I64,
             per_host: I64, hot: I64) -> int:
    """Each I/O touch (page, its VM) in order: a resident page (private or shared) is
    marked with `code`; one in a high frame bounces (counted for its VM and the VM's host,
    and its I/O count rises by one, to at most 255); a private page whose count is at
    `threshold` or past it after its bounce goes into `hot` (repeats possible). Returns
    how many went into `hot`."""
    n = pages.size
    k = 0
    for i in range(n):
        if i + 16 < n:
            ahead = pages[i + 16]
            prefetch(word, ahead)
            prefetch(frame, ahead)
            prefetch(io_count, ahead)
            prefetch(touched, ahead)
        page = pages[i]
        loc = (word[page] >> loc_shift) & 0xFF
        if loc != private and loc != shared:
            continue
        touched[page] = code
        v = vm[i]
        h = vm_host[v]
        if frame[page] - frame_offset[h] < low_frames[h]:
            continue
        per_vm[v] += 1
        per_host[h] += 1
        c = io_count[page]
        if c < 255:
            c += 1
            io_count[page] = c
        if c >= threshold and loc == private:
            hot[k] = page
            k += 1
    return k


def _io_samples() -> list[tuple[Any, ...]]:
    none = np.zeros(0, np.int64)
    return [(none, none, np.zeros(1, np.uint16), np.zeros(1, np.uint8), 1, np.zeros(1, np.int32),
             none, none, none, np.zeros(1, np.uint8), 1, 0, 1, 2, none, none, none)]


IO = Kernel(_io_loop, _io_samples)
