"""The synthetic page-touch generator every workload builds on.

Per running VM and tick: Poisson numbers of reads and writes at the VM's rates; each touch
goes to the hot subset with probability `hot_access`, else anywhere in the working set,
uniformly; or, for sequential workloads, the next pages of a sweep over the working set.
All VMs are generated together with flat arrays, one entry per touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.state import I64, Bool, State


@dataclass
class Touches:
    read_vm: I64
    read_pages: I64
    write_vm: I64
    write_pages: I64
    write_zero: Bool

    @property
    def count(self) -> int:
        return int(self.read_pages.size + self.write_pages.size)


def generate(state: State, rng: np.random.Generator, active: Bool) -> Touches:
    vms = state.vms
    tick_s = state.tick_s
    n_r = rng.poisson(np.where(active, vms["reads_per_s"] * tick_s, 0.0)).astype(np.int64)
    n_w = rng.poisson(np.where(active, vms["writes_per_s"] * tick_s, 0.0)).astype(np.int64)
    n_ops = n_r + n_w
    total = int(n_ops.sum())
    vm = np.repeat(np.arange(len(vms), dtype=np.int64), n_ops)
    ends = np.cumsum(n_ops)
    rank = np.arange(total, dtype=np.int64) - np.repeat(ends - n_ops, n_ops)
    is_write = rank >= np.repeat(n_r, n_ops)

    ws = vms["ws_pages"][vm]
    span = np.where(rng.random(total) < vms["hot_access"][vm], vms["hot_pages"][vm], ws)
    local = (rng.random(total) * span).astype(np.int64)
    sequential = vms["sequential"]
    if sequential.any():
        seq_op = sequential[vm]
        local[seq_op] = (vms["seq_cursor"][vm[seq_op]] + rank[seq_op]) % ws[seq_op]
        vms["seq_cursor"][sequential] = (
            (vms["seq_cursor"] + n_ops) % np.maximum(vms["ws_pages"], 1))[sequential]
    pages = vms["page_offset"][vm] + local

    write_vm, write_pages = vm[is_write], pages[is_write]
    zero_p = vms["zero_writes"]
    if zero_p.any():
        write_zero = rng.random(write_pages.size) < zero_p[write_vm]
    else:
        write_zero = np.zeros(write_pages.size, np.bool_)
    is_read = ~is_write
    return Touches(vm[is_read], pages[is_read], write_vm, write_pages, write_zero)
