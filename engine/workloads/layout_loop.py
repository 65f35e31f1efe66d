"""The synthetic generator's touches laid out in one compiled loop (engine/kernels.py).

Given the random numbers numpy drew (the same ones, in the same order), the numpy passes
spread each VM's offset and span over its touches (np.repeat), scale, truncate, add, make
each sweep's pages, then join the groups: some ten passes over a third of a million
touches a tick on the data center. Here each touch's page is written once, into its place
in the joined array: the hot touches of every VM, then the working-set ones, then the
sweeps, as synthetic.generate joins them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels import Kernel
from engine.state import I64

F64 = npt.NDArray[np.float64]


def _lay_out_loop(n_hot: I64, u_hot: F64, n_ws: I64, u_ws: F64, n_swept: I64, offset: I64,
                  hot: I64, ws: I64, start: I64, out: I64) -> None:
    """out = [offset + u * hot for each VM's hot touches] + [offset + u * ws for its
    working-set ones] + [offset + (start + i) mod ws for the i-th page of its sweep]."""
    k = 0
    for v in range(n_hot.size):
        span = float(hot[v])  # numpy multiplies by the span as a float too
        base = offset[v]
        for _ in range(n_hot[v]):
            out[k] = base + np.int64(u_hot[k] * span)  # truncated, as astype does
            k += 1
    j = 0
    for v in range(n_ws.size):
        span = float(ws[v])
        base = offset[v]
        for _ in range(n_ws[v]):
            out[k] = base + np.int64(u_ws[j] * span)
            k += 1
            j += 1
    for v in range(n_swept.size):
        c = n_swept[v]
        if c == 0:
            continue
        wrap = max(ws[v], 1)
        local = start[v] % wrap  # Python's modulo, as numpy's: never negative here
        base = offset[v]
        for _ in range(c):
            out[k] = base + local
            k += 1
            local += 1
            if local == wrap:
                local = 0


def _lay_out_samples() -> list[tuple[Any, ...]]:
    i64, f64 = np.zeros(1, np.int64), np.zeros(0)
    return [(i64, f64, i64, f64, i64, i64, i64, i64, i64, np.zeros(0, np.int64))]


_LAY_OUT = Kernel(_lay_out_loop, _lay_out_samples)


def lay_out(n_hot: I64, u_hot: F64, n_ws: I64, u_ws: F64, n_swept: I64, offset: I64, hot: I64,
            ws: I64, start: I64, out: I64 | None = None) -> I64:
    """_lay_out_loop (per-VM columns of any integer type) into `out`, or a fresh array.
    `out` may be a slice of a larger array: a part of the groups (the others' counts all
    zero) laid out into its place, while another thread lays out the rest."""
    n_hot, n_ws, n_swept, offset, hot, ws, start = (
        np.asarray(a, np.int64) for a in (n_hot, n_ws, n_swept, offset, hot, ws, start))
    k_hot, k_ws = int(n_hot.sum()), int(n_ws.sum())
    size = k_hot + k_ws + int(n_swept.sum())
    if out is None:
        out = np.empty(size, np.int64)
    if out.size != size or u_hot.size != k_hot or u_ws.size != k_ws:
        raise ValueError("lay_out: the counts do not match the numbers or the output")
    _LAY_OUT(n_hot, u_hot, n_ws, u_ws, n_swept, offset, hot, ws, start, out)
    return out
