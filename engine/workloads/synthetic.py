"""The synthetic page-touch generator every workload builds on.

Per running VM and tick: Poisson numbers of reads and writes at the VM's rates; a binomial
share `hot_access` of them goes to the hot subset (the first `hot_pages` of the working
set, which starts `ws_start` pages into the VM), the rest anywhere in the working set,
uniformly; or, for sequential workloads, the next pages of a sweep over the working set
(reads first, then writes). All VMs are drawn
together as flat arrays, grouped by VM, so the cost is a few passes over the touches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine import kernels, parallel
from engine.rng import uniform_ahead
from engine.state import F64, I64, Bool, State
from engine.workloads import layout_loop


@dataclass
class Touches:
    read_pages: I64  # global page indices, duplicates allowed
    write_pages: I64
    write_zero: Bool  # the write stores a zero page
    reads_per_vm: I64
    writes_per_vm: I64

    @property
    def count(self) -> int:
        return int(self.read_pages.size + self.write_pages.size)


def _uniform(u: F64, counts: I64, offset: I64, span: I64) -> I64:
    """Pages drawn uniformly from each VM's span, from numbers u in [0, 1)."""
    return np.repeat(offset, counts) + (u * np.repeat(span, counts)).astype(np.int64)


def _sweep(counts: I64, offset: I64, start: I64, span: I64) -> I64:
    n = int(counts.sum())
    span = np.maximum(span, 1)
    # Page start + rank of the sweep, wrapped into the span: start + rank is
    # start - (first index of the VM's run) + index.
    local: I64 = np.repeat(start - (np.cumsum(counts) - counts), counts) + np.arange(
        n, dtype=np.int64)
    per_touch_span = np.repeat(span, counts)
    if ((start >= 0) & (start + counts <= 2 * span)).all():
        # Wrapping at most once, as a sweep of a tick mostly does: a subtraction, not a
        # division per touch.
        local -= per_touch_span * (local >= per_touch_span)
    else:
        local %= per_touch_span
    return np.repeat(offset, counts) + local


def _pace(state: State, active: Bool) -> F64:
    """Each VM's share of its nominal rates this tick: a closed-loop workload runs only as
    fast as last tick's faults let it."""
    vms = state.vms
    return np.where(active, vms["speed"] * (1.0 - vms["throttle"]) * vms["demand_scale"],
                    0.0)


def page_touch_rates(state: State, active: Bool, pages: I64, vm: I64) -> tuple[F64, Bool]:
    """Each page's touches per second as `generate` draws them this tick, and whether a
    sweep makes them (one touch a pass, at a phase uniform over the pass) rather than
    random access (a Poisson process). Pages outside the working set are never touched."""
    vms = state.vms
    rate = ((vms["reads_per_s"] + vms["writes_per_s"]) * _pace(state, active))[vm]
    local = pages - (vms["page_offset"] + vms["ws_start"])[vm]
    ws, hot = vms["ws_pages"][vm], vms["hot_pages"][vm]
    swept = vms["sequential"][vm].astype(np.bool_)
    hot_share = np.where(swept, 0.0, vms["hot_access"][vm])
    in_ws = (local >= 0) & (local < ws)
    in_hot = (local >= 0) & (local < hot)
    per_page = (np.where(in_ws, (1.0 - hot_share) / np.maximum(ws, 1), 0.0)
                + np.where(in_hot, hot_share / np.maximum(hot, 1), 0.0))
    return rate * per_page, swept


def _counts(rng: np.random.Generator, n: I64, seq: Bool, hot_access: F64) -> tuple[I64, I64, I64]:
    """One kind's numbers of touches (reads or writes) per VM: hot, working-set (random
    access) and, for a sequential VM, the touches of its sweep."""
    rnd = np.where(seq, 0, n)
    n_hot = rng.binomial(rnd, hot_access).astype(np.int64)
    return n_hot, rnd - n_hot, np.where(seq, n, 0)


