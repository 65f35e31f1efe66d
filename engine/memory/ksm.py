"""Linux KSM (mm/ksm.c) as the alternative sharing design.

ksmd walks each host's guest pages in order, a batch of `pages_to_scan` (counted in 4 KiB
pages, engine/pagescale.py) every `sleep_millisecs`; a batch ends early at the end of a
full scan (ksm_do_scan stops when the scan wraps). A batch counts only the pages it hands
over: it walks past pages not present and, under smart scan (Linux 6.7, on by default),
pages that have not merged in a while, skipped for longer and longer (ksm_scan.py). For
each page handed over: search the stable tree
(merged, write-protected KSM pages) and merge on a match; otherwise compare the page's
checksum with the one from its previous scan: changed (or never seen) means volatile,
remember and skip; unchanged, search the unstable tree (pages seen this full scan) and on
a match merge both into a new KSM page, else insert. The unstable tree is rebuilt after
every full scan, so a fresh identical pair merges during the second full scan. A KSM page
takes at most `max_page_sharing` sharers (the page that became it counts as the first);
further ones join a duplicate KSM page of the same content (a chain).

A tick's batches of every KSM host are one vectorised pass (a host whose full scan ends
goes on in a second round, with its new unstable tree), yet every merge is the one ksmd
makes going page after page: pages are grouped by key (content, salt, host), and a
group's outcome follows from its pages' order, which of them are unchanged and the trees
at the start; a changed page that comes after a KSM page made earlier in the same pass
joins it, as its stable-tree search would find it (tests/engine/test_ksm_reference.py
checks the pass against a page-by-page ksmd). One departure: a page that is itself the
entry its key finds in the unstable tree (possible only if its VM left and came back in
the same full scan) is taken as that entry, wherever it falls in the pass. The walk to
each batch's budget (ksm_scan.py) and each page's first step (ksm_front.py) run as
compiled loops where numba is there (engine/kernels.py), with the same results; compiled,
the rest of the pass is ksmd's own loop, page after page (ksm_pass.py: on the data
center some 100 ns a candidate on one thread, against 150-200 for the grouped passes),
which leaves the same world as the passes below.

Counters keep sysfs semantics (/sys/kernel/mm/ksm): pages_shared (KSM pages),
pages_sharing (further mappings of them), pages_unshared (tracked pages left in an
unstable tree by their last scan, until ksmd visits them again), pages_volatile
(rmap_items minus the three), full_scans. A page gets an rmap_item at its first scan and
loses it when ksmd finds it no longer mapped (swapped, ballooned) or the VM leaves.

The trees are hash maps keyed by content (observably the same: what merges when, and the
statistics); the unstable trees are one region per host of a fixed-size table
(hashtable.RegionMap), emptied when the host's full scan ends. The "checksum unchanged"
test is "not written since the last scan". The CPU cost model charges one checksum per
scanned page and log2(tree size) compares per tree search, the tree's size taken at the
start of the pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine import kernels
from engine.arrays import group_by_key, ranges
from engine.hashtable import RegionMap
from engine.memory import ksm_front, ksm_pass, ksm_scan, ksm_tree, share_ops
from engine.memory.ksm_front import HostRuns
from engine.memory.share_ops import chain_key
from engine.pagescale import per_simulated_page
from engine.spec import SharingPolicy
from engine.state import I64, U8, U64, Bool, Loc, State
from engine.world import World

KSM = 2
_GEN_BITS = 40  # older saves: an unstable entry was page | generation << 40
_PAGE_MASK = (1 << _GEN_BITS) - 1
_MAX_CHAIN = 64
_UNLIMITED = np.iinfo(np.int64).max // 4


def run_ksm(world: World, before_writes: Callable[[], None] = lambda: None) -> None:
    """ksmd's batches of this tick on every KSM host. `before_writes` is called before
    the first write to the stable table, the frames or the per-VM counts (memory/phase.py
    ends ESX's scan there)."""
    state = world.state
    sharing = state.sharing
    hosts = sharing.hosts
    active = np.flatnonzero((hosts["mode"] == KSM) & state.hosts.up)
    if active.size == 0:
        return
    n = len(state.pages)
    if sharing.ksm_scanned_at is None:
        # Tick + 1 of the last scan, 0 never: zeros the kernel maps lazily, so only the
        # pages of VMs on KSM hosts take memory (a -1 fill would make every page resident).
        sharing.ksm_scanned_at = np.zeros(n, np.int32)
    if sharing.ksm_unstable is None:
        sharing.ksm_unstable = np.zeros(n, np.bool_)
    policy = world.spec.policy.sharing
    if policy.ksm_pages_to_scan == 0:
        return
    hosts["ksm_credit"][active] += state.tick_s / max(policy.ksm_sleep, 1e-6)
    trees = _unstable_trees(state)
    # A host's tree is sized from its frames when KSM starts on it (it holds at most the
    # pages one full scan finds private and unchanged).
    frames = state.hosts.n_frames[active]
    small = trees.size[active] < frames
    if small.any():
        trees.reserve(active[small], (frames[small] * trees.LOAD).astype(np.int64))
    _scan_hosts(state, policy, active, before_writes)


def _unstable_trees(state: State) -> RegionMap:
    """The per-host unstable trees; a save from before they were per host (one table, the
    generation in each entry) has its current generations' entries moved in."""
    sharing, n_hosts = state.sharing, len(state.hosts)
    old = sharing.unstable
    if isinstance(old, RegionMap) and old.size.size == n_hosts:
        return old
    trees = RegionMap(np.full(n_hosts, 16, np.int64))
    if isinstance(old, RegionMap):
        keys, pages, host = old.items_in()
        aux = state.pages.content[pages]
        gen_ok = host < n_hosts
    else:
        keys, vals, aux = old.items()
        pages = vals & _PAGE_MASK
        host = state.vms["host"][state.vms.vm_of_pages(pages)]
        gen_ok = (host >= 0) & ((vals >> _GEN_BITS)
                                == sharing.hosts["ksm_gen"][np.maximum(host, 0)])
    vm = state.vms.vm_of_pages(pages)
    keep = gen_ok & (state.pages.content[pages] == aux) & (state.vms["host"][vm] == host)
    pages, vm, host = pages[keep], vm[keep], host[keep]
    keys = share_ops.sharing_keys(state, pages, vm)  # an entry's key is its page's key
    _, first = np.unique(keys, return_index=True)
    trees.reserve(np.unique(host[first]), np.bincount(host[first])[np.unique(host[first])])
    trees.put_in(keys[first], pages[first], host[first])
    sharing.unstable = trees
    return trees


class _Layout:
    """Where each active host's scan positions lie: its VMs in index order, each VM's
    pages in order (ksmd walks the mm_slots' VMAs in turn)."""

    def __init__(self, state: State, active: I64) -> None:
        vms = state.vms
        host = vms["host"]
        on_active = np.zeros(len(state.hosts), np.bool_)
        on_active[active] = True
        mine = np.flatnonzero((host >= 0) & on_active[np.maximum(host, 0)])
        self.vm = mine[np.argsort(host[mine], kind="stable")]  # by host, then VM index
        self.vm_host = np.asarray(host[self.vm], np.int64)
        sizes = np.asarray(vms["n_pages"][self.vm], np.int64)
        self.total = np.bincount(self.vm_host, weights=sizes,
                                 minlength=len(state.hosts)).astype(np.int64)
        base = np.cumsum(self.total) - self.total
        self.vm_start = np.cumsum(sizes) - sizes - base[self.vm_host]  # position in its host
        self.vm_end = self.vm_start + sizes
        self.offset = np.asarray(vms["page_offset"][self.vm], np.int64)
        self.host_first = np.searchsorted(self.vm_host, np.arange(len(state.hosts) + 1))

    def pages(self, hosts: I64, start: I64, length: I64) -> I64:
        """The pages at positions [start, start + length) of each host, host after host,
        each in scan order; `hosts` ascending."""
        lo_h = np.zeros(self.total.size, np.int64)
        hi_h = np.zeros(self.total.size, np.int64)
        lo_h[hosts] = start
        hi_h[hosts] = start + length
        picked = np.zeros(self.total.size, np.bool_)
        picked[hosts] = True
        use = picked[self.vm_host]
        lo = np.clip(lo_h[self.vm_host] - self.vm_start, 0, self.vm_end - self.vm_start)
        hi = np.clip(hi_h[self.vm_host] - self.vm_start, 0, self.vm_end - self.vm_start)
        count = np.where(use, hi - lo, 0)
        return ranges(self.offset + lo, count)


def _scan_hosts(state: State, policy: SharingPolicy, active: I64,
                before_writes: Callable[[], None]) -> None:
    """All active hosts' batches of this tick. A host's pages up to the end of its full scan
    form one pass; every host's pass is done together (keys mix in the host, so hosts
    never interact). A host that wraps goes on with a new unstable tree in a later round.

    `pages_to_scan` counts 4 KiB pages (engine/pagescale.py): a batch scans that many bytes
    whatever the simulated page, so it may cover a fraction of a coarse page. ksm_credit
    holds batches not yet spent; a tick spends its whole batches on whole pages and keeps
    what a part page did not use, so the rate in bytes holds over ticks. At 4 KiB a batch
    is `pages_to_scan` pages, exactly ksmd's.
    """
    counters, trees = state.sharing.hosts, state.sharing.unstable
    assert isinstance(trees, RegionMap)
    layout = _Layout(state, active)
    per = per_simulated_page(policy.ksm_pages_to_scan, state.page_size)
    total = layout.total[active]
    credit = counters["ksm_credit"][active]
    empty = total == 0
    credit[empty] -= np.floor(credit[empty])
    cursor = np.where(empty, 0, counters["ksm_cursor"][active] % np.maximum(total, 1))
    live = ~empty
    smart = policy.ksm_smart_scan
    while True:
        batches = np.floor(credit)
        on = live & (batches > 0)
        if not on.any():
            break
        hs, cur, tot, b = active[on], cursor[on], total[on], batches[on]
        # The positions the batches cover and the pages they hand over (ksm_scan.py), and
        # those pages' first step (ksm_front.py): in one walk where compiled.
        budget = np.floor(b * per).astype(np.int64)
        if kernels.compiled():
            n, used, trailing, candidates = ksm_front.batch_candidates(
                state, layout, hs, cur, tot - cur, budget, smart)
        else:
            n, used, trailing, pages, page_host, page_vm, loc = ksm_scan.batches(
                state, layout, hs, cur, tot - cur, budget, smart)
            candidates = ksm_front.front(state, pages, page_host, page_vm, loc)
        wraps = n == tot - cur
        # A full scan ends in the batch that hands over its last page, or in the next one
        # when that batch was full and positions with nothing to hand over are left.
        whole = np.ceil(used / per)
        to_end = np.maximum(whole + ((used > 0) & (whole * per == used) & trailing), 1.0)
        credit[on] -= np.where(wraps, to_end, used / per)
        live[on] = wraps  # a host that does not wrap is done for this tick
        _pass(state, policy, candidates, before_writes)
        counters["ksm_cursor"][hs] = cur + n
        done = hs[wraps]  # a full scan ends: the unstable tree starts over
        counters["ksm_cursor"][done] = 0
        counters["full_scans"][done] += 1
        counters["ksm_gen"][done] += 1
        counters["volatile_last_scan"][done] = counters["volatile_this_scan"][done]
        counters["volatile_this_scan"][done] = 0
        counters["unstable_count"][done] = 0
        trees.clear(done)
        cursor[on] = np.where(wraps, 0, cur + n)
    counters["ksm_credit"][active] = credit


def forget(state: State, pages: slice, h: int) -> None:
    """The pages leave host h's ksmd (their VM stopped or moved): rmap_items go."""
    sharing = state.sharing
    scanned, unstable = sharing.ksm_scanned_at, sharing.ksm_unstable
    if scanned is None or unstable is None:
        return
    n_scanned = int(np.count_nonzero(scanned[pages]))  # 0 never scanned, else tick + 1
    n_unshared = int(np.count_nonzero(unstable[pages]))
    if h >= 0:
        sharing.hosts["ksm_rmap_items"][h] -= n_scanned
        sharing.hosts["ksm_unshared"][h] -= n_unshared
    # Only written if set: the pages of a VM ksmd never scanned stay the zeros the kernel
    # has not mapped (writing them would map them, a few ms for a big VM leaving its host).
    if n_scanned:
        scanned[pages] = 0
    if n_unshared:
        unstable[pages] = False
    age = sharing.ksm_age
    if age is not None and np.any(age[pages]):
        age[pages] = 0  # a new rmap_item starts young


def _tree_compares(n_lookups: I64, tree_size: I64) -> I64:
    return np.asarray(n_lookups * np.maximum(1, np.ceil(np.log2(tree_size + 1.0))), np.int64)


class _Chain:
    """A key's KSM pages (its stable-tree chain), walked as ksmd's stable-tree search does:
    index 0, 1, ... while the entry is a live KSM page of the content; the first such page
    with room takes the page. The first dead index is where a new KSM page goes."""

    def __init__(self, state: State, keys: U64, content: U64) -> None:
        self.state, self.keys, self.content = state, keys, content

    def probe(self, groups: I64, index: int | I64) -> tuple[Bool, I64, I64]:
        """(live, frame, its sharers) of chain entry `index` of each group."""
        sharing, refcount = self.state.sharing, self.state.frames.refcount
        keys = self.keys[groups]
        chained = keys if isinstance(index, int) and index == 0 else chain_key(keys, index)
        found, fr, aux = sharing.stable.get(chained)
        # Checked only where found (few: most pages have no KSM page yet); elsewhere the
        # entry is frame 0, not live. An entry's frame is always one shared under the
        # entry's key (a frame is keyed when its entry is made and keeps its key until it
        # is freed, when the entry goes; invariants.py checks): no need to read it back.
        at = np.flatnonzero(found)
        fr_at = fr[at]
        fr_ok = np.zeros(groups.size, np.int64)
        fr_ok[at] = fr_at
        live = np.zeros(groups.size, np.bool_)
        live[at] = (aux[at] == self.content[groups[at]]) & (refcount[fr_at] > 0)
        users = np.full(groups.size, refcount[0], np.int64)
        users[at] = refcount[fr_at]
        return live, fr_ok, users

    def walk(self, groups: I64, start: I64, remaining: I64, limit: I64, span: int,
             probed: tuple[Bool, I64, I64] | None = None) -> tuple[I64, I64, I64, I64, I64,
                                                                  I64]:
        """ksmd's stable-tree search for the next `remaining` pages of each group, from
        chain index `start` on (at most `span` entries, all looked up at once): each live
        KSM page in turn takes as many as it has room for, until they are all placed or an
        entry is dead. Returns (pages placed, the index the walk stopped at: the first dead
        one when pages are left, and the joins as (group's position in `groups`, rank of
        its first page among the remaining ones, pages, frame)). `probed`: with span 1,
        probe(groups, start) when the caller has it already."""
        n = groups.size
        if span == 1:  # one entry each (entry 0 of every group: the key itself, no hash)
            first = int(start[0]) if n and np.all(start == start[0]) else start
            live1, frame1, users1 = self.probe(groups, first) if probed is None else probed
            take1 = np.where(live1 & (remaining > 0),
                             np.clip(limit - users1, 0, np.maximum(remaining, 0)), 0)
            g1 = np.flatnonzero(take1 > 0)
            return (take1, start + (live1 & (remaining > 0)), g1, np.zeros(g1.size, np.int64),
                    take1[g1], frame1[g1])
        index = start[:, None] + np.arange(span)[None, :]
        inside = (index < _MAX_CHAIN).ravel()
        live = np.zeros(n * span, np.bool_)
        frame = np.zeros(n * span, np.int64)
        users = np.zeros(n * span, np.int64)
        live[inside], frame[inside], users[inside] = self.probe(
            np.repeat(groups, span)[inside], index.ravel()[inside])
        alive = np.cumprod(live.reshape(n, span), axis=1).astype(np.bool_)
        room = np.where(alive, np.maximum(limit[:, None] - users.reshape(n, span), 0), 0)
        before = np.cumsum(room, axis=1) - room
        take = np.clip(remaining[:, None] - before, 0, room)
        visited = alive & (before < remaining[:, None])
        g, d = np.nonzero(take > 0)
        return (take.sum(axis=1), start + visited.sum(axis=1), g, before[g, d], take[g, d],
                frame.reshape(n, span)[g, d])


def _scan_pass(state: State, policy: SharingPolicy, pages: I64, page_host: I64,
               page_vm: I64, loc: U8 | None = None,
               before_writes: Callable[[], None] = lambda: None) -> None:
    """ksmd's cmp_and_merge_page for `pages` one after the other (a host's in scan order),
    done with array passes: pages are grouped by key and each group's outcome follows from
    the order of its pages, which of them are unchanged, and the trees at the start.
    `loc`: the pages' locations, when the caller has read them."""
    if loc is None:
        loc = state.pages.at("location", pages)
    # rmap_items and the unstable flags kept; the private pages, their keys, and which
    # are unchanged since their last scan (ksm_front.py).
    _pass(state, policy, ksm_front.front(state, pages, page_host, page_vm, loc), before_writes)


def _pass(state: State, policy: SharingPolicy, candidates: ksm_front.Candidates,
          before_writes: Callable[[], None] = lambda: None) -> None:
    """The rest of cmp_and_merge_page for a pass's candidates (_scan_pass)."""
    counters = state.sharing.hosts
    cand, host, content, keys, unchanged, volatile = candidates
    if cand.size == 0:
        return
    runs = HostRuns(host, len(state.hosts))  # the candidates are host after host too
    n_cand = np.diff(runs.bounds)
    counters["hashed_tick"] += n_cand
    counters["compares_tick"] += _tree_compares(n_cand, counters["shared_frames"])
    if kernels.compiled():  # page after page, in one loop (ksm_pass.py)
        unstable_before = counters["unstable_count"].copy()
        searches = ksm_pass.run_pass(state, policy, candidates, runs, _MAX_CHAIN, _UNLIMITED,
                                     before_writes)
        counters["compares_tick"] += _tree_compares(searches, unstable_before)
        return
    before_writes()
    entry0 = _Chain(state, keys, content).probe(np.arange(cand.size), 0)
    if not unchanged.any() and not entry0[0].any():
        # No page searches an unstable tree and none has a KSM page to join (a group's
        # entry is live only if its first page's is): every page is only checksummed, as
        # the grouped pass below would find; a host's first full scan is all this.
        counters["volatile_this_scan"] += runs.count(volatile)
        return

    order, starts, lengths = group_by_key(keys)
    first = order[starts]
    g_keys, g_content = keys[first], content[first]
    g_limit = np.full(first.size, policy.ksm_max_page_sharing, np.int64)
    if policy.ksm_use_zero_pages:
        g_limit[g_content == 0] = _UNLIMITED  # merged with the zero page: no limit
    chain = _Chain(state, g_keys, g_content)

    # 1. The existing chain: the group's first pages fill its KSM pages' room in order.
    # Entry 0 for every group, then entries 1.. for the few whose entry 0 was full.
    groups = np.arange(first.size)
    # Entry 0 of each group's chain, as probed for its first page above.
    live0, frame0, users0 = entry0
    placed, free_index, g0, r0, c0, f0 = chain.walk(groups, np.zeros(first.size, np.int64),
                                                    lengths, g_limit, 1,
                                                    (live0[first], frame0[first], users0[first]))
    more = np.flatnonzero((free_index == 1) & (placed < lengths))
    placed_more, free_index[more], g1, r1, c1, f1 = chain.walk(
        more, np.ones(more.size, np.int64), lengths[more] - placed[more], g_limit[more],
        _MAX_CHAIN - 1)
    join_group = [g0, more[g1]]
    join_rank = [r0, r1 + placed[more][g1]]
    join_count = [c0, c1]
    join_frame = [f0, f1]
    placed[more] += placed_more
    jg, jc = np.concatenate(join_group), np.concatenate(join_count)
    joined = order[ranges(starts[jg] + np.concatenate(join_rank), jc)]
    share_ops.merge(state, cand[joined], np.repeat(np.concatenate(join_frame), jc))

    # 2. The rest of each group, in scan order. A changed page that found no room is only
    # checksummed (volatile); a group with no unchanged page left does nothing more.
    in_chain = np.zeros(cand.size, np.bool_)
    in_chain[joined] = True
    counters["volatile_this_scan"] += runs.count(volatile & ~in_chain)
    searching = (unchanged & ~in_chain)[order]
    rest_g = np.flatnonzero((np.add.reduceat(searching.astype(np.int64), starts) > 0)
                            & (free_index < _MAX_CHAIN))
    if rest_g.size == 0:
        return
    _unstable_pass(state, cand, keys, host, order, starts, lengths, placed, free_index,
                   g_limit, chain, rest_g, unchanged, volatile)


def _unstable_pass(state: State, cand: I64, keys: U64, host: I64, order: I64, starts: I64,
                   lengths: I64, placed: I64, free_index: I64, g_limit: I64, chain: _Chain,
                   rest_g: I64, unchanged: Bool, volatile: Bool) -> None:
    """The pages of each group that found no room in its existing KSM pages, in scan order.

    Per group (one key on one host) ksmd goes through three states: no partner (the next
    unchanged page goes into the unstable tree), a partner in the tree (the next unchanged
    page merges with it into a new KSM page at the chain's free index), and a new KSM page
    with room (the next pages join it, changed or not, as their stable-tree search finds it;
    then any live KSM pages further down the chain fill up the same way). Changed pages are
    skipped in the first two states. Each round below moves every group on by one new KSM
    page, so there are at most _MAX_CHAIN rounds.
    """
    p, sharing = state.pages, state.sharing
    counters = sharing.hosts
    flagged = sharing.ksm_unstable
    assert flagged is not None
    n_hosts = len(state.hosts)
    first_left = starts[rest_g] + placed[rest_g]  # where each group's pages left begin
    size = lengths[rest_g] - placed[rest_g]
    # Most groups have one page left (a page whose content no other page in the pass
    # has), and it is unchanged (it searches): those are dealt with apart below, the flat
    # arrays and rounds are for the others.
    single = size == 1
    multi = np.flatnonzero(~single)
    el = order[ranges(first_left[multi], size[multi])]  # candidate index, flat
    gi = np.repeat(multi, size[multi])
    g_first = order[starts[rest_g]]
    # The groups' keys and content as read at the start of the pass (merges since moved
    # pages between frames, never changed a page's content).
    g_keys, g_host, g_content = chain.keys[rest_g], host[g_first], chain.content[rest_g]
    chain_at = free_index[rest_g].copy()
    limit = g_limit[rest_g]
    unstable_before = counters["unstable_count"].copy()

    trees = sharing.unstable
    assert isinstance(trees, RegionMap)
    tree_slot, tree_end = trees.locate_in(g_keys, g_host)  # reused to insert below
    # Each group's partner in the tree, and the outcome of the groups with one page left:
    # with a partner it makes a new KSM page with it at the chain's free index (nothing is
    # left to fill it), else it goes into the tree; either way one search. The partner
    # itself, rescanned, is the partner only (ksm_tree.py).
    single_page = np.full(rest_g.size, -1, np.int64)
    s = np.flatnonzero(single)
    single_page[s] = cand[order[first_left[s]]]
    tree = ksm_tree.search(state, tree_slot, trees.rvals, g_keys, g_host, g_content,
                           single_page, chain_at)
    found, partner, has_partner = tree.found, tree.partner, tree.has_partner
    rescanned_partner, consumed, lone_page = tree.rescanned, tree.consumed, tree.lone_page
    chain_at, searches = tree.chain_at, tree.searches
    # A partner scanned in this pass too (a stale entry that validates again, e.g. for a VM
    # restarted with the same content) is the partner only, not also a member.
    dup = has_partner[gi] & (cand[el] == partner[gi])
    rescanned_partner[gi[dup]] = True
    el, gi = el[~dup], gi[~dup]
    size = np.bincount(gi, minlength=rest_g.size).astype(np.int64)
    g_start = np.cumsum(size) - size
    g_end = g_start + size
    is_u = unchanged[el]
    u_at = np.flatnonzero(is_u)
    u_before = np.zeros(el.size + 1, np.int64)  # unchanged pages before each flat index
    np.cumsum(is_u, out=u_before[1:])
    u_end = u_before[g_end]

    pos = g_start.copy()  # flat index of each group's next page
    new_group: list[I64] = []
    new_anchor: list[I64] = []
    new_index: list[I64] = []
    new_joiner: list[I64] = []
    fill_start: list[I64] = []
    fill_count: list[I64] = []
    fill_frame: list[I64] = []
    if tree.paired.size:
        new_group.append(tree.paired)
        new_anchor.append(partner[tree.paired])
        new_index.append(tree.paired_index)
        new_joiner.append(tree.paired_joiner)

    act = multi  # each has an unchanged page and a free chain index
    for _ in range(_MAX_CHAIN + 1):
        if act.size == 0:
            break
        need = np.where(has_partner[act], 1, 2)  # unchanged pages to make a pair
        i0 = u_before[pos[act]]  # the group's first unchanged page from pos on
        avail = u_end[act] - i0
        room_in_chain = chain_at[act] < _MAX_CHAIN
        pair = room_in_chain & (avail >= need)
        lone = np.flatnonzero(~pair & room_in_chain & ~has_partner[act] & (avail >= 1))
        lone_page[act[lone]] = cand[el[u_at[i0[lone]]]]
        searches += np.bincount(g_host[act[lone]], minlength=n_hosts)
        at_pair = np.flatnonzero(pair)
        a, i0, need = act[at_pair], i0[at_pair], need[at_pair]
        if a.size == 0:
            break
        searches += np.bincount(g_host[a], weights=need, minlength=n_hosts).astype(np.int64)
        joiner = u_at[i0 + need - 1]
        anchor = np.where(has_partner[a], partner[a], cand[el[u_at[i0]]])
        consumed[a] |= has_partner[a]
        has_partner[a] = False
        frame = p.frame[anchor].astype(np.int64)
        new_group.append(a)
        new_anchor.append(anchor)
        new_index.append(chain_at[a].copy())
        new_joiner.append(cand[el[joiner]])
        chain_at[a] += 1
        start = joiner + 1
        stop = np.minimum(start + np.minimum(limit[a] - 2, size.max()), g_end[a])
        fill_start.append(start)
        fill_count.append(stop - start)
        fill_frame.append(frame)
        pos[a] = stop
        # Live KSM pages further down the chain (past a dead entry) take pages next.
        b = a[(pos[a] < g_end[a]) & (chain_at[a] < _MAX_CHAIN)]
        if b.size:
            took, chain_at[b], gb, rb, cb, fb = chain.walk(
                rest_g[b], chain_at[b], g_end[b] - pos[b], limit[b],
                _MAX_CHAIN - int(chain_at[b].min()))
            fill_start.append(pos[b][gb] + rb)
            fill_count.append(cb)
            fill_frame.append(fb)
            pos[b] += took
        act = a[pos[a] < g_end[a]]

    counters["compares_tick"] += _tree_compares(searches, unstable_before)
    fc = np.concatenate(fill_count) if fill_count else np.zeros(0, np.int64)
    filled = ranges(np.concatenate(fill_start), fc) if fill_count else np.zeros(0, np.int64)
    # Pages that joined a KSM page through their stable-tree search were not checksummed.
    late = el[filled]
    counters["volatile_this_scan"] -= np.bincount(host[late[volatile[late]]], minlength=n_hosts)
    if new_group:
        ng = np.concatenate(new_group)
        anchors = np.concatenate(new_anchor)
        stable_keys = chain_key(g_keys[ng], np.concatenate(new_index))
        anchor_frames = p.frame[anchors].astype(np.int64)
        share_ops.promote(state, anchors, stable_keys)
        fill_frames = (np.repeat(np.concatenate(fill_frame), fc) if fill_frame
                       else np.zeros(0, np.int64))
        share_ops.merge(state, np.concatenate([np.concatenate(new_joiner), cand[late]]),
                        np.concatenate([anchor_frames, fill_frames]))
        sharing.stable.put(stable_keys, anchor_frames, g_content[ng])

    # A partner merged leaves the unstable tree (and pages_unshared).
    gone = np.flatnonzero(consumed)
    trees.delete_in(g_keys[gone], g_host[gone])
    counters["unstable_count"] -= np.bincount(g_host[gone], minlength=n_hosts)
    was = partner[gone]
    counters["ksm_unshared"] -= np.bincount(g_host[gone][flagged[was]], minlength=n_hosts)
    flagged[was] = False
    # A rescanned partner that is still in the tree is where its scan left it.
    stays = np.flatnonzero(rescanned_partner & has_partner)
    counters["ksm_unshared"] += np.bincount(g_host[stays], minlength=n_hosts)
    flagged[partner[stays]] = True
    # A lone unchanged page goes into the tree, over whatever entry its key had.
    ins = np.flatnonzero(lone_page >= 0)
    page = lone_page[ins]
    # The tree is as the lookup above left it but for the partners deleted since (their
    # keys are placed anew, the others where the lookup found them or stopped).
    fresh = ~found[ins] | consumed[ins]
    trees.put_located_in(g_keys[ins], page, g_host[ins], np.where(fresh, -1, tree_slot[ins]),
                         np.where(consumed[ins], -1, tree_end[ins]))
    counters["unstable_count"] += np.bincount(g_host[ins[fresh]], minlength=n_hosts)
    counters["ksm_unshared"] += np.bincount(g_host[ins], minlength=n_hosts)
    flagged[page] = True


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
        "pages_skipped": counters["ksm_pages_skipped"].astype(np.int64),
        "rmap_items": rmap_items,
    }
