"""Giving the memory behind the empty part of the free-frame stacks back to the OS.

Each host's free stack (memory/frames.py) has a slot for every frame it owns. A new
world's stacks are zeros the build never writes, but frames freed and taken again write
slots; once the VMs are running, nine slots in ten are above the stack's top, where
nothing reads them (a push writes a slot before a pop reads it). On the 1,000-VM data
center that grows towards 0.3 GiB of dead memory. Every RELEASE_EVERY_TICKS ticks
(and after the build) the whole pages among those slots are released with
madvise(MADV_DONTNEED): the kernel drops them and maps zero pages if they are written
again; the slots around them are zeroed, so every empty slot reads 0 after a release.
Simulator housekeeping only: no slot below a top changes, so neither does any result;
the schedule is by tick and what the empty slots hold after it does not depend on where
the array lies in memory, so runs, saves and digests stay bit-identical.
"""

from __future__ import annotations

import mmap

import numpy as np

from engine import libc
from engine.state import State
from engine.world import World

RELEASE_EVERY_TICKS = 600
_MIN_BYTES = 64 * 1024  # smaller runs are not worth a system call
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


_MADVISE = None if _MADV_DONTNEED is None else libc.madvise()


def release_empty_slots(state: State) -> int:
    """Release the pages of the stacks' empty slots; returns the bytes released."""
    stack = state.frames.free_stack_delta
    if _MADVISE is None or not (stack.flags.owndata and stack.flags.writeable):
        return 0  # (a view or a read-only map: its memory is not ours to drop)
    hosts = state.hosts
    off, low, n = hosts.frame_offset, hosts.low_frames, hosts.n_frames
    free_high = hosts.free_count - hosts.free_low
    # Each host's two empty ranges, in slots: above the low stack, above the high stack.
    start = np.concatenate([off + hosts.free_low, off + low + free_high])
    end = np.concatenate([off + low, off + n])
    start, end = np.clip(start, 0, stack.size), np.clip(end, 0, stack.size)
    item, page, base = stack.itemsize, mmap.PAGESIZE, stack.ctypes.data
    # Whole pages inside each range go back to the kernel; the slots left (the range's
    # ends, and ranges too short to bother) are zeroed, so that every empty slot reads 0
    # afterwards (the slot's own frame) whatever the array's alignment: saves and digests
    # do not depend on it.
    first = np.minimum((base + start * item + page - 1) // page * page, base + end * item)
    last = np.maximum((base + end * item) // page * page, first)
    worth = last - first >= _MIN_BYTES
    first = np.where(worth, first, base + end * item)  # a short range: zeroed whole
    last = np.where(worth, last, base + end * item)
    released = 0
    spans = zip(start.tolist(), end.tolist(), first.tolist(), last.tolist(), strict=True)
    for s, e, a, b in spans:  # per host: two ranges each
        head, tail = (a - base) // item, (b - base) // item
        stack[s:head] = 0
        stack[tail:e] = 0
        if b > a and _MADVISE(a, b - a, _MADV_DONTNEED) == 0:
            released += b - a
        elif b > a:
            stack[head:tail] = 0  # not released: zeroed like the rest
    return released


def run_upkeep(world: World) -> None:
    if world.state.tick % RELEASE_EVERY_TICKS == RELEASE_EVERY_TICKS - 1:
        release_empty_slots(world.state)
