"""A vectorised open-addressing hash map from 64-bit keys to (int64 value, uint64 aux).

Page-sharing tables see thousands of lookups and inserts per tick; a Python dict would
cost a bytecode loop per page and ~100 bytes per entry, this costs a few numpy passes per
batch and 24 bytes per slot. Linear probing; keys 0 and 1 are reserved (empty, deleted),
so callers pass keys >= 2 (`fix_key`). The table grows by doubling at 50 % load and is
rebuilt when deleted slots pile up, so probe chains stay short. Everything is
deterministic: the layout depends only on the sequence of operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.arrays import runs, unique_sorted

EMPTY = np.uint64(0)
DELETED = np.uint64(1)
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def fix_key(keys: U64) -> U64:
    """Map any 64-bit keys into the usable range (>= 2)."""
    return np.where(keys < np.uint64(2), keys + np.uint64(2), keys)


class U64Map:
    def __init__(self, capacity: int = 1024) -> None:
        cap = 1 << max(4, int(capacity - 1).bit_length())
        self.keys = np.zeros(cap, np.uint64)
        self.vals = np.zeros(cap, np.int64)
        self.aux = np.zeros(cap, np.uint64)
        self.live = 0
        self.deleted = 0

    def __len__(self) -> int:
        return self.live

    @property
    def capacity(self) -> int:
        return int(self.keys.size)

    def _home(self, keys: U64) -> I64:
        with np.errstate(over="ignore"):
            mixed = keys * _GOLDEN
        return (mixed >> np.uint64(64 - (self.capacity.bit_length() - 1))).astype(np.int64)

    def _find(self, keys: U64) -> I64:
        """Slot of each key, -1 where absent."""
        slot = np.full(keys.size, -1, np.int64)
        pending = np.arange(keys.size)
        probe = self._home(keys)
        mask = self.capacity - 1
        while pending.size:
            k = self.keys[probe]
            hit = k == keys[pending]
            slot[pending[hit]] = probe[hit]
            go_on = ~hit & (k != EMPTY)
            pending, probe = pending[go_on], (probe[go_on] + 1) & mask
        return slot

    def get(self, keys: U64) -> tuple[Bool, I64, U64]:
        """(found, value, aux) for each key; value/aux are 0 where not found."""
        slot = self._find(keys)
        found = slot >= 0
        safe = np.where(found, slot, 0)
        return found, np.where(found, self.vals[safe], 0), np.where(found, self.aux[safe],
                                                                    np.uint64(0))

    def put(self, keys: U64, vals: I64, aux: U64) -> None:
        """Insert or overwrite. With duplicate keys in one batch the last one wins."""
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")
        distinct, starts, lengths = runs(keys[order])
        last = order[starts + lengths - 1]
        keys, vals, aux = distinct, vals[last], aux[last]
        slot = self._find(keys)
        present = slot >= 0
        self.vals[slot[present]] = vals[present]
        self.aux[slot[present]] = aux[present]
        new = ~present
        if not new.any():
            return
        self._reserve(int(new.sum()))
        self._insert_new(keys[new], vals[new], aux[new])

    def _insert_new(self, keys: U64, vals: I64, aux: U64) -> None:
        mask = self.capacity - 1
        pending = np.arange(keys.size)
        probe = self._home(keys)
        while pending.size:
            k = self.keys[probe]
            free = (k == EMPTY) | (k == DELETED)
            cand, slots, before = pending[free], probe[free], k[free]
            # Several keys may race for one free slot: one write wins, the rest probe on.
            self.keys[slots] = keys[cand]
            won = self.keys[slots] == keys[cand]
            self.vals[slots[won]] = vals[cand[won]]
            self.aux[slots[won]] = aux[cand[won]]
            self.live += int(won.sum())
            self.deleted -= int((before[won] == DELETED).sum())
            retry = np.concatenate([pending[~free], cand[~won]])
            retry_probe = np.concatenate([probe[~free], slots[~won]])
            order = np.argsort(retry, kind="stable")
            pending, probe = retry[order], (retry_probe[order] + 1) & mask

    def delete(self, keys: U64) -> int:
        slot = self._find(keys)
        slot = unique_sorted(slot[slot >= 0])
        self.keys[slot] = DELETED
        self.live -= int(slot.size)
        self.deleted += int(slot.size)
        return int(slot.size)

    def items(self) -> tuple[U64, I64, U64]:
        used = self.keys > DELETED
        return self.keys[used], self.vals[used], self.aux[used]

    def keep_only(self, keep: Bool) -> None:
        """Rebuild with just the live entries for which `keep` (over items()) is True."""
        keys, vals, aux = self.items()
        self._rebuild(keys[keep], vals[keep], aux[keep], self.capacity)

    def _reserve(self, extra: int) -> None:
        need = self.live + extra
        cap = self.capacity
        if (need + self.deleted) * 2 <= cap:
            return
        while need * 2 > cap:
            cap *= 2
        keys, vals, aux = self.items()
        self._rebuild(keys, vals, aux, cap)

    def _rebuild(self, keys: U64, vals: I64, aux: U64, capacity: int) -> None:
        self.keys = np.zeros(capacity, np.uint64)
        self.vals = np.zeros(capacity, np.int64)
        self.aux = np.zeros(capacity, np.uint64)
        self.live = 0
        self.deleted = 0
        if keys.size:
            self._insert_new(keys, vals, aux)

    def overhead_bytes(self, bytes_per_entry: int = 16) -> int:
        return self.live * bytes_per_entry

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}.keys": self.keys, f"{prefix}.vals": self.vals,
                f"{prefix}.aux": self.aux}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]], prefix: str) -> U64Map:
        table = cls(16)
        table.keys = arrays[f"{prefix}.keys"].astype(np.uint64)
        table.vals = arrays[f"{prefix}.vals"].astype(np.int64)
        table.aux = arrays[f"{prefix}.aux"].astype(np.uint64)
        table.live = int((table.keys > DELETED).sum())
        table.deleted = int((table.keys == DELETED).sum())
        return table
