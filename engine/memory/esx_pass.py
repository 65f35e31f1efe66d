"""ESX's scan of a tick's candidates (memory/sharing.py) as two compiled loops
(engine/kernels.py): what sharing._share does in numpy passes over all candidates.

The first loop takes the candidates (private pages, ascending) one after the other: its VM,
host, content and key; the stable table's entry for the key (valid when it names a live
frame of the host holding the same content); the key's hint slot and, where it holds a
hint and the key has no valid frame, whether the hinted page is alive (still private on
the host, unwritten since it was hashed), still of the key, and of the same content (the
full compare); with the per-host counters. Everything it reads is at random (the pages,
the stable table, a hint table of 400 MB on the data center), so it goes in stages a few
candidates apart, each asking for the lines the next needs (engine/prefetch.py): the
page's content 16 ahead; its key, filter byte and hint slot 8 ahead; the stable slot and
the hinted page's lines 4 ahead.

The candidates are then grouped by key (arrays.group_by_key) and the second loop
decides each group as the array passes do: a valid stable frame takes every member; else
a valid hint, or two members or more, makes a new shared frame (its anchor: the hinted
page, or the first member) the others join; a hint used, or whose key now has a frame,
is cleared; a lone page that is not its key's hint becomes it, over whatever the slot
held. The slots' old entries are read after every clear and before any hint is written,
and hints go in group order, so of several for one slot the last stays: the outcome of
the array passes, counters included. The fresh hints' slots and pages are asked for 16
ahead (the slot is read before it is written; the page for its tag): 1.35 to 1.04 ms a
tick for the loop on the data center. The remaps (share_ops.promote and merge) and the
stable table's new entries are made after it (Decided.apply: memory/sharing.py makes the
decisions beside KSM's pass and applies them before KSM's writes) in the calls and order
the passes make, so the frames, tables and counters are the same bit for bit
(tests/engine/test_kernels.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from engine import hash_probes, kernels, parallel
from engine.arrays import group_by_key
from engine.hashtable import HintTable
from engine.kernels import Kernel
from engine.memory import share_ops
from engine.memory.ksm_front import _G0, _M1, _M2, _S27, _S30, _S31, _TWO
from engine.prefetch import prefetch
from engine.state import I32, I64, U8, U64, WORD_SHIFT, Bool, Loc, State

GOLDEN = hash_probes.GOLDEN
_PAGE_MASK = int(HintTable._PAGE_MASK)
_TAG_SHIFT = int(HintTable._TAG_SHIFT)
_TAG_BITS = HintTable.TAG_BITS
_LOC_SHIFT = WORD_SHIFT["location"]
_PRIVATE = int(Loc.PRIVATE)
_HIGH = np.uint64(32)  # a hint slot is picked by the high half of the key's hash
# The first loop is cut into pieces for two threads from an eighth of kernels.MIN_SPLIT
# candidates (2,048): a candidate costs some 150 ns there (several lines from tables of
# hundreds of MB), not the 10 ns of a plain miss, and the data center's scan has 10,000
# a tick.
_COST_OF_A_CANDIDATE = 8


def _front_loop(cand: I64, vm_offset: I64, table_ok: bool, first: int, shift_vm: int,
                n_chunks: int, base: I64, inner: I64, mult: I64, vm_host: I64, mix: U64,
                content_all: U64, word: Any, written_before: I32, skeys: U64, svals: I64, saux: U64,
                present: U8, shift: int, refcount: I32, frame_offset: I64, n_frames: I64,
                entry: Any, h_offset: I64, h_size: I64, host: I64, content: U64, keys: U64,
                valid_s: Bool, frame: I64, hint_slot: I64, found_h: Bool, q: I64,
                self_hint: Bool, valid_h: Bool, hashed: I64, misses: I64, stale: I64,
                compares: I64, start: int, stop: int) -> None:
    """Per candidate (see the module's docstring), in stages: at step t, candidate t
    has its content line asked for, t - 8 its key computed (host, content and key written
    out) and its filter byte and hint slot asked for, t - 12 its stable slot (where its
    filter bit is set) and hinted page asked for, and t - 16 is looked up. A page's VM is
    found by arrays.SegmentOf's table (`table_ok`; else by binary search, whose branches
    mispredict) and its key is share_ops.content_keys', both written out here: as inline
    helpers they made the loop some 15 % slower. Candidates start..stop-1 only (a piece
    of them: parallel.spread), the counters of that piece's own."""
    n_pages = content_all.size
    sh = np.uint64(shift)
    sh_bit = np.uint64(shift - 3)
    s_mask = skeys.size - 1
    for t in range(start, stop + 16):
        if t < stop:
            prefetch(content_all, cand[t])
        j = t - 8
        if j >= start and j < stop:
            page = cand[j]
            if table_ok and page >= first:
                chunk = min((page - first) >> shift_vm, n_chunks)
                vm = base[chunk]
                if page >= inner[chunk]:
                    vm += mult[chunk]
            else:
                vm = np.searchsorted(vm_offset, page, side="right") - 1
            h = vm_host[vm]
            c = content_all[page]
            z = (c ^ mix[vm]) + _G0
            z = (z ^ (z >> _S30)) * _M1
            z = (z ^ (z >> _S27)) * _M2
            z = z ^ (z >> _S31)
            key = z + _TWO if z < _TWO else z
            host[j], content[j], keys[j] = h, c, key
            prefetch(present, np.int64((key * GOLDEN) >> sh))
            slot = h_offset[h] + (np.int64((key * GOLDEN) >> _HIGH) & (h_size[h] - 1))
            hint_slot[j] = slot
            prefetch(entry, slot)
        j = t - 12
        if j >= start and j < stop:
            mixed = keys[j] * GOLDEN
            at = np.int64(mixed >> sh)
            if (present[at] >> ((mixed >> sh_bit) & np.uint64(7))) & 1:
                prefetch(skeys, at)
                prefetch(saux, at)
            e = np.int64(entry[hint_slot[j]])
            hinted = (e & _PAGE_MASK) - 1
            if e != 0 and hinted < n_pages:
                prefetch(word, hinted)
                prefetch(written_before, hinted)
                prefetch(content_all, hinted)
        i = t - 16
        if i < start:
            continue
        page, h, c, key = cand[i], host[i], content[i], keys[i]
        hashed[h] += 1
        # The stable table (U64Map.get): a valid entry names a live frame of this host
        # holding the content.
        mixed = key * GOLDEN
        probe = np.int64(mixed >> sh)
        found = False
        f = np.int64(0)
        aux = np.uint64(0)
        if (present[probe] >> ((mixed >> sh_bit) & np.uint64(7))) & 1:
            while True:
                k = skeys[probe]
                if k == key:
                    found = True
                    f, aux = svals[probe], saux[probe]
                    break
                if k == 0:
                    break
                probe = (probe + 1) & s_mask
        lo = frame_offset[h]
        ok = (found and aux == c and refcount[f] > 0 and f >= lo and f < lo + n_frames[h])
        valid_s[i] = ok
        frame[i] = f
        # The hint slot: rehash the hinted page, where the key has no valid frame.
        e = np.int64(entry[hint_slot[i]])
        occupied = e != 0
        hit = False
        if not ok and not occupied:
            misses[h] += 1
        if not ok and occupied:
            hinted = (e & _PAGE_MASK) - 1
            alive = False
            if hinted < n_pages:
                if table_ok and hinted >= first:
                    chunk = min(int((hinted - first) >> shift_vm), n_chunks)
                    vm = base[chunk]
                    if hinted >= inner[chunk]:
                        vm += mult[chunk]
                else:
                    vm = np.searchsorted(vm_offset, hinted, side="right") - 1
                alive = (((np.int64(word[hinted]) >> _LOC_SHIFT) & 0xFF) == _PRIVATE
                         and ((np.int64(written_before[hinted]) - 1) & _TAG_BITS)
                         == (e >> _TAG_SHIFT)
                         and vm_host[vm] == h)
                if alive:
                    z = (content_all[hinted] ^ mix[vm]) + _G0
                    z = (z ^ (z >> _S30)) * _M1
                    z = (z ^ (z >> _S27)) * _M2
                    z = z ^ (z >> _S31)
                    hit = (z + _TWO if z < _TWO else z) == key
            if not alive:
                stale[h] += 1
            if hit:
                q[i] = hinted
                found_h[i] = True
                self_hint[i] = hinted == page
                valid_h[i] = hinted != page and content_all[hinted] == c
        if not hit:
            q[i] = page
            found_h[i] = False
            self_hint[i] = False
            valid_h[i] = False
        if found or hit:
            compares[h] += 1


