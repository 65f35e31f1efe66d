"""Per-VM page counters kept in step with the page arrays."""

from __future__ import annotations

import numpy as np

from engine.state import I64, N_LOC, State


def count_moves(state: State, vm: I64, old: np.ndarray, new: int, column: str = "loc_count",
                width: int = N_LOC) -> None:
    """Per-VM counters of pages by location (or guest kind): `old` -> `new`."""
    n = len(state.vms)
    table = state.vms[column]
    table[:, new] += np.bincount(vm, minlength=n)
    table -= np.bincount(vm * width + old.astype(np.int64),
                         minlength=n * width).reshape(n, width)
