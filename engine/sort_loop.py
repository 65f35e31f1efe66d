"""Sorting integer arrays by their bits, as a compiled loop (engine/kernels.py).

A tick sorts several arrays of 10^4-10^5 integers: the candidates' keys KSM groups by
(arrays.group_by_key), the pages the page cache and the balloon pick
(arrays.unique_sorted), the frames a release drops. numpy's sort is a comparison sort
unless its build dispatches a SIMD one for the CPU; where it does not (measured on an AMD
EPYC with AVX-512: 3.8 ms for 100,000 int64, 38 ns an element) most-significant-digit
radix sorting is 3-4x faster: one pass counts the elements by their top bits (as many bits
as make buckets of about four), one places them, and each bucket, now in cache, is
finished by insertion sort, or split again the same way when it holds more than 32 (keys
that cluster, like the pages of a few VMs). A sort's output is determined by its input,
so the loop and numpy give the same array. (Copies in the loop are written out element by
element: a slice assignment made numba take 3.4 s instead of 1 s to compile it.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels

U64 = npt.NDArray[np.uint64]

MIN_LOOP = 4_096  # elements below which numpy's sort is as fast
_SMALL = 32  # a bucket this small is finished by insertion sort
_MAX_DIGIT_BITS = 16  # a count table of at most 2^16 + 1 entries (512 KiB)
_SIGN = np.uint64(1 << 63)


def _sort_loop(values: U64) -> U64:
    """`values` sorted ascending, in a new array."""
    n = values.size
    out = np.empty(n, np.uint64)
    if n == 0:
        return out
    scratch = np.empty(0, np.uint64)  # for segments split again (few: made when needed)
    # Segments of `out` left to split, each of values that agree on the bits above its
    # digit: a stack of disjoint segments of more than _SMALL each.
    seg_lo = np.empty(n // (_SMALL + 1) + 1, np.int64)
    seg_hi = np.empty(n // (_SMALL + 1) + 1, np.int64)
    top = 0
    lo, hi = 0, n
    src = values  # the first split reads `values` and places into `out`
    zero = np.uint64(0)
    while True:
        m = hi - lo
        least = src[lo]
        most = src[lo]
        for i in range(lo, hi):
            x = src[i]
            if x < least:
                least = x
            if x > most:
                most = x
        span = most - least
        if span == zero:
            if src is values:
                for i in range(n):  # all one value
                    out[i] = src[i]
        else:
            bits = 0
            while bits < 64 and (span >> np.uint64(bits)) != zero:
                bits += 1
            digit = 1
            while (1 << digit) * 4 < m and digit < _MAX_DIGIT_BITS:
                digit += 1
            shift = np.uint64(bits - digit if bits > digit else 0)
            buckets = np.int64(span >> shift) + 1
            count = np.zeros(buckets + 1, np.int64)
            for i in range(lo, hi):
                count[np.int64((src[i] - least) >> shift) + 1] += 1
            count[0] = lo
            for b in range(buckets):
                count[b + 1] += count[b]
            if src is values:
                dst = out
            else:
                if scratch.size == 0:
                    scratch = np.empty(n, np.uint64)
                dst = scratch
            for i in range(lo, hi):
                x = src[i]
                at = np.int64((x - least) >> shift)
                dst[count[at]] = x
                count[at] += 1  # ends as the end of bucket `at`
            if dst is not out:
                for i in range(lo, hi):
                    out[i] = scratch[i]
            if shift != zero:  # else each bucket holds one value
                start = lo
                for b in range(buckets):
                    end = count[b]
                    if end - start > _SMALL:
                        seg_lo[top] = start
                        seg_hi[top] = end
                        top += 1
                    else:  # insertion sort, the bucket in cache
                        for i in range(start + 1, end):
                            x = out[i]
                            j = i - 1
                            while j >= start and out[j] > x:
                                out[j + 1] = out[j]
                                j -= 1
                            out[j + 1] = x
                    start = end
        if top == 0:
            return out
        top -= 1
        lo, hi = seg_lo[top], seg_hi[top]
        src = out


_SORT = kernels.Kernel(_sort_loop, lambda: [(np.zeros(0, np.uint64),)])


def sorted_u64(values: U64) -> U64:
    """np.sort(values) for uint64 values (a new array)."""
    if values.size >= MIN_LOOP and kernels.compiled():
        if not values.flags.c_contiguous or not values.flags.writeable:
            values = values.copy()  # one type for numba (a read-only array is another)
        return np.asarray(_SORT(values))
    return np.sort(values)


def sorted_ints(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """np.sort(values) for a one-dimensional array of integers of any type (a new array)."""
    if values.size < MIN_LOOP or not kernels.compiled():
        return np.sort(values)
    if values.dtype == np.uint64:
        return sorted_u64(values)
    if np.issubdtype(values.dtype, np.unsignedinteger):
        return sorted_u64(values.astype(np.uint64)).astype(values.dtype)
    # Signed: flipping the sign bit orders two's complement as unsigned.
    biased = values.astype(np.int64).view(np.uint64) ^ _SIGN
    return (sorted_u64(biased) ^ _SIGN).view(np.int64).astype(values.dtype, copy=False)


def _group_loop(packed: U64, keys: U64, bits: int, order: npt.NDArray[np.int64],
                starts: npt.NDArray[np.int64]) -> int:
    """arrays.group_by_key's walk over its sorted (key's high bits | index) words, in
    one pass: each word's index into `order`, and where each run of one key starts into
    `starts`. Returns the number of runs, or -1 when two distinct keys share their high
    bits (then the words do not order the keys, and the caller sorts the keys)."""
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(bits)
    runs = 0
    last_key = np.uint64(0)
    last_high = np.uint64(0)
    for i in range(packed.size):
        word = packed[i]
        at = np.int64(word & mask)
        order[i] = at
        key = keys[at]
        high = word >> shift
        if i == 0 or key != last_key:
            if i > 0 and high == last_high:
                return -1
            starts[runs] = i
            runs += 1
            last_key = key
            last_high = high
    return runs


_GROUP = kernels.Kernel(_group_loop, lambda: [(np.zeros(0, np.uint64), np.zeros(0, np.uint64), 1,
                                               np.zeros(0, np.int64), np.zeros(0, np.int64))])


def group_packed(packed: U64, keys: U64, bits: int
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """(order, run starts) from sorted words (key's high bits << bits | index), or None
    when two distinct keys share their high bits; as arrays.group_by_key's numpy passes
    find them."""
    n = packed.size
    if n >= MIN_LOOP and kernels.compiled():
        order = np.empty(n, np.int64)
        starts = np.empty(n, np.int64)
        found = int(_GROUP(packed, keys, bits, order, starts))
        return None if found < 0 else (order, starts[:found])
    order = (packed & np.uint64((1 << bits) - 1)).astype(np.int64)
    high = packed >> np.uint64(bits)
    sorted_keys = keys[order]
    new_key = sorted_keys[1:] != sorted_keys[:-1]
    if not np.array_equal(high[1:] != high[:-1], new_key):
        return None
    return order, np.flatnonzero(np.concatenate([[True], new_key]))
