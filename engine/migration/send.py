"""Sending pages: every pre-copying migration advances along its send list at once.

`send` moves each migration's cursor as far as its rate allows until a time (or up to a
list index), exactly: the bytes of each page are known before it is sent (a whole page,
a zero page's header, an XBZRLE delta), a running sum per migration says which pages fit,
and the bytes of a page cut by the deadline carry over. Flat numpy over the pages sent,
whatever the number of migrations, in groups of rows of about CHUNK_ENTRIES entries; what
fits a budget is a prefix of the row's entries, so no per-entry test is needed for it.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import ranges
from engine.hashing import splitmix64
from engine.migration.arena import I64
from engine.migration.model import XEN, MigrationTable
from engine.migration.swapread import read_seconds, starts_cluster
from engine.pagescale import fine_pages
from engine.state import GuestKind, Loc
from engine.world import World

F64 = np.ndarray
XBZRLE_RUN_OVERHEAD = 3 / 16  # two run-length bytes per ~16-byte run of changed bytes
XBZRLE_FLAGS = 3  # the encoding byte and the 16-bit length after the page header
CACHED_PAGE_LIFETIME = 2  # QEMU page_cache.c: a page cached this recently is not evicted
CHUNK_ENTRIES = 1 << 18  # list entries sent together (see _chunks)
# Plain ints for the comparisons with page records: numpy takes an IntEnum member for an
# int64 and casts every uint8 record to compare (3.5 us instead of 0.7 over a batch).
_BALLOONED, _SWAPPED, _FREE = int(Loc.BALLOONED), int(Loc.SWAPPED), int(GuestKind.FREE)


def qemu_page_bytes(world: World) -> tuple[int, int]:
    """QEMU's bytes on the wire for a page and for a zero page: a header per 4 KiB page
    however coarse the simulated page, and the page's bytes unless it is zero."""
    policy, page = world.spec.policy.migration, world.state.page_size
    headers = round(fine_pages(page))
    return page + policy.page_header * headers, policy.zero_page_header * headers


def delta_bytes(content: np.ndarray, changed: F64, page: int) -> I64:
    """XBZRLE's encoded size of a re-sent page: the changed fraction of the page drawn per
    page from its content (exponential around the workload's mean fraction), plus runs."""
    u = (splitmix64(content.astype(np.uint64)) >> np.uint64(11)).astype(np.float64) / 2.0**53
    fraction = np.minimum(1.0, -changed * np.log1p(-u))
    return np.asarray(np.ceil(fraction * page * (1.0 + XBZRLE_RUN_OVERHEAD)), np.int64)


class Batch:
    """Flat entries of several migrations' lists: row index, list position, page. A batch
    of list ranges holds each row's entries together, in list order, from `starts`."""

    def __init__(self, world: World, table: MigrationTable, rows: I64, first: I64,
                 count: I64) -> None:
        state = world.state
        count = np.asarray(count, np.int64)
        self.n_rows = rows.size
        self.count: I64 | None = count
        self.starts = np.cumsum(count) - count
        self.first: I64 | None = np.asarray(first, np.int64)  # list index of each row's first
        self._which: I64 | None = None
        self.list_index: I64 | None = None  # where the entries are in table.lists, if all
        listed = ~table["pass_full"][rows]
        any_listed = bool(listed.any())
        if not any_listed:  # full passes (QEMU's first) walk every page in address order
            entry = ranges(first, count)
        elif listed.all():
            self.list_index = ranges(table["list_base"][rows] + first, count)
            entry = table.lists["entry"][self.list_index]
        else:
            j = ranges(first, count)
            listed_e = np.repeat(listed, count)
            entry = j.copy()
            base = np.repeat(table["list_base"][rows], count)[listed_e]
            entry[listed_e] = table.lists["entry"][base + j[listed_e]]
        self.any_skip = any_listed and bool((entry < 0).any())
        if self.any_skip:  # Xen: dirtied again when its batch was peeked
            self.skip = entry < 0
            self.local = np.maximum(entry, 0)
        else:
            self.skip = np.zeros(entry.size, np.bool_)
            self.local = np.asarray(entry, np.int64)
        offset = state.vms["page_offset"][table["vm"][rows]].astype(np.int64)
        self.page = np.repeat(offset, count) + self.local

    @classmethod
    def explicit(cls, which: I64, local: I64, page: I64, n_rows: int) -> Batch:
        """Given pages (the stop-and-copy's pending set), none skipped."""
        b = cls.__new__(cls)
        b._which, b.local, b.page, b.n_rows = which, local, page, n_rows
        b.count, b.list_index, b.first = None, None, None
        if which.size < 2 or bool((which[1:] >= which[:-1]).all()):  # rows together
            b.count = np.bincount(which, minlength=n_rows).astype(np.int64)
            b.starts = np.cumsum(b.count) - b.count
        b.skip = np.zeros(page.size, np.bool_)
        b.any_skip = False
        return b

    @property
    def which(self) -> I64:
        """The index (in rows) of each entry's row."""
        if self._which is None:
            assert self.count is not None
            self._which = np.repeat(np.arange(self.n_rows), self.count)
        return self._which

    def row_of(self, positions: I64) -> I64:
        """The index of the row of each entry at `positions` (ascending)."""
        if self._which is None and self.count is not None:
            return np.asarray(np.searchsorted(self.starts, positions, side="right") - 1,
                              np.int64)
        return self.which[positions]

    def per_row(self, positions: I64) -> I64:
        """How many of the entries at `positions` (ascending) each row has."""
        if self.count is not None:
            # Positions before each row's first entry; the last row's run ends at the end.
            first = np.searchsorted(positions, self.starts)
            out = np.empty(first.size, np.int64)
            np.subtract(first[1:], first[:-1], out=out[:-1])
            out[-1:] = positions.size - first[-1:]
            return out
        return np.bincount(self.which[positions], minlength=self.n_rows).astype(np.int64)


