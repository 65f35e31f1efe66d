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
"""

from __future__ import annotations

import numpy as np

from engine.arrays import ranges
from engine.state import I64, U8, Bool, Loc, State
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
