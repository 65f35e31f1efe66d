"""Which pages were touched when: one byte a page, one bit per sampling period.

Bit `p % 8` of `pages.touched` is set when the guest touches the page in sampling period p
(period 0 is tick 0; period p >= 1 covers ticks (p - 1) * n + 1 ... p * n for periods of
n ticks, so the sampling phase at tick p * n closes it). The touch path sets the current
period's bit; nothing has to clear the whole array when a period ends:
- the hypervisor's sample (memory/sampling.py) reads the current bit of its 100 pages;
- the guest's sense of recency (its LRU lists, memory/guest.py) is the current and the
  previous period's bits, so a period boundary does not make every page look cold;
- the true active fraction is a count of the closed period's bit, once a period;
- the bit of the next period is cleared a slice at a time during the current one, so it
  is clean when that period starts (it was last used eight periods ago).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.state import I64, Bool, State

PERIOD_BITS = 8
# Above this many VMs, count per block of VMs with reduceat rather than VM by VM.
_LOOP_VMS = 4096


def period_ticks(sample_period_s: float, tick_s: float) -> int:
    return max(1, round(sample_period_s / tick_s))


def period_of(tick: int, n: int) -> int:
    """The sampling period the touches of `tick` belong to."""
    return (tick + n - 1) // n


def bit(period: int) -> int:
    return 1 << (period % PERIOD_BITS)


def set_period(state: State, period: int) -> None:
    """Touches from now on belong to `period`; recency spans it and the one before."""
    state.touch_bit = bit(period)
    state.recent_bits = bit(period) | bit(period - 1)


def mark(state: State, pages: I64) -> None:
    """The guest touched `pages` (duplicates allowed) in the current period."""
    touched = state.pages.touched
    was = np.take(touched, pages)
    touched[pages] = np.bitwise_or(was, np.uint8(state.touch_bit), out=was)


def recent(state: State, pages: I64) -> Bool:
    return np.asarray(np.take(state.pages.touched, pages) & np.uint8(state.recent_bits) != 0)


def touched_now(state: State, pages: npt.NDArray[Any]) -> Bool:
    return np.asarray(np.take(state.pages.touched, pages) & np.uint8(state.touch_bit) != 0)


def clear_slice(state: State, period: int, part: int, parts: int) -> None:
    """Clear `period`'s bit in the `part`-th of `parts` equal slices of the pages."""
    touched = state.pages.touched
    size = -(-touched.size // parts)
    chunk = touched[part * size:(part + 1) * size]
    np.bitwise_and(chunk, np.uint8(0xFF ^ bit(period)), out=chunk)


def count_per_vm(state: State, period: int) -> I64:
    """Pages of each VM touched in `period`: one pass over the byte array."""
    vms, touched = state.vms, state.pages.touched
    offsets, sizes = vms["page_offset"], vms["n_pages"]
    b = np.uint8(bit(period))
    if len(vms) <= _LOOP_VMS:
        scratch = np.empty(int(sizes.max()) if len(vms) else 0, np.uint8)
        return np.array([np.count_nonzero(np.bitwise_and(
            touched[o:o + n], b, out=scratch[:n])) for o, n in zip(
                offsets.tolist(), sizes.tolist(), strict=True)], np.int64)
    # Many small VMs (their slices are contiguous and ordered, from page 0): count the
    # bits in 8-page words, each VM's count from a running sum of the words at its edges.
    return _count_by_words(touched, offsets.astype(np.int64), sizes.astype(np.int64),
                           period % 8)


_BYTE_SUM = np.uint64(0x0101010101010101)  # x * this >> 56: the sum of x's 8 bytes (each <= 8)


def _word_sums(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    return np.right_shift(np.multiply(words, _BYTE_SUM), np.uint64(56))


def _count_by_words(touched: npt.NDArray[np.uint8], offsets: I64, sizes: I64,
                    shift: int) -> I64:
    """Pages with bit `shift` set in each [offset, offset + size): the bit as a 0/1 byte
    per page, eight to a 64-bit word; a word's sum of bytes by one multiply; a running sum
    over words, and at each VM edge the bytes of its word before the edge (masked). A
    pass of simple arithmetic over the array instead of a reduceat with a cast per byte
    (3 s a period on 205 M pages, 0.1 s this way)."""
    n = touched.size
    hit = np.zeros(n + (-n) % 8 + 8, np.uint8)  # whole words, and one past the end
    np.right_shift(touched, np.uint8(shift), out=hit[:n])
    np.bitwise_and(hit[:n], np.uint8(1), out=hit[:n])
    words = hit.view("<u8")  # byte i of a word is its page 8w + i
    running = np.zeros(words.size + 1, np.int64)
    np.cumsum(_word_sums(words), out=running[1:])

    def before(page: I64) -> I64:
        """Pages with the bit among [0, page)."""
        w = page // 8
        low_bytes = (page - 8 * w).astype(np.uint64)  # 0..7 bytes of word w lie before
        mask = np.left_shift(np.uint64(1), np.uint64(8) * low_bytes) - np.uint64(1)
        partial = _word_sums(np.bitwise_and(words[w], mask)).astype(np.int64)
        return np.asarray(running[w] + partial, np.int64)

    start = np.minimum(offsets, n)
    end = np.minimum(offsets + np.maximum(sizes, 0), n)
    return np.asarray(before(end) - before(start), np.int64)
