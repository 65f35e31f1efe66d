"""share_ops.merge's and promote's page writes in one compiled loop (engine/kernels.py).

A tick's sharing remaps some thousands of pages onto shared frames (ESX's new shared
frames and the pages that join them, KSM's merges), and each remap was a dozen numpy
passes over them: the old frames gathered, the new ones scattered, the locations
scattered, the frames' references counted by a sort, the zero pages gathered and counted
per VM, the pages counted per VM. Here each page is read and written once, its lines
asked for 16 pages ahead, and the counts kept as it goes. The frames, words, refcounts
and counts come out as the passes leave them (a reference count is a sum, in any order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.state import I32, I64, U64, WORD_SHIFT, Loc, State

U16 = npt.NDArray[np.uint16]

_LOC_SHIFT = WORD_SHIFT["location"]
_KEEP = 0xFFFF & ~(0xFF << _LOC_SHIFT)  # a word's bits but its location's
_AS_SHARED = int(Loc.SHARED) << _LOC_SHIFT


def _remap_loop(pages: I64, vm: I64, frames: I64, joining: bool, count_refs: bool,
                frame_of: I32, word: U16, content: U64, refcount: I32, old: I64,
                moved: I64, zero: I64) -> None:
    """Pages (of VMs `vm`) become shared: joining, each takes frames[i] (its old frame
    into old[i]; a reference added to frames[i] if `count_refs`); else each keeps its
    frame (promoted), which old[i] gives back. Per VM, the pages moved from private to
    shared and those of them holding zeros."""
    n = pages.size
    for i in range(n):
        if i + 16 < n:
            ahead = pages[i + 16]
            prefetch(frame_of, ahead)
            prefetch(word, ahead)
            prefetch(content, ahead)
            if joining and count_refs:
                prefetch(refcount, frames[i + 16])
        page = pages[i]
        v = vm[i]
        old[i] = frame_of[page]
        if joining:
            frame_of[page] = frames[i]
            if count_refs:
                refcount[frames[i]] += 1
        word[page] = (word[page] & _KEEP) | _AS_SHARED
        moved[v] += 1
        if content[page] == 0:
            zero[v] += 1


def _remap_samples() -> list[tuple[Any, ...]]:
    none = np.zeros(0, np.int64)
    return [(none, none, none, joining, joining, np.zeros(1, np.int32),
             np.zeros(1, np.uint16), np.zeros(1, np.uint64), np.zeros(1, np.int32), none,
             none, none) for joining in (False, True)]


_REMAP = Kernel(_remap_loop, _remap_samples)


def remap(state: State, pages: I64, vm: I64, frames: I64 | None,
          count_refs: bool) -> tuple[I64, I64, I64]:
    """_remap_loop over `pages` (joining `frames`, or promoted when None): (their old
    frames, pages moved per VM, zero pages per VM)."""
    p, n_vms = state.pages, len(state.vms)
    i64 = np.int64
    old = np.empty(pages.size, i64)
    moved, zero = np.zeros(n_vms, i64), np.zeros(n_vms, i64)
    joining = frames is not None
    _REMAP(np.asarray(pages, i64), np.asarray(vm, i64),
           np.asarray(frames if joining else pages, i64), joining, count_refs and joining,
           p.frame, p.word, p.content, state.frames.refcount, old, moved, zero)
    return old, moved, zero
