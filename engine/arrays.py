"""Small numpy helpers for hot paths.

`np.unique` in numpy 2.x goes through a hash table that is one to two orders of magnitude
slower than sorting for the integer index arrays the engine dedupes every tick (measured:
300k int64 indices, 43 ms vs 1.5 ms), so the engine sorts instead.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels
from engine.sort_loop import group_packed, sorted_ints, sorted_u64

IntArray = npt.NDArray[np.integer[Any]]


def unique_sorted(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sorted distinct values (integers sorted by engine/sort_loop.py)."""
    if values.size == 0:
        return values.copy()
    s = sorted_ints(values) if values.dtype.kind in "iu" else np.sort(values)
    keep = np.empty(s.size, np.bool_)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def ranges(starts: npt.ArrayLike, counts: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """start, start+1, ..., start+count-1 for each (start, count), concatenated (the flat
    index of ragged regions)."""
    counts = np.asarray(counts, np.int64)
    if counts.size == 1 and counts.reshape(-1)[0] >= 0:  # one region (a migration's)
        start = int(np.asarray(starts).reshape(-1)[0])
        return np.arange(start, start + int(counts.reshape(-1)[0]), dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(np.asarray(starts, np.int64) - (np.cumsum(counts) - counts), counts)
    return np.asarray(np.arange(n, dtype=np.int64) + shift, np.int64)


def runs(sorted_values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], IntArray, IntArray]:
    """(distinct values, start index, length) of each run of equal values in a sorted array."""
    if sorted_values.size == 0:
        empty = np.zeros(0, np.int64)
        return sorted_values.copy(), empty, empty
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    lengths = np.diff(np.append(starts, sorted_values.size))
    return sorted_values[starts], starts, lengths


def group_by_key(keys: npt.NDArray[np.uint64]
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(order, group start, group length) of entries grouped by key (keys ascending),
    each group's members in index order.

    A stable argsort of 64-bit keys is a merge sort, several times slower than the default
    (vectorised) one; so sort unstably, then put each group's members back in index order
    with one sort of (group, index) packed into an int64.
    """
    n = keys.size
    bits = max(int(n - 1).bit_length(), 1)
    if n > 1 and bits <= 32:
        # Faster still: one sort of each key's high bits packed with its index orders by
        # (key, index) as long as no two distinct keys share those high bits (checked:
        # then adjacent entries differ in key exactly where they differ in high bits).
        shift = np.uint64(bits)
        packed = keys >> shift
        packed <<= shift
        packed |= np.arange(n, dtype=np.uint64)
        packed = sorted_u64(packed)
        grouped = group_packed(packed, keys, bits)
        if grouped is not None:
            order, first = grouped
            return order, first, np.diff(np.append(first, n))
    by_key = np.argsort(keys).astype(np.int64)
    _, starts, lengths = runs(keys[by_key])
    group = np.repeat(np.arange(starts.size, dtype=np.int64), lengths)
    packed_i = sorted_ints(group * n + by_key)
    return packed_i % max(n, 1), starts.astype(np.int64), lengths.astype(np.int64)


def sparse_zeros(n: int, dtype: Any) -> npt.NDArray[Any]:
    """Zeros in fresh anonymous memory mapped in small pages: a page costs something
    only once written. (numpy asks for huge pages on big arrays, so that one write in a
    region maps and clears 2 MiB: for arenas whose regions are mostly never written,
    e.g. a dirty log sized for a whole VM, that is most of the cost of the region.)"""
    size = max(n * np.dtype(dtype).itemsize, 1)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buf, dtype, count=n)


class SegmentOf:
    """`np.searchsorted(starts, x, side="right") - 1` for ascending `starts`: the segment
    each position falls in (the VM of a page, given the VMs' first pages), by table.

    searchsorted costs a binary search per element, and on unsorted positions it misses
    the cache on every step: 5 ms for 100 k random pages over 1,000 VMs, 0.5 ms sorted.
    Here positions are cut into chunks of 2^shift, no longer than the shortest non-empty
    segment, so a chunk holds at most one distinct start: a position's answer is its
    chunk's base count plus that start's multiplicity if it is at or past it. About
    0.2 ms for 100 k pages, sorted or not. Positions past the end share one extra chunk
    (the last segment, as searchsorted says); positions before the first start, and
    starts too close together for a table of at most MAX_CHUNKS, go to searchsorted.
    """

    MAX_CHUNKS = 1 << 20

    def __init__(self, starts: npt.NDArray[Any], end: int) -> None:
        self.starts = starts
        first = int(starts[0]) if starts.size else 0
        span = max(int(end) - first, 0)
        distinct = np.unique(starts)
        gaps = np.diff(np.append(distinct, max(int(end), int(distinct[-1]) + 1))) if (
            distinct.size) else np.zeros(0, np.int64)
        smallest = int(gaps.min()) if gaps.size else 1
        self.shift = max(smallest, 1).bit_length() - 1  # 2^shift <= every gap
        n_chunks = (span >> self.shift) + 1
        self.ok = starts.size > 0 and n_chunks <= self.MAX_CHUNKS
        if not self.ok:
            return
        self.first = first
        self.n_chunks = n_chunks
        # One chunk more than the positions need: everything past the end lands in it
        # (clipped there), where the answer is the last segment, as searchsorted's.
        chunk_start = first + (np.arange(n_chunks + 1, dtype=np.int64) << self.shift)
        # Starts strictly inside each chunk: at most one distinct value (the chunk is no
        # longer than any gap), counted with its multiplicity (empty segments).
        self.base = np.searchsorted(starts, chunk_start, side="right").astype(np.int64) - 1
        inner_end = np.searchsorted(starts, chunk_start + (1 << self.shift) - 1, side="right")
        self.mult = (inner_end - 1 - self.base).astype(np.int64)
        at = np.minimum(self.base + 1, starts.size - 1)
        self.inner = np.where(self.mult > 0, starts[at], np.iinfo(np.int64).max).astype(
            np.int64)
        self.unit = bool(self.mult.max() <= 1)  # no empty segments: a hit adds one

    def table(self) -> tuple[bool, int, int, int, npt.NDArray[np.int64],
                             npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(ok, first, shift, n_chunks, base, inner, mult): the table for a compiled loop
        that looks positions up itself; not ok (no table), it searches `starts`."""
        if self.ok:
            return True, self.first, self.shift, self.n_chunks, self.base, self.inner, self.mult
        none = np.zeros(1, np.int64)
        return False, 0, 0, 0, none, none, none

    def __call__(self, x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        x = np.asarray(x)
        if self.ok and x.size and kernels.compiled():  # one pass (engine/kernels.py)
            found = np.empty(x.shape, np.int64)
            if _SEGMENT(np.asarray(x, np.int64).reshape(-1), self.first, self.shift,
                        self.n_chunks, self.base, self.inner, self.mult, found.reshape(-1)):
                return found
        if not self.ok or x.size == 0 or x.min() < self.first:
            return np.searchsorted(self.starts, x, side="right").astype(np.int64) - 1
        chunk = (x if self.first == 0 else x - self.first) >> self.shift
        np.minimum(chunk, self.n_chunks, out=chunk)
        out: npt.NDArray[np.int64] = self.base[chunk]
        hit = x >= self.inner[chunk]
        if self.unit:
            out += hit
        else:
            out += hit * self.mult[chunk]
        return out


def _segment_loop(x: npt.NDArray[np.int64], first: int, shift: int, n_chunks: int,
                  base: npt.NDArray[np.int64], inner: npt.NDArray[np.int64],
                  mult: npt.NDArray[np.int64], out: npt.NDArray[np.int64]) -> bool:
    """SegmentOf's table lookup for each position (a start at or before a position adds
    its multiplicity); False, with `out` unfinished, at a position before `first`."""
    for i in range(x.size):
        v = x[i]
        if v < first:
            return False
        chunk = min((v - first) >> shift, n_chunks)
        at = base[chunk]
        if v >= inner[chunk]:
            at += mult[chunk]
        out[i] = at
    return True


def _segment_samples() -> list[tuple[Any, ...]]:
    i64 = np.zeros(1, np.int64)
    return [(np.zeros(0, np.int64), 0, 0, 0, i64, i64, i64, np.zeros(0, np.int64))]


_SEGMENT = kernels.Kernel(_segment_loop, _segment_samples)
