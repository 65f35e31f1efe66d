"""Linux KSM (mm/ksm.c) as the alternative sharing design.

ksmd walks each host's guest pages in order, `pages_to_scan` every `sleep_millisecs`.
For each page: search the stable tree (merged, write-protected KSM pages) and merge on a
match; otherwise compare the page's checksum with the one from its previous scan: changed
(or never seen) means volatile, remember and skip; unchanged, search the unstable tree
(pages seen this full scan) and on a match merge both into a new KSM page, else insert.
The unstable tree is rebuilt after every full scan, so a fresh identical pair merges no
earlier than the second full scan. A KSM page takes at most `max_page_sharing` sharers;
further ones get a duplicate KSM page of the same content (a chain).

The trees are hash maps keyed by content (observably the same: what merges when, and the
statistics); the "checksum unchanged" test is "not written since the last scan". The
CPU cost model charges one checksum per scanned page and log2(tree size) compares per
tree search.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import runs
from engine.hashing import splitmix64
from engine.hashtable import fix_key
from engine.memory import share_ops
from engine.memory.share_ops import chain_key, group_by_key
from engine.spec import SharingPolicy
from engine.state import I64, U64, Loc, State
from engine.world import World

KSM = 2
_GEN_BITS = 40
_PAGE_MASK = (1 << _GEN_BITS) - 1
_MAX_CHAIN = 64


def run_ksm(world: World) -> None:
    state = world.state
    sharing = state.sharing
    hosts = sharing.hosts
    active = np.flatnonzero((hosts["mode"] == KSM) & state.hosts.up)
    if active.size == 0:
        return
    if sharing.ksm_scanned_at is None:
        sharing.ksm_scanned_at = np.full(len(state.pages), -1, np.int32)
    policy = world.spec.policy.sharing
    rate = policy.ksm_pages_to_scan / max(policy.ksm_sleep, 1e-6)
    for h in active.tolist():
        hosts["ksm_credit"][h] += rate * state.tick_s
        budget = int(hosts["ksm_credit"][h])
        hosts["ksm_credit"][h] -= budget
        _scan_host(state, policy, h, budget)


def _scan_host(state: State, policy: SharingPolicy, h: int, budget: int) -> None:
    vms, hosts = state.vms, state.sharing.hosts
    mine = np.flatnonzero(vms["host"] == h)
    sizes = vms["n_pages"][mine]
    total = int(sizes.sum())
    if total == 0:
        return
    ends = np.cumsum(sizes)
    while budget > 0:
        cursor = int(hosts["ksm_cursor"][h]) % total
        n = min(budget, total - cursor)
        pos = np.arange(cursor, cursor + n, dtype=np.int64)
        k = np.searchsorted(ends, pos, side="right")
        pages = vms["page_offset"][mine][k] + pos - (ends[k] - sizes[k])
        _scan_batch(state, policy, h, pages)
        budget -= n
        hosts["ksm_cursor"][h] = cursor + n
        if cursor + n == total:  # a full scan ends: the unstable tree starts over
            hosts["ksm_cursor"][h] = 0
            hosts["full_scans"][h] += 1
            hosts["ksm_gen"][h] += 1
            hosts["volatile_last_scan"][h] = hosts["volatile_this_scan"][h]
            hosts["volatile_this_scan"][h] = 0
            hosts["unstable_count"][h] = 0


def _tree_compares(n_lookups: int, tree_size: int) -> int:
    return n_lookups * max(1, int(np.ceil(np.log2(tree_size + 1))))


def _stable_search(state: State, keys: U64, content: U64,
                   limit: I64) -> tuple[I64, I64]:
    """(frame with room, -1 if none; first free chain index) for each key."""
    sharing, refcount = state.sharing, state.frames.refcount
    frame = np.full(keys.size, -1, np.int64)
    free_index = np.zeros(keys.size, np.int64)
    pending = np.arange(keys.size)
    for d in range(_MAX_CHAIN):
        if pending.size == 0:
            break
        chained = chain_key(keys[pending], d)
        found, fr, aux = sharing.stable.get(chained)
        fr_ok = np.where(found, fr, 0)
        valid = (found & (aux == content[pending]) & (sharing.frame_key[fr_ok] == chained)
                 & (refcount[fr_ok] > 0))
        room = valid & (refcount[fr_ok] < limit[pending])
        frame[pending[room]] = fr_ok[room]
        free_index[pending[~valid]] = d
        pending = pending[valid & ~room]
    free_index[pending] = _MAX_CHAIN  # chain exhausted: these pages cannot merge now
    return frame, free_index


def _scan_batch(state: State, policy: SharingPolicy, h: int, pages: I64) -> None:
    p, sharing = state.pages, state.sharing
    counters = sharing.hosts
    cand = pages[p.location[pages] == Loc.PRIVATE]
    if cand.size == 0:
        return
    counters["hashed_tick"][h] += cand.size
    vm = state.vms.vm_of_pages(cand)
    keys = share_ops.sharing_keys(state, cand, vm)
    content = p.content[cand]
    unlimited = np.iinfo(np.int64).max
    limit = np.full(cand.size, policy.ksm_max_page_sharing, np.int64)
    if policy.ksm_use_zero_pages:
        limit[content == 0] = unlimited  # merged with the zero page, which has no limit

    frame, free_index = _stable_search(state, keys, content, limit)
    counters["compares_tick"][h] += _tree_compares(cand.size, int(counters["shared_frames"][h]))
    joins = frame >= 0
    if joins.any():
        # Several pages of one batch may target one KSM page: keep within its limit.
        fr = frame[joins]
        order = np.argsort(fr, kind="stable")
        _, starts, lengths = runs(fr[order])
        rank = np.empty(fr.size, np.int64)
        rank[order] = np.arange(fr.size) - np.repeat(starts, lengths)
        fits = rank < (limit[joins] - state.frames.refcount[fr])
        joined = np.flatnonzero(joins)[fits]
        share_ops.merge(state, cand[joined], frame[joined])
        joins = np.zeros(cand.size, np.bool_)
        joins[joined] = True

    scanned_at = sharing.ksm_scanned_at
    assert scanned_at is not None
    rest = np.flatnonzero(~joins)
    prev = scanned_at[cand[rest]]
    unchanged = (prev >= 0) & (p.written_at[cand[rest]] <= prev)
    scanned_at[cand] = state.tick
    counters["volatile_this_scan"][h] += int(((prev >= 0) & ~unchanged).sum())
    rest = rest[unchanged & (free_index[rest] < _MAX_CHAIN)]
    if rest.size:
        _unstable(state, policy, h, cand[rest], keys[rest], content[rest], free_index[rest])


def _unstable_keys(keys: U64, gen: int) -> U64:
    return fix_key(splitmix64(keys ^ np.uint64((gen + 1) * 0x9E3779B97F4A7C15 % 2**64)))


def _unstable(state: State, policy: SharingPolicy, h: int, cand: I64, keys: U64,
              content: U64, free_index: I64) -> None:
    p, sharing = state.pages, state.sharing
    counters = sharing.hosts
    gen = int(counters["ksm_gen"][h])
    ukeys = _unstable_keys(keys, gen)
    found, val, aux = sharing.unstable.get(ukeys)
    counters["compares_tick"][h] += _tree_compares(cand.size, int(counters["unstable_count"][h]))
    q = np.where(found, val & _PAGE_MASK, cand)
    q_vm = state.vms.vm_of_pages(q)
    valid = (found & ((val >> _GEN_BITS) == gen) & (q != cand)
             & (p.location[q] == Loc.PRIVATE) & (p.content[q] == aux) & (aux == content)
             & (state.vms["host"][q_vm] == h)
             & (share_ops.sharing_keys(state, q, q_vm) == keys))

    order, starts, lengths = group_by_key(keys)
    first = order[starts]
    group = np.repeat(np.arange(starts.size), lengths)
    g_pair = np.add.reduceat(valid[order], starts) > 0
    g_new = ~g_pair & (lengths >= 2)
    g_single = ~g_pair & (lengths == 1)
    anchor_page = np.where(g_pair, q[first], cand[first])
    merging = g_pair | g_new
    stable_keys = chain_key(keys[first][merging], free_index[first][merging])
    share_ops.promote(state, anchor_page[merging], stable_keys)
    anchor_frame = p.frame[anchor_page].astype(np.int64)

    members = cand[order]
    rank = np.arange(members.size) - np.repeat(starts, lengths)
    joins = merging[group] & (members != anchor_page[group])
    joins &= rank < policy.ksm_max_page_sharing - 1  # the anchor is the first sharer
    share_ops.merge(state, members[joins], anchor_frame[group][joins])
    sharing.stable.put(stable_keys, anchor_frame[merging], content[first][merging])

    consumed = g_pair & found[first]
    sharing.unstable.delete(ukeys[first][consumed])
    counters["unstable_count"][h] -= int(consumed.sum())
    insert = g_single & ~(found[first] & (q[first] == cand[first]) & (aux[first] == content[first]))
    sharing.unstable.put(ukeys[first][insert],
                         cand[first][insert] | np.int64(gen << _GEN_BITS),
                         content[first][insert])
    fresh = insert & ~(found[first] & ((val[first] >> _GEN_BITS) == gen))
    counters["unstable_count"][h] += int(fresh.sum())
    if len(sharing.unstable) > 4 * max(int(counters["unstable_count"].sum()), 1024):
        _drop_old_generations(state)


def _drop_old_generations(state: State) -> None:
    """Entries of earlier generations are unreachable; reclaim their slots."""
    sharing = state.sharing
    _, vals, _ = sharing.unstable.items()
    pages = vals & _PAGE_MASK
    host = state.vms["host"][state.vms.vm_of_pages(pages)]
    current = np.where(host >= 0, sharing.hosts["ksm_gen"][np.maximum(host, 0)], -1)
    sharing.unstable.keep_only((vals >> _GEN_BITS) == current)
