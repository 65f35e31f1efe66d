"""Linux KSM (mm/ksm.c) as the alternative sharing design.

ksmd walks each host's guest pages in order, a batch of `pages_to_scan` every
`sleep_millisecs`; a batch ends early at the end of a full scan (ksm_do_scan stops when
the scan wraps). For each page: search the stable tree (merged, write-protected KSM pages)
and merge on a match; otherwise compare the page's checksum with the one from its previous
scan: changed (or never seen) means volatile, remember and skip; unchanged, search the
unstable tree (pages seen this full scan) and on a match merge both into a new KSM page,
else insert. The unstable tree is rebuilt after every full scan, so a fresh identical pair
merges during the second full scan. A KSM page takes at most `max_page_sharing` sharers
(the page that became it counts as the first); further ones join a duplicate KSM page of
the same content (a chain), in the same batch: a batch processes its pages together, but
merges exactly as ksmd would one page after the other, whatever the batch size.

Counters keep sysfs semantics (/sys/kernel/mm/ksm): pages_shared (KSM pages),
pages_sharing (further mappings of them), pages_unshared (tracked pages left in an
unstable tree by their last scan, until ksmd visits them again), pages_volatile
(rmap_items minus the three), full_scans. A page gets an rmap_item at its first scan and
loses it when ksmd finds it no longer mapped (swapped, ballooned) or the VM leaves.

The trees are hash maps keyed by content (observably the same: what merges when, and the
statistics); the "checksum unchanged" test is "not written since the last scan". The
CPU cost model charges one checksum per scanned page and log2(tree size) compares per
tree search.
"""

from __future__ import annotations

import numpy as np

from engine.hashing import splitmix64
from engine.hashtable import fix_key
from engine.memory import share_ops
from engine.memory.share_ops import chain_key, group_by_key
from engine.spec import SharingPolicy
from engine.state import I64, U64, Bool, Loc, State
from engine.world import World

KSM = 2
_GEN_BITS = 40
_PAGE_MASK = (1 << _GEN_BITS) - 1
_MAX_CHAIN = 64
_UNLIMITED = np.iinfo(np.int64).max // 4


def run_ksm(world: World) -> None:
    state = world.state
    sharing = state.sharing
    hosts = sharing.hosts
    active = np.flatnonzero((hosts["mode"] == KSM) & state.hosts.up)
    if active.size == 0:
        return
    n = len(state.pages)
    if sharing.ksm_scanned_at is None:
        sharing.ksm_scanned_at = np.full(n, -1, np.int32)
    if sharing.ksm_unstable is None:
        sharing.ksm_unstable = np.zeros(n, np.bool_)
    policy = world.spec.policy.sharing
    if policy.ksm_pages_to_scan == 0:
        return
    for h in active.tolist():
        hosts["ksm_credit"][h] += state.tick_s / max(policy.ksm_sleep, 1e-6)
        batches = int(hosts["ksm_credit"][h])
        hosts["ksm_credit"][h] -= batches
        _scan_host(state, policy, h, batches)