class Cost:
    """Bytes on the wire for each entry of a batch (0 = not sent) and what `record` needs:
    whether it is sent, its content and location, and its XBZRLE outcome."""

    def __init__(self, world: World, table: MigrationTable, rows: I64, b: Batch,
                 last_stage: bool = False) -> None:
        state, policy = world.state, world.spec.policy.migration
        p, page = state.pages, state.page_size
        self.loc = p.at("location", b.page)
        self.sendable = self.loc != _BALLOONED
        if b.any_skip:
            self.sendable &= ~b.skip
        hints = table["free_page_hints"][rows]
        if hints.any():
            free = p.at("guest_kind", b.page) == _FREE
            self.sendable &= ~(np.take(hints, b.which) & free)
        self.content = np.take(p.content, b.page)
        self.zero = self.content == 0
        xen = table["algorithm"][rows] == XEN
        self.qemu_row = ~xen
        # QEMU: a zero page is a header ("duplicate"), others a header more; Xen: the page.
        full_qemu, zero_qemu = qemu_page_bytes(world)
        if xen.all():
            cost = np.full(b.page.size, page, np.int64)
        elif not xen.any():
            cost = self.zero.astype(np.int64)
            cost *= zero_qemu - full_qemu
            cost += full_qemu
        else:
            qemu = ~np.take(xen, b.which)
            cost = np.where(qemu, np.where(self.zero, np.int64(zero_qemu), np.int64(full_qemu)),
                            np.int64(page))
        self.hit: np.ndarray | None = None
        started = table["xbzrle"][rows] & (table["passes"][rows] > 0) & ~xen
        if started.any():
            use = np.take(started, b.which) & self.sendable & ~self.zero
            if use.any():
                self._xbzrle(table, rows, b, use, cost, page,
                             policy.page_header * round(fine_pages(page)), last_stage)
        # Seconds to read each entry back from the source's swap first (None: no entry).
        self.read_s: F64 | None = None
        self.swapped = self.loc == _SWAPPED
        self.any_swapped = bool(self.swapped.any())
        if self.any_swapped:
            swapped = self.sendable & self.swapped
            if swapped.any():
                self.read_s = _read_seconds(world, table, rows, b, swapped)
        self.all_sendable = bool(self.sendable.all())
        if not self.all_sendable:
            cost *= self.sendable
        self.bytes = cost
        self.started = started

    def _xbzrle(self, table: MigrationTable, rows: I64, b: Batch, use: np.ndarray,
                cost: I64, page: int, header: int, last_stage: bool) -> None:
        """QEMU's direct-mapped cache by page address: a hit sends a delta (or the whole
        page when the delta overflows); a miss sends the page and caches it unless its slot
        holds another page cached within CACHED_PAGE_LIFETIME syncs. Only the first page
        of a slot in one go sees the cache as it was (later ones meet that page's entry)."""
        i = np.flatnonzero(use)
        r = rows[b.which[i]]
        slot = table["cache_base"][r] + (b.local[i] & (table["cache_slots"][r] - 1))
        _, first = np.unique(slot, return_index=True)
        alone = np.zeros(i.size, np.bool_)
        alone[first] = True
        cached = table.cache["page"][slot]
        hit = alone & (cached == b.local[i])
        stale = table.cache["age"][slot] + CACHED_PAGE_LIFETIME <= table["dirty_sync_count"][r]
        insert = alone & ~hit & ((cached < 0) | stale) & (not last_stage)
        delta = delta_bytes(self.content[i], table["changed_fraction"][r], page)
        overflow = hit & (delta > page)
        sent_delta = hit & ~overflow
        cost[i[sent_delta]] = (header + XBZRLE_FLAGS + delta)[sent_delta]
        n = b.page.size
        self.hit, self.overflow = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        self.insert, self.slot = np.zeros(n, np.bool_), np.zeros(n, np.int64)
        self.hit[i], self.overflow[i], self.insert[i], self.slot[i] = (
            hit, overflow, insert | hit, slot)


