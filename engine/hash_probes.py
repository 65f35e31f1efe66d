"""Linear-probing lookups of engine/hashtable.py as compiled loops (engine/kernels.py).

A lookup's answer depends only on the table: the slot holding the key before the first
empty slot of its run, else absent (and, for a region, that empty slot). hashtable.py
finds it in numpy rounds, a probe for every key still going per round, then windows of
slots for the few in long runs; here each key walks its run in turn. Both give the same
slots, whatever the table. Empty slots are 0 in every table that uses these (U64Map's
and RegionMap's keys, FrameKeys' frames + 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel

I64 = npt.NDArray[np.int64]


def _flat_loop(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64, mask: int,
               present: npt.NDArray[np.uint8], bit: npt.NDArray[np.uint8],
               filtered: bool) -> I64:
    """Slot of each key in a table of mask + 1 slots, -1 where absent; with `filtered`,
    a key whose bit in its home's filter byte is clear is absent without a probe."""
    slot = np.full(want.size, -1, np.int64)
    for i in range(want.size):
        probe = home[i]
        if filtered and ((present[probe] >> bit[i]) & 1) == 0:
            continue
        key = want[i]
        while True:
            k = table[probe]
            if k == key:
                slot[i] = probe
                break
            if k == 0:
                break
            probe = (probe + 1) & mask
    return slot


def _region_loop(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64, lo: I64,
                 mask: I64) -> tuple[I64, I64]:
    """(slot, end) of each key in its region [lo, lo + mask]: slot where present, else -1;
    end where absent: the empty slot its search stopped at, else -1."""
    slot = np.full(want.size, -1, np.int64)
    end = np.full(want.size, -1, np.int64)
    for i in range(want.size):
        probe, key, base, m = home[i], want[i], lo[i], mask[i]
        while True:
            k = table[probe]
            if k == key:
                slot[i] = probe
                break
            if k == 0:
                end[i] = probe
                break
            probe = base + ((probe - base + 1) & m)
    return slot, end


_FLAT = Kernel(_flat_loop)
_REGION = Kernel(_region_loop)
_NO_FILTER = np.zeros(1, np.uint8)


def find_flat(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64,
              present: npt.NDArray[np.uint8] | None = None,
              bit: npt.NDArray[np.uint8] | None = None) -> I64:
    """Slot of each key (of the table's dtype) from its home slot, -1 where absent; with a
    presence filter (U64Map's), keys whose bit is clear are not probed."""
    filtered = present is not None
    return np.asarray(_FLAT(table, np.asarray(want, table.dtype), np.asarray(home, np.int64),
                            table.size - 1, present if filtered else _NO_FILTER,
                            bit if bit is not None else _NO_FILTER, filtered))


def find_in_regions(table: npt.NDArray[Any], want: npt.NDArray[Any], home: I64, lo: I64,
                    size: I64) -> tuple[I64, I64]:
    """(slot, end) of each key in its region of `size` slots from `lo` (RegionMap)."""
    slot, end = _REGION(table, np.asarray(want, table.dtype), np.asarray(home, np.int64),
                        np.asarray(lo, np.int64), np.asarray(size, np.int64) - 1)
    return np.asarray(slot), np.asarray(end)
