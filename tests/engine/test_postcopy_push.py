"""Post-copy's push order with pre-paging (migration/postcopy.py Push): outward from the
latest fault, the pages above and below it in turn, nearest first, each page once."""

from __future__ import annotations

import numpy as np

from engine.migration.postcopy import Push


def _reference(remote: np.ndarray, lo: int, hi: int, k: int) -> tuple[list[int], list[bool]]:
    """The next k pages by the rule itself, page by page."""
    up = [p for p in range(hi + 1, remote.size) if remote[p]]
    down = [p for p in range(lo - 1, -1, -1) if remote[p]]
    pages, side = [], []
    for i in range(max(len(up), len(down))):
        for got, is_up in ((up, True), (down, False)):
            if i < len(got):
                pages.append(got[i])
                side.append(is_up)
    return pages[:k], side[:k]


def _push(remote: np.ndarray, pivot: int) -> Push:
    table = {"prepaging": np.array([True]), "edge_lo": np.array([pivot]),
             "edge_hi": np.array([pivot]), "pivot": np.array([pivot])}
    return Push(None, table, 0, remote)  # type: ignore[arg-type]


def test_the_push_goes_outward_from_the_pivot_both_sides_in_turn() -> None:
    remote = np.ones(40, np.bool_)
    remote[[10, 18, 19, 20, 21, 25]] = False
    push = _push(remote, 20)
    pages, side = push.next(6)
    assert pages.tolist() == [22, 17, 23, 16, 24, 15]
    assert side.tolist() == [True, False, True, False, True, False]
    push.commit(pages, side)
    pages, side = push.next(4)
    assert pages.tolist() == [26, 14, 27, 13]  # past 25 (here) above, on from 14 below
    # Near the bottom the lower side runs out: the rest from the upper one.
    pages, side = _push(np.ones(40, np.bool_), 2).next(6)
    assert pages.tolist() == [3, 1, 4, 0, 5, 6]
    assert side.tolist() == [True, False, True, False, True, True]


def test_the_push_finds_the_pages_the_rule_gives_as_pages_leave() -> None:
    # Sparse remote pages, faults moving the pivot about and pages going in between (the
    # pages remote when the tick began, looked up, go stale as pages leave): each answer
    # is the rule's, page by page.
    rng = np.random.default_rng(7)
    for density in (0.02, 0.3, 0.9):
        n = 3000
        remote = rng.random(n) < density
        push = _push(remote, int(rng.integers(n)))
        for _ in range(40):
            k = int(rng.integers(1, 300))
            lo, hi = int(push.table["edge_lo"][0]), int(push.table["edge_hi"][0])
            want = _reference(remote, lo, hi, k)
            pages, side = push.next(k)
            assert (pages.tolist(), side.tolist()) == want
            went = int(rng.integers(0, pages.size + 1))
            push.commit(pages[:went], side[:went])
            if rng.random() < 0.3 and remote.any():  # a fault elsewhere: fetched, new pivot
                page = int(rng.choice(np.flatnonzero(remote)))
                remote[page] = False
                push.pivot(page)
