"""Linear-probing lookups of engine/hashtable.py as compiled loops (engine/kernels.py).

A lookup's answer depends only on the table: the slot holding the key before the first
empty slot of its run, else absent (and, for a region, that empty slot). hashtable.py
finds it in numpy rounds, a probe for every key still going per round, then windows of
slots for the few in long runs; here each key walks its run in turn. Both give the same
slots, whatever the table. Empty slots are 0 in every table that uses these (U64Map's
and RegionMap's keys, FrameKeys' frames + 1).

`insert_fresh` lays a U64Map out anew (its rebuild): each key in turn in the first empty
slot of its run, its filter bit set, in the order the old table held them.

`set_keys` is FrameKeys.set frame after frame: a keyed frame's key replaced, another
frame put in the first free (empty or deleted) slot of its run.

`store_placed` writes the values of keys `place` put in, and sets their filter bits.

`write_hints` records ESX hints (HintTable.write) in order, so that of several for one
slot the last stays, as the numpy passes' sort picks it. `place` is hashtable._place,
the insertion of absent keys (new entries, and every entry when a table is laid out
anew), round by round as the numpy passes go, each round's writes settled by the same
pass backwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.kernels import Kernel
from engine.prefetch import prefetch

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def _probe_loop(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64, lo: I64,
                mask: I64, region: I64, region_bits: U64, present: npt.NDArray[np.uint8],
                bit: npt.NDArray[np.uint8], filtered: bool, shift: int, slot: I64, end: I64,
                first: int, stop: int) -> None:
    """Keys first..stop-1: into `slot` where present (else -1), into `end` where absent
    the empty slot its search stopped at (else -1). A key's run is [lo, lo + mask]
    (wrapping): one for all (their first entries), or with `region` given, its region's
    (lo[r], mask[r], its home lo[r] + the top region_bits[r] bits of its hash, as
    RegionMap._home_in gives it). With `shift` (U64Map's), its home and filter bit come
    from its hash, as hashtable._home_and_bit gives them; otherwise `home` gives it. With
    `filtered`, a key whose bit in its home's filter byte is clear is absent without a
    probe (its end is then -1: U64Map does not ask for it).

    U64Map's lookups (the stable tree's, ESX's and KSM's) ask ahead for their lines
    (engine/prefetch.py): the filter byte of the key 16 on, then the slot of the key 8 on
    where its bit is set."""
    base, m = (lo[0], mask[0]) if lo.size else (0, 0)
    for i in range(first, stop):
        if shift and i + 16 < stop:
            prefetch(present, np.int64((np.uint64(want[i + 16]) * GOLDEN) >> np.uint64(shift)))
        if shift and i + 8 < stop:
            ahead = np.uint64(want[i + 8]) * GOLDEN
            at = np.int64(ahead >> np.uint64(shift))
            if (present[at] >> ((ahead >> np.uint64(shift - 3)) & np.uint64(7))) & 1:
                prefetch(table, at)
        key = want[i]
        slot[i] = -1
        end[i] = -1
        b = np.uint64(0)
        if region.size:
            r = region[i]
            base, m = lo[r], mask[r]
            probe = base + np.int64((np.uint64(key) * GOLDEN)
                                    >> (np.uint64(64) - region_bits[r]))
        elif shift:
            mixed = np.uint64(key) * GOLDEN
            probe = np.int64(mixed >> np.uint64(shift))
            b = (mixed >> np.uint64(shift - 3)) & np.uint64(7)
        else:
            probe = home[i]
            if filtered:
                b = np.uint64(bit[i])
        if filtered and ((present[probe] >> b) & 1) == 0:
            continue
        while True:
            k = table[probe]
            if k == key:
                slot[i] = probe
                break
            if k == 0:
                end[i] = probe
                break
            probe = base + ((probe - base + 1) & m)


_NO_FILTER = np.zeros(1, np.uint8)
_ZERO = np.zeros(1, np.int64)
_NO_BITS = np.zeros(0, np.uint64)
_NONE = np.zeros(0, np.int64)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the tables' Fibonacci hash (hashtable.py)


def _probe_samples() -> list[tuple[Any, ...]]:
    """The tables' key dtypes: U64Map's and RegionMap's keys, FrameKeys' frames + 1."""
    none = np.zeros(0, np.int64)
    return [(np.zeros(16, dtype), np.zeros(0, dtype), none, _ZERO, _ZERO, none, _NO_BITS,
             _NO_FILTER, _NO_FILTER, False, 0, none, none, 0, 0)
            for dtype in (np.uint64, np.uint32)]


_PROBE = Kernel(_probe_loop, _probe_samples)


def _probe(*args: Any) -> tuple[I64, I64]:
    """(slot, end) of every key of _probe_loop's arguments (less the outputs and range),
    the keys cut in two halves on two threads when there are enough of them: each half
    writes its own part of the outputs and the table is only read, so the answer is the
    same."""
    n = args[1].size
    slot, end = np.empty(n, np.int64), np.empty(n, np.int64)
    h = parallel.cut_point(n, kernels.MIN_SPLIT)
    if h:
        parallel.pair(lambda: _PROBE(*args, slot, end, 0, h),
                      lambda: _PROBE(*args, slot, end, h, n))
    else:
        _PROBE(*args, slot, end, 0, n)
    return slot, end


def find_flat(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64) -> I64:
    """Slot of each key (of the table's dtype) from its home slot, -1 where absent."""
    slot, _ = _probe(table, np.asarray(want, table.dtype), np.asarray(home, np.int64), _ZERO,
                     np.array([table.size - 1], np.int64), _NONE, _NO_BITS, _NO_FILTER,
                     _NO_FILTER, False, 0)
    return slot


def find_hashed(table: npt.NDArray[np.uint64], want: U64, present: npt.NDArray[np.uint8],
                shift: int) -> I64:
    """U64Map's lookups: slot of each key, -1 where absent, its home slot and filter bit
    from its hash (hashtable._home_and_bit with this shift); keys whose bit is clear in
    the presence filter are not probed."""
    slot, _ = _probe(table, np.asarray(want, np.uint64), _NONE, _ZERO,
                     np.array([table.size - 1], np.int64), _NONE, _NO_BITS, present,
                     _NO_FILTER, True, shift)
    return slot


def find_in_regions(table: npt.NDArray[Any], want: npt.NDArray[Any], region: I64,
                    offset: I64, size: I64, bits: U64) -> tuple[I64, I64]:
    """(slot, end) of each key in its region (RegionMap's: the regions' first slots, sizes
    and hash bits), its home computed in the loop."""
    return _probe(table, np.asarray(want, table.dtype), _NONE, np.asarray(offset, np.int64),
                  np.asarray(size, np.int64) - 1, np.asarray(region, np.int64),
                  np.asarray(bits, np.uint64), _NO_FILTER, _NO_FILTER, False, 0)


def _hints_loop(entry: npt.NDArray[np.uint32], slot: I64, pages: I64, written_before: I64,
                tag_shift: int, tag_bits: int) -> None:
    """HintTable.write: entry = tag << tag_shift | page + 1, the tag (last write's tick)
    & tag_bits, in order."""
    for i in range(slot.size):
        tag = (written_before[i] - 1) & tag_bits
        entry[slot[i]] = (tag << tag_shift) | (pages[i] + 1)


_HINTS = Kernel(_hints_loop, lambda: [(np.zeros(1, np.uint32), np.zeros(0, np.int64),
                                       np.zeros(0, np.int64), np.zeros(0, np.int64), 29, 7)])


def write_hints(entry: npt.NDArray[np.uint32], slot: I64, pages: I64,
                written_before: npt.NDArray[Any], tag_shift: int, tag_bits: int) -> None:
    """HintTable.write's hints, one after the other (see the module's docstring)."""
    _HINTS(entry, np.asarray(slot, np.int64), np.asarray(pages, np.int64),
           np.asarray(written_before, np.int64), tag_shift, tag_bits)


def _place_loop(table: npt.NDArray[Any], keys: npt.NDArray[Any], probe: I64, lo: I64,
                size_mask: I64, empty: Any, deleted: Any, few: int, window: int, slot: I64,
                held: npt.NDArray[Any]) -> None:
    """hashtable._place's rounds, with their outcome: while more than `few` keys are left,
    each probes one slot a round; then each reads a window of `window` slots a round and
    takes the first free one. In a round every read comes before every write and the
    writes go in order, so of keys that pick one free slot the last one's stays: going
    from the last key back, a key takes its slot exactly when it is still free as the key
    comes to it. The keys left go on in numpy's order: in window rounds those that found
    no free slot first. `probe` is overwritten; `lo` and `size_mask` hold one entry for
    all keys or one each (a region's run)."""
    n = keys.size
    pending = np.arange(n)
    target = np.empty(n, np.int64)
    nxt = np.empty(n, np.int64)
    left = np.empty(n, np.int64)
    next_probe = np.empty(n, np.int64)
    m = n
    while m > 0:
        windowed = m <= few
        for j in range(m):  # each key's target, from the table as the round starts
            at = probe[j]
            target[j] = -1
            nxt[j] = at
            if not windowed:
                v = table[at]
                if (v == empty) | (v == deleted):
                    target[j] = at
                continue
            i = pending[j]
            base = lo[i] if lo.size > 1 else lo[0]
            mask = size_mask[i] if size_mask.size > 1 else size_mask[0]
            for s in range(window):
                t = base + ((at - base + s) & mask)
                v = table[t]
                if (v == empty) | (v == deleted):
                    target[j] = t
                    break
            # no free slot: go on past the window
            nxt[j] = base + ((at - base + window - 1) & mask)
        for j in range(m - 1, -1, -1):  # the writes' outcome, from the last key back
            t = target[j]
            if t < 0:
                continue
            v = table[t]
            if (v == empty) | (v == deleted):
                i = pending[j]
                held[i] = v
                table[t] = keys[i]
                slot[i] = t
                pending[j] = -1 - i  # placed
            else:
                nxt[j] = t  # lost the slot to a later key: go on after it
        k = 0
        # The keys left, in numpy's order: as they came, but in window rounds those that
        # found no free slot before those that lost theirs.
        for full_first in (True, False):
            if not windowed and not full_first:
                break
            for j in range(m):
                i = pending[j]
                if i < 0 or (windowed and (target[j] < 0) != full_first):
                    continue
                base = lo[i] if lo.size > 1 else lo[0]
                mask = size_mask[i] if size_mask.size > 1 else size_mask[0]
                left[k] = i
                next_probe[k] = base + ((nxt[j] - base + 1) & mask)
                k += 1
        for j in range(k):
            pending[j] = left[j]
            probe[j] = next_probe[j]
        m = k


def _place_samples() -> list[tuple[Any, ...]]:
    one = np.zeros(1, np.int64)
    return [(np.zeros(1, dt), np.zeros(0, dt), _NONE, one, one, dt(0), dt(1), 1, 1, _NONE,
             np.zeros(0, dt)) for dt in (np.uint64, np.uint32)]


_PLACE = Kernel(_place_loop, _place_samples)


def place(table: npt.NDArray[Any], keys: npt.NDArray[Any], probe: I64, lo: I64 | int,
          size_mask: I64 | int, empty: Any, deleted: Any, few: int,
          window: int) -> tuple[I64, npt.NDArray[Any]]:
    """hashtable._place (its rounds' outcome: the same slots, the same table)."""
    n = keys.size
    slot = np.empty(n, np.int64)
    held = np.empty(n, table.dtype)
    _PLACE(table, np.asarray(keys, table.dtype), np.array(probe, np.int64),
           np.atleast_1d(np.asarray(lo, np.int64)), np.atleast_1d(np.asarray(size_mask, np.int64)),
           table.dtype.type(empty), table.dtype.type(deleted), few, window, slot, held)
    return slot, held


def _fresh_loop(table: U64, vals_t: I64, aux_t: U64, present: npt.NDArray[np.uint8],
                keys: U64, vals: I64, aux: U64, shift: int) -> None:
    """Keys (distinct, none in the table, which has no deleted slot) each put in the first
    empty slot from its home on, in order, its filter bit set. Taken in the old table's
    slot order, the keys come nearly in the order of their homes: the writes go through
    the new table almost in order, instead of a cache miss a key."""
    mask = table.size - 1
    sh = np.uint64(shift)
    sh_bit = np.uint64(shift - 3)
    for i in range(keys.size):
        key = keys[i]
        mixed = key * GOLDEN
        home = np.int64(mixed >> sh)
        probe = home
        while table[probe] != 0:
            probe = (probe + 1) & mask
        table[probe] = key
        vals_t[probe] = vals[i]
        aux_t[probe] = aux[i]
        present[home] |= np.uint8(1) << np.uint8((mixed >> sh_bit) & np.uint64(7))


_FRESH = Kernel(_fresh_loop, lambda: [(np.zeros(16, np.uint64), np.zeros(16, np.int64),
                                       np.zeros(16, np.uint64), np.zeros(16, np.uint8),
                                       np.zeros(0, np.uint64), np.zeros(0, np.int64),
                                       np.zeros(0, np.uint64), 60)])


def insert_fresh(table: U64, vals_t: I64, aux_t: U64, present: npt.NDArray[np.uint8],
                 keys: U64, vals: I64, aux: U64) -> None:
    """_fresh_loop for a table of table.size slots (a power of two)."""
    _FRESH(table, vals_t, aux_t, present, np.asarray(keys, np.uint64),
           np.asarray(vals, np.int64), np.asarray(aux, np.uint64),
           64 - (table.size.bit_length() - 1))


def _stored_loop(vals_t: I64, aux_t: U64, present: npt.NDArray[np.uint8], slot: I64,
                 vals: I64, aux: U64, home: I64, bit: npt.NDArray[np.uint8]) -> None:
    """The values of keys just placed (place) written to their slots, and their filter
    bits set: one pass, not two scatters and a ufunc.at (0.1 ms a tick on the sharing
    tables' puts of about 1,600 keys)."""
    for i in range(slot.size):
        vals_t[slot[i]] = vals[i]
        aux_t[slot[i]] = aux[i]
        present[home[i]] |= np.uint8(1) << bit[i]


_STORED = Kernel(_stored_loop, lambda: [(np.zeros(1, np.int64), np.zeros(1, np.uint64),
                                         np.zeros(1, np.uint8), np.zeros(0, np.int64),
                                         np.zeros(0, np.int64), np.zeros(0, np.uint64),
                                         np.zeros(0, np.int64), np.zeros(0, np.uint8))])


def store_placed(vals_t: I64, aux_t: U64, present: npt.NDArray[np.uint8], slot: I64,
                 vals: I64, aux: U64, home: I64, bit: npt.NDArray[np.uint8]) -> None:
    """_stored_loop."""
    _STORED(vals_t, aux_t, present, np.asarray(slot, np.int64), np.asarray(vals, np.int64),
            np.asarray(aux, np.uint64), np.asarray(home, np.int64),
            np.asarray(bit, np.uint8))


def _set_keys_loop(bits: npt.NDArray[np.uint8], slot_frame: npt.NDArray[np.uint32],
                   slot_key: U64, frames: I64, keys: U64, shift: int, deleted: int,
                   counts: I64) -> None:
    """FrameKeys.set, frame after frame: a keyed frame (its bit set) has its key replaced
    in its slot; another goes into the first empty or deleted slot from its home on, its
    bit set. So of a frame twice the last key stays. The frames' bytes of `bits` are
    asked for 16 ahead, their home slots 8 ahead. `counts` gets (frames added, deleted
    slots they took)."""
    mask = slot_frame.size - 1
    sh = np.uint64(shift)
    n = frames.size
    added, reused = 0, 0
    for i in range(n):
        if i + 16 < n:
            prefetch(bits, frames[i + 16] >> 3)
        if i + 8 < n:
            ahead = np.int64(((np.uint64(frames[i + 8]) + np.uint64(1)) * GOLDEN) >> sh)
            prefetch(slot_frame, ahead)
            prefetch(slot_key, ahead)
        f = frames[i]
        stored = np.uint32(f + 1)
        probe = np.int64(((np.uint64(f) + np.uint64(1)) * GOLDEN) >> sh)
        if (bits[f >> 3] >> (f & 7)) & 1:
            while slot_frame[probe] != stored and slot_frame[probe] != 0:
                probe = (probe + 1) & mask
            if slot_frame[probe] == stored:
                slot_key[probe] = keys[i]
                continue
            probe = np.int64(((np.uint64(f) + np.uint64(1)) * GOLDEN) >> sh)
        while slot_frame[probe] != 0 and slot_frame[probe] != deleted:
            probe = (probe + 1) & mask
        if slot_frame[probe] == deleted:
            reused += 1
        slot_frame[probe] = stored
        slot_key[probe] = keys[i]
        bits[f >> 3] |= np.uint8(1 << (f & 7))
        added += 1
    counts[0], counts[1] = added, reused


_SET_KEYS = Kernel(_set_keys_loop, lambda: [(np.zeros(1, np.uint8), np.zeros(16, np.uint32),
                                            np.zeros(16, np.uint64), np.zeros(0, np.int64),
                                            np.zeros(0, np.uint64), 60, 0xFFFFFFFF,
                                            np.zeros(2, np.int64))])


def set_keys(bits: npt.NDArray[np.uint8], slot_frame: npt.NDArray[np.uint32], slot_key: U64,
             frames: npt.NDArray[Any], keys: U64, deleted: int) -> tuple[int, int]:
    """_set_keys_loop for a table of slot_frame.size slots (a power of two): (frames
    added, deleted slots they took)."""
    counts = np.zeros(2, np.int64)
    _SET_KEYS(bits, slot_frame, slot_key, np.asarray(frames, np.int64),
              np.asarray(keys, np.uint64), 64 - (slot_frame.size.bit_length() - 1),
              int(deleted), counts)
    added, reused = counts.tolist()
    return int(added), int(reused)
