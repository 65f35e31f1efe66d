"""How far ksmd's batches reach, and Linux 6.7's smart scan (mm/ksm.c).

A batch is `pages_to_scan` pages that scan_get_next_rmap_item hands to
cmp_and_merge_page. It walks past what it does not hand over at no cost to the batch: an
address with no page present (never touched, swapped, ballooned, compressed, or still at a
post-copy source) and, under smart scan, a page it skips. So a host with much of its memory
out, or many pages that never merge, covers more of its pages per batch.

Smart scan ages each tracked page that is not a KSM page at every visit. Younger than three
visits, it is always processed. From then on, a visit with no skips left processes it and
grants skip_age(age) skips (1 up to age 3, 2 up to 5, 4 up to 8, then 8); a visit with
skips left skips it: one skip fewer, and out of the unstable tree (pages_unshared falls).
A page that merges is a KSM page and is never skipped; a page no longer present loses its
rmap_item, and with it its age. The age is held capped at 9 (past it skip_age does not
change) with the skips left in one byte a page (sharing.ksm_age).

batches() gives a tick's batches of every host at once, in numpy passes (reach() and
visit()). Compiled (engine/kernels.py), ksm_front.batch_candidates walks each host's
positions once, counting each against the budget as reach() does, visiting it and taking
it through cmp_and_merge_page's first step at once; the two ways agree bit for bit.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from engine.arrays import ranges
from engine.state import I64, U8, WORD_SHIFT, Bool, Loc, State
from engine.state_tables import KSM_MAX_AGE

_FIRST_SKIPPED_AGE = 3  # younger pages go through every phase of merging first


def _skip_age(age: int) -> int:
    """mm/ksm.c skip_age: the skips a page that keeps not merging is granted at `age`."""
    return 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8


def _transitions() -> tuple[U8, Bool]:
    """For every value of a page's byte (age low, skips left high): the byte after a visit
    of the page as a present page that is not a KSM page, and whether that visit skips it
    (should_skip_rmap_item). A visit is then two lookups, whatever the page."""
    after = np.zeros(256, np.uint8)
    skips = np.zeros(256, np.bool_)
    for byte in range(256):
        age, left = byte & 15, byte >> 4
        skip = False
        if age >= _FIRST_SKIPPED_AGE:
            if left == 0:
                left = _skip_age(age)
            else:
                left, skip = left - 1, True
        after[byte] = min(age + 1, KSM_MAX_AGE) | (min(left, 15) << 4)
        skips[byte] = skip
    return after, skips


_AFTER, _SKIPS = _transitions()


def ages(state: State) -> U8:
    """The per-page smart scan byte, made (zeros, mapped in only where written) on first use."""
    sharing = state.sharing
    if sharing.ksm_age is None:
        sharing.ksm_age = np.zeros(len(state.pages), np.uint8)
    return sharing.ksm_age


def visit(state: State, pages: I64, loc: U8 | None = None, byte: U8 | None = None) -> Bool:
    """Smart scan's visit of `pages` (a pass's range, each page once; `loc` their locations
    and `byte` their smart scan bytes, if read already): ages the present pages that are not
    KSM pages and counts down or grants their skips. Returns which are skipped
    (should_skip_rmap_item), as judged before the visit."""
    byte_all = ages(state)
    if loc is None:
        loc = state.pages.at("location", pages)
    at = np.flatnonzero(loc == Loc.PRIVATE)
    mine = pages[at]
    mine_byte = np.take(byte_all, mine) if byte is None else np.take(byte, at)
    byte_all[mine] = np.take(_AFTER, mine_byte)
    out = np.zeros(pages.size, np.bool_)
    out[at] = np.take(_SKIPS, mine_byte)
    return out


def reach(state: State, positions: object, hosts: I64, start: I64, remaining: I64,
          budget: I64, smart: bool) -> tuple[I64, I64, Bool, tuple[I64, U8, U8]]:
    """For each host (ascending), from scan position `start`, the positions a batch budget
    of `budget` handed-over pages covers: up to and with the budget-th page handed over,
    or all `remaining` positions when fewer are left. `positions(hosts, start, length)` gives
    the pages at scan positions (ksm._Layout.pages). Returns (positions covered, pages
    handed over in them, whether the last position left is one not handed over, and the
    covered positions' pages, locations and smart scan bytes (zeros without smart scan),
    host after host)."""
    n = np.zeros(hosts.size, np.int64)
    used = np.zeros(hosts.size, np.int64)
    trailing = np.zeros(hosts.size, np.bool_)
    # Where each host's covered positions lie in `parts` (concatenated), as found.
    part_start = np.zeros(hosts.size, np.int64)
    parts: list[tuple[I64, U8, U8]] = []
    offset = 0
    todo = np.flatnonzero(budget > 0)
    # A window a little past where the host's last pass found its budget (twice the budget
    # at first): then it grows fourfold until it reaches. Only the work depends on it.
    sharing = state.sharing
    if sharing.ksm_reach_hint is None or sharing.ksm_reach_hint.size != len(state.hosts):
        sharing.ksm_reach_hint = np.full(len(state.hosts), 2.0)
    hint = sharing.ksm_reach_hint[hosts]
    window = np.minimum(remaining, (budget * hint).astype(np.int64) + 256)
    while todo.size:
        w = window[todo]
        pages = positions(hosts[todo], start[todo], w)  # type: ignore[operator]
        loc = state.pages.at("location", pages)
        counted = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
        if smart:
            byte = np.take(ages(state), pages)
            counted &= ~((loc == Loc.PRIVATE) & np.take(_SKIPS, byte))
        else:
            byte = np.zeros(pages.size, np.uint8)
        cum = np.cumsum(counted, dtype=np.int64)
        end = np.cumsum(w)
        first = end - w
        before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0)
        inside = cum[end - 1] - before
        want = budget[todo]
        reached = inside >= want
        at = np.searchsorted(cum, before + want)  # the budget-th handed-over position
        r = todo[reached]
        n[r] = at[reached] - first[reached] + 1
        used[r] = want[reached]
        whole = ~reached & (w == remaining[todo])
        h = todo[whole]
        n[h] = remaining[h]
        used[h] = inside[whole]
        trailing[h] = ~counted[end[whole] - 1]
        done = reached | whole
        take = ranges(first[done], n[todo[done]])
        parts.append((pages[take], loc[take], byte[take]))
        part_start[todo[done]] = offset + np.cumsum(n[todo[done]]) - n[todo[done]]
        offset += take.size
        todo = todo[~done]
        window[todo] = np.minimum(remaining[todo], 4 * window[todo])
    seen = used > 0
    sharing.ksm_reach_hint[hosts[seen]] = 1.5 * n[seen] / used[seen]
    if len(parts) == 1:
        return n, used, trailing, parts[0]
    order = ranges(part_start, n)  # host after host, as the hosts ascend
    if not parts:
        return n, used, trailing, (np.zeros(0, np.int64), np.zeros(0, np.uint8),
                                   np.zeros(0, np.uint8))
    return n, used, trailing, (np.concatenate([part[0] for part in parts])[order],
                               np.concatenate([part[1] for part in parts])[order],
                               np.concatenate([part[2] for part in parts])[order])


class Layout(Protocol):
    """Where each host's scan positions lie (ksm._Layout): its VMs `vm[host_first[h]:
    host_first[h + 1]]`, VM i's pages `offset[i]...` at positions [vm_start[i], vm_end[i])."""

    vm: I64
    host_first: I64
    vm_start: I64
    vm_end: I64
    offset: I64

    def pages(self, hosts: I64, start: I64, length: I64) -> I64: ...


def batches(state: State, layout: Layout, hosts: I64, start: I64, remaining: I64,
            budget: I64, smart: bool) -> tuple[I64, I64, Bool, I64, I64, I64, U8]:
    """Each host's batches (hosts ascending; `start`, `remaining` and `budget` as for
    reach()), smart scan's visit of what they cover included. Returns (positions covered,
    pages handed over in them, whether the last position left is one not handed over, and
    the pages handed over with their hosts, VMs and locations, host after host, each
    host's in scan order)."""
    n, used, trailing, (pages, loc, byte) = reach(state, layout.pages, hosts, start,
                                                   remaining, budget, smart)
    page_host = np.repeat(hosts, n)
    if smart:
        go = np.flatnonzero(~_skip(state, pages, page_host, loc, byte))
        pages, page_host, loc = pages[go], page_host[go], loc[go]
    return n, used, trailing, pages, page_host, state.vms.vm_of_pages(pages), loc


def _skip(state: State, pages: I64, page_host: I64, loc: U8, byte: U8) -> Bool:
    """Smart scan's visit of a pass's pages (visit()): the skipped ones leave the unstable
    tree they were left in (pages_unshared) and are counted (pages_skipped)."""
    skip = visit(state, pages, loc, byte)
    if skip.any():
        counters, flagged = state.sharing.hosts, state.sharing.ksm_unstable
        assert flagged is not None
        n_hosts = len(state.hosts)
        gone, gone_host = pages[skip], page_host[skip]
        was = np.take(flagged, gone)
        counters["ksm_unshared"] -= np.bincount(gone_host[was], minlength=n_hosts)
        flagged[gone[was]] = False
        counters["ksm_pages_skipped"] += np.bincount(gone_host, minlength=n_hosts)
    return skip


NO_AGES = np.zeros(1, np.uint8)  # what a walk is given for the ages without them


def walk_args(state: State, layout: Layout, hosts: I64, start: I64,
              smart: bool) -> tuple[Any, ...]:
    """The arguments of a compiled walk over the batches' positions (ksm_front's
    batch_candidates) that say where they lie: the page records, the smart scan bytes and
    their skips, the layout, the hosts and their first positions, smart or not, the
    location's shift and private code, and each smart scan byte's value after a visit."""
    i64 = np.int64
    return (state.pages.word, ages(state) if smart else NO_AGES, _SKIPS,
            np.asarray(layout.host_first, i64), np.asarray(layout.vm_start, i64),
            np.asarray(layout.vm_end, i64), np.asarray(layout.offset, i64),
            np.asarray(hosts, i64), np.asarray(start, i64), smart, WORD_SHIFT["location"],
            int(Loc.PRIVATE), _AFTER)
