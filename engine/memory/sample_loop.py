"""The hypervisor's sample read in one compiled loop (engine/kernels.py).

Every tick the sampling phase asks, of each VM's 100 sampled pages, how many hold the
current period's touch code (memory/sampling.py): 100,000 bytes read at random from the
page marks on the data center. As a gather and a count it took 0.95-1.0 ms a tick (on
two threads); here each VM's pages are counted in turn with the mark of a page 32 ahead
asked for (engine/prefetch.py), the VMs in pieces on two threads: 0.49 ms (0.64 with the
mark 16 ahead).

The sweep of stale touch codes (memory/recency.py) is a loop too: a select each byte,
which the compiler makes vector code, where numpy made two comparisons, an and and a
putmask over the tick's slice of the marks (37 us a slice in cache, against 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import kernels, parallel
from engine.kernels import Kernel
from engine.prefetch import prefetch
from engine.state import I64, U8


def _count_loop(sample: I64, touched: U8, code: int, out: I64, first: int,
                stop: int) -> None:
    """out[v] = how many of sample[v] hold `code`, for VMs first..stop-1."""
    per_vm = sample.shape[1]
    for v in range(first, stop):
        n = 0
        for j in range(per_vm):
            if j + 32 < per_vm:
                prefetch(touched, sample[v, j + 32])
            elif v + 1 < stop and j + 32 - per_vm < per_vm:  # the next VM's first
                prefetch(touched, sample[v + 1, j + 32 - per_vm])
            n += touched[sample[v, j]] == code
        out[v] = n


def _count_samples() -> list[tuple[Any, ...]]:
    return [(np.zeros((0, 1), np.int64), np.zeros(1, np.uint8), 1, np.zeros(0, np.int64),
             0, 0)]


_COUNT = Kernel(_count_loop, _count_samples)


def count_touched(sample: I64, touched: U8, code: int) -> I64:
    """How many of each row of `sample` (pages) hold `code` in `touched`: the VMs in
    pieces on two threads (each writes its own rows' counts)."""
    sample = np.ascontiguousarray(sample, np.int64)
    out = np.zeros(sample.shape[0], np.int64)
    vms_to_split = max(kernels.MIN_SPLIT // max(sample.shape[1], 1), 1)
    parallel.spread(lambda lo, hi: _COUNT(sample, touched, int(code), out, lo, hi),
                    parallel.even(sample.shape[0], vms_to_split))
    return out


def _sweep_loop(chunk: U8, keep_a: int, keep_b: int) -> None:
    """Every byte of `chunk` but those equal to keep_a or keep_b set to 0."""
    a, b, zero = np.uint8(keep_a), np.uint8(keep_b), np.uint8(0)
    for i in range(chunk.size):
        x = chunk[i]
        chunk[i] = x if (x == a) | (x == b) else zero


_SWEEP = Kernel(_sweep_loop, lambda: [(np.zeros(1, np.uint8), 1, 2)])


def sweep_stale(chunk: U8, keep_a: int, keep_b: int) -> None:
    """_sweep_loop."""
    _SWEEP(chunk, int(keep_a), int(keep_b))