def _read_seconds(world: World, table: MigrationTable, rows: I64, b: Batch,
                  swapped: np.ndarray) -> F64:
    """Each entry's read back from swap (swapread.py), 0 where it needs none: whether it
    starts a read-ahead cluster is decided by the entry before it in its row's list (for
    a row's first entry here, the list's entry before it, looked up)."""
    state = world.state
    i = np.flatnonzero(swapped)
    row = b.row_of(i)
    prev_local = np.full(i.size, -1, np.int64)
    prev_read = np.zeros(i.size, np.bool_)
    inner = np.flatnonzero((i > 0) & (b.row_of(np.maximum(i - 1, 0)) == row))
    prev_local[inner] = b.local[i[inner] - 1]
    prev_read[inner] = swapped[i[inner] - 1]
    if b.first is not None:
        head = np.flatnonzero((i == b.starts[row]) & (b.first[row] > 0))
        if head.size:
            r = rows[row[head]]
            entry = b.first[row[head]] - 1  # a full pass's entries are its pages
            listed = ~table["pass_full"][r]
            entry[listed] = table.lists["entry"][table["list_base"][r[listed]]
                                                 + entry[listed]]
            page = state.vms["page_offset"][table["vm"][r]].astype(np.int64) + np.maximum(
                entry, 0)
            read = (entry >= 0) & (state.pages.at("location", page) == _SWAPPED)
            hints = table["free_page_hints"][r]
            if hints.any():
                read &= ~(hints & (state.pages.at("guest_kind", page) == _FREE))
            prev_local[head], prev_read[head] = entry, read
    starts = starts_cluster(state.page_size, b.local[i], prev_local, prev_read)
    out = np.zeros(b.page.size)
    out[i] = read_seconds(state, table["src"][rows[row]], starts)
    return out


