"""I/O page remapping between low and high memory (ESX section 7).

A VM's device that can only DMA below 4 GB (a 32-bit device, vm.dma32) cannot reach a
guest page that sits in a high frame: every I/O on it goes through a bounce buffer, one
copy each time. ESX counts copies per page and, past `remap_threshold`, remaps the page
into a low frame (one copy, once), after which its I/O is direct. When low memory is
short, cold pages are moved up from low memory to make room. Non-resident I/O pages fault
in through the ordinary touch path first (counted there); shared pages are left alone.
"""

from __future__ import annotations

import numpy as np

from engine import kernels
from engine.arrays import runs, unique_sorted
from engine.memory import frames as frame_alloc
from engine.memory import io_loop, recency
from engine.memory.counts import vm_of_sorted
from engine.sort_loop import sorted_ints
from engine.state import I64, WORD_SHIFT, Loc, State
from engine.world import World


def _move(state: State, pages: I64, low_only: bool) -> tuple[I64, I64]:
    """Copy private pages (ascending) to new frames (low or high); returns the pages that
    moved and their VMs."""
    p, vms = state.pages, state.vms
    vm = vm_of_sorted(vms, pages)
    got = frame_alloc.allocate(state, vms["host"][vm], low_only=low_only)
    ok = np.flatnonzero(got >= 0)
    pages, got, vm = pages[ok], got[ok], vm[ok]
    old = p.frame[pages]
    p.frame[pages] = got
    frame_alloc.release(state, old)
    return pages, vm


def _make_low_room(state: State, h: int, need: int, rng: np.random.Generator) -> None:
    """Move up to `need` cold private pages of host h from low to high frames."""
    hosts, p, vms = state.hosts, state.pages, state.vms
    on_host = np.flatnonzero(vms["host"] == h)
    if need <= 0 or on_host.size == 0 or hosts.free_count[h] - hosts.free_low[h] <= 0:
        return
    m = 8 * need + 64
    pick = on_host[rng.integers(0, on_host.size, m)]
    probe = unique_sorted(vms["page_offset"][pick]
                          + (rng.random(m) * vms["n_pages"][pick]).astype(np.int64))
    probe = probe[p.at("location", probe) == Loc.PRIVATE]
    cold = probe[(p.io_count[probe] == 0) & frame_alloc.is_low(hosts, p.frame[probe])]
    moved, _ = _move(state, cold[:need], low_only=False)
    state.reclaim.hosts["low_evictions"][h] += moved.size


def _bounce_numpy(state: State, pages: I64, vm: I64, threshold: int) -> tuple[I64, I64, I64]:
    """The I/O touches (`pages` of VMs `vm`): resident pages marked touched, high ones
    bounced and their I/O counts raised; (bounces per VM, bounces per host, the private
    bounced pages at `threshold` copies or past it, distinct and ascending)."""
    p, vms, hosts = state.pages, state.vms, state.hosts
    loc = p.at("location", pages)
    resident = np.flatnonzero((loc == Loc.PRIVATE) | (loc == Loc.SHARED))
    pages, vm = pages[resident], vm[resident]
    recency.mark(state, pages)
    # By index, not by mask: about half the pages bounce, where boolean indexing is slowest.
    high = np.flatnonzero(~frame_alloc.is_low(hosts, p.frame[pages]))
    bounced, bounced_vm = pages[high], vm[high]
    per_vm = np.bincount(bounced_vm, minlength=len(vms))
    per_host = np.bincount(vms["host"][bounced_vm], minlength=len(hosts))
    distinct, _, copies = runs(sorted_ints(bounced))
    p.io_count[distinct] = np.minimum(p.io_count[distinct] + copies, 255).astype(np.uint8)
    hot = distinct[p.io_count[distinct] >= threshold]
    return per_vm, per_host, hot[p.at("location", hot) == Loc.PRIVATE]


def _bounce_compiled(state: State, pages: I64, vm: I64,
                     threshold: int) -> tuple[I64, I64, I64]:
    """_bounce_numpy in one loop (io_loop.py): the same marks, counts and pages."""
    p, vms, hosts = state.pages, state.vms, state.hosts
    i64 = np.int64
    per_vm, per_host = np.zeros(len(vms), i64), np.zeros(len(hosts), i64)
    hot = np.empty(pages.size, i64)
    k = io_loop.IO(pages, vm, p.word, p.touched, state.touch_code, p.frame,
                   np.asarray(vms["host"], i64), np.asarray(hosts.frame_offset, i64),
                   np.asarray(hosts.low_frames, i64), p.io_count, int(threshold),
                   WORD_SHIFT["location"], int(Loc.PRIVATE), int(Loc.SHARED), per_vm,
                   per_host, hot)
    return per_vm, per_host, unique_sorted(hot[:k])


def run_io(world: World) -> None:
    state = world.state
    vms, p, hosts = state.vms, state.pages, state.hosts
    policy = world.spec.policy.memory
    reclaim = state.reclaim.hosts
    vms["bounces_tick"][:] = 0
    reclaim["bounce_tick"][:] = 0
    rng = world.streams["faults"]
    running = (vms["host"] >= 0) & vms["dma32"]
    n = rng.poisson(np.where(running, vms["io_pages_per_s"] * state.tick_s, 0.0))
    if not n.any():
        return
    n = n.astype(np.int64)
    vm = np.repeat(np.arange(len(vms)), n)
    # Per-VM columns spread by repeat (what indexing them by vm gives).
    pages = np.repeat(vms["page_offset"] + vms["ws_start"], n) + (
        rng.random(vm.size) * np.repeat(vms["io_set_pages"], n)).astype(np.int64)
    if kernels.compiled():  # each page read once, in one loop (io_loop.py)
        per_vm, per_host, hot = _bounce_compiled(state, pages, vm, policy.remap_threshold)
    else:
        per_vm, per_host, hot = _bounce_numpy(state, pages, vm, policy.remap_threshold)
    vms["bounces_tick"] = per_vm
    vms["bounces"] += per_vm
    reclaim["bounce_tick"] = per_host
    reclaim["bounces"] += per_host
    if not policy.io_remap or hot.size == 0:
        return
    # Only hosts short of low frames make room (the others would draw nothing from rng);
    # a host's moves change only its own free counts, so all shortfalls are known upfront.
    host_of_hot = vms["host"][vm_of_sorted(vms, hot)]
    wanted, _, n_hot = runs(np.sort(host_of_hot))
    short = n_hot - hosts.free_low[wanted]
    for h, need in zip(wanted[short > 0].tolist(), short[short > 0].tolist(), strict=True):
        _make_low_room(state, h, need, rng)
    moved, moved_vm = _move(state, hot, low_only=True)
    p.io_count[moved] = 0
    vms["remaps"] += np.bincount(moved_vm, minlength=len(vms))
    reclaim["remaps"] += np.bincount(vms["host"][moved_vm], minlength=len(hosts))
