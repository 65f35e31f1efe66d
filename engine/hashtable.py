"""A vectorised open-addressing hash map from 64-bit keys to (int64 value, uint64 aux).

Page-sharing tables see thousands of lookups and inserts per tick; a Python dict would
cost a bytecode loop per page and ~100 bytes per entry, this costs a few numpy passes per
batch and 24 bytes per slot. Linear probing; keys 0 and 1 are reserved (empty, deleted),
so callers pass keys >= 2 (`fix_key`). The table grows by doubling at 50 % load and is
rebuilt when deleted slots pile up, so probe chains stay short. Everything is
deterministic: the layout depends only on the sequence of operations. Lookups run as
compiled loops where numba is there (engine/hash_probes.py): the same slots, since a
lookup's answer depends only on the table.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import hash_probes, kernels
from engine.arrays import group_by_key, runs, unique_sorted
from engine.sort_loop import sorted_ints

EMPTY = np.uint64(0)
DELETED = np.uint64(1)
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
_GOLDEN = hash_probes.GOLDEN


def _select(mask: Bool) -> I64:
    """Indices where `mask` (one-dimensional) is true. Selecting with them (take) rather
    than with the mask: numpy's boolean indexing is several times slower on large masks
    that are neither mostly true nor mostly false (measured: 100k entries, 60 % true,
    370 us vs 70 us). mask.nonzero() rather than np.flatnonzero, whose wrapper costs
    0.6 us a call: the probing rounds make hundreds of calls a tick on a few keys."""
    return mask.nonzero()[0]


def _table_zeros(n: int, dtype: Any) -> npt.NDArray[Any]:
    """Zeros for a table's slots, the memory mapped in at once (MAP_POPULATE) when large.

    A table that grows is written all over in the tick it does. Faulted in page by page,
    a process's fresh memory came in at 1-2 ms a MiB in the data-center benchmark (numpy
    asks for huge pages, which the kernel may have to compact first): 200 ms for a stable
    table of 4 M slots. Mapped in by one call it takes a sixth of that, in small pages."""
    size = n * np.dtype(dtype).itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if size < (1 << 20) or not populate:
        return np.zeros(n, dtype)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(buf, dtype, count=n)


_WINDOW = 8  # slots a lookup reads at once past its first probe
_STEPS = np.arange(_WINDOW, dtype=np.int64)
_FEW = 512  # keys still probing, below which a round reads a window


def _find_rest(table: npt.NDArray[Any], want: npt.NDArray[Any], slot: I64, pending: I64,
               probe: I64, lo: I64 | int, size_mask: I64 | int, empty: Any,
               end: I64 | None = None) -> None:
    """Go on with the lookups still `pending` (indices into want and slot), each from slot
    `probe` of its linear-probing run over [lo, lo + size_mask]: the first slot holding
    the key before an empty one is the key's, stored in `slot`. `end`, if given, gets the
    empty slot where each absent key's search stopped.

    One probe a round while many keys go on; then, for the few in long runs, a window of
    slots a round (side by side in memory, so mostly one cache line): rounds of a few
    numpy calls on a handful of keys each number the longest run over the window, not the
    longest run (reading a window for many keys would cost more than the rounds it saves).
    """
    while pending.size > _FEW:
        k = np.take(table, probe)
        hit_mask = k == np.take(want, pending)
        hit = _select(hit_mask)  # by index: see _select
        slot[pending[hit]] = probe[hit]
        at_empty = k == empty
        if end is not None:
            stopped = _select(at_empty)
            end[pending[stopped]] = probe[stopped]
        go_on = _select(~hit_mask & ~at_empty)
        pending = pending[go_on]
        if isinstance(lo, int):
            probe = (probe[go_on] + 1) & size_mask
        else:
            lo, size_mask = lo[go_on], np.asarray(size_mask)[go_on]
            probe = lo + ((probe[go_on] - lo + 1) & size_mask)
    while pending.size:
        if isinstance(lo, int):
            idx = (probe[:, None] + _STEPS) & size_mask
        else:
            idx = lo[:, None] + (((probe - lo)[:, None] + _STEPS) & np.asarray(size_mask)[:, None])
        k = table[idx]
        hit = k == want[pending][:, None]
        stop = hit | (k == empty)
        first = stop.argmax(axis=1)
        rows = np.arange(pending.size)
        found = _select(hit[rows, first])
        slot[pending[found]] = idx[found, first[found]]
        if end is not None:
            stopped = _select(stop[rows, first] & ~hit[rows, first])
            end[pending[stopped]] = idx[stopped, first[stopped]]
        go = _select(~stop[rows, first])
        pending, probe = pending[go], idx[go, _WINDOW - 1]
        if isinstance(lo, int):
            probe = (probe + 1) & size_mask
        else:
            lo, size_mask = lo[go], np.asarray(size_mask)[go]
            probe = lo + ((probe - lo + 1) & size_mask)


def _empty_tombstones(table: npt.NDArray[Any], slots: I64, size_mask: int, empty: Any,
                      deleted: Any) -> int:
    """Turn deleted `slots` (just marked) back into empty ones where no key can need them:
    a deleted slot followed by an empty one is on no key's probing run (every run goes on
    through that empty slot, which ends it), so it may be empty too; and then so may a
    deleted slot before it, and so on back. Fewer deleted slots pile up, so the table is
    rebuilt less often (the rebuild of the data center's stable table stalls a tick some
    60 ms). Returns how many deleted slots were emptied (each found only by its table's
    own keys' lookups, which stay exact: only slots of no key change)."""
    emptied = 0
    pending = slots
    while pending.size:
        free_after = table[(pending + 1) & size_mask] == empty
        now = pending[free_after]
        if now.size == 0:
            break
        table[now] = empty
        emptied += int(now.size)
        before = (now - 1) & size_mask
        before = before[table[before] == deleted]
        pending = np.union1d(pending[~free_after], before)
    return emptied


def _step(probe: I64, by: I64 | int, lo: I64 | int, size_mask: I64 | int) -> I64:
    """`by` slots on from `probe` in each key's run [lo, lo + size_mask] (wrapping)."""
    if isinstance(lo, int):
        return (probe + by) & size_mask
    return lo + ((probe - lo + by) & size_mask)


def _place(table: npt.NDArray[Any], keys: npt.NDArray[Any], probe: I64, lo: I64 | int,
           size_mask: I64 | int, empty: Any, deleted: Any) -> tuple[I64, npt.NDArray[Any]]:
    """Write absent, distinct `keys` into `table` (linear probing from slot `probe` of each
    key's run [lo, lo + size_mask]), each in the first free (empty or deleted) slot of its
    run; returns (each key's slot, what that slot held: empty or deleted).

    One probe a round while many keys go on, then a window of slots a round for the few
    left in long runs (as _find_rest). Of keys that pick the same slot one write wins
    (numpy's last); the others look on from the slot after it: the slots a key passed
    were held and stay held (nothing is freed while placing), so every key ends in the
    first free slot of its run, which is all lookups need. The layout depends only on
    the keys and their order.
    """
    if kernels.compiled():  # the same rounds' outcome in one loop (hash_probes.py)
        return hash_probes.place(table, keys, probe, lo, size_mask, empty, deleted, _FEW,
                                 _WINDOW)
    slot = np.empty(keys.size, np.int64)
    held = np.empty(keys.size, table.dtype)
    pending = np.arange(keys.size)
    while pending.size > _FEW:
        k = table[probe]
        free_at = _select((k == empty) | (k == deleted))
        target, want = probe[free_at], keys[pending[free_at]]
        table[target] = want
        won_mask = np.zeros(pending.size, np.bool_)
        won_mask[free_at] = table[target] == want
        won = _select(won_mask)
        slot[pending[won]] = probe[won]
        held[pending[won]] = k[won]
        left = _select(~won_mask)
        pending, probe = pending[left], probe[left]
        if not isinstance(lo, int):
            lo, size_mask = lo[left], np.asarray(size_mask)[left]
        probe = _step(probe, 1, lo, size_mask)
    while pending.size:
        if isinstance(lo, int):
            idx = (probe[:, None] + _STEPS) & size_mask
        else:
            idx = lo[:, None] + (((probe - lo)[:, None] + _STEPS)
                                 & np.asarray(size_mask)[:, None])
        k = table[idx]
        free = (k == empty) | (k == deleted)
        first = free.argmax(axis=1)
        rows = np.arange(pending.size)
        at = _select(free[rows, first])
        full = _select(~free[rows, first])
        target, want = idx[at, first[at]], keys[pending[at]]
        table[target] = want
        won_mask = table[target] == want
        won = _select(won_mask)
        slot[pending[at[won]]] = target[won]
        held[pending[at[won]]] = k[at[won], first[at[won]]]
        lost = _select(~won_mask)
        keep = np.concatenate([full, at[lost]])
        nxt = np.concatenate([idx[full, _WINDOW - 1], target[lost]])
        pending = pending[keep]
        if not isinstance(lo, int):
            lo, size_mask = lo[keep], np.asarray(size_mask)[keep]
        probe = _step(nxt, 1, lo, size_mask)
    return slot, held


def _home_of(keys: U64, capacity: int) -> I64:
    """Home slot of each key in a table of `capacity` (a power of two) slots: the top
    bits of a Fibonacci hash."""
    with np.errstate(over="ignore"):
        mixed = keys * _GOLDEN
    return (mixed >> np.uint64(64 - (capacity.bit_length() - 1))).astype(np.int64)


def _pow2_slots(capacity: int) -> int:
    """`capacity` rounded up to a power of two, at least 16."""
    return 1 << max(4, int(capacity - 1).bit_length())


def fix_key(keys: U64) -> U64:
    """Map any 64-bit keys into the usable range (>= 2)."""
    return np.where(keys < np.uint64(2), keys + np.uint64(2), keys)


def _home_and_bit(keys: U64, capacity: int) -> tuple[I64, npt.NDArray[np.uint8]]:
    """Each key's home slot (as _home_of) and its presence bit in the home's filter byte:
    the three hash bits below the home's."""
    shift = 64 - (capacity.bit_length() - 1)
    with np.errstate(over="ignore"):
        mixed = keys * _GOLDEN
    bit = ((mixed >> np.uint64(shift - 3)) & np.uint64(7)).astype(np.uint8)
    return (mixed >> np.uint64(shift)).astype(np.int64), bit


class U64Map:
    """Besides the slots, a presence filter: a byte per slot, in which every key stored
    since the last rebuild set one of eight bits (of its home slot's byte, picked by three
    more bits of its hash). A lookup reads its filter byte first and probes the table only
    if its bit is set: most lookups of the sharing tables are of keys not there (96 % of
    KSM's stable-tree searches), and the filter, an eighth of the keys' bytes, mostly
    answers them from cache instead of a cache miss into the table. Deletions leave their
    bits (a bit may stand for several keys): a stale bit only costs a probe, until the
    next rebuild."""

    def __init__(self, capacity: int = 1024) -> None:
        cap = _pow2_slots(capacity)
        self.keys = np.zeros(cap, np.uint64)
        self.vals = np.zeros(cap, np.int64)
        self.aux = np.zeros(cap, np.uint64)
        self.present = np.zeros(cap, np.uint8)
        self.live = 0
        self.deleted = 0

    def __len__(self) -> int:
        return self.live

    @property
    def capacity(self) -> int:
        return int(self.keys.size)

    def _find(self, keys: U64) -> I64:
        """Slot of each key, -1 where absent."""
        if kernels.compiled():  # the home slots and filter bits computed in the loop
            return hash_probes.find_hashed(self.keys, keys, self.present,
                                           64 - (self.capacity.bit_length() - 1))
        home, bit = _home_and_bit(keys, self.capacity)
        slot = np.full(keys.size, -1, np.int64)
        maybe = np.flatnonzero((np.take(self.present, home) >> bit) & np.uint8(1))
        if maybe.size == 0:
            return slot
        keys, probe = keys[maybe], home[maybe]
        # The first probe of every key left is done on whole arrays (most keys end
        # there); the rounds after it only on the keys still going.
        k = np.take(self.keys, probe)
        hit = k == keys
        found = np.where(hit, probe, -1)
        pending = _select(~hit & (k != EMPTY))
        mask = self.capacity - 1
        _find_rest(self.keys, keys, found, pending, (probe[pending] + 1) & mask, 0, mask,
                   EMPTY)
        slot[maybe] = found
        return slot

    def _mark_present(self, home: I64, bit: npt.NDArray[np.uint8]) -> None:
        """Set the filter bits of keys stored, given their _home_and_bit."""
        np.bitwise_or.at(self.present, home, np.left_shift(np.uint8(1), bit))

    def find(self, keys: U64) -> I64:
        """Slot of each key, -1 where absent. Slots stay valid until the next put()
        (deletions of other keys leave them be); `at` and `put_found` take them."""
        return self._find(keys)

    def at(self, slot: I64) -> tuple[Bool, I64, U64]:
        """(found, value, aux) at slots from find(); value/aux are 0 where slot is -1."""
        found = slot >= 0
        at = _select(found)  # read only the slots found
        vals = np.zeros(slot.size, np.int64)
        aux = np.zeros(slot.size, np.uint64)
        found_slot = np.take(slot, at)
        vals[at] = np.take(self.vals, found_slot)
        aux[at] = np.take(self.aux, found_slot)
        return found, vals, aux

    def get(self, keys: U64) -> tuple[Bool, I64, U64]:
        """(found, value, aux) for each key; value/aux are 0 where not found."""
        return self.at(self._find(keys))

    def put(self, keys: U64, vals: I64, aux: U64) -> None:
        """Insert or overwrite. With duplicate keys in one batch the last one wins."""
        if keys.size == 0:
            return
        # Grouped by key, each group's members in index order (arrays.group_by_key: one
        # sort of the keys' high bits packed with their indices, by the bits; from 8,000
        # keys 3 times as fast as numpy's comparison argsort): the last of equal keys ends
        # its group.
        if keys.size > 1 and not bool((keys[1:] > keys[:-1]).all()):
            order, starts, lengths = group_by_key(keys)
            last = order[starts + lengths - 1]
            keys, vals, aux = keys[last], vals[last], aux[last]
        # else distinct and ascending already (ESX's new shared frames, made in key order)
        self.put_found(keys, vals, aux, self._find(keys))

    def put_found(self, keys: U64, vals: I64, aux: U64, slot: I64) -> None:
        """put() for distinct keys whose slots are known from find(): saves a second probe
        of every key when a caller looked them up already. Keys must be ascending, the
        order put() inserts in, since the insertion order sets the table's layout."""
        present = slot >= 0
        self.vals[slot[present]] = vals[present]
        self.aux[slot[present]] = aux[present]
        new = ~present
        if not new.any():
            return
        self._reserve(int(new.sum()))
        self._insert_new(keys[new], vals[new], aux[new])

    def _insert_new(self, keys: U64, vals: I64, aux: U64) -> None:
        """Place keys known to be absent (and distinct): see _place."""
        home, bit = _home_and_bit(keys, self.capacity)
        slot, held = _place(self.keys, keys, home, 0, self.capacity - 1, EMPTY, DELETED)
        if kernels.compiled():  # the same writes, in one loop
            hash_probes.store_placed(self.vals, self.aux, self.present, slot, vals, aux, home,
                                     bit)
        else:
            self.vals[slot] = vals
            self.aux[slot] = aux
            self._mark_present(home, bit)
        self.live += int(keys.size)
        self.deleted -= int(np.count_nonzero(held == DELETED))

    def delete(self, keys: U64) -> int:
        return self.delete_found(self._find(keys))

    def delete_found(self, slot: I64) -> int:
        """delete() of keys whose slots are known from find() (-1: absent)."""
        slot = unique_sorted(slot[slot >= 0])
        self.keys[slot] = DELETED
        self.live -= int(slot.size)
        self.deleted += int(slot.size) - _empty_tombstones(self.keys, slot, self.capacity - 1,
                                                           EMPTY, DELETED)
        return int(slot.size)

    def items(self) -> tuple[U64, I64, U64]:
        used = _select(self.keys > DELETED)
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
        if capacity == self.capacity:
            # Rebuilt to drop deleted slots: the same arrays cleared (a few ms), not fresh
            # ones mapped in (half of a 60 ms rebuild of the data center's table).
            for a in (self.keys, self.vals, self.aux, self.present):
                a.fill(0)
        else:
            self.keys = _table_zeros(capacity, np.uint64)
            self.vals = _table_zeros(capacity, np.int64)
            self.aux = _table_zeros(capacity, np.uint64)
            self.present = _table_zeros(capacity, np.uint8)
        self.live = 0
        self.deleted = 0
        if keys.size and kernels.compiled():
            # Key after key in the old table's order (hash_probes.insert_fresh): a rebuild
            # in place of 1.42 M keys took 27-31 ms where the compiled rounds of _place
            # took 65-96. The slots differ from the rounds' (no lookup's answer depends
            # on which).
            hash_probes.insert_fresh(self.keys, self.vals, self.aux, self.present, keys,
                                     vals, aux)
            self.live = int(keys.size)
        elif keys.size:
            self._insert_new(keys, vals, aux)

    def overhead_bytes(self, bytes_per_entry: int = 16) -> int:
        return self.live * bytes_per_entry

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}.keys": self.keys, f"{prefix}.vals": self.vals,
                f"{prefix}.aux": self.aux}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]], prefix: str) -> U64Map:
        if f"{prefix}.region_size" in arrays:  # saved by a RegionMap
            return RegionMap.from_region_arrays(arrays, prefix)
        table = cls(16)
        table.keys = arrays[f"{prefix}.keys"].astype(np.uint64)
        table.vals = arrays[f"{prefix}.vals"].astype(np.int64)
        table.aux = arrays[f"{prefix}.aux"].astype(np.uint64)
        if table.keys.size < 16 or table.keys.size & (table.keys.size - 1):
            raise ValueError(f"array {prefix}.keys: expected a power of two of slots")
        table.present = np.zeros(table.keys.size, np.uint8)
        table._mark_present(*_home_and_bit(table.keys[table.keys > DELETED], table.capacity))
        table.live = int((table.keys > DELETED).sum())
        table.deleted = int((table.keys == DELETED).sum())
        return table


