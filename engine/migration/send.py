"""Sending pages: every pre-copying migration advances along its send list at once.

`send` moves each migration's cursor as far as its rate allows until a time (or up to a
list index), exactly: the bytes of each page are known before it is sent (a whole page,
a zero page's header, an XBZRLE delta), a running sum per migration says which pages fit,
and the bytes of a page cut by the deadline carry over. One pass of flat numpy over the
pages sent, whatever the number of migrations.
"""

from __future__ import annotations

import numpy as np

from engine.hashing import splitmix64
from engine.migration.arena import I64, ranges
from engine.migration.model import QEMU, XEN, MigrationTable
from engine.state import GuestKind, Loc
from engine.world import World

F64 = np.ndarray
XBZRLE_RUN_OVERHEAD = 3 / 16  # two run-length bytes per ~16-byte run of changed bytes
XBZRLE_FLAGS = 3  # the encoding byte and the 16-bit length after the page header
CACHED_PAGE_LIFETIME = 2  # QEMU page_cache.c: a page cached this recently is not evicted


def delta_bytes(content: np.ndarray, changed: F64, page: int) -> I64:
    """XBZRLE's encoded size of a re-sent page: the changed fraction of the page drawn per
    page from its content (exponential around the workload's mean fraction), plus runs."""
    u = (splitmix64(content.astype(np.uint64)) >> np.uint64(11)).astype(np.float64) / 2.0**53
    fraction = np.minimum(1.0, -changed * np.log1p(-u))
    return np.asarray(np.ceil(fraction * page * (1.0 + XBZRLE_RUN_OVERHEAD)), np.int64)


class Batch:
    """Flat entries of several migrations' lists: row index, list position, page."""

    def __init__(self, world: World, table: MigrationTable, rows: I64, first: I64,
                 count: I64) -> None:
        state = world.state
        self.which = np.repeat(np.arange(rows.size), count)
        self.count = count
        j = ranges(first, count)
        listed = ~table["pass_full"][rows][self.which]
        entry = j.copy()  # a full pass (QEMU's first) walks every page in address order
        if listed.any():
            base = table["list_base"][rows][self.which[listed]]
            entry[listed] = table.lists["entry"][base + j[listed]]
        self.skip = entry < 0  # Xen: dirtied again when its batch was peeked
        self.local = np.maximum(entry, 0)
        self.page = state.vms["page_offset"][table["vm"][rows]][self.which] + self.local

    @classmethod
    def explicit(cls, which: I64, local: I64, page: I64) -> Batch:
        """Given pages (the stop-and-copy's pending set), none skipped."""
        b = cls.__new__(cls)
        b.which, b.local, b.page = which, local, page
        b.skip = np.zeros(page.size, np.bool_)
        b.count = np.zeros(0, np.int64)
        return b


def costs(world: World, table: MigrationTable, rows: I64, b: Batch,
          last_stage: bool = False) -> tuple[I64, np.ndarray, dict[str, np.ndarray]]:
    """Bytes on the wire for each entry (0 = not sent), whether it is sent, and the
    XBZRLE outcome of each entry for `record`."""
    state = world.state
    p, page = state.pages, state.page_size
    loc = np.take(p.location, b.page)
    sendable = ~b.skip & (loc != Loc.BALLOONED)
    hints = table["free_page_hints"][rows][b.which]
    if hints.any():
        sendable &= ~(hints & (np.take(p.guest_kind, b.page) == GuestKind.FREE))
    algo = table["algorithm"][rows][b.which]
    content = np.take(p.content, b.page)
    zero = content == 0
    header = table["page_header"][rows][b.which]
    cost = np.where(algo == XEN, page, np.where(
        zero, table["zero_header"][rows][b.which], page + header)).astype(np.int64)
    xb = {"hit": np.zeros(b.page.size, np.bool_), "overflow": np.zeros(b.page.size, np.bool_),
          "insert": np.zeros(b.page.size, np.bool_), "slot": np.zeros(b.page.size, np.int64)}
    started = table["xbzrle"] & (table["passes"] > 0) & (table["algorithm"] == QEMU)
    use = started[rows][b.which] & sendable & ~zero
    if use.any():
        _xbzrle(table, rows, b, use, content, cost, xb, page, last_stage)
    return np.where(sendable, cost, 0), sendable, xb


def _xbzrle(table: MigrationTable, rows: I64, b: Batch, use: np.ndarray, content: np.ndarray,
            cost: I64, xb: dict[str, np.ndarray], page: int, last_stage: bool) -> None:
    """QEMU's direct-mapped cache by page address: a hit sends a delta (or the whole page
    when the delta overflows); a miss sends the page and caches it unless its slot holds
    another page cached within CACHED_PAGE_LIFETIME syncs. Only the first page of a slot
    in one go sees the cache as it was (later ones meet that page's entry)."""
    i = np.flatnonzero(use)
    r = rows[b.which[i]]
    slot = table["cache_base"][r] + (b.local[i] & (table["cache_slots"][r] - 1))
    _, first = np.unique(slot, return_index=True)
    alone = np.zeros(i.size, np.bool_)
    alone[first] = True
    cached = table.cache["page"][slot]
    hit = alone & (cached == b.local[i])
    gen = table["dirty_sync_count"][r]
    stale = table.cache["age"][slot] + CACHED_PAGE_LIFETIME <= gen
    insert = alone & ~hit & ((cached < 0) | stale) & (not last_stage)
    delta = delta_bytes(content[i], table["changed_fraction"][r], page)
    overflow = hit & (delta > page)
    header = table["page_header"][r]
    cost[i[hit & ~overflow]] = (header + XBZRLE_FLAGS + delta)[hit & ~overflow]
    xb["hit"][i] = hit
    xb["overflow"][i] = overflow
    xb["insert"][i] = insert | hit
    xb["slot"][i] = slot


