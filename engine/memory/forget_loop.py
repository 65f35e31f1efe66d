"""Freed shared frames leave the sharing tables, in one compiled loop (engine/kernels.py).

When a shared frame loses its last page (a copy-on-write break, a balloon or the swap
daemon taking a page, a VM leaving), memory/frames.py's _forget_keyed drops its key from
FrameKeys and its entry from the stable table. In numpy passes that is some thirty calls
for a few dozen frames, a quarter of a millisecond each time on the data center, three
times a tick. Here each frame is looked up, cleared and deleted in turn, and the deleted
slots that no probing run needs are emptied after, as hashtable._empty_tombstones does:
the tables come out the same, slot for slot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.hash_probes import GOLDEN
from engine.kernels import Kernel
from engine.state import I64, U64, State

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
_FRAME_DELETED = np.uint32(0xFFFFFFFF)  # FrameKeys' marks (hashtable.py)
_KEY_DELETED = np.uint64(1)  # U64Map's


def empty_back(table: npt.NDArray[Any], slots: I64, n: int, mask: int, empty: Any,
               deleted: Any) -> int:
    """hashtable._empty_tombstones over slots[:n], just marked deleted: a deleted slot
    followed by an empty one is emptied, and so, going back, is every deleted slot before
    it. In any order this reaches the numpy rounds' fixed point. Returns how many."""
    emptied = 0
    for j in range(n):
        s = slots[j]
        if table[s] != deleted or table[(s + 1) & mask] != empty:
            continue
        while table[s] == deleted:
            table[s] = empty
            emptied += 1
            s = (s - 1) & mask
    return emptied


def find_from(table: npt.NDArray[Any], want: Any, probe: Any, mask: int) -> int:
    """The slot holding `want` in its probing run from `probe` (0 ends a run), -1 if
    none: hash_probes' lookup of one key."""
    while True:
        k = table[probe]
        if k == want:
            return int(probe)
        if k == 0:
            return -1
        probe = (probe + 1) & mask


def _forget_loop(gone: I64, slot_frame: U32, slot_key: U64, frame_shift: int, key_bits: U8,
                 stable_keys: U64, stable_vals: I64, present: U8, stable_shift: int,
                 frame_offset: I64, shared_frames: I64, frame_slots: I64,
                 stable_slots: I64) -> tuple[int, int, int, int]:
    """Each frame of `gone` (ascending, each with its bit in key_bits set) out of
    FrameKeys (its slot deleted, its bit cleared) and its key's stable entry deleted if it
    names the frame; its host's shared_frames less one. Returns (FrameKeys slots deleted,
    of them emptied; stable slots deleted, of them emptied)."""
    frame_mask = slot_frame.size - 1
    stable_mask = stable_keys.size - 1
    n_frame = 0
    n_stable = 0
    h = 0
    for i in range(gone.size):
        f = gone[i]
        key_bits[f >> 3] &= np.uint8(0xFF ^ (1 << (f & 7)))
        while h + 1 < frame_offset.size and frame_offset[h + 1] <= f:
            h += 1
        shared_frames[h] -= 1
        stored = np.uint32(f + 1)
        slot = find_from(slot_frame, stored,
                         np.int64((np.uint64(stored) * GOLDEN) >> np.uint64(frame_shift)),
                         frame_mask)
        if slot < 0:
            continue
        key = slot_key[slot]
        slot_frame[slot] = _FRAME_DELETED
        frame_slots[n_frame] = slot
        n_frame += 1
        mixed = key * GOLDEN
        probe = np.int64(mixed >> np.uint64(stable_shift))
        bit = (mixed >> np.uint64(stable_shift - 3)) & np.uint64(7)
        if ((present[probe] >> bit) & 1) == 0:
            continue
        slot = find_from(stable_keys, key, probe, stable_mask)
        if slot >= 0 and stable_vals[slot] == f:
            stable_keys[slot] = _KEY_DELETED
            stable_slots[n_stable] = slot
            n_stable += 1
    frame_emptied = empty_back(slot_frame, frame_slots, n_frame, frame_mask, np.uint32(0),
                               _FRAME_DELETED)
    stable_emptied = empty_back(stable_keys, stable_slots, n_stable, stable_mask,
                                np.uint64(0), _KEY_DELETED)
    return n_frame, frame_emptied, n_stable, stable_emptied


def _forget_samples() -> list[tuple[Any, ...]]:
    none, i64 = np.zeros(0, np.int64), np.zeros(1, np.int64)
    u8 = np.zeros(1, np.uint8)
    return [(none, np.zeros(1, np.uint32), np.zeros(1, np.uint64), 60, u8,
             np.zeros(1, np.uint64), i64, u8, 60, i64, i64, none, none)]


_FORGET = Kernel(_forget_loop, _forget_samples, helpers=(empty_back, find_from))


def _shift(capacity: int) -> int:
    """The right shift that gives a key's home slot from its hash (hashtable._home_of)."""
    return 64 - (capacity.bit_length() - 1)


def forget(state: State, gone: npt.NDArray[np.integer[Any]]) -> None:
    """frames._forget_keyed's work for `gone` (ascending, keyed), compiled."""
    sharing = state.sharing
    fk, stable = sharing.frame_keys, sharing.stable
    gone = np.asarray(gone, np.int64)
    frame_slots, stable_slots = np.empty(gone.size, np.int64), np.empty(gone.size, np.int64)
    n_frame, frame_emptied, n_stable, stable_emptied = _FORGET(
        gone, fk.slot_frame, fk.slot_key, _shift(fk.capacity), fk.bits, stable.keys,
        stable.vals, stable.present, _shift(stable.capacity), state.hosts.frame_offset,
        sharing.hosts["shared_frames"], frame_slots, stable_slots)
    fk.live -= n_frame
    fk.deleted += n_frame - frame_emptied
    stable.live -= n_stable
    stable.deleted += n_stable - stable_emptied