class FrameKeys:
    """The key each machine frame is shared under, 0 when it is not shared: sparse.

    Few frames are shared (a percent or so of a host's), spread over every host's range,
    so a dense uint64 per frame (0.74 GiB at 99 M frames) would be resident in full once
    sharing got going, and its first writes would fault it in during one tick. Here a bit
    per frame says whether the frame has a key (12 MiB at 99 M frames), and an
    open-addressing map from frame to key holds the keys of the shared ones only, 12 bytes
    a slot (frame + 1 as a uint32, 0 empty, 2^32 - 1 deleted; the key). Released frames are
    mostly private: their bits tell them apart without a probe of the map.

    Nothing outside reads the map's layout (a save holds `items`, the keyed frames and
    their keys), so it may be filled further than U64Map, to 3/4: its lookups are of
    keyed frames only, which are found in a few probes even so, and a growth (mostly the
    faulting-in of new memory, in the tick the stable table grows too, as it holds as
    many entries) is half the size.
    """

    _EMPTY = np.uint32(0)
    _DELETED = np.uint32(0xFFFFFFFF)

    def __init__(self, n_frames: int, capacity: int = 1024) -> None:
        if n_frames >= (1 << 32) - 2:
            raise ValueError("FrameKeys: at most 2^32 - 3 frames")
        self.n_frames = int(n_frames)
        self.bits = np.zeros((self.n_frames + 7) // 8, np.uint8)
        self._layout(_pow2_slots(capacity))

    def _layout(self, capacity: int) -> None:
        self.slot_frame = _table_zeros(capacity, np.uint32)  # frame + 1; EMPTY, DELETED
        self.slot_key = _table_zeros(capacity, np.uint64)
        self.live = 0
        self.deleted = 0

    def __len__(self) -> int:
        return self.live

    @property
    def capacity(self) -> int:
        return int(self.slot_frame.size)

    def has(self, frames: npt.NDArray[Any]) -> Bool:
        """Whether each frame has a key."""
        f = np.asarray(frames, np.int64)
        bit = (self.bits[f >> 3] >> (f & 7).astype(np.uint8)) & np.uint8(1)
        return np.asarray(bit, np.bool_)

    def get(self, frames: npt.NDArray[Any]) -> U64:
        """Each frame's key, 0 where it has none."""
        f = np.asarray(frames, np.int64)
        out = np.zeros(f.size, np.uint64)
        at = _select(self.has(f))  # only keyed frames are looked up in the map
        if at.size:
            slot = self._find((f[at] + 1).astype(np.uint32))
            ok = slot >= 0
            out[at[ok]] = self.slot_key[slot[ok]]
        return out

    def set(self, frames: npt.NDArray[Any], keys: U64) -> None:
        """Give frames keys (nonzero); with a frame twice in a batch the last one wins."""
        if frames.size == 0:
            return
        if kernels.compiled():  # frame after frame (hash_probes.set_keys): sharing 0.6 ms
            # a tick faster side by side; the frames may sit in other slots than _insert
            # puts them, which no lookup depends on (a save holds `items`)
            self._reserve(int(frames.size))  # room for all, keyed ones or not
            added, reused = hash_probes.set_keys(self.bits, self.slot_frame, self.slot_key,
                                                 frames, keys, int(self._DELETED))
            self.live += added
            self.deleted -= reused
            return
        f = np.asarray(frames, np.int64)
        keys = np.asarray(keys, np.uint64)
        order = np.argsort(f)  # frames come distinct: then any order will do
        distinct = f[order]
        last = order
        if distinct.size > 1 and not bool((distinct[1:] > distinct[:-1]).all()):
            order = np.argsort(f, kind="stable")
            distinct, starts, lengths = runs(f[order])
            last = order[starts + lengths - 1]
        stored = (distinct + 1).astype(np.uint32)
        in_map = self.has(distinct)  # the bits say which are in the map already
        keyed = _select(in_map)
        self.slot_key[self._find(stored[keyed])] = keys[last[keyed]]
        new = _select(~in_map)
        if new.size:
            self._reserve(new.size)
            self._insert(stored[new], keys[last[new]])
        self._bits(distinct, True)

    def clear(self, frames: npt.NDArray[Any]) -> None:
        """Frames, all keyed and distinct, lose their keys."""
        self.pop(frames)

    def pop(self, frames: npt.NDArray[Any]) -> U64:
        """clear(), returning the keys get() would have given (in the frames' order)."""
        if frames.size == 0:
            return np.zeros(0, np.uint64)
        f = np.asarray(frames, np.int64)
        order = None
        if f.size > 1 and not bool((f[1:] > f[:-1]).all()):
            order = np.argsort(f)
            f = f[order]
        found = self._find((f + 1).astype(np.uint32))
        keys = np.where(found >= 0, self.slot_key[np.maximum(found, 0)], np.uint64(0))
        if order is not None:  # back in the order the frames came in
            keys[order] = keys.copy()
        slot = found[found >= 0]
        self.slot_frame[slot] = self._DELETED
        self.live -= int(slot.size)
        self.deleted += int(slot.size) - _empty_tombstones(
            self.slot_frame, slot, self.capacity - 1, self._EMPTY, self._DELETED)
        self._bits(f, False)
        return keys

    def _home(self, stored: npt.NDArray[np.uint32]) -> I64:
        return _home_of(stored.astype(np.uint64), self.capacity)

    def _find(self, stored: npt.NDArray[np.uint32]) -> I64:
        """Slot of each stored frame, -1 where absent (U64Map._find's probing)."""
        probe = self._home(stored)
        if kernels.compiled():
            return hash_probes.find_flat(self.slot_frame, stored, probe)
        k = self.slot_frame[probe]
        hit = k == stored
        slot = np.where(hit, probe, -1)
        pending = _select(~hit & (k != self._EMPTY))
        mask = self.capacity - 1
        _find_rest(self.slot_frame, stored, slot, pending, (probe[pending] + 1) & mask, 0,
                   mask, self._EMPTY)
        return slot

    def _insert(self, stored: npt.NDArray[np.uint32], keys: U64) -> None:
        """Place absent, distinct frames, each in the first free slot of its run (_place)."""
        slot, held = _place(self.slot_frame, stored, self._home(stored), 0, self.capacity - 1,
                            self._EMPTY, self._DELETED)
        self.slot_key[slot] = keys
        self.live += int(stored.size)
        self.deleted -= int(np.count_nonzero(held == self._DELETED))

    def _reserve(self, extra: int) -> None:
        """Room for `extra` new frames: past 3/4 of the slots used (live or deleted), the
        live entries are placed anew, in twice the slots if they fill more than half."""
        if (self.live + self.deleted + extra) * 4 <= self.capacity * 3:
            return
        cap = self.capacity
        while (self.live + extra) * 2 > cap:
            cap *= 2
        used = _select((self.slot_frame != self._EMPTY) & (self.slot_frame != self._DELETED))
        stored, keys = self.slot_frame[used], self.slot_key[used]
        if cap == self.capacity:  # only deleted slots to drop: the memory is reused
            self.slot_frame[:] = self._EMPTY
            self.live = self.deleted = 0
        else:
            self._layout(cap)
        self._insert(stored, keys)

    def _bits(self, f: I64, on: bool) -> None:
        """Set or clear the bits of frames `f`, ascending and distinct."""
        # A byte holds eight frames' bits: combine those of one byte first (an or.at would
        # do it too, several times slower).
        byte, starts, _ = runs(f >> 3)
        mask = np.bitwise_or.reduceat(np.left_shift(np.uint8(1), (f & 7).astype(np.uint8)),
                                      starts)
        if on:
            self.bits[byte] |= mask
        else:
            self.bits[byte] &= ~mask

    def items(self) -> tuple[I64, U64]:
        """(frame, key) of every keyed frame, by frame."""
        used = _select((self.slot_frame != self._EMPTY) & (self.slot_frame != self._DELETED))
        frames = self.slot_frame[used].astype(np.int64) - 1
        order = np.argsort(frames)
        return frames[order], self.slot_key[used][order]

    def dense(self) -> U64:
        """One key per frame, 0 where none: a whole new array of n_frames (for tests and
        checks on small worlds; saves hold `items`, as schema 2 and older held this)."""
        out = np.zeros(self.n_frames, np.uint64)
        frames, keys = self.items()
        out[frames] = keys
        return out

    @classmethod
    def from_items(cls, n_frames: int, frames: npt.NDArray[Any], keys: U64) -> FrameKeys:
        """The table of `n_frames` frames whose keyed ones are `frames` (distinct, each
        below n_frames) with `keys` (nonzero): `items` read back, as a save holds it."""
        table = cls(n_frames, capacity=max(1024, 2 * int(np.size(frames))))
        table.set(np.asarray(frames, np.int64), np.asarray(keys, np.uint64))
        return table

    @classmethod
    def from_dense(cls, keys: U64) -> FrameKeys:
        """The table of a key per frame, 0 where none (saves of schema 2 and older)."""
        keyed = np.flatnonzero(keys)
        return cls.from_items(keys.size, keyed, keys[keyed])


class HintTable:
    """ESX's hint entries: a fixed-size, direct-mapped table per host (Waldspurger §4.1).

    Each host owns a power-of-two segment of slots and a key has exactly one slot in its
    host's segment. An entry is one 32-bit word: the hinted guest page + 1 (0 = empty) and
    three bits of the tick of the page's last write when it was hashed (`tag_of`). The key
    itself is not stored: whoever looks a slot up rehashes the hinted page (as ESX does on
    a match), which also tells a hint whose page changed. A write to the page since kills
    its hint: its last write's tick no longer has those bits (a write that happens to keep
    them, one in eight, is caught by the rehash when it changed the page, and harmless when
    it did not). A new hint overwrites its slot, whatever was there: a collision forgets
    the older hint. So the table's size is set once, by policy, and never grows with run
    length: 4 bytes a slot (engine/budgets.py keeps page indices below 2^28).
    """

    _TAG_SHIFT = np.uint32(29)
    _PAGE_MASK = np.uint32((1 << 29) - 1)
    TAG_BITS = 7  # the last write's tick & 7

    @classmethod
    def tag_of(cls, written_before: npt.NDArray[Any]) -> I64:
        """The tag of pages whose `Pages.written_before` (last write's tick + 1) is given:
        that tick & 7 (a page never written, 0 - 1 = -1, tags 7)."""
        return (written_before.astype(np.int64) - 1) & cls.TAG_BITS

    def __init__(self, slots_per_host: I64) -> None:
        sizes = np.array([1 << max(4, int(n - 1).bit_length()) for n in slots_per_host],
                         np.int64)
        self.size = sizes
        self.offset = (np.cumsum(sizes) - sizes).astype(np.int64)
        self.entry = np.zeros(int(sizes.sum()), np.uint32)

    @property
    def capacity(self) -> int:
        return int(self.entry.size)

    def slot(self, keys: U64, host: I64) -> I64:
        """The one slot each key may occupy in its host's segment."""
        with np.errstate(over="ignore"):
            mixed = keys * _GOLDEN
        high = (mixed >> np.uint64(32)).astype(np.int64)
        return np.asarray(self.offset[host] + (high & (self.size[host] - 1)), np.int64)

    def read(self, slot: I64) -> tuple[Bool, I64, I64]:
        """(occupied, hinted page, its tag when hashed) at each slot."""
        entry = np.take(self.entry, slot)
        page = (entry & self._PAGE_MASK).astype(np.int64) - 1
        return entry != 0, page, (entry >> self._TAG_SHIFT).astype(np.int64)

    def write(self, slot: I64, pages: I64, written_before: npt.NDArray[Any]) -> None:
        """Record hints; with several for one slot in a batch, the last one wins."""
        if slot.size == 0:
            return
        if kernels.compiled():  # written in order, so the last one stays (hash_probes.py)
            hash_probes.write_hints(self.entry, slot, pages, written_before,
                                    int(self._TAG_SHIFT), self.TAG_BITS)
            return
        bits = max(int(slot.size - 1).bit_length(), 1)
        if self.capacity.bit_length() + bits <= 62:
            # One sort of (slot, index) packed into an int64, several times cheaper than a
            # stable argsort: the last of each run of a slot is its last hint in the batch.
            packed = sorted_ints((slot << bits) | np.arange(slot.size, dtype=np.int64))
            s = packed >> bits
            last = np.ones(s.size, np.bool_)
            last[:-1] = s[1:] != s[:-1]
            pick = packed[_select(last)] & ((1 << bits) - 1)
        else:
            order = np.argsort(slot, kind="stable")
            s = slot[order]
            last = np.ones(s.size, np.bool_)
            last[:-1] = s[1:] != s[:-1]
            pick = order[last]
        tag = self.tag_of(written_before[pick]).astype(np.uint32)
        self.entry[slot[pick]] = (tag << self._TAG_SHIFT) | (pages[pick] + 1).astype(np.uint32)

    def clear(self, slot: I64) -> None:
        self.entry[slot] = 0

    def occupied_per_host(self) -> I64:
        """Occupied slots of each host's region: a count of nonzero entries per region, one
        call a host (reduceat over a boolean copy took 1.7 s on the data center's 100 M
        slots, this 0.1 s)."""
        return np.array([np.count_nonzero(self.entry[o:o + n])
                         for o, n in zip(self.offset.tolist(), self.size.tolist(), strict=True)],
                        np.int64)

    def host_of(self, slot: I64) -> I64:
        return np.asarray(np.searchsorted(self.offset, slot, side="right") - 1, np.int64)

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}.entry": self.entry, f"{prefix}.size": self.size}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]], prefix: str) -> HintTable:
        table = cls(np.zeros(0, np.int64))
        table.size = arrays[f"{prefix}.size"].astype(np.int64)
        table.offset = (np.cumsum(table.size) - table.size).astype(np.int64)
        table.entry = arrays[f"{prefix}.entry"].astype(np.uint32)
        if table.entry.size != int(table.size.sum()):
            raise ValueError("the hint table's arrays do not match its sizes")
        return table