def record(world: World, table: MigrationTable, rows: I64, b: Batch, c: Cost,
           sent: np.ndarray | None = None, sent_bytes: I64 | None = None,
           swap_reads: list[I64] | None = None) -> None:
    """What the destination now holds, and the counters, for the entries `sent` (None:
    all). `sent_bytes`, if known, is each row's bytes sent. Pages read back from swap
    to be sent keep the source's disk busy; `swap_reads` (if given) collects their
    source hosts for the caller to charge."""
    state = world.state
    n = rows.size
    pb = np.repeat(table["page_base"][rows], b.count) if b.count is not None else np.take(
        table["page_base"][rows], b.which)
    pb += b.local
    content = c.content
    at = None if sent is None else np.flatnonzero(sent)  # positions of the entries sent
    if at is not None:
        pb, content = np.take(pb, at), np.take(content, at)
    table.pages["sent"][pb] = content
    table.pages["at_dest"][pb] = True
    if at is None:
        count = b.count if b.count is not None else b.per_row(np.arange(b.page.size))
    else:
        count = b.per_row(at)
    if sent_bytes is None:
        cost = c.bytes if at is None else np.take(c.bytes, at)
        if b.count is not None:  # rows together: sums from the running sum, by row
            running = np.concatenate([[0], np.cumsum(cost)])
            ends = np.cumsum(count)
            sent_bytes = running[ends] - running[ends - count]
        else:
            which = b.which if at is None else np.take(b.which, at)
            sent_bytes = np.bincount(which, cost, minlength=n).astype(np.int64)
    if c.qemu_row.any():  # QEMU counts zero pages apart (Xen sends them as any other)
        zero_sent = c.zero if sent is None else c.zero & sent
        zero = b.per_row(np.flatnonzero(zero_sent)) * c.qemu_row
    else:
        zero = np.zeros(n, np.int64)
    for col in ("pages_sent", "round_sent"):
        table[col][rows] += count
    for col in ("bytes_sent", "round_bytes"):
        table[col][rows] += sent_bytes
    table["window_bytes"][rows] += sent_bytes.astype(np.float64)
    table["zero_pages"][rows] += zero
    table["normal_pages"][rows] += count - zero
    if c.hit is not None or c.started.any():
        keep = np.arange(b.page.size) if at is None else at
        which, local, cost = b.which[keep], b.local[keep], c.bytes[keep]
        zero_kept = c.zero[keep]
        missed = np.take(c.started, which) & ~zero_kept
        if c.hit is not None:
            hit, insert, overflow = c.hit[keep], c.insert[keep], c.overflow[keep]
            slot = c.slot[keep][insert]
            table.cache["page"][slot] = local[insert]
            table.cache["age"][slot] = table["dirty_sync_count"][rows[which[insert]]]
            table["xbzrle_hits"][rows] += np.bincount(which[hit], minlength=n)
            table["xbzrle_overflow"][rows] += np.bincount(which[overflow], minlength=n)
            table["xbzrle_bytes"][rows] += np.bincount(which[hit], cost[hit],
                                                       minlength=n).astype(np.int64)
            missed &= ~hit
        table["xbzrle_misses"][rows] += np.bincount(which[missed], minlength=n)
    swapped = c.swapped if sent is None or not c.any_swapped else c.swapped & sent
    if c.any_swapped and swapped.any():  # read back from swap before they can be sent
        at_swapped = np.flatnonzero(swapped)
        row_swapped = b.row_of(at_swapped)
        table["swap_read_pages"][rows] += np.bincount(row_swapped, minlength=n)
        if c.read_s is not None:
            table["swap_read_s"][rows] += np.bincount(row_swapped, c.read_s[at_swapped],
                                                      minlength=n)
        src = table["src"][rows][row_swapped]
        if swap_reads is not None:
            swap_reads.append(src)
            return
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
    idle = (rate <= 0) & ~reached
    t[idle] = until[idle]
    going = np.flatnonzero(~reached & ~idle & (t < until))
    last_avg = last_count = None  # each going row's last go: bytes per entry, entries
    while going.size:
        r = rows[going]
        carry = table["carry_bytes"][r]
        budget = rate[going] * (until[going] - t[going]) + carry
        if last_avg is None:
            sent_pages = table["pages_sent"][r]
            avg = np.where(sent_pages > 0, table["bytes_sent"][r] / np.maximum(sent_pages, 1),
                           page)
        else:
            avg = last_avg
        # Enough entries for the budget at the bytes per page seen so far (first the whole
        # migration's, then the last go's: the pages just sent are the best guess of the
        # next ones); a few more, and another go if cheap (zero) pages leave budget over.
        # (Guessing from the whole migration's mean alone, a window of zero pages took
        # half a dozen goes, each shorter than the last.) A go costs work for every entry
        # it looks at, so after a go of zero pages the next looks at no more than four
        # times as many: pages dearer than those are cut by the budget, not all costed.
        guess = (budget / np.minimum(np.maximum(avg, 1.0), page) * 1.05).astype(np.int64) + 2
        if last_count is not None:
            guess = np.minimum(guess, 4 * last_count + 64)
        cursor = table["cursor"][r]
        count = np.minimum(limit[going] - cursor, guess)
        swap_reads: list[I64] = []
        k = np.zeros(going.size, np.int64)
        used = np.zeros(going.size)
        for lo, hi in _chunks(count):
            k[lo:hi], used[lo:hi] = _send_some(world, table, r[lo:hi], cursor[lo:hi],
                                               count[lo:hi], budget[lo:hi],
                                               rate[going][lo:hi], swap_reads)
        if swap_reads:  # read back from the source's swap file before they can be sent
            src = np.concatenate(swap_reads)
            busy = world.state.page_size / world.state.hosts.swap_disk_bytes_per_s[src]
            world.state.reclaim.hosts["disk_busy_s_tick"] += np.bincount(
                src, busy, minlength=len(world.state.hosts))
        table["cursor"][r] = cursor + k
        whole = k == count
        at_limit = whole & (cursor + k >= limit[going])
        t_done = t[going] + np.maximum(used - carry, 0.0) / rate[going]
        # Cut by the deadline: the next page is partly on the wire.
        cut = ~whole
        table["carry_bytes"][r] = np.where(cut, budget - used, 0.0)
        t[going] = np.where(cut, until[going], t_done)
        reached[going[at_limit]] = True
        again = whole & ~at_limit & (t[going] < until[going])
        last_avg = used[again] / np.maximum(k[again], 1)
        last_count = k[again]
        going = going[again]
    return t, reached


