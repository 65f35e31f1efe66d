"""Overhead memory is machine memory (MECHANISMS section 6, ESX section 6).

The VMM's per-VM data (page tables, frame buffer, the monitor) takes frames from the host at
power-on: `overhead_per_vm` plus `overhead_per_vcpu` per virtual CPU. They are never
reclaimed, count in the host's free-memory state like any other use, and go back at
power-off. A live migration reserves them at the destination when it starts (ESX's
reservation stage) and hands them over at switch-over; the source's go back then. A VM
whose overhead cannot be backed yet (host short) stalls until it is (memory/boot.py).

Each VM owns `overhead_pages` slots in state.overhead (frames held on its host, frames
reserved at a destination). With policy.memory.overhead_frames = false no frame is taken:
overhead is then only reserved in allocation targets and admission (the old accounting).

The migration code calls three hooks: `reserve` when a migration starts, `hand_over` when
the VM switches to the destination, `cancel_reservation` when the migration fails.
"""

from __future__ import annotations

import numpy as np

from engine.memory import frames as frame_alloc
from engine.spec import MemoryPolicy
from engine.state import I64, State


def pages_for(policy: MemoryPolicy, vcpus: int, page_size: int) -> int:
    """Overhead of one VM in pages (rounded up)."""
    return -(-(policy.overhead_per_vm + policy.overhead_per_vcpu * vcpus) // page_size)


def define(state: State, policy: MemoryPolicy, vms: range) -> None:
    """Give newly defined VMs their overhead size and table slots."""
    if len(vms) == 0:
        return
    v = np.arange(vms.start, vms.stop)
    want = np.array([pages_for(policy, int(c), state.page_size)
                     for c in state.vms["vcpus"][v]], np.int64)
    state.vms["overhead_pages"][v] = want
    first = state.overhead.extend(int(want.sum()))
    state.vms["overhead_offset"][v] = first + np.cumsum(want) - want


def back(state: State, backed: bool, vms: I64) -> None:
    """Take the frames the overhead of `vms` (running) still lacks, as far as there are
    free frames on their hosts; a VM earlier in `vms` goes first."""
    if not backed or vms.size == 0:
        return
    cols = state.vms
    need = cols["overhead_pages"][vms] - cols["overhead_held"][vms]
    vms, need = vms[need > 0], need[need > 0]
    if vms.size == 0:
        return
    if np.all(need == need[0]):  # the usual case: VMs of one overhead size, in bulk
        # (a group short of frames gets them first and -1 after, as _store expects)
        got = frame_alloc.allocate_blocks(state, cols["host"][vms], int(need[0])).ravel()
    else:
        got = frame_alloc.allocate_counts(state, cols["host"][vms], need)
    _store(state.overhead.frames, cols["overhead_offset"][vms] + cols["overhead_held"][vms],
           need, got)
    cols["overhead_held"][vms] += np.add.reduceat((got >= 0).astype(np.int64),
                                                np.cumsum(need) - need)


def _store(table: np.ndarray, first_slot: I64, counts: I64, frames: np.ndarray) -> None:
    """Write each group's frames (a served prefix, then -1s) from its first slot on."""
    if np.all(counts == counts[0]):  # one size: a broadcast index, no per-frame repeat
        slots = (first_slot[:, None] + np.arange(counts[0])[None, :]).ravel()
    else:
        rank = np.arange(frames.size) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = np.repeat(first_slot, counts) + rank
    ok = frames >= 0
    table[slots[ok]] = frames[ok]


def _slots(state: State, v: int, count: int) -> slice:
    start = int(state.vms["overhead_offset"][v])
    return slice(start, start + count)


def release(state: State, v: int) -> None:
    """Power-off: the VM's overhead frames, and any reservation, go back."""
    cols, table = state.vms, state.overhead
    held = _slots(state, v, int(cols["overhead_held"][v]))
    frame_alloc.release(state, table.frames[held].astype(np.int64))
    table.frames[held] = -1
    cols["overhead_held"][v] = 0
    cancel_reservation(state, v)


def reserve(state: State, v: int, dst: int, backed: bool) -> None:
    """A migration starts: reserve the VM's overhead on the destination now."""
    cols = state.vms
    cols["overhead_dst"][v] = dst
    if not backed:
        return
    need = int(cols["overhead_pages"][v])
    got = frame_alloc.allocate_counts(state, np.array([dst]), np.array([need]))
    got = got[got >= 0]
    state.overhead.reserved[_slots(state, v, got.size)] = got
    cols["overhead_reserved"][v] = got.size


def cancel_reservation(state: State, v: int) -> None:
    cols, table = state.vms, state.overhead
    held = _slots(state, v, int(cols["overhead_reserved"][v]))
    frame_alloc.release(state, table.reserved[held].astype(np.int64))
    table.reserved[held] = -1
    cols["overhead_reserved"][v] = 0
    cols["overhead_dst"][v] = -1


def hand_over(state: State, v: int) -> None:
    """Switch-over: the reservation becomes the VM's overhead; the source's goes back."""
    cols, table = state.vms, state.overhead
    held = _slots(state, v, int(cols["overhead_held"][v]))
    frame_alloc.release(state, table.frames[held].astype(np.int64))
    table.frames[held] = -1
    n = int(cols["overhead_reserved"][v])
    moved = _slots(state, v, n)
    table.frames[moved] = table.reserved[moved]
    table.reserved[moved] = -1
    cols["overhead_held"][v] = n
    cols["overhead_reserved"][v] = 0
    cols["overhead_dst"][v] = -1


def per_host(state: State, wanted: bool = False) -> I64:
    """Overhead pages per host: held by its VMs plus reserved there for VMs on their way
    in; with `wanted`, what they need whether or not it is backed yet (allocation)."""
    cols, n_hosts = state.vms, len(state.hosts)
    running = cols["host"] >= 0
    host = np.maximum(cols["host"], 0)
    own = cols["overhead_pages"] if wanted else cols["overhead_held"]
    total = np.bincount(host[running], weights=own[running], minlength=n_hosts)
    coming = cols["overhead_dst"] >= 0
    extra = cols["overhead_pages"] if wanted else cols["overhead_reserved"]
    total += np.bincount(cols["overhead_dst"][coming], weights=extra[coming],
                         minlength=n_hosts)
    return np.asarray(total, np.int64)


def table_frames(state: State) -> np.ndarray:
    """Every frame held or reserved for overhead (for the invariants)."""
    table = state.overhead
    frames = np.concatenate([table.frames, table.reserved])
    return frames[frames >= 0]
