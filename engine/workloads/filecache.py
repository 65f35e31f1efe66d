"""Reads of a file data set through the guest's page cache: the cache-sensitive workload.

A VM with a `dataset` reads random blocks of it. With C blocks cached out of D, a read
hits with probability C / D (uniform access); a hit touches a cached page, a miss reads
the block from the guest's virtual disk and caches it in a free guest page (one it used
before first), or in place of another cached block when none is free. So the page cache
grows into whatever memory the guest has, shrinks when the balloon takes it, and the hit
rate - and with it a closed-loop workload's throughput - follows the memory the VM has.

Every miss is cached while the VM has a free or cached page (not read this tick) to put it
in, and every hit reads a cached page. The pages are picked by a random probe, or, in a VM
where they are too scarce for a probe to find (a cache squeezed to a few per cent of the
VM), by a walk from a random point (memory/walk_pick.py).
"""

from __future__ import annotations

import numpy as np

from engine import kernels
from engine.arrays import unique_sorted
from engine.memory import pick_loop, walk_pick
from engine.memory.content import read_blocks_content
from engine.memory.counts import count_sorted, in_vms, vm_of_sorted
from engine.memory.guest import INELIGIBLE, probe, take
from engine.memory.pick_loop import I8
from engine.memory.touch import apply_touches
from engine.state import F64, I64, N_LOC, Bool, GuestKind, Loc, State, VMs
from engine.world import World

# A miss fills a free page the guest used before (still backed, perhaps zeroed or shared)
# before a never-touched one, which would take a new frame: the guest allocator reuses
# what it freed. Only then does it evict another cached block.
_FREE_USED, _FREE, _CACHE, _NONE = 0, 1, 2, INELIGIBLE
_FACTOR = 4  # probe candidates (or usable pages a walk passes) per page wanted
# A candidate's class by guest kind * N_LOC + location; a page the balloon holds is no
# candidate, whatever the guest thinks it is.
_CLASS_OF = np.full(len(GuestKind) * N_LOC, _NONE, np.int64)
for _loc in Loc:
    _backed = _loc in (Loc.PRIVATE, Loc.SHARED)
    _CLASS_OF[GuestKind.FREE * N_LOC + _loc] = _FREE_USED if _backed else _FREE
    _CLASS_OF[GuestKind.CACHE * N_LOC + _loc] = _CACHE
_CLASS_OF[GuestKind.FREE * N_LOC + Loc.BALLOONED] = _NONE
_CLASS_OF[GuestKind.CACHE * N_LOC + Loc.BALLOONED] = _NONE
# The same by page record, for the compiled picks: a hit reads any cached page; a miss
# fills by the classes above.
_HIT_TABLE = pick_loop.class_table(
    lambda kind, loc, recent: np.where(kind == GuestKind.CACHE, 0, _NONE), _NONE)
_FILL_TABLE = pick_loop.class_table(
    lambda kind, loc, recent: _CLASS_OF[kind.astype(np.int64) * N_LOC + loc], _NONE)


def _reads_per_s(vms: VMs) -> F64:
    """Each VM's file reads a second this tick, at its pace and the hour's demand."""
    rate: F64 = vms["file_reads_per_s"] * vms["speed"] * vms["demand_scale"]
    return rate


def cached_page_rates(state: State, active: Bool) -> F64:
    """Per VM, the reads per second each of its cached pages gets: a read hits with
    probability cached / dataset and then touches one cached page at random, so each gets
    reads / dataset of them."""
    vms = state.vms
    reads_per_s = np.where(active & (vms["dataset_pages"] > 0), _reads_per_s(vms), 0.0)
    rates: F64 = reads_per_s / np.maximum(vms["dataset_pages"], 1)
    return rates


def run_file_reads(world: World, active: Bool) -> None:
    state = world.state
    vms = state.vms
    rng = world.streams["workload"]
    reads = np.where(active & (vms["dataset_pages"] > 0),
                     rng.poisson(_reads_per_s(vms) * state.tick_s), 0)
    if not reads.any():
        return
    reads = reads.astype(np.int64)
    cached = vms["kind_count"][:, GuestKind.CACHE]
    hit_p = np.minimum(1.0, cached / np.maximum(vms["dataset_pages"], 1))
    hits = rng.binomial(reads, hit_p).astype(np.int64)
    misses = reads - hits

    hit_pages, fill = pick_reads(state, rng, hits, misses)
    fill_vm = vm_of_sorted(vms, fill)
    content = read_blocks_content(rng.random(fill.size), fill_vm, vms["dataset_pages"],
                                  vms["dataset_key"])
    n = len(vms)
    apply_touches(state, hit_pages, fill, content,
                  count_sorted(vms, hit_pages),
                  np.bincount(fill_vm, minlength=n), kind=GuestKind.CACHE,
                  blocked=vms["blocked"])
    vms["file_reads_tick"] += reads
    vms["file_misses_tick"] += misses
    vms["file_reads"] += reads
    vms["file_misses"] += misses
    vms["lost_page_cache_s_tick"] += misses * vms["guest_disk_latency_s"]


