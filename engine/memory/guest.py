"""The guest OS's side of reclamation: which pages it gives up, and taking pages off the host.

When the balloon driver asks for memory, the guest hands over free pages first, then drops
clean page-cache pages, and only then pages out its coldest process memory to its own
virtual disk (guest paging). Picking is random among equals: a cheap stand-in for an LRU
clock that a probe of a few times the request finds without scanning the whole VM.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import unique_sorted
from engine.memory import frames as frame_alloc
from engine.memory.touch import count_moves
from engine.state import I64, N_KIND, GuestKind, Loc, State

# Preference classes for the balloon (lower is given up first); INELIGIBLE never.
FREE, CACHE, ANON_COLD, ANON_HOT, INELIGIBLE = range(5)


def balloon_class(state: State, pages: I64) -> I64:
    p = state.pages
    kind = p.guest_kind[pages]
    cls = np.full(pages.size, INELIGIBLE, np.int64)
    cls[kind == GuestKind.FREE] = FREE
    cls[kind == GuestKind.CACHE] = CACHE
    anon = kind == GuestKind.ANON
    cls[anon & ~p.accessed[pages]] = ANON_COLD
    cls[anon & p.accessed[pages]] = ANON_HOT
    return cls


def pick(state: State, rng: np.random.Generator, v: int, k: int, classes: object) -> I64:
    """Up to k pages of VM v in order of their class (random within a class).

    `classes(state, pages)` gives each page a class; INELIGIBLE pages are never picked.
    """
    if k <= 0:
        return np.zeros(0, np.int64)
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    probe = unique_sorted(off + rng.integers(0, n, size=min(n, 8 * k + 64)))
    chosen = _by_class(state, rng, probe, k, classes)
    if chosen.size < k and probe.size < n:  # too few in the probe: look at every page
        chosen = _by_class(state, rng, np.arange(off, off + n, dtype=np.int64), k, classes)
    return chosen


def _by_class(state: State, rng: np.random.Generator, pages: I64, k: int,
              classes: object) -> I64:
    cls = classes(state, pages)  # type: ignore[operator]
    eligible = cls != INELIGIBLE
    pages, cls = pages[eligible], cls[eligible]
    order = np.lexsort((rng.random(pages.size), cls))
    return np.sort(pages[order[:k]])


def unmap(state: State, pages: I64, new_loc: int) -> None:
    """Pages leave guest memory for `new_loc` (ballooned or swapped): frames go back."""
    if pages.size == 0:
        return
    p, vms = state.pages, state.vms
    vm = vms.vm_of_pages(pages)
    loc = p.location[pages]
    resident = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    shared_zero = (loc == Loc.SHARED) & (p.content[pages] == 0)
    vms["zero_shared"] -= np.bincount(vm[shared_zero], minlength=len(vms))
    frame_alloc.release(state, p.frame[pages[resident]])
    p.frame[pages] = -1
    was_swapped = loc == Loc.SWAPPED
    if was_swapped.any():
        state.reclaim.hosts["swapped_pages"] -= np.bincount(
            vms["host"][vm[was_swapped]], minlength=len(state.hosts))
    p.location[pages] = new_loc
    count_moves(state, vm, loc, new_loc)


def set_kind(state: State, pages: I64, kind: int) -> None:
    p = state.pages
    count_moves(state, state.vms.vm_of_pages(pages), p.guest_kind[pages], kind,
                "kind_count", N_KIND)
    p.guest_kind[pages] = kind
