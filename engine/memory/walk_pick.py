"""Picks by a walk of a VM's pages from a random point, for VMs a random probe cannot serve.

A random probe (guest.probe, pick_loop.py) draws a few candidates per page wanted and
takes the best of them; it finds what it wants only where the pages it may take are
common. A VM whose usable pages are a few per cent of its memory (a page cache squeezed
by a big working set: its free and cached pages are scarce, yet every miss must land
in one) would need hundreds of random reads per page. The guest's own reclaim does not
sample at random either: it moves along its lists from where it stopped. So such a VM
is walked instead: its pages in order from a random point (wrapping at its end) until
`factor` times the pages wanted are usable ones, or the whole VM has been passed; of the
pages passed, take's rule (guest.take) picks: every usable page of a class better than
the cut-off class (the one where the want runs out), and of that class the first ones in
walk order. A VM with fewer usable pages than it wants gets them all.

The walk passes the marks of the pages that may be free or cached (pages.free_or_cached,
memory/kind_bits.py), 64 positions a read, and reads the records of the marked pages
only, 32 at a time with their lines asked for ahead (the marked pages are far apart).
Passing every record instead, 1.1 ns a position, took 3.1 ms a tick of wall on the data
center (the walks pass 1.9 million positions a tick for 50,000 pages); now 1.1 ms, the
same picks.

The compiled loop (engine/kernels.py) and the numpy passes give the same picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.arrays import ranges, unique_sorted
from engine.kernels import Kernel
from engine.memory.guest import INELIGIBLE, taken_by_rule
from engine.prefetch import prefetch
from engine.state import FREE_OR_CACHED, I64, U64, WORD_SHIFT, State

I8 = npt.NDArray[np.int8]
U16 = npt.NDArray[np.uint16]
F64 = npt.NDArray[np.float64]

_FIRST_CHUNK = 1024  # positions each walk tries first in the numpy passes (then doubled)
# Pages wanted from which the walks are shared by two threads: a page wanted is tens of
# positions passed where pages are this scarce, about 1.2 ns each, and handing a half to
# the other thread costs 20-100 us.
_MIN_SPLIT_WANT = 1024
_MIN_SPLIT_POSITIONS = 1 << 16  # the same, in positions the walks are expected to pass
_KIND_SHIFT = WORD_SHIFT["guest_kind"]
_FREE_OR_CACHED = FREE_OR_CACHED  # a module global: numba reads it as a constant
_AHEAD = 32  # marked pages a walk finds before it reads their records (_walk_loop)


def walk_take(state: State, vm: I64, start: F64, want: I64, factor: int, table: I8,
              exclude: I64 | None = None, exclude_class: int = -1,
              best: I64 | None = None, positions: F64 | None = None) -> I64:
    """The picks of the walks of VMs `vm` (ascending, each wanting want > 0 pages), from
    position floor(start * n_pages) of each (start in [0, 1)), ascending. A page's class
    is table[0, word] (pick_loop.class_table, without recency); INELIGIBLE is never taken,
    nor a page of `exclude_class` in the sorted `exclude`. `best`: the best class each
    VM has pages of, when the caller knows it is worse than 0 (it saves walking: once a
    walk has passed want pages of that class, they are its picks however far it goes).
    `positions`: the positions each walk is expected to pass, if the caller knows, to
    share the walks between two threads by their cost rather than by the pages wanted
    (which thread walks a VM changes no pick)."""
    if vm.size == 0:
        return np.zeros(0, np.int64)
    vms = state.vms
    n = np.asarray(vms["n_pages"][vm], np.int64)
    offset = np.asarray(vms["page_offset"][vm], np.int64)
    first = (start * n).astype(np.int64)  # as probe scales its numbers: exact in float64
    want = np.asarray(want, np.int64)
    excl = np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    row = np.ascontiguousarray(table[0])
    if kernels.compiled():
        floor = np.zeros(vm.size, np.int64) if best is None else np.asarray(best, np.int64)
        word = state.pages.word
        if _usable_kinds(row) & ~FREE_OR_CACHED:
            raise ValueError("a walk takes free and cached pages only (pages.free_or_cached)")
        bits = state.pages.free_or_cached

        def walks(lo: int, hi: int) -> I64:
            out = np.empty(int(np.minimum(want[lo:hi], n[lo:hi]).sum()), np.int64)
            k = _WALK(n[lo:hi], offset[lo:hi], first[lo:hi], want[lo:hi], floor[lo:hi], factor,
                      word, bits, row, excl, exclude_class, INELIGIBLE, out)
            return out[:k]

        # Walks of different VMs are apart: two threads may take pieces of them, each
        # about as many positions expected (where the caller says), else pages wanted.
        if positions is None:
            bounds = parallel.weighed(np.cumsum(want), _MIN_SPLIT_WANT)
        else:
            bounds = parallel.weighed(np.cumsum(np.asarray(positions, np.int64)),
                                      _MIN_SPLIT_POSITIONS)
        parts = parallel.spread(walks, bounds)
        return parts[0][1] if len(parts) == 1 else np.concatenate([w for _, w in parts])
    return _walk_numpy(state, n, offset, first, want, factor, row, excl, exclude_class)


def classes(state: State, row: I8, pages: I64, exclude: I64, exclude_class: int) -> I8:
    """The class of each page by `row` (a class_table row), INELIGIBLE for a page of
    `exclude_class` in the sorted `exclude`."""
    cls = row[parallel.take(state.pages.word, pages)]
    if exclude.size:
        maybe = np.flatnonzero(cls == exclude_class)
        looked = pages[maybe]
        at = np.minimum(np.searchsorted(exclude, looked), exclude.size - 1)
        cls[maybe[exclude[at] == looked]] = INELIGIBLE
    return np.asarray(cls)


def _walk_numpy(state: State, n: I64, offset: I64, first: I64, want: I64, factor: int,
                row: I8, excl: I64, exclude_class: int) -> I64:
    """The walks as numpy passes: each walk's length found a chunk at a time (chunks
    doubling), then take's rule over every walk's pages at once."""
    k = n.size
    target = factor * want
    length = np.zeros(k, np.int64)  # positions passed so far, then the walk's length
    seen = np.zeros(k, np.int64)  # usable pages among them
    todo = np.arange(k)
    chunk = _FIRST_CHUNK
    while todo.size:
        c = np.minimum(chunk, n[todo] - length[todo])
        rel = ranges(length[todo], c)
        who = np.repeat(np.arange(todo.size), c)
        w = todo[who]
        page = offset[w] + (first[w] + rel) % n[w]
        usable = (classes(state, row, page, excl, exclude_class) < INELIGIBLE).astype(np.int64)
        # Usable pages up to and including each position, counted from the walk's start.
        run = np.cumsum(usable)
        seg_start = np.cumsum(c) - c
        before = np.concatenate([[0], run])[seg_start]
        upto = run - np.repeat(before, c) + seen[w]
        # The first position where each walk reaches its target ends it there.
        reached = np.flatnonzero(upto >= target[w])
        firsts = reached[np.diff(who[reached], prepend=-1) != 0]
        done_at = np.full(todo.size, -1, np.int64)
        done_at[who[firsts]] = firsts
        ends = done_at >= 0
        length[todo[ends]] = rel[done_at[ends]] + 1
        on = ~ends
        length[todo[on]] += c[on]
        seen[todo[on]] += run[seg_start[on] + c[on] - 1] - before[on]
        todo = todo[on & (length[todo] < n[todo])]
        chunk *= 2
    rel = ranges(np.zeros(k, np.int64), length)
    who = np.repeat(np.arange(k), length)
    page = offset[who] + (first[who] + rel) % n[who]
    cls = classes(state, row, page, excl, exclude_class)
    return unique_sorted(np.compress(taken_by_rule(who, cls, want), page))


def _usable_kinds(row: I8) -> int:
    """The guest kinds some usable page may have, as bits."""
    # A word's kind is its bits from _KIND_SHIFT up: rows of 2^_KIND_SHIFT words, one a
    # kind (no index array of the 64 Ki words made: 0.25 ms a tick when it was).
    usable = (row.reshape(-1, 1 << _KIND_SHIFT) < INELIGIBLE).any(axis=1)
    return sum(1 << int(k) for k in np.flatnonzero(usable))


def _walk_loop(n: I64, offset: I64, first: I64, want: I64, floor: I64, factor: int,
               word: U16, bits: U64, row: I8, excl: I64, exclude_class: int,
               n_classes: int, out: I64) -> int:
    """Each walk in one pass over its pages (its two stretches: from its first position to
    the VM's end, then from the VM's start), keeping the usable pages it passes; take's
    rule then picks among those. Only the pages `bits` (pages.free_or_cached) marks are
    looked at, 64 positions a read; a bit found stale is cleared, where its 64 pages are
    all the VM's (no other walk, on the other thread, writes that element). The picks go
    to `out` ascending (the VMs ascend); returns how many."""
    longest = 0
    for i in range(n.size):
        longest = max(longest, min(factor * want[i], n[i]))
    kept_page = np.empty(longest, np.int64)
    kept_class = np.empty(longest, np.int8)
    counts = np.zeros(n_classes, np.int64)
    maybe = np.empty(_AHEAD, np.int64)
    one = np.uint64(1)
    k = 0
    for i in range(n.size):
        base, s, target = offset[i], first[i], min(factor * want[i], n[i])
        own_lo, own_hi = (base + 63) >> 6, (base + n[i]) >> 6  # the elements all its own
        used = 0
        best = 0  # pages of the VM's best class kept: the first want[i] of them are the
        # picks, as they would be from any longer walk, so the walk may stop there
        done = False
        for stretch in range(2):
            if done:
                break
            lo = base + s if stretch == 0 else base
            hi = base + n[i] if stretch == 0 else base + s
            if lo >= hi:
                continue
            # The sorted exclusions are passed in step with the stretch.
            at = np.searchsorted(excl, lo)
            w = lo >> 6
            b = bits[w] & ~((one << np.uint64(lo & 63)) - one)  # its pages from lo
            while not done:
                # The next _AHEAD pages marked, their records asked for at once: marked
                # pages are far apart, each record a cache line of its own.
                m = 0
                while m < _AHEAD:
                    if (w + 1) << 6 > hi:  # the stretch's last element: its pages below hi
                        b &= (one << np.uint64(hi & 63)) - one
                    if b == 0:
                        w += 1
                        if w << 6 >= hi:
                            break
                        b = bits[w]
                        continue
                    page = (w << 6) + _lowest(b)
                    b &= b - one
                    maybe[m] = page
                    prefetch(word, page)
                    m += 1
                if m == 0:
                    break
                for j in range(m):
                    page = maybe[j]
                    cl = row[word[page]]
                    if cl >= n_classes:
                        # Stale: the page is neither free nor cached any more.
                        e = page >> 6
                        if not (_FREE_OR_CACHED >> (word[page] >> _KIND_SHIFT)) & 1 and (
                                own_lo <= e < own_hi):
                            bits[e] &= ~(one << np.uint64(page & 63))
                        continue
                    if cl == exclude_class:
                        while at < excl.size and excl[at] < page:
                            at += 1
                        if at < excl.size and excl[at] == page:
                            continue
                    kept_page[used] = page
                    kept_class[used] = cl
                    used += 1
                    if cl <= floor[i]:
                        best += 1
                    if used == target or best == want[i]:
                        done = True
                        break
        counts[:] = 0
        for j in range(used):
            counts[kept_class[j]] += 1
        cutoff, quota, before = n_classes, 0, 0
        for cc in range(n_classes):
            if before + counts[cc] >= want[i]:
                cutoff, quota = cc, want[i] - before
                break
            before += counts[cc]
        taken = 0
        k0 = k
        for j in range(used):
            cl = kept_class[j]
            if cl < cutoff or (cl == cutoff and taken < quota):
                if cl == cutoff:
                    taken += 1
                out[k] = kept_page[j]
                k += 1
        # In page order: the picks of the second stretch (below the first position) go
        # before those of the first.
        wrap = k0
        while wrap < k and out[wrap] >= base + s:
            wrap += 1
        if k0 < wrap < k:
            kept_page[:k - k0] = np.concatenate((out[wrap:k], out[k0:wrap]))
            out[k0:k] = kept_page[:k - k0]
    return k


# De Bruijn's sequence for 64: the top 6 bits of (x & -x) * _DE_BRUIJN name the lowest
# set bit of x, by _BIT_AT.
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_AT = np.zeros(64, np.int64)
for _i in range(64):
    _BIT_AT[((1 << _i) * 0x03F79D71B4CB0A89 % (1 << 64)) >> 58] = _i


def _lowest(b: Any) -> int:
    """The index of the lowest set bit of the non-zero uint64 b."""
    low = b & (~b + np.uint64(1))
    return int(_BIT_AT[(low * _DE_BRUIJN) >> np.uint64(58)])


def _walk_samples() -> list[tuple[Any, ...]]:
    none = np.zeros(0, np.int64)
    return [(none, none, none, none, none, 4, np.zeros(1, np.uint16), np.zeros(1, np.uint64),
             np.zeros(1, np.int8), none, -1, INELIGIBLE, none)]


_WALK = Kernel(_walk_loop, _walk_samples, helpers=(_lowest,))
