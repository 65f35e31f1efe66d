"""ksmd's cmp_and_merge_page for a pass's candidates, page after page, as one compiled
loop (engine/kernels.py): what ksm._scan_pass does in grouped array passes.

Each candidate (a private page handed over, ksm_front.py) in scan order, as ksmd goes:
- the stable-tree search walks its key's chain (entry 0 is the key, entry i its
  share_ops.chain_key): the first live KSM page of its content with room for another
  sharer takes it; a dead or absent entry ends the walk, and is the chain's free index;
- else a page changed since its last scan is only checksummed (volatile), and one never
  scanned before only remembered;
- else, with the chain not full, the unstable-tree search: a valid partner (a private
  page on the host of the same content and key) and the page become a new KSM page at the
  chain's free index (the partner's frame; it leaves the tree), else the page goes into
  the tree over whatever entry its key had.

The loop writes each host's unstable tree as it goes (so a page finds what the pages
before it made), the KSM pages' reference counts and the pages' locations; the KSM pages
it makes wait in a small map of their own (the stable tree is only read in the loop: two
threads share it) and go into the stable tree after. The remaps themselves (frames given
and freed, per-VM counts) are made after it by share_ops.merge and promote, in the calls
the array passes make: first the pages that joined KSM pages the chain had live before any
dead entry at the start of the pass, then the new KSM pages, then the pages that joined
the others. So the frames freed go onto the free stacks as the array passes put them, and
the two give the same world; only which slot a table entry sits in may differ (the loop
inserts one key at a time, the passes in batches), which no lookup's answer depends on
(Simulation.digest compares the tables by their entries).

Two outcomes of the array passes are kept where page by page would differ:
- a page that is itself the entry its key finds in the unstable tree (possible only when
  its VM's scan positions moved within one full scan) is that entry only: it stays in the
  tree, flagged, and is not searched again;
- an entry of the key no longer valid stays when two unchanged pages of the key pair up
  (the passes pair them without putting the first in the tree; the loop puts it in over
  the old entry, then puts the old entry back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.hash_probes import GOLDEN
from engine.hashtable import RegionMap
from engine.kernels import Kernel
from engine.memory import share_ops
from engine.memory.ksm_front import _G0, _M1, _M2, _S27, _S30, _S31, _TWO, Candidates, HostRuns
from engine.memory.share_ops import CHAIN_MIX
from engine.prefetch import prefetch
from engine.spec import SharingPolicy
from engine.state import I64, U8, U64, WORD_SHIFT, Bool, Loc, State

U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]

_EMPTY, _DELETED = np.uint64(0), np.uint64(1)  # hashtable.EMPTY and DELETED


def run_pass(state: State, policy: SharingPolicy, c: Candidates, runs: HostRuns,
             max_chain: int, unlimited: int,
             before_writes: Callable[[], None] = lambda: None) -> I64:
    """The pass over candidates `c` (host after host: `runs` of c.host); returns the
    unstable-tree searches per host. Hosts never meet in it (keys mix in the host, a
    host's KSM pages and tree are its own), so with enough pages two threads take pieces
    of whole hosts in turn (parallel.spread): every host's outcome is the same whichever
    thread has it, and the outputs are put together in host order."""
    sharing = state.sharing
    counters, n_hosts = sharing.hosts, len(state.hosts)
    trees, stable = sharing.unstable, sharing.stable
    assert isinstance(trees, RegionMap) and sharing.ksm_unstable is not None
    # Room first: each unchanged candidate puts at most one key in its host's tree, so no
    # region grows in the loop.
    new_in_host = runs.count(c.unchanged)  # a sum per run: a bincount took 0.4 ms
    short = np.flatnonzero((new_in_host > 0)
                           & (trees.used_in + new_in_host > trees.LOAD * trees.size))
    if short.size:
        trees.reserve(short, trees.live_in[short] + new_in_host[short])
    i64 = np.int64
    vol, searches = np.zeros(n_hosts, i64), np.zeros(n_hosts, i64)
    unstable_delta, unshared_delta = np.zeros(n_hosts, i64), np.zeros(n_hosts, i64)
    vms, p = state.vms, state.pages
    loc_shift = WORD_SHIFT["location"]
    shared_args = (
        c.pages, c.host, c.content, c.keys, c.unchanged, c.volatile,
        int(policy.ksm_max_page_sharing), bool(policy.ksm_use_zero_pages), unlimited,
        max_chain, stable.keys, stable.vals, stable.aux, stable.present,
        64 - (stable.capacity.bit_length() - 1), state.frames.refcount, p.frame, trees.rkeys,
        trees.rvals, np.asarray(trees.offset, i64), np.asarray(trees.size - 1, i64),
        np.asarray(trees.bits, np.uint64), trees.live_in, trees.used_in, p.word, p.content,
        np.asarray(vms["page_offset"], i64), np.asarray(vms["host"], i64),
        share_ops.vm_mix(state), loc_shift, 0xFFFF & ~(0xFF << loc_shift), int(Loc.PRIVATE),
        int(Loc.SHARED), sharing.ksm_unstable, vol, searches, unstable_delta, unshared_delta)

    def run(lo: int, hi: int) -> _Out:
        k = hi - lo
        new_bits = max(4, (2 * int(np.count_nonzero(c.unchanged[lo:hi]))).bit_length())
        walk_bits = max(4, (2 * k).bit_length())
        out = _Out(np.empty(k, i64), np.empty(k, i64), np.empty(k, np.bool_),
                   np.empty(k, i64), np.empty(k, np.uint64), np.empty(k, i64),
                   np.empty(k, np.uint64))
        sizes = np.zeros(2, i64)
        maps = _maps(new_bits, walk_bits, k)
        _PASS(*shared_args, lo, hi, *maps[:4], 64 - new_bits, *maps[4:6], 64 - walk_bits,
              maps[6], *out, sizes)
        j, m = sizes.tolist()
        return _Out(out.join_page[:j], out.join_frame[:j], out.join_first[:j],
                    out.made_page[:m], out.made_key[:m], out.made_frame[:m],
                    out.made_content[:m])

    outs = [out for _, out in parallel.spread(run, _host_bounds(runs))]
    got = _Out._make(np.concatenate(parts) for parts in zip(*outs, strict=True))
    before_writes()  # the loop wrote only this pass's hosts' pages, frames and trees
    # The new KSM pages' stable-tree entries (stable_tree_insert), at their chains' free
    # indices: a new key, or over the dead entry there.
    stable.put(got.made_key, got.made_frame, got.made_content)
    counters["volatile_this_scan"] += vol
    counters["unstable_count"] += unstable_delta
    counters["ksm_unshared"] += unshared_delta
    first = got.join_first
    share_ops.merge(state, got.join_page[first], got.join_frame[first], counted=True)
    share_ops.promote(state, got.made_page, got.made_key)
    later = ~first
    share_ops.merge(state, got.join_page[later], got.join_frame[later], counted=True)
    return searches


class _Out(NamedTuple):
    """A share of the pass's outcome: the pages that joined a KSM page (with its frame,
    and whether it was one the chain had live before any dead entry at the start), and the
    new KSM pages (the partner page, its stable key, frame and content)."""

    join_page: I64
    join_frame: I64
    join_first: Bool
    made_page: I64
    made_key: U64
    made_frame: I64
    made_content: U64


class _Maps(threading.local):
    """A thread's scratch maps for the pass's pieces, kept from piece to piece and tick to
    tick: zero again when a piece ends (the loop clears the slots it set), so no piece
    maps and zeroes fresh memory (some 8 MiB a tick on the data center, as np.zeros did)."""

    new: tuple[U64, I64, I64, U32] | None = None
    walked: tuple[U64, I64] | None = None
    undo: I64 | None = None


_MAPS = _Maps()


def _maps(new_bits: int, walk_bits: int, k: int) -> tuple[Any, ...]:
    """This thread's maps, 1 << new_bits and 1 << walk_bits slots, all empty, and room to
    note the slots a piece of k candidates sets (grown when a piece needs more)."""
    m = _MAPS
    if m.new is None or m.new[0].size < 1 << new_bits:
        size = 1 << new_bits
        m.new = (np.zeros(size, np.uint64), np.zeros(size, np.int64), np.zeros(size, np.int64),
                 np.zeros(size, np.uint32))
    if m.walked is None or m.walked[0].size < 1 << walk_bits:
        m.walked = (np.zeros(1 << walk_bits, np.uint64), np.zeros(1 << walk_bits, np.int64))
    if m.undo is None or m.undo.size < 3 * k:
        m.undo = np.zeros(3 * k, np.int64)
    n, w = 1 << new_bits, 1 << walk_bits
    return (*(a[:n] for a in m.new), *(a[:w] for a in m.walked), m.undo)


def _host_bounds(runs: HostRuns) -> list[int]:
    """Bounds of the pieces the candidates (host after host) are cut into for two threads
    (parallel.spread), each at a host's first and about as many candidates; [0, n] when
    they are not cut (too few, or one host)."""
    run_end = runs.bounds[runs.some + 1]  # each host's end
    return [0, *(int(run_end[b - 1]) for b in parallel.weighed(run_end, kernels.MIN_SPLIT)[1:])]


def _pass_loop(cand: I64, host: I64, content: U64, keys: U64, unchanged: Bool,
               volatile: Bool, max_sharing: int, zero_unlimited: bool, unlimited: int,
               max_chain: int, skeys: U64, svals: I64, saux: U64, present: U8, shift: int,
               refcount: I32, frame_of: I32, rkeys: U64, rvals: U32, roffset: I64,
               rmask: I64, rbits: U64, live_in: I64, used_in: I64, word: U16,
               content_all: U64, vm_offset: I64, vm_host: I64, mix: U64, loc_shift: int,
               keep_mask: int, private: int, shared: int, flagged: Bool, vol: I64,
               searches: I64, unstable_delta: I64, unshared_delta: I64, lo: int, hi: int,
               new_key: U64, new_frame: I64, stale_slot: I64, stale_page: U32, new_shift: int,
               walked_key: U64, walked_to: I64, walked_shift: int, undo: I64, join_page: I64,
               join_frame: I64, join_first: Bool, made_page: I64, made_key: U64,
               made_frame: I64, made_content: U64, sizes: I64) -> None:
    """run_pass's loop over candidates lo..hi-1 (whole hosts), its outputs from index 0.
    The stable tree is only read (the other thread's hosts read it too): the KSM pages made
    in this pass are kept in `new_key`/`new_frame`, an open-addressing map (stable key ->
    frame; 0 empty) the chain walks look in where the tree has no live entry, and put in
    the tree after. `stale_slot`/`stale_page`: a map (slot + 1 -> page; same size and hash)
    of the unstable-tree entries a page of this pass went in over, no longer valid: when
    that page then merges with a later one, the old entry is what its key keeps, as the
    array passes leave it (they pair the two pages without putting the first in the
    tree). `walked_key`/`walked_to`: where each key's last page left its chain walk.
    The three maps come empty and are left empty: `undo` notes each slot the loop sets in
    a key array (room for three a candidate), and they are cleared at the end.
    `sizes` gets (joins, new KSM pages)."""
    n_pages = content_all.size
    s_mask = skeys.size - 1
    sh = np.uint64(shift)
    sh_bit = np.uint64(shift - 3)
    m_mask = new_key.size - 1
    m_sh = np.uint64(new_shift)
    w_mask = walked_key.size - 1
    w_sh = np.uint64(walked_shift)
    as_shared = shared << loc_shift
    n_join, n_made, n_undo = 0, 0, 0
    for i in range(lo, hi):
        # The lines a candidate ahead will look up: its unstable-tree slot and stable
        # presence bit (16 ahead), then, where that bit is set, its stable slot (8 ahead,
        # the bit's line in by then). Lookups in turn miss the cache one at a time.
        j = i + 16
        if j < hi:
            ahead = keys[j] * GOLDEN
            at = roffset[host[j]] + np.int64(ahead >> (np.uint64(64) - rbits[host[j]]))
            prefetch(rkeys, at)
            prefetch(rvals, at)
            prefetch(present, np.int64(ahead >> sh))
        j = i + 8
        if j < hi:
            ahead = keys[j] * GOLDEN
            at = np.int64(ahead >> sh)
            if (present[at] >> ((ahead >> sh_bit) & np.uint64(7))) & 1:
                prefetch(skeys, at)
                prefetch(svals, at)
                prefetch(saux, at)
        page, h, c, key = cand[i], host[i], content[i], keys[i]
        if ((np.int64(word[page]) >> loc_shift) & 0xFF) != private:
            # Merged earlier in this pass, as the partner of a page before it.
            if volatile[i]:
                vol[h] += 1
            continue
        limit = unlimited if (zero_unlimited and c == 0) else max_sharing
        # stable_tree_search along the chain.
        free = max_chain
        first = True  # no entry walked so far is a KSM page made in this pass
        joined = False
        memo_at = np.int64(-1)
        free_key = key  # the stable key of the chain's free index, once found
        d = 0
        while d < max_chain:
            ck = key
            if d > 0:
                z = (key ^ (np.uint64(d) * CHAIN_MIX)) + _G0
                z = (z ^ (z >> _S30)) * _M1
                z = (z ^ (z >> _S27)) * _M2
                z = z ^ (z >> _S31)
                ck = z + _TWO if z < _TWO else z
            mixed = ck * GOLDEN
            probe = np.int64(mixed >> sh)
            live = False
            f = np.int64(0)
            if (present[probe] >> ((mixed >> sh_bit) & np.uint64(7))) & 1:
                while True:
                    k = skeys[probe]
                    if k == ck:
                        f = svals[probe]
                        live = saux[probe] == c and refcount[f] > 0
                        break
                    if k == _EMPTY:
                        break
                    probe = (probe + 1) & s_mask
            first_before = first
            if not live and n_made:  # a KSM page made in this pass, at this index?
                at = np.int64((ck * GOLDEN) >> m_sh)
                while new_key[at] != 0:
                    if new_key[at] == ck:
                        f = new_frame[at]
                        live = True
                        first = False
                        break
                    at = (at + 1) & m_mask
            if not live:
                free, free_key = d, ck
                break
            if refcount[f] < limit:
                refcount[f] += 1
                word[page] = (np.int64(word[page]) & keep_mask) | as_shared
                join_page[n_join], join_frame[n_join], join_first[n_join] = page, f, first
                n_join += 1
                joined = True
                if memo_at >= 0:  # the next page of the key starts here
                    walked_key[memo_at], walked_to[memo_at] = key, 2 * d + first_before
                break
            if d == 0:
                # Entry 0 is full: the pages of this key before this one walked the chain
                # already, and every entry they found full stays full (sharers are only
                # added in a pass): go on from where the last of them stopped.
                memo_at = np.int64((key * GOLDEN) >> w_sh)
                while walked_key[memo_at] != 0 and walked_key[memo_at] != key:
                    memo_at = (memo_at + 1) & w_mask
                if walked_key[memo_at] == key:
                    d = walked_to[memo_at] >> 1
                    first = (walked_to[memo_at] & 1) == 1
                    continue
                undo[n_undo] = memo_at  # an empty slot, set below whatever comes
                n_undo += 1
            d += 1
        if memo_at >= 0 and not joined:
            walked_key[memo_at], walked_to[memo_at] = key, 2 * free + first
        if joined:
            continue
        if not unchanged[i]:  # the checksum changed (or was never taken)
            if volatile[i]:
                vol[h] += 1
            continue
        if free >= max_chain:
            continue
        # unstable_tree_search_insert in the host's tree.
        r_lo, m = roffset[h], rmask[h]
        probe = r_lo + np.int64((key * GOLDEN) >> (np.uint64(64) - rbits[h]))
        slot = np.int64(-1)
        while True:
            k = rkeys[probe]
            if k == key:
                slot = probe
                break
            if k == _EMPTY:
                break
            probe = r_lo + ((probe - r_lo + 1) & m)
        if slot >= 0:
            q = np.int64(rvals[slot])
            if q == page:  # the entry itself, rescanned: it stays the entry only
                flagged[page] = True
                unshared_delta[h] += 1
                continue
            searches[h] += 1
            valid = False
            if q < n_pages:
                cq = content_all[q]
                if ((np.int64(word[q]) >> loc_shift) & 0xFF) == private and cq == c:
                    vm = np.searchsorted(vm_offset, q, side="right") - 1
                    if vm_host[vm] == h:
                        z = (cq ^ mix[vm]) + _G0
                        z = (z ^ (z >> _S30)) * _M1
                        z = (z ^ (z >> _S27)) * _M2
                        z = z ^ (z >> _S31)
                        if z < _TWO:
                            z += _TWO
                        valid = z == key
            if valid:
                # try_to_merge_two_pages; its stable_tree_insert at the free index is made
                # after the loop (the map holds it until then).
                sk = free_key
                fq = np.int64(frame_of[q])
                at = np.int64((sk * GOLDEN) >> m_sh)
                while new_key[at] != 0:
                    at = (at + 1) & m_mask
                new_key[at], new_frame[at] = sk, fq
                undo[n_undo] = -1 - at  # a new KSM page's slot: -1 - slot
                n_undo += 1
                made_page[n_made], made_key[n_made] = q, sk
                made_frame[n_made], made_content[n_made] = fq, c
                n_made += 1
                word[q] = (np.int64(word[q]) & keep_mask) | as_shared
                word[page] = (np.int64(word[page]) & keep_mask) | as_shared
                refcount[fq] += 1
                join_page[n_join], join_frame[n_join], join_first[n_join] = page, fq, False
                n_join += 1
                # The partner leaves the unstable tree; if it went in over an entry no
                # longer valid in this pass, that entry is back.
                at = np.int64((np.uint64(slot + 1) * GOLDEN) >> m_sh)
                while stale_slot[at] != 0 and stale_slot[at] != slot + 1:
                    at = (at + 1) & m_mask
                if stale_slot[at] == slot + 1:
                    rvals[slot] = stale_page[at]
                else:
                    rkeys[slot] = _DELETED
                    live_in[h] -= 1
                    unstable_delta[h] -= 1
                if flagged[q]:
                    flagged[q] = False
                    unshared_delta[h] -= 1
                continue
            at = np.int64((np.uint64(slot + 1) * GOLDEN) >> m_sh)
            while stale_slot[at] != 0 and stale_slot[at] != slot + 1:
                at = (at + 1) & m_mask
            if stale_slot[at] == 0:
                undo[n_undo] = at + w_mask + 1  # a stale entry's slot: past the walked map
                n_undo += 1
            stale_slot[at], stale_page[at] = slot + 1, rvals[slot]
            rvals[slot] = np.uint32(page)  # over an entry of the key no longer valid
        else:
            searches[h] += 1
            rkeys[probe] = key
            rvals[probe] = np.uint32(page)
            live_in[h] += 1
            used_in[h] += 1
            unstable_delta[h] += 1
        flagged[page] = True
        unshared_delta[h] += 1
    # Empty again for the thread's next piece.
    for u in range(n_undo):
        at = undo[u]
        if at < 0:
            new_key[-1 - at] = 0
        elif at > w_mask:
            stale_slot[at - w_mask - 1] = 0
        else:
            walked_key[at] = 0
    sizes[0], sizes[1] = n_join, n_made


def _pass_samples() -> list[tuple[Any, ...]]:
    i64, u64, flags = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.bool_)
    one_i64, one_u64 = np.zeros(1, np.int64), np.zeros(1, np.uint64)
    loc_shift = WORD_SHIFT["location"]
    return [(i64, i64, u64, u64, flags, flags, 256, True, 1 << 60, 64, np.zeros(16, np.uint64),
             np.zeros(16, np.int64), np.zeros(16, np.uint64), np.zeros(16, np.uint8), 60,
             np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(16, np.uint64),
             np.zeros(16, np.uint32), one_i64, one_i64, one_u64, one_i64, one_i64,
             np.zeros(1, np.uint16), one_u64, one_i64, one_i64, one_u64, loc_shift,
             0xFFFF & ~(0xFF << loc_shift), int(Loc.PRIVATE), int(Loc.SHARED),
             np.zeros(1, np.bool_), one_i64, one_i64, one_i64, one_i64, 0, 0,
             np.zeros(16, np.uint64), np.zeros(16, np.int64), np.zeros(16, np.int64),
             np.zeros(16, np.uint32), 60, np.zeros(16, np.uint64), np.zeros(16, np.int64), 60,
             np.zeros(48, np.int64), i64, i64, flags, i64, u64, i64, u64, np.zeros(2, np.int64))]


_PASS = Kernel(_pass_loop, _pass_samples)