class RegionMap(U64Map):
    """KSM's unstable trees: one open-addressing region per host, uint64 key -> uint32 page.

    ksmd throws a host's unstable tree away at the end of each full scan; here its region is
    cleared then (`clear`), so nothing of earlier scans piles up and the table never grows
    with run length. A region holds a power of two of slots, 12 bytes each, filled to at
    most 3/4 (a host's region is sized from its frames when KSM starts on it, and doubles
    only if one full scan leaves more pages in the tree than that). Linear probing stays
    within the region; the layout depends only on the sequence of operations. It is a
    U64Map for the world's state, saved as an empty one plus its own arrays; the key-only
    calls of U64Map do not apply (a key's region must be given).
    """

    LOAD = 0.75  # filled to at most this share of a region's slots

    def __init__(self, sizes: I64) -> None:
        super().__init__(16)
        self._layout(np.array([1 << max(4, int(n - 1).bit_length()) for n in sizes], np.int64))

    def _layout(self, size: I64) -> None:
        self.size = size
        self.offset = (np.cumsum(size) - size).astype(np.int64)
        self.bits = np.array([int(n).bit_length() - 1 for n in size], np.uint64)
        # Written through now (np.full, not calloc'd zeros), so the memory is the process's
        # from the start, not taken page by page as the trees fill.
        self.rkeys = np.full(int(size.sum()), EMPTY, np.uint64)
        self.rvals = np.full(int(size.sum()), 0, np.uint32)
        self.live_in = np.zeros(size.size, np.int64)
        self.used_in = np.zeros(size.size, np.int64)  # live and deleted slots

    def __len__(self) -> int:
        return int(self.live_in.sum())

    @property
    def capacity(self) -> int:
        return int(self.rkeys.size)

    def _home_in(self, keys: U64, region: I64) -> I64:
        with np.errstate(over="ignore"):
            mixed = keys * _GOLDEN
        return self.offset[region] + (mixed >> (np.uint64(64) - self.bits[region])).astype(
            np.int64)

    def find_in(self, keys: U64, region: I64) -> I64:
        """Slot of each key in its region, -1 where absent."""
        return self.locate_in(keys, region)[0]

    def locate_in(self, keys: U64, region: I64) -> tuple[I64, I64]:
        """(slot, end) of each key in its region: slot where present, else -1; end where
        absent: the empty slot its search stopped at, where it can go (put_located_in)."""
        if kernels.compiled():  # the home slots computed in the loop
            return hash_probes.find_in_regions(self.rkeys, keys, region, self.offset,
                                               self.size, self.bits)
        probe = self._home_in(keys, region)
        k = np.take(self.rkeys, probe)
        hit = k == keys
        slot = np.where(hit, probe, -1)
        end = np.where(k == EMPTY, probe, -1)
        pending = _select(~hit & (k != EMPTY))
        # Each key still going carries its region's offset and slot mask along.
        lo = self.offset[region[pending]]
        size_mask = self.size[region[pending]] - 1
        probe = lo + ((probe[pending] - lo + 1) & size_mask)
        _find_rest(self.rkeys, keys, slot, pending, probe, lo, size_mask, EMPTY, end)
        return slot, end

    def get_in(self, keys: U64, region: I64) -> tuple[Bool, I64]:
        """(found, value) of each key in its region; value 0 where not found."""
        return self.values_at(self.find_in(keys, region))

    def values_at(self, slot: I64) -> tuple[Bool, I64]:
        """(found, value) of keys at `slot` (-1: not found; value 0)."""
        found = slot >= 0
        at = _select(found)  # read only the slots found
        vals = np.zeros(slot.size, np.int64)
        vals[at] = np.take(self.rvals, np.take(slot, at))
        return found, vals

    def put_in(self, keys: U64, vals: I64, region: I64, absent: Bool | None = None) -> None:
        """Insert or overwrite; keys must be distinct. `absent`: keys the caller knows are not
        in the table (looked up since, or deleted), which need no probe to find them."""
        if keys.size == 0:
            return
        new = np.zeros(keys.size, np.bool_) if absent is None else absent.copy()
        look = _select(~new)
        slot = self.find_in(keys[look], region[look])
        present = slot >= 0
        self.rvals[slot[present]] = vals[look[present]]
        new[look[~present]] = True
        if not new.any():
            return
        keys, vals, region = keys[new], vals[new], region[new]
        extra = np.bincount(region, minlength=self.size.size)
        short = _select(self.used_in + extra > self.LOAD * self.size)
        if short.size:
            self.reserve(short, (self.live_in + extra)[short])
        self._insert_new_in(keys, vals.astype(np.uint32), region)

    def put_located_in(self, keys: U64, vals: I64, region: I64, slot: I64, end: I64) -> None:
        """put_in for distinct keys located by locate_in since the last put: `slot` where
        the key is still there (its value is overwritten), else -1; `end` where it was
        absent, else -1. An absent key goes into the empty slot its search stopped at:
        every slot before it in its run is taken or deleted, so lookups find it there,
        and it needs no second search. Keys deleted since (slot and end -1), or whose
        empty slot was taken since, or whose region must grow, are placed as put_in does.
        """
        if keys.size == 0:
            return
        at = _select(slot >= 0)
        self.rvals[slot[at]] = vals[at]
        new = _select(slot < 0)
        keys, vals, region, end = keys[new], vals[new], region[new], end[new]
        extra = np.bincount(region, minlength=self.size.size)
        short = _select(self.used_in + extra > self.LOAD * self.size)
        if short.size:  # the regions are laid out anew: the located slots mean nothing
            self.reserve(short, (self.live_in + extra)[short])
            end = np.full(keys.size, -1, np.int64)
        # Keys with an empty slot still empty write it; of keys that share one, one wins.
        try_at = _select(end >= 0)
        target = end[try_at]
        try_at = try_at[self.rkeys[target] == EMPTY]
        target = end[try_at]
        self.rkeys[target] = keys[try_at]
        won = try_at[self.rkeys[target] == keys[try_at]]
        self.rvals[end[won]] = vals[won].astype(np.uint32)
        r = region[won]
        self.live_in += np.bincount(r, minlength=self.size.size)
        self.used_in += np.bincount(r, minlength=self.size.size)
        rest = np.ones(keys.size, np.bool_)
        rest[won] = False
        rest_at = _select(rest)
        if rest_at.size:
            self._insert_new_in(keys[rest_at], vals[rest_at].astype(np.uint32), region[rest_at])

    def _insert_new_in(self, keys: U64, vals: npt.NDArray[np.uint32], region: I64) -> None:
        """Place absent, distinct keys, each in the first free slot of its run in its
        region (_place)."""
        slot, held = _place(self.rkeys, keys, self._home_in(keys, region),
                            self.offset[region], self.size[region] - 1, EMPTY, DELETED)
        self.rvals[slot] = vals
        self.live_in += np.bincount(region, minlength=self.size.size)
        self.used_in += np.bincount(region[held == EMPTY], minlength=self.size.size)

    def delete_in(self, keys: U64, region: I64) -> int:
        slot = self.find_in(keys, region)
        found = slot >= 0
        slot, region = slot[found], region[found]
        order = np.argsort(slot)
        keep = np.ones(slot.size, np.bool_)
        keep[1:] = slot[order][1:] != slot[order][:-1]
        slot, region = slot[order][keep], region[order][keep]
        self.rkeys[slot] = DELETED
        self.live_in -= np.bincount(region, minlength=self.size.size)
        return int(slot.size)

    def clear(self, regions: I64) -> None:
        """Empty these regions (a host's full scan ended: its tree starts over)."""
        for r in regions.tolist():  # one slice per host whose scan wrapped
            self.rkeys[self.offset[r]:self.offset[r] + self.size[r]] = EMPTY
        self.live_in[regions] = 0
        self.used_in[regions] = 0

    def reserve(self, regions: I64, entries: I64) -> None:
        """Room for `entries` live entries in each of `regions`: they double as needed and
        their live entries are placed anew (which also drops deleted slots); the other
        regions keep their slots."""
        size = self.size.copy()
        for r, n in zip(regions.tolist(), entries.tolist(), strict=True):
            while n > self.LOAD * size[r]:
                size[r] *= 2
        old_size, old_offset, old_keys, old_vals = self.size, self.offset, self.rkeys, self.rvals
        old_live, old_used = self.live_in, self.used_in
        redo = np.zeros(size.size, np.bool_)
        redo[regions] = True
        self._layout(size)
        for r in _select(~redo).tolist():  # the other regions move as they are
            src = slice(old_offset[r], old_offset[r] + old_size[r])
            self.rkeys[self.offset[r]:self.offset[r] + size[r]] = old_keys[src]
            self.rvals[self.offset[r]:self.offset[r] + size[r]] = old_vals[src]
        self.live_in[~redo] = old_live[~redo]
        self.used_in[~redo] = old_used[~redo]
        region_of_slot = np.repeat(np.arange(old_size.size), old_size)
        moving = (old_keys > DELETED) & redo[region_of_slot]
        self._insert_new_in(old_keys[moving], old_vals[moving], region_of_slot[moving])

    def items_in(self) -> tuple[U64, I64, I64]:
        """(key, value, region) of every live entry."""
        used = _select(self.rkeys > DELETED)
        region = np.repeat(np.arange(self.size.size), self.size)
        return self.rkeys[used], self.rvals[used].astype(np.int64), region[used]

    def items(self) -> tuple[U64, I64, U64]:
        keys, vals, _ = self.items_in()
        return keys, vals, np.zeros(keys.size, np.uint64)

    def get(self, keys: U64) -> tuple[Bool, I64, U64]:
        raise TypeError("a RegionMap looks keys up in a region: get_in")

    def put(self, keys: U64, vals: I64, aux: U64) -> None:
        raise TypeError("a RegionMap puts keys in a region: put_in")

    def delete(self, keys: U64) -> int:
        raise TypeError("a RegionMap deletes keys in a region: delete_in")

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        arrays = U64Map(16).to_arrays(prefix)  # what older readers of a save expect
        arrays.update({f"{prefix}.region_size": self.size, f"{prefix}.region_keys": self.rkeys,
                       f"{prefix}.region_vals": self.rvals})
        return arrays

    @classmethod
    def from_region_arrays(cls, arrays: dict[str, npt.NDArray[Any]], prefix: str) -> RegionMap:
        size = arrays[f"{prefix}.region_size"].astype(np.int64)
        if np.any(size < 16) or np.any(size & (size - 1)):
            raise ValueError(f"array {prefix}.region_size: expected powers of two")
        table = cls(size)
        keys = arrays[f"{prefix}.region_keys"].astype(np.uint64)
        vals = arrays[f"{prefix}.region_vals"]
        if keys.shape != (int(size.sum()),) or vals.shape != keys.shape:
            raise ValueError(f"arrays {prefix}.region_keys/vals do not match the region sizes")
        table.rkeys, table.rvals = keys, vals.astype(np.uint32)
        region = np.repeat(np.arange(size.size), size)
        table.live_in = np.bincount(region[keys > DELETED], minlength=size.size).astype(np.int64)
        table.used_in = np.bincount(region[keys != EMPTY], minlength=size.size).astype(np.int64)
        return table
