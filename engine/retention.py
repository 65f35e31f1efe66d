"""What a long run keeps: nothing that grows with run length unless the user asked for it.

The engine's per-tick records are bounded by construction: this tick's events (the
caller takes them), the sparkline history (a ring of world.HISTORY_TICKS), the write log
(emptied every tick). What a run accumulates per user action stays small: a finished
migration keeps its counters and rounds for the report, but its page arrays (a send list,
the content sent, what the destination holds: ~20 bytes per page of the VM, 20 MiB for a
1 GiB VM at 4 KiB pages) are given back once nothing reads them any more. A post-copy's
`pushed` pages are read until the guest has touched them all (minor faults), then go too.
A pre-copy that never converges keeps its first and last rounds (RoundLog).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.world import World

FINISHED = ("done", "failed", "cancelled")
_EMPTY = {"to_send": np.int64, "sent_content": np.uint64, "at_dest": np.bool_,
          "in_cache": np.bool_, "pushed": np.bool_}


def release_finished(world: World) -> None:
    for mig in world.state.migrations:
        bound_rounds(mig)
        if mig.status not in FINISHED or mig.at_dest.size == 0 and mig.pushed.size == 0:
            continue
        counting = mig.status == "done" and mig.mode != "precopy" and mig.pushed.any()
        for name, dtype in _EMPTY.items():
            if name == "pushed" and counting:
                continue
            setattr(mig, name, np.zeros(0, dtype))


ROUNDS_KEPT = 1000  # a migration's first and last rounds kept for the report (half each)


class RoundLog:
    """A migration's rounds, bounded: the first ROUNDS_KEPT/2 and the last ROUNDS_KEPT/2.

    A pre-copy that never converges (QEMU without auto-converge) goes on for as long as the
    run: a round a second or more, each kept for the report. Past the bound the middle
    ones are dropped; `len()` still counts every round (a new round's index is its len + 1,
    Xen's round limit compares against it) and each kept round carries its own index, so
    a reader sees the gap. Supports what the engine does with the list: append, indexing
    from either end, iteration, truth."""

    def __init__(self, rounds: Any, total: int | None = None) -> None:
        kept = list(rounds)
        half = ROUNDS_KEPT // 2
        self.total = len(kept) if total is None else total
        self.head: list[Any] = kept[:half]
        self.tail: deque[Any] = deque(kept[half:][-half:], maxlen=half)

    def append(self, item: Any) -> None:
        self.total += 1
        if len(self.head) < ROUNDS_KEPT // 2:
            self.head.append(item)
        else:
            self.tail.append(item)

    def _kept(self) -> list[Any]:
        return [*self.head, *self.tail]

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._kept())

    def __getitem__(self, index: int | slice) -> Any:
        # Negative indices count from the newest round, as on the full list.
        return self._kept()[index]

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, RoundLog | list) else NotImplemented

    def __repr__(self) -> str:
        return f"RoundLog({self.total} rounds, {len(self._kept())} kept)"


def bound_rounds(mig: Any) -> None:
    """Swap a migration's round list for a RoundLog once it outgrows the bound; after a
    load, the last kept round's index says how many there were."""
    rounds = mig.rounds
    if isinstance(rounds, RoundLog):
        return
    total = rounds[-1].index if rounds else 0
    if len(rounds) > ROUNDS_KEPT or total > len(rounds):
        mig.rounds = RoundLog(rounds, total=max(total, len(rounds)))