def pick_reads(state: State, rng: np.random.Generator, hits: I64,
               misses: I64) -> tuple[I64, I64]:
    """The cached pages the hits read and the pages the misses fill, each distinct and
    ascending. A VM's hits read min(hits, cached) of its cached pages; its misses fill
    min(misses, usable) pages, usable being its free and cached pages but those read this
    tick (a hit has to stay a hit)."""
    vms = state.vms
    kinds = vms["kind_count"]
    cached = np.asarray(kinds[:, GuestKind.CACHE], np.int64)
    hit_pages = _pick(state, rng, hits, cached, _HIT_TABLE)
    free = np.asarray(kinds[:, GuestKind.FREE], np.int64)
    usable = free + cached - count_sorted(vms, hit_pages)
    best = fill_best(vms)
    # The pages of each VM's best fill class or better (a walk ends once it has passed
    # as many as it wants): free ones it used before, all free ones, or all usable ones.
    best_pages = np.where(best == _FREE_USED, _free_used(vms),
                          np.where(best == _FREE, free, usable))
    fill = _pick(state, rng, misses, usable, _FILL_TABLE, hit_pages, _CACHE, best, best_pages)
    return hit_pages, fill


def fill_best(vms: VMs) -> I64:
    """Each VM's best fill class, so its walk may stop once it has passed as many pages
    of it as it wants: free pages it used before where it may have some, else never used
    ones (a VM whose free pages are all untouched: an untouched page is always a free
    one, invariants.py), else cached ones (it evicts). Where a VM's walks passed 4 usable
    pages a page wanted before, never-used ones alone now end them."""
    free = vms["kind_count"][:, GuestKind.FREE]
    best: I64 = np.where(_free_used(vms) > 0, _FREE_USED, np.where(free > 0, _FREE, _CACHE))
    return best


def _free_used(vms: VMs) -> I64:
    """Each VM's free pages it used before: its free pages but the untouched ones (an
    untouched page is always a free one, invariants.py)."""
    used: I64 = (np.asarray(vms["kind_count"][:, GuestKind.FREE], np.int64)
                 - np.asarray(vms["loc_count"][:, Loc.UNTOUCHED], np.int64))
    return used


def _pick(state: State, rng: np.random.Generator, want: I64, usable: I64, table: I8,
          exclude: I64 | None = None, exclude_class: int = -1,
          best: I64 | None = None, best_pages: I64 | None = None) -> I64:
    """Up to want[v] pages of each VM v by class (`table`), ascending: a random probe of
    _FACTOR candidates a page wanted, or, where usable pages are too scarce for it to
    find them, a walk from a random point (memory/walk_pick.py). A VM the probe leaves
    short of min(want, usable) is walked instead too. `best`: each VM's best class, for
    the walk (walk_pick.walk_take); `best_pages`: its pages of that class or better
    (default: all usable ones, class 0 being the only one)."""
    vms = state.vms
    m = pick_loop.probe_counts(vms, want, _FACTOR)
    # A probe of m random pages finds about m * usable / n_pages usable ones.
    sparse = m * usable < 2 * want * vms["n_pages"]
    picks = _probe(state, rng, np.where(sparse, 0, want), table, exclude, exclude_class)
    short = np.flatnonzero(count_sorted(vms, picks) < np.minimum(want, usable))
    if short.size == 0:
        return picks
    walked = walk_pick.walk_take(state, short, rng.random(short.size), want[short], _FACTOR,
                                 table, exclude, exclude_class,
                                 None if best is None else best[short],
                                 _walk_positions(vms, short, want, usable,
                                                 usable if best_pages is None else best_pages))
    is_short = np.zeros(len(vms), np.bool_)
    is_short[short] = True
    kept = np.compress(~in_vms(vms, is_short, picks), picks)
    # Two ascending runs of distinct pages: the stable sort (timsort) merges them.
    return np.sort(np.concatenate([kept, walked]), kind="stable")


def _walk_positions(vms: VMs, short: I64, want: I64, usable: I64, best_pages: I64) -> F64:
    """The positions each walk of VMs `short` is expected to pass, pages of a class
    spread evenly: it ends at _FACTOR x want usable pages or want pages of its best
    class, or at the VM's end."""
    n = vms["n_pages"][short].astype(np.float64)
    w = want[short].astype(np.float64)
    to_usable = _FACTOR * w * n / np.maximum(usable[short], 1)
    to_best = w * n / np.maximum(best_pages[short], 1)
    positions: F64 = np.minimum(n, np.minimum(to_usable, to_best))
    return positions


def _probe(state: State, rng: np.random.Generator, want: I64, table: I8,
           exclude: I64 | None, exclude_class: int) -> I64:
    """guest.take over guest.probe's candidates, classed by `table`, ascending."""
    if kernels.compiled():  # the same picks, made in one loop (memory/pick_loop.py)
        return unique_sorted(pick_loop.probe_take(state, rng, want, _FACTOR, table, INELIGIBLE,
                                                  exclude=exclude,
                                                  exclude_class=exclude_class)[0])
    vm, cand = probe(state, rng, want, _FACTOR)
    none = np.zeros(0, np.int64)
    cls = walk_pick.classes(state, table[0], cand, none if exclude is None else exclude,
                            exclude_class)
    return take(vm, cand, cls, want)
