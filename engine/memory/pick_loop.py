"""guest.probe and guest.take in one compiled loop (engine/kernels.py), for classes that
follow from a page's record (location and guest kind) and whether it is recent.

The numpy passes spread per-VM columns over the candidates, gather each candidate's word,
class it, count the classes per VM and pick the first ones of each VM's classes in probe
order, a pass or two over the candidates each. Here each VM's candidates are made, classed
and picked in one go from the same random numbers (drawn by numpy from the caller's
stream, as probe draws them), so the picks are the same: `take`'s rule (every candidate of
a class better than the VM's cut-off class, and of the cut-off class the first ones up to
the want) applied in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.state import I64, N_KIND, N_LOC, U8, WORD_SHIFT, State, VMs

I8 = npt.NDArray[np.int8]
U16 = npt.NDArray[np.uint16]


def class_table(classify: Callable[[U8, U8, U8], I8], none: int) -> I8:
    """A page's class by (recent, word): classify(kind, location, recent) over every
    valid kind and location, `none` for words no page has."""
    word = np.arange(1 << 16, dtype=np.uint32)
    kind = (word >> WORD_SHIFT["guest_kind"]) & 0xFF
    loc = (word >> WORD_SHIFT["location"]) & 0xFF
    valid = (kind < N_KIND) & (loc < N_LOC)
    table = np.full((2, word.size), none, np.int8)
    for recent in (0, 1):
        table[recent, valid] = classify(kind[valid].astype(np.uint8), loc[valid].astype(np.uint8),
                                        np.full(int(valid.sum()), recent, np.uint8))
    return table


_LOC_SHIFT = WORD_SHIFT["location"]


def probe_counts(vms: VMs, want: I64, factor: int) -> I64:
    """Candidates guest.probe makes for each VM: `factor` per wanted page, plus 32 (past
    the VM's size a probe stops paying off; the caller scans VMs it leaves short)."""
    return np.asarray(np.where(want > 0, np.minimum(factor * want + 32, vms["n_pages"]), 0),
                      np.int64)


def _pick_loop(r: npt.NDArray[np.float64], m: I64, want: I64, n_pages: I64, offset: I64,
               word: U16, touched: U8, now_code: int, prev_code: int, use_recency: bool,
               table: I8, exclude: I64, exclude_class: int, n_classes: int, longest: int,
               out_page: I64, out_class: I8, out_loc: U8, first_vm: int, stop_vm: int,
               first: int) -> int:
    """Candidates r[s:s + m[v]] of each VM v of first_vm..stop_vm-1 in turn (from
    s = `first`; a page r * n_pages + offset, as probe makes it), classed by
    table[recent, word] (a page of `exclude_class` that is in the sorted `exclude` is of
    class n_classes, never picked), and picked as take() picks; the picks in probe order
    go to the outputs from index `first` on. Returns how many there are."""
    counts = np.zeros(n_classes + 1, np.int64)
    page_of = np.empty(longest, np.int64)
    class_of = np.empty(longest, np.int8)
    word_of = np.empty(longest, np.uint16)
    recent_of = np.zeros(longest, np.uint8)  # stays 0 without recency
    k = first
    s = first
    for v in range(first_vm, stop_vm):
        c = m[v]
        if c == 0:
            continue
        span = float(n_pages[v])
        base = offset[v]
        counts[:] = 0
        # The reads first, in a loop of their own: each is a likely cache miss, and with
        # nothing else in the loop many are in flight at once.
        for i in range(c):
            page = np.int64(r[s + i] * span) + base
            page_of[i] = page
            word_of[i] = word[page]
            if use_recency:  # its mark, read in the next loop, on its way too
                prefetch(touched, page)
        if use_recency:
            for i in range(c):
                t = touched[page_of[i]]
                recent_of[i] = int(t == now_code) | int(t == prev_code)
        for i in range(c):
            cl = table[recent_of[i], word_of[i]]
            if cl == exclude_class and exclude.size:
                at = np.searchsorted(exclude, page_of[i])
                if at < exclude.size and exclude[at] == page_of[i]:
                    cl = n_classes
            class_of[i] = cl
            counts[cl] += 1
        cutoff, quota, before = n_classes, 0, 0
        for cc in range(n_classes):
            if before + counts[cc] >= want[v]:
                cutoff, quota = cc, want[v] - before
                break
            before += counts[cc]
        taken = 0
        for i in range(c):
            cl = class_of[i]
            if cl < cutoff or (cl == cutoff and taken < quota):
                if cl == cutoff:
                    taken += 1
                out_page[k], out_class[k] = page_of[i], cl
                out_loc[k] = (word_of[i] >> _LOC_SHIFT) & 0xFF
                k += 1
        s += c
    return k - first


def _pick_samples() -> list[tuple[Any, ...]]:
    none = np.zeros(0, np.int64)
    return [(np.zeros(0), none, none, none, none, np.zeros(1, np.uint16), np.zeros(1, np.uint8),
             1, 0, use, np.zeros((2, 1), np.int8), none, -1, 4, 0, none, np.zeros(0, np.int8),
             np.zeros(0, np.uint8), 0, 0, 0) for use in (False, True)]


_PICK = Kernel(_pick_loop, _pick_samples)


def probe_take(state: State, rng: np.random.Generator, want: I64, factor: int, table: I8,
               n_classes: int, use_recency: bool = False, exclude: I64 | None = None,
               exclude_class: int = -1) -> tuple[I64, I8, U8]:
    """take(*probe(state, rng, want, factor), classes, want) before its sort, with each
    pick's class and location: (pages, classes, locations) in probe order, a page
    possibly twice (as probe may give it twice). Classes come from `table`
    (class_table); a page of `exclude_class` in the sorted `exclude` is never picked."""
    vms = state.vms
    m = probe_counts(vms, want, factor)
    r = rng.random(int(m.sum()))  # the numbers probe draws, in its order
    n = r.size
    out = (np.empty(n, np.int64), np.empty(n, np.int8), np.empty(n, np.uint8))
    args = (r, m, np.asarray(want, np.int64), np.asarray(vms["n_pages"], np.int64),
            np.asarray(vms["page_offset"], np.int64), state.pages.word, state.pages.touched,
            state.touch_code, state.previous_code, use_recency, table,
            np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, np.int64),
            exclude_class, n_classes, int(m.max(initial=0)), *out)
    # Each VM is picked apart from the others: two threads may take a share of them each,
    # a share's picks written from its first candidate's index (it picks no more than it
    # has candidates).
    ends = np.cumsum(m)
    cut = int(np.searchsorted(ends, n // 2)) + 1 if parallel.cut_point(n, kernels.MIN_SPLIT) else 0
    if 0 < cut < m.size:
        mid = int(ends[cut - 1])
        k_lo, k_hi = parallel.pair(lambda: _PICK(*args, 0, cut, 0),
                                   lambda: _PICK(*args, cut, m.size, mid))
        pages, classes, locs = (np.concatenate([a[:k_lo], a[mid:mid + k_hi]]) for a in out)
        return pages, classes, locs
    k = _PICK(*args, 0, m.size, 0)
    return out[0][:k], out[1][:k], out[2][:k]


def _at_loop(word: U16, start: int, stop: int, loc: int, out: I64) -> int:
    """The pages start..stop-1 whose word holds location `loc`, ascending, into `out`;
    returns how many. Every page is written and the count moves on only for a match: no
    branch on what is read."""
    n = 0
    for page in range(start, stop):
        out[n] = page
        n += ((word[page] >> _LOC_SHIFT) & 0xFF) == loc
    return n


_AT = Kernel(_at_loop, lambda: [(np.zeros(1, np.uint16), 0, 1, 0, np.zeros(1, np.int64))])


def pages_at(state: State, start: int, stop: int, loc: int) -> I64:
    """The pages start..stop-1 at location `loc`, ascending: a deflating balloon's scan of
    a VM whose ballooned pages its probes found too few of (a VM of 131,072 pages: the
    numpy passes over its words took 0.59 ms on the data center, the loop 0.10)."""
    if not kernels.compiled():
        return np.flatnonzero(state.pages.at("location", slice(start, stop)) == loc) + start
    out = np.empty(stop - start, np.int64)
    return out[:_AT(state.pages.word, start, stop, int(loc), out)]


def _among_loop(word: U16, pages: I64, loc: int, out: I64) -> int:
    """The entries of `pages` whose word holds location `loc`, in order, into `out`;
    returns how many (no branch on what is read, as _at_loop)."""
    n = 0
    for i in range(pages.size):
        page = pages[i]
        out[n] = page
        n += ((word[page] >> _LOC_SHIFT) & 0xFF) == loc
    return n


_AMONG = Kernel(_among_loop, lambda: [(np.zeros(1, np.uint16), np.zeros(0, np.int64), 0,
                                       np.zeros(0, np.int64))])


def pages_among(state: State, pages: I64, loc: int) -> I64:
    """The entries of `pages` at location `loc`, in order: a probe's draws of one VM
    (guest.pick), up to some 30,000 for a VM short of ballooned pages to deflate."""
    if not kernels.compiled():
        return np.compress(state.pages.at("location", pages) == loc, pages)
    out = np.empty(pages.size, np.int64)
    return out[:_AMONG(state.pages.word, np.asarray(pages, np.int64), int(loc), out)]