def _scan_host(state: State, policy: SharingPolicy, h: int, batches: int) -> None:
    vms, hosts = state.vms, state.sharing.hosts
    mine = np.flatnonzero(vms["host"] == h)
    sizes = vms["n_pages"][mine]
    total = int(sizes.sum())
    if total == 0:
        return
    ends = np.cumsum(sizes)
    per = policy.ksm_pages_to_scan
    while batches > 0:
        cursor = int(hosts["ksm_cursor"][h]) % total
        to_end = -(-(total - cursor) // per)  # batches left in this full scan
        wraps = to_end <= batches
        n = total - cursor if wraps else batches * per
        batches -= to_end if wraps else batches
        pos = np.arange(cursor, cursor + n, dtype=np.int64)
        k = np.searchsorted(ends, pos, side="right")
        pages = vms["page_offset"][mine][k] + pos - (ends[k] - sizes[k])
        _scan_batch(state, policy, h, pages)
        hosts["ksm_cursor"][h] = cursor + n
        if wraps:  # a full scan ends: the unstable tree starts over
            hosts["ksm_cursor"][h] = 0
            hosts["full_scans"][h] += 1
            hosts["ksm_gen"][h] += 1
            hosts["volatile_last_scan"][h] = hosts["volatile_this_scan"][h]
            hosts["volatile_this_scan"][h] = 0
            hosts["unstable_count"][h] = 0


def forget(state: State, pages: slice, h: int) -> None:
    """The pages leave host h's ksmd (their VM stopped or moved): rmap_items go."""
    sharing = state.sharing
    scanned, unstable = sharing.ksm_scanned_at, sharing.ksm_unstable
    if scanned is None or unstable is None:
        return
    if h >= 0:
        sharing.hosts["ksm_rmap_items"][h] -= int(np.count_nonzero(scanned[pages] >= 0))
        sharing.hosts["ksm_unshared"][h] -= int(np.count_nonzero(unstable[pages]))
    scanned[pages] = -1
    unstable[pages] = False


def _tree_compares(n_lookups: int, tree_size: int) -> int:
    return n_lookups * max(1, int(np.ceil(np.log2(tree_size + 1))))


def _rank_by_key(keys: U64) -> I64:
    """0, 1, 2... among entries with the same key, in index order."""
    order, starts, lengths = group_by_key(keys)
    rank = np.empty(keys.size, np.int64)
    rank[order] = np.arange(keys.size) - np.repeat(starts, lengths)
    return rank


def _stable_join(state: State, keys: U64, content: U64, limit: I64) -> tuple[I64, I64]:
    """(KSM frame each page joins or -1, first free chain index), filling the chain's KSM
    pages in order as far as they have room."""
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
        room = np.where(valid, limit[pending] - refcount[fr_ok], 0)
        take = valid & (_rank_by_key(chained) < room)
        frame[pending[take]] = fr_ok[take]
        free_index[pending[~valid]] = d
        pending = pending[valid & ~take]
    free_index[pending] = _MAX_CHAIN  # chain exhausted: these pages cannot merge now
    return frame, free_index


def _scan_batch(state: State, policy: SharingPolicy, h: int, pages: I64) -> None:
    p, sharing = state.pages, state.sharing
    counters = sharing.hosts
    scanned_at, flagged = sharing.ksm_scanned_at, sharing.ksm_unstable
    assert scanned_at is not None and flagged is not None
    loc = p.location[pages]
    resident = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    tracked = scanned_at[pages] >= 0
    gone = pages[tracked & ~resident]  # no longer mapped: its rmap_item is freed
    counters["ksm_rmap_items"][h] += int((resident & ~tracked).sum()) - gone.size
    counters["ksm_unshared"][h] -= int(flagged[gone].sum())
    scanned_at[gone] = -1
    flagged[gone] = False
    scanned_at[pages[resident & (loc == Loc.SHARED)]] = state.tick
    cand = pages[loc == Loc.PRIVATE]
    if cand.size == 0:
        return
    # Revisited: out of the unstable tree it was left in (remove_rmap_item_from_tree).
    counters["ksm_unshared"][h] -= int(flagged[cand].sum())
    flagged[cand] = False
    counters["hashed_tick"][h] += cand.size
    vm = state.vms.vm_of_pages(cand)
    keys = share_ops.sharing_keys(state, cand, vm)
    content = p.content[cand]
    limit = np.full(cand.size, policy.ksm_max_page_sharing, np.int64)
    if policy.ksm_use_zero_pages:
        limit[content == 0] = _UNLIMITED  # merged with the zero page, which has no limit

    frame, free_index = _stable_join(state, keys, content, limit)
    counters["compares_tick"][h] += _tree_compares(cand.size, int(counters["shared_frames"][h]))
    joins = frame >= 0
    share_ops.merge(state, cand[joins], frame[joins])

    rest = np.flatnonzero(~joins)
    prev = scanned_at[cand[rest]]
    unchanged = (prev >= 0) & (p.written_at[cand[rest]] <= prev)
    scanned_at[cand] = state.tick
    counters["volatile_this_scan"][h] += int(((prev >= 0) & ~unchanged).sum())
    rest = rest[unchanged & (free_index[rest] < _MAX_CHAIN)]
    if rest.size:
        _unstable(state, h, cand[rest], keys[rest], content[rest], free_index[rest],
                  limit[rest])


def _unstable_keys(keys: U64, gen: int) -> U64:
    return fix_key(splitmix64(keys ^ np.uint64((gen + 1) * 0x9E3779B97F4A7C15 % 2**64)))


def _partner(state: State, h: int, cand: I64, keys: U64, content: U64,
             found: Bool, val: I64, aux: U64, gen: int) -> tuple[I64, Bool]:
    """The page each candidate's unstable-tree entry points at, and whether it is a valid
    partner: same generation, another page, still private, unchanged, same key."""
    p = state.pages
    q = np.where(found, val & _PAGE_MASK, cand)
    q_vm = state.vms.vm_of_pages(q)
    valid = (found & ((val >> _GEN_BITS) == gen) & (q != cand)
             & (p.location[q] == Loc.PRIVATE) & (p.content[q] == aux) & (aux == content)
             & (state.vms["host"][q_vm] == h)
             & (share_ops.sharing_keys(state, q, q_vm) == keys))
    return q, valid


def _unstable(state: State, h: int, cand: I64, keys: U64, content: U64, free_index: I64,
              limit: I64) -> None:
    """Unstable-tree search for unchanged pages with no room in the stable tree.

    Pages of one key are a group; with a valid partner already in the tree, the partner
    comes first. The group is cut into chunks of `limit` pages, each a new KSM page whose
    first page becomes it (chain index free_index + chunk); a last chunk of one page goes
    into the unstable tree, as ksmd would leave it after merging the others.
    """
    p, sharing = state.pages, state.sharing
    counters = sharing.hosts
    flagged = sharing.ksm_unstable
    assert flagged is not None
    gen = int(counters["ksm_gen"][h])
    ukeys = _unstable_keys(keys, gen)
    found, val, aux = sharing.unstable.get(ukeys)
    counters["compares_tick"][h] += _tree_compares(cand.size, int(counters["unstable_count"][h]))
    q, valid = _partner(state, h, cand, keys, content, found, val, aux, gen)

    order, starts, lengths = group_by_key(keys)
    first = order[starts]
    pair = (np.add.reduceat(valid[order], starts) > 0).astype(np.int64)
    # A partner scanned in this batch too (a stale entry that validates again, e.g. for a
    # VM restarted with the same content) is the partner only, not also a member.
    group_of = np.repeat(np.arange(starts.size), lengths)
    keep = ~((pair[group_of] == 1) & (cand[order] == q[first][group_of]))
    members = order[keep]
    lengths = np.bincount(group_of[keep], minlength=starts.size)
    mstart = np.cumsum(lengths) - lengths
    size = lengths + pair  # elements: the partner (if any), then the members
    g = np.repeat(np.arange(starts.size), size)
    e = np.arange(g.size) - np.repeat(np.cumsum(size) - size, size)
    is_partner = (pair[g] == 1) & (e == 0)
    member = members[np.clip(mstart[g] + e - pair[g], 0, max(members.size - 1, 0))] if (
        members.size) else np.zeros(g.size, np.int64)
    page = np.where(is_partner, q[first][g], cand[member])
    per = limit[first][g]
    chunk, pos = e // per, e % per
    chunk_size = np.minimum(per, size[g] - chunk * per)

    anchor = (pos == 0) & (chunk_size >= 2)
    stable_keys = chain_key(keys[first][g][anchor], free_index[first][g][anchor] + chunk[anchor])
    share_ops.promote(state, page[anchor], stable_keys)
    anchor_frame = np.zeros(g.size, np.int64)
    anchor_frame[anchor] = p.frame[page[anchor]]
    joins = pos > 0
    share_ops.merge(state, page[joins], anchor_frame[np.flatnonzero(joins) - pos[joins]])
    sharing.stable.put(stable_keys, anchor_frame[anchor], content[first][g][anchor])

    # A partner merged leaves the unstable tree (and pages_unshared).
    consumed = pair.astype(np.bool_) & found[first]
    partners = q[first][consumed]
    sharing.unstable.delete(ukeys[first][consumed])
    counters["unstable_count"][h] -= int(consumed.sum())
    counters["ksm_unshared"][h] -= int(flagged[partners].sum())
    flagged[partners] = False

    alone = ~is_partner & (chunk_size == 1)  # into the unstable tree
    stays = page[alone]
    gi = g[alone]
    already = found[first][gi] & (q[first][gi] == stays) & (aux[first][gi] == content[first][gi])
    put = ~already
    sharing.unstable.put(ukeys[first][gi][put], stays[put] | np.int64(gen << _GEN_BITS),
                         content[first][gi][put])
    fresh = put & ~(found[first][gi] & ((val[first][gi] >> _GEN_BITS) == gen))
    counters["unstable_count"][h] += int(fresh.sum())
    counters["ksm_unshared"][h] += stays.size
    flagged[stays] = True
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


def sysfs(state: State) -> dict[str, I64]:
    """Every host's /sys/kernel/mm/ksm counters (zero where KSM never ran)."""
    counters, vms = state.sharing.hosts, state.vms
    running = vms["host"] >= 0
    mapped = np.bincount(vms["host"][running], weights=vms["loc_count"][running, Loc.SHARED],
                         minlength=len(state.hosts)).astype(np.int64)
    shared = counters["shared_frames"].astype(np.int64)
    unshared = counters["ksm_unshared"].astype(np.int64)
    rmap_items = counters["ksm_rmap_items"].astype(np.int64)
    return {
        "pages_shared": shared,
        "pages_sharing": mapped - shared,
        "pages_unshared": unshared,
        "pages_volatile": np.maximum(rmap_items - mapped - unshared, 0),
        "full_scans": counters["full_scans"].astype(np.int64),
        "rmap_items": rmap_items,
    }
