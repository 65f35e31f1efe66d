"""Moving a VM's memory from the source host to the destination at switch-over.

Pages the destination holds get destination frames (shared pages become private there
and may be re-shared by its scanner); the source's frames and swap slots are released
only now, at commit. Pages still at the source in post-copy become REMOTE: they keep
their source frame (or source swap slot) until pulled or pushed.
"""

from __future__ import annotations

import numpy as np

from engine.memory import frames as frame_alloc
from engine.memory import migration_hooks
from engine.memory.counts import count_moves
from engine.migration.model import Migration
from engine.state import I64, Loc, State


def _to_destination(state: State, mig: Migration, pages: I64) -> None:
    """Give `pages` destination frames (or destination swap when it is full)."""
    p, vms = state.pages, state.vms
    if pages.size == 0:
        return
    loc = p.location[pages]
    old_frames = p.frame[pages]
    src_swapped = int(((loc == Loc.SWAPPED) | ((loc == Loc.REMOTE) & (old_frames < 0))).sum())
    state.reclaim.hosts["compressed_pages"][mig.src] -= int((loc == Loc.COMPRESSED).sum())
    zero_shared = int(((loc == Loc.SHARED) & (p.content[pages] == 0)).sum())
    got = frame_alloc.allocate(state, np.full(pages.size, mig.dst, np.int64))
    frame_alloc.release(state, old_frames[old_frames >= 0])
    ok = got >= 0
    p.frame[pages] = np.where(ok, got, -1)
    p.location[pages] = np.where(ok, Loc.PRIVATE, Loc.SWAPPED)
    vm = np.full(pages.size, mig.vm, np.int64)
    count_moves(state, vm[ok], loc[ok], Loc.PRIVATE)
    count_moves(state, vm[~ok], loc[~ok], Loc.SWAPPED)
    vms["zero_shared"][mig.vm] -= zero_shared
    reclaim = state.reclaim.hosts
    reclaim["swapped_pages"][mig.src] -= src_swapped
    reclaim["swapped_pages"][mig.dst] += int((~ok).sum())


def holding(state: State, sl: slice) -> I64:
    """Pages of the VM that hold data the destination must have."""
    loc = state.pages.location[sl]
    keep = (loc == Loc.PRIVATE) | (loc == Loc.SHARED) | (loc == Loc.SWAPPED) | (
        loc == Loc.REMOTE) | (loc == Loc.COMPRESSED)
    return np.asarray(np.flatnonzero(keep) + sl.start, np.int64)


def commit(state: State, mig: Migration, sl: slice, late: I64) -> None:
    """Pre-copy switch-over: check what was sent, then move the VM. `late` pages were
    written after the pause, i.e. at the destination once it runs: not part of the check."""
    pages = holding(state, sl)
    idx = pages - sl.start
    wrong = ~mig.at_dest[idx] | (mig.sent_content[idx] != state.pages.content[pages])
    wrong[np.isin(pages, late)] = False
    mig.content_mismatches = int(wrong.sum())
    _to_destination(state, mig, pages)
    migration_hooks.vm_moved(state, mig.vm, mig.src)
    state.vms["host"][mig.vm] = mig.dst


def go_remote(state: State, mig: Migration, sl: slice) -> None:
    """Post-copy switch-over: the VM runs at the destination from now on; pages it has
    there already (a hybrid's clean pre-copied pages) move now, the rest become REMOTE."""
    p = state.pages
    pages = holding(state, sl)
    idx = pages - sl.start
    clean = mig.at_dest[idx] & (mig.sent_content[idx] == p.content[pages])
    mig.sent_content[idx] = p.content[pages]  # the source copy is frozen from now on
    mig.content_mismatches = 0
    _to_destination(state, mig, pages[clean])
    remote = pages[~clean]
    loc = p.location[remote]
    state.reclaim.hosts["compressed_pages"][mig.src] -= int((loc == Loc.COMPRESSED).sum())
    shared_zero = int(((loc == Loc.SHARED) & (p.content[remote] == 0)).sum())
    state.vms["zero_shared"][mig.vm] -= shared_zero
    count_moves(state, np.full(remote.size, mig.vm, np.int64), loc, Loc.REMOTE)
    p.location[remote] = Loc.REMOTE
    mig.at_dest[:] = False
    mig.at_dest[idx[clean]] = True
    migration_hooks.vm_moved(state, mig.vm, mig.src)
    state.vms["host"][mig.vm] = mig.dst


def pull(state: State, mig: Migration, pages: I64) -> I64:
    """Bring REMOTE pages over; returns them."""
    pages = pages[state.pages.location[pages] == Loc.REMOTE]
    _to_destination(state, mig, pages)  # a full destination swaps what it cannot hold
    off = int(state.vms["page_offset"][mig.vm])
    mig.at_dest[pages - off] = True
    return pages
