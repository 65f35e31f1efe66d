"""The order in which a pass sends its pages, and the building of a pass's send list.

QEMU walks each RAM block's dirty bitmap in address order (a pass that restarts after a
mid-pass sync goes on from where the walk was, wrapping around). Xen scans the pfns in a
fixed pseudo-random order, its `permute()` of xc_linux_save: each pfn rotated left by 10
bits within the bits of the domain's size, re-rotated while it falls past the end, which
mixes up neighbouring pages so the dirtying rate can be estimated as the round goes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine.migration.arena import I64, ranges
from engine.migration.model import XEN, MigrationTable
from engine.state import GuestKind, Loc, State

Mask = np.ndarray


def _bits(n: I64) -> I64:
    """Xen's order_nr: bits needed for the pfns 0..n-1 (15 -> 4, 16 -> 4, 17 -> 5)."""
    return np.ceil(np.log2(np.maximum(n, 2).astype(np.float64))).astype(np.int64)


def xen_permute(pos: I64, n: I64) -> I64:
    """Xen's permute(pos) for positions 0..n-1 (n per element): a bijection of 0..n-1."""
    order = _bits(n)
    k = 10 % order
    mask = (np.int64(1) << order) - 1

    def rotate(x: I64, k: I64, order: I64, mask: I64) -> I64:
        return np.asarray(((x << k) | (x >> (order - k))) & mask, np.int64)

    out = rotate(pos, k, order, mask)
    late = np.flatnonzero(out >= n)
    while late.size:  # cycle walking: at most a few rounds, the range is > half full
        out[late] = rotate(out[late], k[late], order[late], mask[late])
        late = late[out[late] >= n[late]]
    return out


def needs_sending(state: State, pages: I64, hints: Mask) -> Mask:
    """Ballooned pages are never sent, nor guest-free ones when the guest reports them."""
    p = state.pages
    send = np.take(p.location, pages) != Loc.BALLOONED
    free = np.take(p.guest_kind, pages) == GuestKind.FREE
    return np.asarray(send & ~(hints & free))


@lru_cache(maxsize=8)
def xen_order(n: int) -> tuple[I64, I64]:
    """Xen's scan order of a domain of n pages (pfn at each position) and its inverse."""
    perm = xen_permute(np.arange(n, dtype=np.int64), np.full(n, n, np.int64))
    inverse = np.empty(n, np.int64)
    inverse[perm] = np.arange(n, dtype=np.int64)
    perm.setflags(write=False)
    inverse.setflags(write=False)
    return perm, inverse


def _rank(which: I64, count: I64) -> I64:
    """0, 1, 2... within each row's run of a row-grouped array."""
    return np.arange(which.size, dtype=np.int64) - (np.cumsum(count) - count)[which]


def build_lists(state: State, table: MigrationTable, rows: I64, members: Mask,
                start: I64) -> None:
    """New send lists for `rows` from `members`, a mask over each row's pages (local
    order, rows concatenated), in each row's order beginning at position `start`."""
    sizes = state.vms["n_pages"][table["vm"][rows]].astype(np.int64)
    seg = np.cumsum(sizes) - sizes
    count = np.add.reduceat(members, seg, dtype=np.int64) if rows.size else seg
    idx = np.flatnonzero(members)
    which = np.repeat(np.arange(rows.size), count)
    local = idx - seg[which]
    rank = _rank(which, count)
    # QEMU: the walk goes on from `start`, wrapping around (pages below it go last).
    low = local < start[which]
    n_low = np.bincount(which[low], minlength=rows.size)
    pos = np.where(low, rank + (count - n_low)[which], rank - n_low[which])
    xen = table["algorithm"][rows] == XEN
    for n in np.unique(sizes[xen]).tolist():
        perm, inverse = xen_order(int(n))
        group = xen & (sizes == n)
        dense = group & (count * 8 >= n)
        sel = group[which] & ~dense[which]
        if sel.any():  # few pages: sort them by their place in Xen's order
            key = which[sel] * n + inverse[local[sel]]
            order = np.argsort(key)
            rows_sorted = which[sel][order]
            pos[np.flatnonzero(sel)[order]] = np.arange(order.size) - np.searchsorted(
                rows_sorted, rows_sorted)
        for i in np.flatnonzero(dense).tolist():  # many: walk Xen's order, keep members
            mine = slice(int(seg[i]), int(seg[i] + n))
            walk = perm[members[mine][perm]]
            at = slice(int((np.cumsum(count) - count)[i]), int(np.cumsum(count)[i]))
            local[at] = walk
            pos[at] = np.arange(walk.size)
    entries = np.empty(idx.size, np.int64)
    entries[(np.cumsum(count) - count)[which] + pos] = local
    free_lists(table, rows)
    bases, new = table.lists.alloc(table["list_base"], table["list_len"], count)
    table["list_base"][:] = bases
    table["list_base"][rows] = new
    table["list_len"][rows] = count
    table["cursor"][rows] = 0
    table["batch_end"][rows] = 0
    # Where the walk passes the end of memory: a pass is complete (QEMU's complete_round).
    table["wrap_at"][rows] = np.where(xen, count, count - n_low)
    table["pass_full"][rows] = False
    table.lists["entry"][ranges(new, count)] = entries


def free_lists(table: MigrationTable, rows: I64) -> None:
    had = rows[table["list_base"][rows] >= 0]
    table.lists.free(int(table["list_len"][had].sum()))
    table["list_base"][had] = -1


def full_pass(state: State, table: MigrationTable, rows: I64) -> None:
    """The first pass sends every page. QEMU's is its address order, needing no list;
    Xen's is built in its permuted order."""
    xen = table["algorithm"][rows] == XEN
    if xen.any():
        xrows = rows[xen]
        sizes = state.vms["n_pages"][table["vm"][xrows]].astype(np.int64)
        build_lists(state, table, xrows, np.ones(int(sizes.sum()), np.bool_),
                    np.zeros(xrows.size, np.int64))
    q = rows[~xen]
    free_lists(table, q)
    table["pass_full"][q] = True
    table["list_len"][q] = table["wrap_at"][q] = state.vms["n_pages"][table["vm"][q]]
    table["cursor"][q] = 0
    table["batch_end"][q] = 0