def _groups_loop(cand: I64, host: I64, content: U64, keys: U64, valid_s: Bool, frame: I64,
                 hint_slot: I64, found_h: Bool, q: I64, self_hint: Bool, valid_h: Bool,
                 order: I64, starts: I64, lengths: I64, frame_of: I32, entry: Any,
                 written_before: I32, promote_page: I64, promote_key: U64,
                 promote_frame: I64, promote_content: U64, join_page: I64, join_frame: I64,
                 fresh: I64, seen_slot: I64, seen_at: I64, seen_was: Bool,
                 seen_overwrite: Bool, seen_shift: int, hint_hits: I64, hint_count: I64,
                 hint_overwrites: I64, sizes: I64) -> None:
    """Each group (in key order) decided as sharing._share's passes decide it; the hint
    table's clears and writes made, with their counters. `seen_*`: a map (slot + 1 -> its
    first fresh hint's position) of the slots fresh hints go to, each counted once as
    filled (empty after the clears) or overwritten (another key's hint was there).
    `sizes` gets (new shared frames, joins)."""
    n_promote, n_join, n_fresh = 0, 0, 0
    for g in range(starts.size):
        s, m = starts[g], lengths[g]
        first = order[s]
        h = host[first]
        stable = valid_s[first]
        hinted = False
        if not stable:
            for r in range(s, s + m):
                if valid_h[order[r]]:
                    hinted = True
                    break
        promote = not stable and (hinted or m >= 2)
        anchor = q[first] if hinted else cand[first]
        anchor_frame = frame[first]
        if promote:
            anchor_frame = np.int64(frame_of[anchor])
            promote_page[n_promote], promote_key[n_promote] = anchor, keys[first]
            promote_frame[n_promote], promote_content[n_promote] = anchor_frame, content[first]
            n_promote += 1
        if stable or promote:
            for r in range(s, s + m):
                member = cand[order[r]]
                if stable or member != anchor:
                    join_page[n_join], join_frame[n_join] = member, anchor_frame
                    n_join += 1
        if hinted and found_h[first]:
            hint_hits[h] += 1
        if promote and found_h[first]:
            entry[hint_slot[first]] = 0
            hint_count[h] -= 1
        if not stable and not hinted and m == 1 and not self_hint[first]:
            fresh[n_fresh] = first
            n_fresh += 1
    # The fresh hints' slots as the clears left them, before any of them is written.
    m_mask = seen_slot.size - 1
    for k in range(n_fresh):
        if k + 16 < n_fresh:  # a slot and page ahead, read here and in the last loop
            prefetch(entry, hint_slot[fresh[k + 16]])
            prefetch(written_before, cand[fresh[k + 16]])
        i = fresh[k]
        slot = hint_slot[i]
        at = np.int64((np.uint64(slot + 1) * GOLDEN) >> np.uint64(seen_shift))
        while seen_slot[at] != 0 and seen_slot[at] != slot + 1:
            at = (at + 1) & m_mask
        if seen_slot[at] == 0:
            seen_slot[at], seen_at[at] = slot + 1, k
            seen_was[at] = entry[slot] != 0
            seen_overwrite[at] = False
        if seen_was[at] and not found_h[i]:
            seen_overwrite[at] = True
    for u in range(seen_slot.size):
        if seen_slot[u] != 0:
            h = host[fresh[seen_at[u]]]
            if not seen_was[u]:
                hint_count[h] += 1
            elif seen_overwrite[u]:
                hint_overwrites[h] += 1
    for k in range(n_fresh):  # in order: of several for one slot, the last stays
        i = fresh[k]
        page = cand[i]
        tag = (np.int64(written_before[page]) - 1) & _TAG_BITS
        entry[hint_slot[i]] = (tag << _TAG_SHIFT) | (page + 1)
    sizes[0], sizes[1] = n_promote, n_join


