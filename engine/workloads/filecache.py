"""Reads of a file data set through the guest's page cache: the cache-sensitive workload.

A VM with a `dataset` reads random blocks of it. With C blocks cached out of D, a read
hits with probability C / D (uniform access); a hit touches a cached page, a miss reads
the block from the guest's virtual disk and caches it in a free guest page (one it used
before first), or in place of another cached block when none is free. So the page cache
grows into whatever memory the guest has, shrinks when the balloon takes it, and the hit
rate - and with it a closed-loop workload's throughput - follows the memory the VM has.
"""

from __future__ import annotations

import numpy as np

from engine import kernels, parallel
from engine.arrays import unique_sorted
from engine.memory import pick_loop
from engine.memory.content import dataset_content
from engine.memory.counts import count_sorted, vm_of_sorted
from engine.memory.guest import INELIGIBLE, probe, take
from engine.memory.touch import apply_touches
from engine.state import F64, I64, N_LOC, WORD_SHIFT, Bool, GuestKind, Loc, State, VMs
from engine.world import World

# A miss fills a free page the guest used before (still backed, perhaps zeroed or shared)
# before a never-touched one, which would take a new frame: the guest allocator reuses
# what it freed. Only then does it evict another cached block.
_FREE_USED, _FREE, _CACHE, _NONE = 0, 1, 2, INELIGIBLE
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

    if kernels.compiled():  # the same picks, made in one loop (memory/pick_loop.py)
        hit_pages = unique_sorted(pick_loop.probe_take(state, rng, hits, 4, _HIT_TABLE,
                                                       INELIGIBLE)[0])
        fill = unique_sorted(pick_loop.probe_take(state, rng, misses, 4, _FILL_TABLE,
                                                  INELIGIBLE, exclude=hit_pages,
                                                  exclude_class=_CACHE)[0])
    else:
        hit_pages, fill = _hits_and_fills(state, rng, hits, misses)
    fill_vm = vm_of_sorted(vms, fill)
    block = (rng.random(fill.size) * vms["dataset_pages"][fill_vm]).astype(np.uint64)
    content = dataset_content(block, vms["dataset_key"][fill_vm])
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


def _hits_and_fills(state: State, rng: np.random.Generator, hits: I64,
                    misses: I64) -> tuple[I64, I64]:
    """The cached pages the hits read and the pages the misses fill (each ascending),
    as numpy passes: candidates of no use never reach `take` (it would pass over them):
    it is given the usable ones, in probe order."""
    p = state.pages
    vm, cand = probe(state, rng, hits, 4)
    is_cache = np.flatnonzero((parallel.take(p.word, cand) >> np.uint16(WORD_SHIFT["guest_kind"]))
                              == GuestKind.CACHE)
    hit_pages = take(vm[is_cache], cand[is_cache], np.zeros(is_cache.size, np.int64), hits)

    vm, cand = probe(state, rng, misses, 4)
    word = parallel.take(p.word, cand)  # location and guest kind in one read (state.Pages)
    kind = (word >> np.uint16(WORD_SHIFT["guest_kind"])).astype(np.uint8)
    usable = np.flatnonzero((kind == GuestKind.FREE) | (kind == GuestKind.CACHE))
    vm, cand = vm[usable], cand[usable]
    cls = _CLASS_OF[np.take(kind, usable) * N_LOC + np.take(word, usable).astype(np.uint8)]
    # Never refill a page read this tick: its hit has to stay a hit. Hits are cached
    # pages, so only the cached candidates need the lookup (hits come sorted).
    cached_cand = np.flatnonzero(cls == _CACHE)
    if hit_pages.size and cached_cand.size:
        looked = cand[cached_cand]
        at = np.searchsorted(hit_pages, looked)
        read_now = hit_pages[np.minimum(at, hit_pages.size - 1)] == looked
        cls[np.compress(read_now, cached_cand)] = _NONE
    fill = take(vm, cand, cls, misses)
    return hit_pages, fill
