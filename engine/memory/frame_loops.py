"""frames.allocate's and frames.release's bookkeeping as compiled loops (engine/kernels.py).

Dropping references is a dozen numpy passes over the same few frames: sort them, count
duplicates, read and write their refcounts, pick the freed ones, find their hosts, rank
each among its host's freed low and high frames, and push them onto the stacks. Here the
frames are sorted once and walked once. The stacks end up the same: each host's freed low
frames, ascending, on top of its low stack, and its freed high frames on top of its high
stack; the refcounts and free counts the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.sort_loop import sorted_ints
from engine.state import I32, I64, U8


def _release_loop(frames: I64, refcount: I32, frame_offset: I64, low_frames: I64,
                  free_low: I64, free_count: I64, stack_delta: I32, key_bits: U8) -> I64:
    """Drop one reference per entry of `frames` (ascending, duplicates allowed); frames
    reaching 0 go onto their host's low or high stack (slot s holds frame - s,
    memory/frames.py). Returns the freed frames that had a sharing key (their bit in
    `key_bits` set), ascending, for the sharing tables to forget."""
    n = frames.size
    keyed = np.empty(n, np.int64)
    n_keyed = 0
    h = 0
    i = 0
    while i < n:
        if i + 16 < n:  # a frame ahead: its count and key bit (the misses overlap)
            prefetch(refcount, frames[i + 16])
            prefetch(key_bits, frames[i + 16] >> 3)
        f = frames[i]
        j = i + 1
        while j < n and frames[j] == f:
            j += 1
        left = refcount[f] - (j - i)
        refcount[f] = left
        i = j
        if left != 0:
            continue
        while h + 1 < frame_offset.size and frame_offset[h + 1] <= f:
            h += 1
        off = frame_offset[h]
        lows = free_low[h]
        if f - off < low_frames[h]:
            slot = off + lows
            free_low[h] = lows + 1
        else:
            slot = off + low_frames[h] + free_count[h] - lows
        stack_delta[slot] = f - slot
        free_count[h] += 1
        if (key_bits[f >> 3] >> (f & 7)) & 1:
            keyed[n_keyed] = f
            n_keyed += 1
    return keyed[:n_keyed]


def _release_samples() -> list[tuple[Any, ...]]:
    i64 = np.zeros(1, np.int64)
    return [(np.zeros(0, np.int64), np.zeros(1, np.int32), i64, i64, i64, i64,
             np.zeros(1, np.int32), np.zeros(1, np.uint8))]


_RELEASE = Kernel(_release_loop, _release_samples)


def release(drop: npt.NDArray[Any], refcount: I32, frame_offset: I64, low_frames: I64,
            free_low: I64, free_count: I64, stack_delta: I32, key_bits: U8) -> I64:
    """_release_loop for frames of any integer type, in any order: sorted first unless
    ascending (engine/sort_loop.py, several times faster than an insertion in the loop)."""
    drop = np.asarray(drop, np.int64)
    if drop.size > 1 and not bool((drop[1:] >= drop[:-1]).all()):
        drop = sorted_ints(drop)
    return np.asarray(_RELEASE(drop, refcount, frame_offset, low_frames, free_low, free_count,
                               stack_delta, key_bits))


def pop_frame(h: int, frame_offset: I64, low_frames: I64, free_low: I64, free_count: I64,
              stack_delta: I32, low_only: bool) -> int:
    """A frame popped from host h's high stack (unless low_only), else its low stack
    (slot s holds frame s + stack_delta[s], memory/frames.py); -1 where both are empty.
    A helper of the compiled loops (Kernel's `helpers`). The caller sets the frame's
    refcount to 1, in a pass of its own: that store misses the cache, and made in the
    loop of pops it held up the pops after it (measured in the fault loop: 100 ns a page
    against 40, and 10 for the stores in a pass after)."""
    lows = free_low[h]
    highs = free_count[h] - lows
    if highs > 0 and not low_only:
        slot = frame_offset[h] + low_frames[h] + highs - 1
    elif lows > 0:
        slot = frame_offset[h] + lows - 1
        free_low[h] = lows - 1
    else:
        return -1
    free_count[h] -= 1
    frame: int = slot + stack_delta[slot]
    return frame


def _allocate_loop(host_of_request: I64, frame_offset: I64, low_frames: I64, free_low: I64,
                   free_count: I64, stack_delta: I32, refcount: I32, low_only: bool,
                   out: I32) -> None:
    """Requests in order, each given pop_frame's frame from its host (refcount 1)."""
    for i in range(host_of_request.size):
        out[i] = pop_frame(host_of_request[i], frame_offset, low_frames, free_low,
                           free_count, stack_delta, low_only)
    for i in range(out.size):
        if out[i] >= 0:
            refcount[out[i]] = 1


def _allocate_samples() -> list[tuple[Any, ...]]:
    i64 = np.zeros(1, np.int64)
    return [(np.zeros(0, np.int64), i64, i64, i64, i64, np.zeros(1, np.int32),
             np.zeros(1, np.int32), low_only, np.zeros(0, np.int32))
            for low_only in (False, True)]


_ALLOCATE = Kernel(_allocate_loop, _allocate_samples, helpers=(pop_frame,))


def allocate(host_of_request: npt.NDArray[Any], frame_offset: I64, low_frames: I64,
             free_low: I64, free_count: I64, stack_delta: I32, refcount: I32,
             low_only: bool) -> I32:
    """_allocate_loop for requests of any integer type: the frames (int32, -1 none)."""
    out = np.empty(host_of_request.shape[0], np.int32)
    _ALLOCATE(np.asarray(host_of_request, np.int64), frame_offset, low_frames, free_low,
              free_count, stack_delta, refcount, low_only, out)
    return out