def _front_samples() -> list[tuple[Any, ...]]:
    i64, u64, flags = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.bool_)
    one = np.zeros(1, np.int64)
    return [(i64, one, True, 0, 1, 1, one, one, one, one, np.zeros(1, np.uint64),
             np.zeros(1, np.uint64),
             np.zeros(1, np.uint16), np.zeros(1, np.int32), np.zeros(16, np.uint64),
             np.zeros(16, np.int64), np.zeros(16, np.uint64), np.zeros(16, np.uint8), 60,
             np.zeros(1, np.int32), one, one, np.zeros(16, np.uint32), one, one,
             i64, u64, u64, flags, i64, i64, flags, i64, flags, flags, one, one, one, one, 0,
             0)]


def _groups_samples() -> list[tuple[Any, ...]]:
    i64, u64, flags = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.bool_)
    one = np.zeros(1, np.int64)
    scratch = np.zeros(16, np.int64)
    return [(i64, i64, u64, u64, flags, i64, i64, flags, i64, flags, flags, i64, i64, i64,
             np.zeros(1, np.int32), np.zeros(16, np.uint32), np.zeros(1, np.int32), i64, u64,
             i64, u64, i64, i64, i64, scratch, scratch, np.zeros(16, np.bool_),
             np.zeros(16, np.bool_), 60, one, one, one, np.zeros(2, np.int64))]


_FRONT = Kernel(_front_loop, _front_samples)
_GROUPS = Kernel(_groups_loop, _groups_samples)