def _draws(rng: np.random.Generator, n: I64, seq: Bool,
           hot_access: F64) -> tuple[I64, F64, I64, F64, I64]:
    """One kind's counts and the uniform numbers of its random touches (the hot ones',
    then the working-set ones')."""
    n_hot, n_ws, n_swept = _counts(rng, n, seq, hot_access)
    u_hot, u_ws = rng.random(int(n_hot.sum())), rng.random(int(n_ws.sum()))
    return n_hot, u_hot, n_ws, u_ws, n_swept


_NO_NUMBERS = np.zeros(0)


def _lay_out_compiled(rng: np.random.Generator, n_r: I64, n_w: I64, seq: Bool,
                      hot_access: F64, offset: I64, hot: I64, ws: I64,
                      cursor: I64) -> tuple[I64, I64]:
    """The reads' and writes' pages, the numbers drawn in the order the numpy passes draw
    them, on two threads: the reads' hot touches are drawn and laid out on the helper (a
    generator set at the stream's state, the stream moved past them: engine/rng.py) while
    the rest is drawn and laid out here (numpy lets go of the GIL as it draws; the two
    parts are disjoint slices of the reads' array)."""
    n_hot, n_ws, n_swept = _counts(rng, n_r, seq, hot_access)
    k_hot, k_ws = int(n_hot.sum()), int(n_ws.sum())
    read_pages = np.empty(k_hot + k_ws + int(n_swept.sum()), np.int64)
    none = np.zeros(n_r.size, np.int64)
    ahead = uniform_ahead(rng, k_hot)
    drawn = rng.random(k_hot) if ahead is None else _NO_NUMBERS  # else drawn here, first

    def lay_hot() -> None:
        u_hot = drawn if ahead is None else ahead.random(k_hot)
        layout_loop.lay_out(n_hot, u_hot, none, _NO_NUMBERS, none, offset, hot, ws, cursor,
                            read_pages[:k_hot])

    wait_hot = parallel.beside(lay_hot)
    layout_loop.lay_out(none, _NO_NUMBERS, n_ws, rng.random(k_ws), n_swept, offset, hot, ws,
                        cursor, read_pages[k_hot:])
    write_pages = layout_loop.lay_out(*_draws(rng, n_w, seq, hot_access), offset, hot, ws,
                                      cursor + n_r)
    wait_hot()
    return read_pages, write_pages


def generate(state: State, rng: np.random.Generator, active: Bool) -> Touches:
    vms = state.vms
    pace = _pace(state, active) * state.tick_s
    n_r = rng.poisson(vms["reads_per_s"] * pace).astype(np.int64)
    n_w = rng.poisson(vms["writes_per_s"] * pace).astype(np.int64)
    seq = vms["sequential"]
    offset, ws, hot = vms["page_offset"] + vms["ws_start"], vms["ws_pages"], vms["hot_pages"]
    hot_access = vms["hot_access"]

    # Per kind: the hot touches of every VM, then the working-set ones, then the sweeps
    # (sequential VMs: their reads first, then their writes); numbers drawn in that order.
    cursor = vms["seq_cursor"].copy()  # the helper may read it while the column changes
    if kernels.compiled():
        read_pages, write_pages = _lay_out_compiled(rng, n_r, n_w, seq, hot_access, offset,
                                                    hot, ws, cursor)
    else:
        reads = _draws(rng, n_r, seq, hot_access)
        writes = _draws(rng, n_w, seq, hot_access)
        read_pages, write_pages = (
            np.concatenate([_uniform(u_hot, n_hot, offset, hot), _uniform(u_ws, n_ws, offset, ws),
                            _sweep(n_swept, offset, start, ws)])
            for (n_hot, u_hot, n_ws, u_ws, n_swept), start in ((reads, cursor),
                                                                (writes, cursor + n_r)))
    if seq.any():
        vms["seq_cursor"] = np.where(seq, (cursor + n_r + n_w) % np.maximum(ws, 1), cursor)

    zero_p = vms["zero_writes"]
    if zero_p.any():
        write_zero = rng.random(write_pages.size) < zero_p[vms.vm_of_pages(write_pages)]
    else:
        write_zero = np.zeros(write_pages.size, np.bool_)
    return Touches(read_pages, write_pages, write_zero, n_r, n_w)
