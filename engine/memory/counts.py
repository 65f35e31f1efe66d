"""Per-VM page counters kept in step with the page arrays, and per-VM lookups of pages
that avoid a binary search over every VM's offset for each page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine import kernels
from engine.arrays import unique_sorted
from engine.state import I64, N_LOC, Bool, State, VMs

if TYPE_CHECKING:
    from engine.world import World


def count_moves(state: State, vm: I64, old: np.ndarray, new: int, column: str = "loc_count",
                width: int = N_LOC) -> None:
    """Per-VM counters of pages by location (or guest kind): `old` -> `new`."""
    n = len(state.vms)
    table = state.vms[column]
    if kernels.compiled() and vm.size < n * width:  # fewer moves than counters: one each
        # int(new): numba types an IntEnum (Loc, GuestKind) apart, and compiles again.
        _MOVE(np.asarray(vm, np.int64), np.asarray(old, np.int64), int(new), table)
        return
    # One count by (VM, old value); its row sums are the pages each VM moves.
    moved = np.bincount(vm * width + old, minlength=n * width).reshape(n, width)
    table[:, new] += moved.sum(axis=1)
    table -= moved


def _move_loop(vm: I64, old: I64, new: int, table: npt.NDArray[np.int64]) -> None:
    """Each move counted out of its VM's `old` counter and into its `new` one (a VM index
    below 0 is refused, as bincount refuses it, not wrapped round to the last VM)."""
    for i in range(vm.size):
        if vm[i] < 0:
            raise ValueError("count_moves: a page outside every VM")
        table[vm[i], old[i]] -= 1
        table[vm[i], new] += 1


_MOVE = kernels.Kernel(_move_loop, lambda: [(np.zeros(0, np.int64), np.zeros(0, np.int64), 0,
                                             np.zeros((1, 1), np.int64))])


# Pages a VM below which vm_of_sorted looks each page up (arrays.SegmentOf, a few ns a
# page) rather than searching the pages for each VM's first (some 100 us for 1,000 VMs).
SMALL_PER_VM = 32


def _sorted_bounds(vms: VMs, pages: npt.NDArray[np.integer[Any]]) -> I64:
    """Where each VM's pages start in an ascending page array, and its end last."""
    return np.append(np.searchsorted(pages, vms["page_offset"], side="left"), pages.size)


def vm_of_sorted(vms: VMs, pages: npt.NDArray[np.integer[Any]]) -> I64:
    """`vms.vm_of_pages(pages)` for ascending pages: one search per VM, not per page (but
    for fewer pages than SMALL_PER_VM a VM, whose compiled table lookup costs less than a
    search per VM)."""
    if pages.size < SMALL_PER_VM * len(vms) and kernels.compiled():
        return vms.vm_of_pages(pages)
    bounds = _sorted_bounds(vms, pages)
    return np.repeat(np.arange(-1, len(vms), dtype=np.int64),
                     np.diff(bounds, prepend=0))


def count_sorted(vms: VMs, pages: npt.NDArray[np.integer[Any]]) -> I64:
    """`np.bincount(vms.vm_of_pages(pages), minlength=len(vms))` for ascending pages
    (all in some VM's slice)."""
    return np.diff(_sorted_bounds(vms, pages)).astype(np.int64)


def in_vms(vms: VMs, which: Bool, pages: npt.NDArray[np.integer[Any]]) -> Bool:
    """Whether each page is in one of the VMs `which` marks (post-copy, pre-copy,
    blocked ones)."""
    return np.asarray(which[vms.vm_of_pages(pages)])


def waiting_pages(world: World) -> I64:
    """Per VM, the distinct pages its touches waiting for a frame need one for
    (engine/workloads/phase.py serve_waiting)."""
    vms = world.state.vms
    waiting = world.waiting_touches[0] if world.waiting_touches is not None else None
    if waiting is None:
        return np.zeros(len(vms), np.int64)
    pages = unique_sorted(np.concatenate([waiting[0], waiting[1]]))
    return np.bincount(vms.vm_of_pages(pages), minlength=len(vms)).astype(np.int64)
