"""The order in which a pass sends its pages, and the building of a pass's send list.

QEMU walks each RAM block's dirty bitmap in address order (a pass that restarts after a
mid-pass sync goes on from where the walk was, wrapping around). Xen scans the pfns in a
fixed pseudo-random order, its `permute()` of xc_linux_save: each pfn rotated left by 10
bits within the bits of the domain's size, re-rotated while it falls past the end, which
mixes up neighbouring pages so the dirtying rate can be estimated as the round goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.arrays import ranges
from engine.migration.arena import I64
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
    send = p.at("location", pages) != Loc.BALLOONED
    free = p.at("guest_kind", pages) == GuestKind.FREE
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


@dataclass
class RowPages:
    """Pages of several migrations: for each, the index of its row (in some `rows`
    array) and the page's index within its VM."""

    which: I64
    local: I64

    def counts(self, n_rows: int) -> I64:
        return np.bincount(self.which, minlength=n_rows).astype(np.int64)

    def where(self, keep: Mask) -> RowPages:
        at = np.flatnonzero(keep)  # one pass over the mask for both arrays
        return RowPages(np.take(self.which, at), np.take(self.local, at))

    def of_rows(self, chosen: Mask) -> RowPages:
        """Only those of the chosen rows, renumbered among them."""
        renumber = np.cumsum(chosen) - 1
        keep = chosen[self.which]
        return RowPages(renumber[self.which[keep]], self.local[keep])

    def pages(self, state: State, table: MigrationTable, rows: I64) -> I64:
        offset = state.vms["page_offset"][table["vm"][rows]].astype(np.int64)
        return np.asarray(np.take(offset, self.which) + self.local, np.int64)


def sorted_unique(which: I64, key: I64, span: int) -> tuple[I64, Mask]:
    """Sort by (row, key) and drop repeats; returns the order and which to keep."""
    composite = which * span + key
    order = np.asarray(np.argsort(composite, kind="stable"), np.int64)
    composite = composite[order]
    keep = np.ones(order.size, np.bool_)
    keep[1:] = composite[1:] != composite[:-1]
    return order, keep


def unique_pairs(pages: RowPages, presorted: int = 0) -> RowPages:
    """The distinct (row, page) pairs, sorted by row then page: the same as a stable
    argsort of the pairs with repeats dropped, by a sort of the pair codes themselves
    (equal codes are equal pairs, so the sort need not be stable). If the first
    `presorted` pairs are in order (the rest of a pass in address order), only the others
    are sorted, then merged with them (a stable sort of two runs is a merge)."""
    bits = int(pages.local.max()).bit_length() if pages.local.size else 0
    code = (pages.which << bits) | pages.local  # a power-of-two span: decoded by shifts
    head = code[:presorted]
    if presorted and bool((head[1:] >= head[:-1]).all()):
        code = np.sort(np.concatenate([head, np.sort(code[presorted:])]), kind="stable")
    else:
        code = np.sort(code)
    if code.size:
        keep = np.ones(code.size, np.bool_)
        keep[1:] = code[1:] != code[:-1]
        code = code[keep]
    return RowPages(code >> bits, code & ((1 << bits) - 1))


def build_lists(state: State, table: MigrationTable, rows: I64, members: RowPages,
                start: I64) -> None:
    """New send lists for `rows` with these member pages (repeats allowed), in each row's
    order: QEMU's address order from `start`, wrapping around; Xen's permuted order."""
    sizes = state.vms["n_pages"][table["vm"][rows]].astype(np.int64)
    xen = table["algorithm"][rows] == XEN
    span = int(sizes.max()) + 1 if rows.size else 1
    which, local = members.which, members.local
    # QEMU: position in the walk from `start`; Xen: position in its scan order.
    key = (local - start[which]) % sizes[which]
    for n in np.unique(sizes[xen]).tolist():
        group = xen & (sizes == n)
        mine = group[which]
        key[mine] = xen_order(int(n))[1][local[mine]]
    order, keep = sorted_unique(which, key, span)
    which, local = which[order][keep], local[order][keep]
    count = np.bincount(which, minlength=rows.size).astype(np.int64)
    n_low = np.bincount(which[local < start[which]], minlength=rows.size)
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
    table.lists["entry"][ranges(new, count)] = local


def free_lists(table: MigrationTable, rows: I64) -> None:
    had = rows[table["list_base"][rows] >= 0]
    table.lists.free(int(table["list_len"][had].sum()))
    table["list_base"][had] = -1


def full_pass(state: State, table: MigrationTable, rows: I64) -> None:
    """The first pass sends every page. QEMU's is its address order, needing no list;
    Xen's is its whole scan order."""
    sizes = state.vms["n_pages"][table["vm"][rows]].astype(np.int64)
    xen = table["algorithm"][rows] == XEN
    free_lists(table, rows)
    if xen.any():
        xrows = rows[xen]
        bases, new = table.lists.alloc(table["list_base"], table["list_len"], sizes[xen])
        table["list_base"][:] = bases
        table["list_base"][xrows] = new
        for base, n in zip(new.tolist(), sizes[xen].tolist(), strict=True):
            table.lists["entry"][base:base + n] = xen_order(n)[0]
        table["pass_full"][xrows] = False
    q = rows[~xen]
    table["pass_full"][q] = True
    table["list_len"][rows] = table["wrap_at"][rows] = sizes
    table["cursor"][rows] = 0
    table["batch_end"][rows] = 0