class Decided(NamedTuple):
    """What the two loops decided for a tick's candidates (esx_pass.decide), to be made
    in the world by `apply`: the per-host counters' increments (hashed, hint misses, stale
    hints, compares, hint hits, hints filled, hints overwritten), the new shared frames
    (anchor page, key, frame, content) and the pages that join a shared frame."""

    tallies: tuple[I64, ...]
    promote_page: I64
    promote_key: U64
    promote_frame: I64
    promote_content: U64
    join_page: I64
    join_frame: I64

    def apply(self, state: State) -> None:
        """The counters, the remaps (share_ops.promote and merge) and the stable table's
        new entries, in the calls and order the array passes make."""
        counters = state.sharing.hosts
        for name, tally in zip(_TALLIES, self.tallies, strict=True):
            counters[name] += tally
        share_ops.promote(state, self.promote_page, self.promote_key)
        share_ops.merge(state, self.join_page, self.join_frame)
        state.sharing.stable.put(self.promote_key, self.promote_frame, self.promote_content)


_TALLIES = ("hashed_tick", "hint_misses", "hint_stale", "compares_tick", "hint_hits",
            "hint_count", "hint_overwrites")


def share(state: State, cand: I64) -> None:
    """sharing._share for `cand` (private pages, ascending, distinct) with the two loops."""
    decide(state, cand).apply(state)


def decide(state: State, cand: I64) -> Decided:
    """The two loops over `cand` (private pages, ascending, distinct). They write only the
    hint table (its entries: the hints used, cleared and made) and arrays of their own;
    they read the pages, the VMs' hosts, the stable table and the frames' reference
    counts, of the candidates' hosts alone (a stable entry naming a frame of another host
    is not valid, whatever its count; a hinted page of a VM on another host is not
    alive, whatever its location). So the world outside the hint table is as it was until
    `apply`, and KSM's hosts may change theirs meanwhile (memory/sharing.py)."""
    p, sharing, vms = state.pages, state.sharing, state.vms
    stable, hints = sharing.stable, sharing.hints
    n = cand.size
    i64 = np.int64
    host, frame, hint_slot, q = (np.empty(n, i64) for _ in range(4))
    content, keys = np.empty(n, np.uint64), np.empty(n, np.uint64)
    valid_s, found_h, self_hint, valid_h = (np.empty(n, np.bool_) for _ in range(4))
    n_hosts = len(state.hosts)
    args = (cand, np.asarray(vms["page_offset"], i64), *vms.page_index().table(),
            np.asarray(vms["host"], i64), share_ops.vm_mix(state), p.content, p.word,
            p.written_before, stable.keys, stable.vals, stable.aux, stable.present,
            64 - (stable.capacity.bit_length() - 1), state.frames.refcount,
            np.asarray(state.hosts.frame_offset, i64), np.asarray(state.hosts.n_frames, i64),
            hints.entry, hints.offset, hints.size, host, content, keys, valid_s, frame,
            hint_slot, found_h, q, self_hint, valid_h)

    def front(lo: int, hi: int) -> tuple[I64, ...]:
        # The loop only reads the tables: pieces of the candidates are apart but for the
        # per-host counters, which each piece keeps its own of.
        tallies = tuple(np.zeros(n_hosts, i64) for _ in range(4))
        _FRONT(*args, *tallies, lo, hi)
        return tallies

    pieces = parallel.spread(
        front, parallel.even(n, max(kernels.MIN_SPLIT // _COST_OF_A_CANDIDATE, 1)))
    found = [np.sum([tallies[k] for _, tallies in pieces], axis=0) for k in range(4)]

    order, starts, lengths = group_by_key(keys)
    n_groups = starts.size
    promote_page, promote_frame = np.empty(n_groups, i64), np.empty(n_groups, i64)
    promote_key, promote_content = np.empty(n_groups, np.uint64), np.empty(n_groups, np.uint64)
    join_page, join_frame, fresh = np.empty(n, i64), np.empty(n, i64), np.empty(n, i64)
    seen = 1 << max(4, (2 * n).bit_length())
    hits, count, overwrites = (np.zeros(n_hosts, i64) for _ in range(3))
    sizes = np.zeros(2, i64)
    _GROUPS(cand, host, content, keys, valid_s, frame, hint_slot, found_h, q, self_hint,
            valid_h, order, starts, lengths, p.frame, hints.entry, p.written_before,
            promote_page, promote_key, promote_frame, promote_content, join_page, join_frame,
            fresh, np.zeros(seen, i64), np.empty(seen, i64), np.empty(seen, np.bool_),
            np.empty(seen, np.bool_), 64 - (seen.bit_length() - 1), hits, count, overwrites,
            sizes)
    n_promote, n_join = sizes.tolist()
    return Decided((*found, hits, count, overwrites), promote_page[:n_promote],
                   promote_key[:n_promote], promote_frame[:n_promote],
                   promote_content[:n_promote], join_page[:n_join], join_frame[:n_join])