def _chunks(count: I64) -> list[tuple[int, int]]:
    """Consecutive rows in groups of about CHUNK_ENTRIES entries (a row with more is a
    group of its own): each group's temporaries stay in the CPU caches, where a batch of
    every migration's pages would stream them all through memory several times."""
    if count.size < 2 or int(count.sum()) <= CHUNK_ENTRIES:  # one group (most goes)
        return [(0, int(count.size))]
    first_entry = np.cumsum(count) - count
    group = first_entry // CHUNK_ENTRIES
    edges = np.flatnonzero(np.diff(group)) + 1
    bounds = [0, *edges.tolist(), int(count.size)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _prefix_sums(total: I64, start: I64, k: I64) -> I64:
    """Each row's sum of its first k entries, from the running sum `total` of all the
    entries (each row's together, from `start`)."""
    before = np.where(start > 0, total[np.maximum(start - 1, 0)], 0)
    sums: I64 = np.where(k > 0, total[np.maximum(start + k - 1, 0)] - before, 0)
    return sums


def _send_some(world: World, table: MigrationTable, r: I64, cursor: I64, count: I64,
               budget: F64, rate: F64, swap_reads: list[I64]) -> tuple[I64, F64]:
    """Send what fits each row's budget of its next `count` entries; returns how many
    entries each got through and the budget they used: their bytes, and the reads of
    swapped pages as the bytes the row's `rate` would have sent meanwhile (the sender
    waits for each read: swapread.py)."""
    b = Batch(world, table, r, cursor, count)
    c = Cost(world, table, r, b)
    cost = c.bytes
    if c.read_s is not None:
        at = np.flatnonzero(c.read_s)
        cost = cost.copy()
        cost[at] += np.ceil(c.read_s[at] * rate[b.row_of(at)]).astype(np.int64)
    # What fits each row's budget is a prefix of its entries (costs are >= 0): found by
    # a search in the running sum of the costs. Sums are of whole bytes, so the test
    # `bytes <= budget + 1e-6` is `bytes <= floor(budget + 1e-6)`, in integers.
    total = np.cumsum(cost)
    start = b.starts
    before = np.where(start > 0, total[np.maximum(start - 1, 0)], 0)
    allowed = np.floor(np.minimum(budget + 1e-6, 2.0**62)).astype(np.int64)
    # np.minimum(np.maximum()): np.clip's Python layer costs more than the sums here.
    k = np.minimum(np.maximum(np.searchsorted(
        total, before + np.maximum(allowed, -1), side="right") - start, 0), count)
    used = _prefix_sums(total, start, k)
    wire = used if c.read_s is None else _prefix_sums(np.cumsum(c.bytes), start, k)
    fit = None
    if (k < count).any():
        fit = np.ones(c.bytes.size, np.bool_)
        fit[ranges(start + k, count - k)] = False
    sent = fit if c.all_sendable else c.sendable if fit is None else fit & c.sendable
    record(world, table, r, b, c, sent, wire, swap_reads)
    return k, used.astype(np.float64)
