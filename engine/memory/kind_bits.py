"""Keeping `pages.free_or_cached` (state.Pages): one bit a page, set where its guest kind
may be free or cache.

The page cache's walks (memory/walk_pick.py) look for free and cached pages, which in a VM
squeezed by its working set are a few per cent of its pages, mostly in long stretches of
none: passing every page record (2 bytes) took 1.1 ns a position, some 3 ms a tick of
two threads' time on the data center; passing the bits takes a 64-bit read for 64
positions. The bits may be a superset, never less: every change of a page's kind to free
or cache sets its bit here (guest.set_kind, the touches' claims and pops, a boot's or a
power-off's pages), and a walk clears the bits it finds stale. So nothing needs to clear
a bit when a page stops being free or cached (a write, the balloon's pin).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import kernels
from engine.kernels import Kernel
from engine.state import FREE_OR_CACHED, I64, U64, WORD_SHIFT, State, free_or_cached_bits

_KIND_SHIFT = WORD_SHIFT["guest_kind"]


def mark(state: State, pages: I64) -> None:
    """Pages `pages` (any order, repeats allowed) are free or cached now."""
    if pages.size == 0:
        return
    bits = state.pages.free_or_cached
    if kernels.compiled():
        _MARK(np.asarray(pages, np.int64), bits)
    else:
        np.bitwise_or.at(bits, pages >> 6, np.left_shift(np.uint64(1),
                                                         (pages & 63).astype(np.uint64)))


def marks_kind(kind: int) -> bool:
    """Whether a page set to guest kind `kind` must be marked."""
    return bool((FREE_OR_CACHED >> int(kind)) & 1)


def refresh(state: State, lo: int, hi: int) -> None:
    """The bits of pages [lo, hi) recomputed from their kinds, exactly (after the records
    of a range were written wholesale: a boot's, a power-off's)."""
    if hi <= lo:
        return
    p = state.pages
    if kernels.compiled():
        _REFRESH(p.word, p.free_or_cached, lo, hi, FREE_OR_CACHED)
        return
    bits = p.free_or_cached
    a, b = lo >> 6, -(-hi // 64)  # the 64-page words the range touches
    whole = free_or_cached_bits(p.word[a * 64:min(b * 64, len(p))])
    keep = np.zeros(b - a, np.uint64)  # the bits of pages outside [lo, hi) stay as they are
    if lo % 64:
        keep[0] |= np.uint64((1 << (lo % 64)) - 1)
    if hi % 64:
        keep[-1] |= np.uint64(((1 << 64) - 1) ^ ((1 << (hi % 64)) - 1))
    bits[a:b] = (bits[a:b] & keep) | (whole & ~keep)


def refresh_rows(state: State, first: int, m: int, row_word: Any) -> None:
    """refresh() of pages first.. of m VMs whose records are each `row_word` (a boot's
    template): where the rows fill whole elements, one row's bits copied to all (16 MB on
    the data center instead of its 131 million records read)."""
    n = row_word.size
    if first % 64 or n % 64:
        refresh(state, first, first + m * n)
        return
    a = first // 64
    state.pages.free_or_cached[a:a + m * n // 64].reshape(m, n // 64)[:] = free_or_cached_bits(
        np.asarray(row_word, np.uint16))


def _mark_loop(pages: I64, bits: U64) -> None:
    one = np.uint64(1)
    for i in range(pages.size):
        page = pages[i]
        bits[page >> 6] |= one << np.uint64(page & 63)


def _refresh_loop(word: Any, bits: U64, lo: int, hi: int, usable: int) -> None:
    one = np.uint64(1)
    w = lo >> 6
    while w << 6 < hi:
        first, last = max(lo, w << 6), min(hi, (w + 1) << 6)
        if last - first == 64:  # a whole element: its 64 bits made with no branch
            b = np.uint64(0)
            for j in range(64):
                bit = (usable >> (word[first + j] >> _KIND_SHIFT)) & 1
                b |= np.uint64(bit) << np.uint64(j)
        else:
            b = bits[w]
            for page in range(first, last):
                at = one << np.uint64(page & 63)
                if (usable >> (word[page] >> _KIND_SHIFT)) & 1:
                    b |= at
                else:
                    b &= ~at
        bits[w] = b
        w += 1


def _samples() -> list[tuple[Any, ...]]:
    return [(np.zeros(0, np.int64), np.zeros(1, np.uint64))]


def _refresh_samples() -> list[tuple[Any, ...]]:
    return [(np.zeros(1, np.uint16), np.zeros(1, np.uint64), 0, 0, FREE_OR_CACHED)]


_MARK = Kernel(_mark_loop, _samples)
_REFRESH = Kernel(_refresh_loop, _refresh_samples)