def record(world: World, table: MigrationTable, rows: I64, b: Batch, sent: np.ndarray,
           cost: I64, xb: dict[str, np.ndarray]) -> None:
    """What the destination now holds, and the counters, for the entries sent."""
    state = world.state
    p = state.pages
    which, page, local = b.which[sent], b.page[sent], b.local[sent]
    cost = cost[sent]
    r = rows[which]
    pb = table["page_base"][r] + local
    content = np.take(p.content, page)
    table.pages["sent"][pb] = content
    table.pages["at_dest"][pb] = True
    n = rows.size

    def add(col: str, weights: np.ndarray | None = None) -> None:
        table[col][rows] += np.bincount(which, weights, minlength=n).astype(table[col].dtype)

    add("pages_sent")
    add("bytes_sent", cost)
    add("round_sent")
    add("round_bytes", cost)
    table["window_bytes"][rows] += np.bincount(which, cost, minlength=n)
    qemu = table["algorithm"][r] == QEMU
    zero = content == 0
    add("zero_pages", (qemu & zero).astype(np.float64))
    add("normal_pages", (~(qemu & zero)).astype(np.float64))
    hit, over, insert = xb["hit"][sent], xb["overflow"][sent], xb["insert"][sent]
    if insert.any():
        slot = xb["slot"][sent][insert]
        table.cache["page"][slot] = local[insert]
        table.cache["age"][slot] = table["dirty_sync_count"][r[insert]]
        add("xbzrle_hits", hit.astype(np.float64))
        add("xbzrle_overflow", over.astype(np.float64))
        add("xbzrle_bytes", np.where(hit, cost, 0).astype(np.float64))
    started = (table["xbzrle"] & (table["passes"] > 0))[r] & qemu & ~zero
    if started.any():
        add("xbzrle_misses", (started & ~hit).astype(np.float64))
    swapped = np.take(p.location, page) == Loc.SWAPPED
    if swapped.any():  # read back from the source's swap file before they can be sent
        src = table["src"][r[swapped]]
        busy = state.page_size / state.hosts.swap_disk_bytes_per_s[src]
        state.reclaim.hosts["disk_busy_s_tick"] += np.bincount(
            src, busy, minlength=len(state.hosts))


def send(world: World, table: MigrationTable, rows: I64, t: F64, rate: F64, limit: I64,
         until: F64) -> tuple[F64, np.ndarray]:
    """Advance each row from time t[i] at rate[i] along its list until time until[i] or
    list index limit[i]; returns the time each got to and whether it reached its limit
    (then the time is when its last page went)."""
    page = world.state.page_size
    t = t.copy()
    reached = table["cursor"][rows] >= limit
    going = np.flatnonzero(~reached & (rate > 0) & (t < until))
    t[(rate <= 0) & ~reached] = until[(rate <= 0) & ~reached]
    while going.size:
        r = rows[going]
        budget = rate[going] * (until[going] - t[going]) + table["carry_bytes"][r]
        avg = np.where(table["pages_sent"][r] > 0, table["bytes_sent"][r]
                       / np.maximum(table["pages_sent"][r], 1), page)
        guess = np.ceil(budget / np.clip(avg, 1.0, page) * 1.1).astype(np.int64) + 64
        cursor = table["cursor"][r]
        count = np.minimum(limit[going] - cursor, guess)
        b = Batch(world, table, r, cursor, count)
        cost, sendable, xb = costs(world, table, r, b)
        total = np.cumsum(cost)
        seg_end = np.cumsum(count)
        before = np.where(seg_end - count > 0, total[np.maximum(seg_end - count - 1, 0)], 0)
        within = total - before[b.which]
        fit = within <= budget[b.which] + 1e-6
        record(world, table, r, b, fit & sendable, cost, xb)
        k = np.bincount(b.which[fit], minlength=r.size).astype(np.int64)
        used = np.bincount(b.which[fit], cost[fit], minlength=r.size)
        table["cursor"][r] = cursor + k
        whole = k == count
        at_limit = whole & (cursor + k >= limit[going])
        carry = table["carry_bytes"][r]
        t_done = t[going] + np.maximum(used - carry, 0.0) / rate[going]
        # Cut by the deadline: the next page is partly on the wire.
        cut = ~whole
        table["carry_bytes"][r] = np.where(cut, budget - used, 0.0)
        t[going] = np.where(cut, until[going], t_done)
        reached[going[at_limit]] = True
        going = going[whole & ~at_limit & (t[going] < until[going])]
    return t, reached
