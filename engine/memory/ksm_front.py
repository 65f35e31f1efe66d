"""The first step of ksmd's cmp_and_merge_page for a pass's pages (ksm._scan_pass): as
numpy passes over the list of pages a tick's batches hand over (front), or, compiled
(engine/kernels.py), in the batches' own walk (batch_candidates); the two agree bit for
bit. The compiled walk counts each position against the batch's budget, visits it and
takes it through this step at once, in pieces of hosts the two threads take in turn:
no walk goes first to find where the batches end, and no list of the pages handed over
is written by one loop and read back by the next. On the data center, over 1,800 ticks
side by side: the sharing phase 6.88 ms against 7.73 with a reach walk first, and that
7.70 against 7.84 with the list between two walks.

Each page handed over, in scan order: a page no longer mapped loses its rmap_item (and
with it its smart scan age); a page seen for the first time gets one; a page left in an
unstable tree by its last scan leaves it (a revisited private page, or a freed one); a
KSM page is only marked scanned. A private page is a candidate: its content is read and
hashed into its key, and it is unchanged if not written since its last scan (the
checksum test), else volatile when it had been scanned before.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.hashing import (
    SPLITMIX_ADD,
    SPLITMIX_M1,
    SPLITMIX_M2,
    SPLITMIX_S1,
    SPLITMIX_S2,
    SPLITMIX_S3,
)
from engine.kernels import Kernel
from engine.memory import ksm_scan, share_ops
from engine.state import I64, U8, U64, Bool, Loc, State

I32 = npt.NDArray[np.int32]


class Candidates(NamedTuple):
    """The pass's private pages (in pass order), their hosts, contents and keys, and
    which are unchanged since their last scan or volatile (changed since)."""

    pages: I64
    host: I64
    content: U64
    keys: U64
    unchanged: Bool
    volatile: Bool


def batch_candidates(state: State, layout: ksm_scan.Layout, hosts: I64, start: I64,
                     remaining: I64, budget: I64,
                     smart: bool) -> tuple[I64, I64, Bool, Candidates]:
    """ksm_scan.batches and front() in one walk, compiled: (positions covered, pages
    counted, whether each batch ends on a position not counted, the candidates). Each
    position is visited as the batch reaches it and, unless smart scan skips it, goes
    through the first step at once: no list of the pages handed over is written and read
    back (162,000 a tick on the data center, 25 bytes each), and no walk goes first to
    find where the batches end. A host's candidates are at most its budget (each is a
    page counted against it)."""
    sharing = state.sharing
    assert sharing.ksm_scanned_at is not None and sharing.ksm_unstable is not None
    i64, n_hosts, m = np.int64, len(state.hosts), hosts.size
    room = np.maximum(np.minimum(np.asarray(budget, i64), np.asarray(remaining, i64)), 0)
    at = np.cumsum(room) - room
    total = int(room.sum())
    out: tuple[Any, ...] = (np.empty(total, i64), np.empty(total, i64),
                            np.empty(total, np.uint64), np.empty(total, np.uint64),
                            np.empty(total, np.bool_), np.empty(total, np.bool_))
    n, used, trailing = np.zeros(m, i64), np.zeros(m, i64), np.zeros(m, np.bool_)
    counts = [np.zeros(n_hosts, i64) for _ in range(4)]  # skipped, unshared, rmap, unflagged
    ages = sharing.ksm_age
    args = (*ksm_scan.walk_args(state, layout, hosts, start, smart),
            np.asarray(remaining, i64), np.asarray(budget, i64), np.asarray(layout.vm, i64),
            sharing.ksm_unstable, sharing.ksm_scanned_at,
            ksm_scan.NO_AGES if ages is None else ages, ages is not None, state.pages.content,
            state.pages.written_before, share_ops.vm_mix(state), state.tick + 1,
            int(Loc.SHARED), at, *out, n, used, trailing, *counts)
    # Pieces of hosts, each about as many pages to count, that the two threads take in
    # turn: the helper joins in as soon as it is free (ESX's decisions may hold it).
    bounds = parallel.weighed(np.cumsum(room), kernels.MIN_SPLIT)
    k = 0
    for lo, got in parallel.spread(lambda lo, hi: int(_BATCH_FRONT(*args, lo, hi)), bounds):
        src = int(at[lo]) if got else k  # a piece's candidates moved down after the last's
        if src != k:
            for a in out:
                a[k:k + got] = a[src:src + got]
        k += got
    skipped, unshared, rmap_delta, unflagged = counts
    counters = sharing.hosts
    counters["ksm_pages_skipped"] += skipped
    counters["ksm_unshared"] -= unshared + unflagged
    counters["ksm_rmap_items"] += rmap_delta
    cand, host, content, keys, unchanged, volatile = (a[:k] for a in out)
    return n, used, trailing, Candidates(cand, host, content, keys, unchanged, volatile)


def front(state: State, pages: I64, page_host: I64, page_vm: I64, loc: U8) -> Candidates:
    """The rmap bookkeeping of a pass's pages (counters and per-page marks updated) and
    its candidates, in numpy passes (compiled, batch_candidates does it in the walk)."""
    return _front_numpy(state, pages, page_host, page_vm, loc)


class HostRuns:
    """Per-host counts over a pass's arrays, which hold their hosts' pages host after host.

    A count is a segment sum over each host's run (np.add.reduceat over the mask's bytes),
    not a bincount of a host array: on 100 k pages several times cheaper, and a pass makes
    a handful of them."""

    def __init__(self, host_ascending: I64, n_hosts: int) -> None:
        self.bounds = np.searchsorted(host_ascending, np.arange(n_hosts + 1))
        self.some = np.flatnonzero(self.bounds[1:] > self.bounds[:-1])  # hosts with a run

    def count(self, mask: Bool) -> I64:
        """Per host, the positions of its run where `mask` is set."""
        out = np.zeros(self.bounds.size - 1, np.int64)
        if self.some.size:  # empty runs lie between the others: each sum stops at the next
            out[self.some] = np.add.reduceat(mask.view(np.uint8), self.bounds[self.some],
                                             dtype=np.int64)
        return out

    def count_at(self, at: I64) -> I64:
        """Per host, the positions in `at` (ascending) that lie in its run."""
        return np.diff(np.searchsorted(at, self.bounds))


def _front_numpy(state: State, pages: I64, page_host: I64, page_vm: I64,
                 loc: U8) -> Candidates:
    p, sharing = state.pages, state.sharing
    counters, n_hosts = sharing.hosts, len(state.hosts)
    scanned_at, flagged = sharing.ksm_scanned_at, sharing.ksm_unstable
    assert scanned_at is not None and flagged is not None
    is_cand = loc == Loc.PRIVATE
    is_shared = loc == Loc.SHARED
    resident = is_cand | is_shared
    seen_at = np.take(scanned_at, pages) - 1  # the tick, -1 never
    was_flagged = np.take(flagged, pages)
    tracked = seen_at >= 0
    gone_mask = tracked & ~resident  # no longer mapped: its rmap_item is freed
    # Selections by index (flatnonzero, then take): indexing by a boolean mask that is
    # neither mostly true nor mostly false costs several times more on 100k pages.
    gone = np.flatnonzero(gone_mask)
    # rmap_items: + new ones, - freed ones; pages_unshared: - freed or revisited ones (a
    # revisited page leaves the unstable tree it was left in, remove_rmap_item_from_tree).
    runs = HostRuns(page_host, n_hosts)  # the pass holds its pages host by host
    counters["ksm_rmap_items"] += runs.count(resident & ~tracked) - runs.count_at(gone)
    unflag = np.flatnonzero(was_flagged & (gone_mask | is_cand))
    counters["ksm_unshared"] -= runs.count_at(unflag)
    scanned_at[pages[gone]] = 0
    if sharing.ksm_age is not None:
        sharing.ksm_age[pages[gone]] = 0  # its rmap_item goes, and with it its age
    flagged[pages[unflag]] = False
    scanned_at[pages[np.flatnonzero(is_shared)]] = state.tick + 1
    at_cand = np.flatnonzero(is_cand)
    cand = pages[at_cand]
    content = np.take(p.content, cand)
    keys = share_ops.content_keys(state, content, page_vm[at_cand])
    prev = seen_at[at_cand]
    unchanged = (prev >= 0) & (np.take(p.written_before, cand) <= prev + 1)
    volatile = (prev >= 0) & ~unchanged
    scanned_at[cand] = state.tick + 1
    return Candidates(cand, page_host[at_cand], content, keys, unchanged, volatile)


# splitmix64's constants (engine/hashing.py), by the names the loops here use
_G0, _M1, _M2 = SPLITMIX_ADD, SPLITMIX_M1, SPLITMIX_M2
_S30, _S27, _S31 = SPLITMIX_S1, SPLITMIX_S2, SPLITMIX_S3
_TWO = np.uint64(2)


def _batch_front_loop(word: npt.NDArray[np.uint16], byte_all: U8, skips: Bool,
                      host_first: I64, vm_start: I64, vm_end: I64, vm_offset: I64,
                      hosts: I64, start: I64, smart: bool, loc_shift: int, private: int,
                      after: U8, remaining: I64, budget: I64, vm_index: I64, flagged: Bool,
                      scanned_at: I32, ages: U8, has_ages: bool, content_all: U64,
                      written_before: I32, mix: U64, scanned_now: int, shared: int, at: I64,
                      cand: I64, host: I64, content: U64, keys: U64, unchanged: Bool,
                      volatile: Bool, n: I64, used: I64, trailing: Bool, skipped: I64,
                      unshared: I64, rmap_delta: I64, unflagged: I64, first: int,
                      stop_host: int) -> int:
    """The batches of hosts first..stop_host-1, each position as ksm_scan.reach counts it
    against the budget, visited as visit() does and, unless skipped, given the first step
    as _front_numpy gives it; per page these touch only that page's marks, in the order
    the passes would. Each batch's positions covered, pages counted and whether it ends
    on a position not counted go to n, used, trailing; its candidates into the outputs
    from at[first] on, their count returned."""
    k0 = at[first] if first < stop_host else 0
    k = k0
    for i in range(first, stop_host):
        want = budget[i]
        if want <= 0:
            continue
        h = hosts[i]
        pos, stop = start[i], start[i] + remaining[i]
        j = host_first[h]
        got, counted = 0, 1
        n_skipped, n_unshared, n_rmap, n_unflagged = 0, 0, 0, 0
        while pos < stop and got < want:
            while vm_end[j] <= pos:
                j += 1
            base, vm = vm_offset[j] - vm_start[j], vm_index[j]
            end = min(stop, vm_end[j])
            while pos < end:
                page = base + pos
                pos += 1
                where = (word[page] >> loc_shift) & 0xFF
                is_cand = where == private
                resident = is_cand or where == shared
                counted = int(resident)
                if smart and is_cand:
                    byte = byte_all[page]
                    byte_all[page] = after[byte]
                    if skips[byte]:
                        counted = 0
                        n_skipped += 1
                        if flagged[page]:
                            flagged[page] = False
                            n_unshared += 1
                        continue
                got += counted
                seen = scanned_at[page] - 1
                tracked = seen >= 0
                gone = tracked and not resident
                if resident and not tracked:
                    n_rmap += 1
                if gone:
                    n_rmap -= 1
                    scanned_at[page] = 0
                    if has_ages:
                        ages[page] = 0
                if flagged[page] and (gone or is_cand):
                    n_unflagged += 1
                    flagged[page] = False
                if resident:
                    scanned_at[page] = scanned_now
                if is_cand:
                    c = content_all[page]
                    z = (c ^ mix[vm]) + _G0
                    z = (z ^ (z >> _S30)) * _M1
                    z = (z ^ (z >> _S27)) * _M2
                    z = z ^ (z >> _S31)
                    cand[k], host[k], content[k] = page, h, c
                    keys[k] = z + _TWO if z < _TWO else z
                    unchanged[k] = tracked and written_before[page] <= seen + 1
                    volatile[k] = tracked and not unchanged[k]
                    k += 1
                if got == want:
                    break
        n[i], used[i] = pos - start[i], got
        trailing[i] = got < want and counted == 0
        skipped[h] += n_skipped
        unshared[h] += n_unshared
        rmap_delta[h] += n_rmap
        unflagged[h] += n_unflagged
    return k - k0


def _batch_front_samples() -> list[tuple[Any, ...]]:
    none, i64 = np.zeros(0, np.int64), np.zeros(1, np.int64)
    u64, flags = np.zeros(0, np.uint64), np.zeros(0, np.bool_)
    return [(np.zeros(1, np.uint16), np.zeros(1, np.uint8), np.zeros(256, np.bool_), i64, i64,
             i64, i64, none, none, True, 0, int(Loc.PRIVATE), np.zeros(256, np.uint8), none,
             none, none, np.zeros(1, np.bool_), np.zeros(1, np.int32),
             np.zeros(1, np.uint8), False, np.zeros(1, np.uint64), np.zeros(1, np.int32),
             np.zeros(1, np.uint64), 1, int(Loc.SHARED), none, none, none, u64, u64, flags,
             flags, none, none, flags, i64, i64, i64, i64, 0, 0)]


_BATCH_FRONT = Kernel(_batch_front_loop, _batch_front_samples)
