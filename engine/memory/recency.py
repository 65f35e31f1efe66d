"""Which pages were touched when: one byte a page, the code of the last sampling period
the guest touched it in.

Period 0 is tick 0; period p >= 1 covers ticks (p - 1) * n + 1 ... p * n for periods of n
ticks, so the sampling phase at tick p * n closes it. A touch writes the current period's
code into `pages.touched` - a plain store, no read of the byte first - and nothing has to
clear the whole array when a period ends:
- the hypervisor's sample (memory/sampling.py) asks whether its 100 pages hold the current
  period's code;
- the guest's sense of recency (its LRU lists, memory/guest.py) is the current or the
  previous period's code, so a period boundary does not make every page look cold;
- the true active fraction is a count of the closed period's code, once a period;
- codes repeat every 255 periods (0 means never), so a sweep resets stale codes (neither
  the current nor the previous period's) to 0, a slice a tick, all pages every
  SWEEP_PERIODS periods: no code is still held when its period comes round again.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.memory import sample_loop
from engine.state import I64, Bool, State

N_CODES = 255  # codes 1..255; 0 is "never touched" (fresh pages are zeros)
SWEEP_PERIODS = 64  # well under N_CODES - 1: a code is reset long before it comes round
# Above this many VMs, count in 8-page words rather than VM by VM.
_LOOP_VMS = 4096


def period_ticks(sample_period_s: float, tick_s: float) -> int:
    return max(1, round(sample_period_s / tick_s))


def period_of(tick: int, n: int) -> int:
    """The sampling period the touches of `tick` belong to."""
    return (tick + n - 1) // n


def code(period: int) -> int:
    return 1 + period % N_CODES


def set_period(state: State, period: int) -> None:
    """Touches from now on belong to `period`; recency spans it and the one before."""
    state.touch_code = code(period)
    state.previous_code = code(period - 1)


def mark(state: State, pages: I64) -> None:
    """The guest touched `pages` (duplicates allowed) in the current period."""
    parallel.fill(state.pages.touched, pages, state.touch_code)


def recent(state: State, pages: I64 | slice) -> Bool:
    touched = state.pages.touched
    c = touched[pages] if isinstance(pages, slice) else parallel.take(touched, pages)
    return np.asarray((c == state.touch_code) | (c == state.previous_code))


def touched_now(state: State, pages: npt.NDArray[np.integer]) -> Bool:
    return np.asarray(parallel.take(state.pages.touched, pages) == state.touch_code)


def sweep_slice(state: State, part: int, parts: int) -> None:
    """Reset the stale codes in the `part`-th of `parts` equal slices of the pages."""
    touched = state.pages.touched
    size = -(-touched.size // parts)
    chunk = touched[part * size:(part + 1) * size]
    if kernels.compiled():  # the same, in one loop
        sample_loop.sweep_stale(chunk, state.touch_code, state.previous_code)
        return
    stale = (chunk != state.touch_code) & (chunk != state.previous_code)
    np.putmask(chunk, stale, 0)


def from_bits(bits: npt.NDArray[np.uint8], period: int) -> npt.NDArray[np.uint8]:
    """Codes from the per-period touch bits of saves before schema 2 (bit p % 8: touched
    in period p): the current period's code where its bit is set, else the previous
    period's where that bit is, else never."""
    now = (bits >> np.uint8(period % 8)) & 1
    before = (bits >> np.uint8((period - 1) % 8)) & 1
    return np.where(now != 0, code(period), np.where(before != 0, code(period - 1), 0)
                    ).astype(np.uint8)


def count_per_vm(state: State, period: int) -> I64:
    """Pages of each VM whose code is `period`'s: one pass over the byte array."""
    vms, touched = state.vms, state.pages.touched
    offsets, sizes = vms["page_offset"], vms["n_pages"]
    c = np.uint8(code(period))
    if len(vms) <= _LOOP_VMS:
        counts = np.zeros(len(vms), np.int64)
        spans = list(zip(offsets.tolist(), sizes.tolist(), strict=True))

        def count(v0: int, v1: int) -> None:  # VMs v0..v1-1, a scratch buffer each call
            scratch = np.empty(max((n for _, n in spans[v0:v1]), default=0), np.bool_)
            for v in range(v0, v1):
                o, n = spans[v]
                counts[v] = np.count_nonzero(np.equal(touched[o:o + n], c, out=scratch[:n]))

        # A pass over every page's byte, bound by memory bandwidth: halves on two cores.
        parallel.halves(count, len(vms), touched.nbytes)
        return counts
    # Many small VMs (their slices are contiguous and ordered, from page 0): count in
    # 8-page words, each VM's count from a running sum of the words at its edges.
    return _count_by_words(touched, offsets.astype(np.int64), sizes.astype(np.int64), c)


_BYTE_SUM = np.uint64(0x0101010101010101)  # x * this >> 56: the sum of x's 8 bytes (each <= 8)


def _word_sums(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    return np.right_shift(np.multiply(words, _BYTE_SUM), np.uint64(56))


def _count_by_words(touched: npt.NDArray[np.uint8], offsets: I64, sizes: I64,
                    c: np.uint8, chunk_pages: int = 1 << 22) -> I64:
    """Pages holding code `c` in each [offset, offset + size): a 0/1 byte per page,
    eight to a 64-bit word; a word's sum of bytes by one multiply; a running sum over
    words, and at each VM edge the bytes of its word before the edge (masked). A pass of
    simple arithmetic over the array instead of a reduceat with a cast per byte (3 s a
    period on 205 M pages). Done `chunk_pages` at a time in buffers reused chunk to chunk:
    whole-array temporaries (five of 0.2 GiB on 205 M pages) cost more in fresh memory
    than the arithmetic (2.3 s against 0.3 s a period on a machine whose freed memory
    goes back to its host)."""
    n = touched.size
    chunk_pages = max(8, chunk_pages - chunk_pages % 8)  # chunks of whole words
    n_vms = offsets.size
    edges = np.concatenate([np.minimum(offsets, n), np.minimum(offsets + np.maximum(sizes, 0), n)])
    order = np.argsort(edges, kind="stable")
    sorted_edges = edges[order]
    before = np.zeros(edges.size, np.int64)  # pages with the code among [0, edge)
    hit = np.zeros(chunk_pages, np.uint8)
    words = hit.view("<u8")  # byte i of a word is its page 8w + i
    base = 0
    for c0 in range(0, n, chunk_pages):
        m = min(chunk_pages, n - c0)
        np.equal(touched[c0:c0 + m], c, out=hit[:m].view(np.bool_))
        hit[m:] = 0
        n_words = -(-m // 8)
        running = np.cumsum(_word_sums(words[:n_words]))
        lo, hi = np.searchsorted(sorted_edges, [c0, c0 + m])
        page = sorted_edges[lo:hi] - c0
        w = page // 8
        low_bytes = (page - 8 * w).astype(np.uint64)  # 0..7 bytes of word w lie before
        mask = np.left_shift(np.uint64(1), np.uint64(8) * low_bytes) - np.uint64(1)
        partial = _word_sums(np.bitwise_and(words[w], mask)).astype(np.int64)
        full = np.where(w > 0, running[np.maximum(w - 1, 0)].astype(np.int64), 0)
        before[order[lo:hi]] = base + full + partial
        base += int(running[-1])
    before[order[np.searchsorted(sorted_edges, n):]] = base  # edges at the end
    return np.asarray(before[n_vms:] - before[:n_vms], np.int64)
