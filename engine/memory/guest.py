"""The guest OS's side of reclamation: which pages it gives up, and taking pages off the host.

When the balloon driver asks for memory, the guest hands over free pages first, then drops
clean page-cache pages, and only then pages out its coldest process memory to its own
virtual disk (guest paging). Picking is random among equals: a cheap stand-in for an LRU
clock that a probe of a few times the request finds without scanning the whole VM.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import runs, unique_sorted
from engine.memory import frames as frame_alloc
from engine.memory import recency
from engine.memory.counts import count_moves
from engine.state import I64, N_KIND, GuestKind, Loc, State

# Preference classes for the balloon (lower is given up first); INELIGIBLE never.
FREE, CACHE, ANON_COLD, ANON_HOT, INELIGIBLE = range(5)


# Balloon class by guest kind and whether the page is recent (index: kind * 2 + recent).
# Recent: referenced in this sampling period or the last, so a period boundary (when the
# hypervisor clears its bits) does not make every page look cold to the guest.
_CLASS_OF = np.full(2 * len(GuestKind), INELIGIBLE, np.int64)
_CLASS_OF[2 * GuestKind.FREE:2 * GuestKind.FREE + 2] = FREE
_CLASS_OF[2 * GuestKind.CACHE:2 * GuestKind.CACHE + 2] = CACHE
_CLASS_OF[2 * GuestKind.ANON] = ANON_COLD
_CLASS_OF[2 * GuestKind.ANON + 1] = ANON_HOT


def balloon_class(state: State, pages: I64) -> I64:
    p = state.pages
    index = p.at("guest_kind", pages).astype(np.int64) * 2 + recency.recent(state, pages)
    cls = _CLASS_OF[index]
    # A post-copy page still at the source is not the guest's to give until it arrives.
    cls[p.at("location", pages) == Loc.REMOTE] = INELIGIBLE
    return cls


def pick(state: State, rng: np.random.Generator, v: int, k: int, classes: object) -> I64:
    """Up to k pages of VM v in order of their class (random within a class).

    `classes(state, pages)` gives each page a class; INELIGIBLE pages are never picked.
    """
    if k <= 0:
        return np.zeros(0, np.int64)
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    probe = unique_sorted(off + rng.integers(0, n, size=min(n, 8 * k + 64)))
    chosen = _by_class(state, rng, probe, k, classes)
    if chosen.size < k and probe.size < n:  # too few in the probe: look at every page
        chosen = _by_class(state, rng, np.arange(off, off + n, dtype=np.int64), k, classes)
    return chosen


def _by_class(state: State, rng: np.random.Generator, pages: I64, k: int,
              classes: object) -> I64:
    """k pages by class, random within the last class taken; no sort of all candidates."""
    cls = classes(state, pages)  # type: ignore[operator]
    chosen: list[I64] = []
    left = k
    for c in range(INELIGIBLE):
        if left == 0:
            break
        of_class = np.compress(cls == c, pages)
        if of_class.size > left:
            of_class = rng.choice(of_class, size=left, replace=False)
        chosen.append(of_class)
        left -= of_class.size
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def probe(state: State, rng: np.random.Generator, want: I64, factor: int) -> tuple[I64, I64]:
    """Random candidate pages for every VM at once: `factor` per wanted page, plus 32."""
    vms = state.vms
    # Past the VM's size a probe stops paying off; the caller scans VMs it leaves short.
    m = np.where(want > 0, np.minimum(factor * want + 32, vms["n_pages"]), 0)
    vm = np.repeat(np.arange(len(vms)), m)
    # Per-VM columns spread by repeat: what indexing them by `vm` gives, written in order.
    local = (rng.random(vm.size) * np.repeat(vms["n_pages"], m)).astype(np.int64)
    return vm, np.repeat(vms["page_offset"], m) + local


def take(vm: I64, pages: I64, cls: I64, want: I64) -> I64:
    """Per VM, up to want[v] candidates, best class first.

    Candidates come from `probe`: grouped by VM and in random order, so the first ones of
    a class in probe order are a uniform random choice among them - no sort needed. Per
    VM, every candidate of a class better than its cut-off class (the one where the want
    runs out) is taken, and of the cut-off class the first ones up to the want: a few
    passes over the candidates, whatever the number of classes.
    """
    if vm.size == 0:
        return np.zeros(0, np.int64)
    n, width = want.size, INELIGIBLE + 1
    want = want.astype(np.int64)
    counts = np.bincount(vm * width + cls, minlength=n * width).reshape(n, width)[:, :INELIGIBLE]
    before = np.cumsum(counts, axis=1) - counts  # candidates of better classes, per VM
    enough = before + counts >= want[:, None]
    cutoff = np.where(enough.any(axis=1), enough.argmax(axis=1), INELIGIBLE)
    quota = want - before[np.arange(n), np.minimum(cutoff, INELIGIBLE - 1)]
    cut = cutoff[vm]
    chosen = cls < cut
    at_cut = (cls == cut) & (cut < INELIGIBLE)
    if at_cut.any():
        # vm ascends (probe groups candidates by VM in order): a VM's rank base is the
        # count of cut-off candidates before its first one, one value per VM.
        counted = np.cumsum(at_cut, dtype=np.int32)
        before_vm = np.concatenate([np.zeros(1, np.int32), counted])[
            np.searchsorted(vm, np.arange(n))]
        rank = counted - np.take(before_vm, vm)  # 1-based within VM
        chosen |= at_cut & (rank <= quota[vm])
    # np.compress, not pages[chosen]: a boolean index branches on every element.
    return unique_sorted(np.compress(chosen, pages))


def pick_many(state: State, rng: np.random.Generator, want: I64, classes: object) -> I64:
    """Up to want[v] pages of every VM v by class; a VM the probe leaves well short (under
    half: duplicates in a probe cost a few) is scanned; the rest catch up next tick."""
    vm, cand = probe(state, rng, want, 3)
    chosen = take(vm, cand, classes(state, cand), want)  # type: ignore[operator]
    got = np.bincount(state.vms.vm_of_pages(chosen), minlength=want.size)
    short = np.flatnonzero(2 * got < want)
    extra = [pick(state, rng, int(v), int(want[v]), classes) for v in short]
    if extra:
        chosen = unique_sorted(np.concatenate([chosen, *extra]))
        # A full scan re-picks from scratch; keep each VM within its want.
        vm = state.vms.vm_of_pages(chosen)
        _, starts, lengths = runs(vm)
        rank = np.arange(vm.size) - np.repeat(starts, lengths)
        chosen = np.compress(rank < want[vm], chosen)
    return chosen


def unmap(state: State, pages: I64, new_loc: int) -> None:
    """Pages leave guest memory for `new_loc` (ballooned or swapped): frames go back."""
    if pages.size == 0:
        return
    p, vms = state.pages, state.vms
    vm = vms.vm_of_pages(pages)
    loc = p.at("location", pages)
    shared_zero = (loc == Loc.SHARED) & (p.content[pages] == 0)
    vms["zero_shared"] -= np.bincount(np.compress(shared_zero, vm), minlength=len(vms))
    mapped = p.frame[pages]
    frame_alloc.release(state, np.compress(mapped >= 0, mapped))
    was_compressed = loc == Loc.COMPRESSED
    if was_compressed.any():
        state.reclaim.hosts["compressed_pages"] -= np.bincount(
            vms["host"][vm[was_compressed]], minlength=len(state.hosts))
    p.frame[pages] = -1
    was_swapped = loc == Loc.SWAPPED
    if was_swapped.any():
        state.reclaim.hosts["swapped_pages"] -= np.bincount(
            vms["host"][vm[was_swapped]], minlength=len(state.hosts))
    p.location[pages] = new_loc
    count_moves(state, vm, loc, new_loc)


def set_kind(state: State, pages: I64, kind: int) -> None:
    p = state.pages
    count_moves(state, state.vms.vm_of_pages(pages), p.at("guest_kind", pages), kind,
                "kind_count", N_KIND)
    p.guest_kind[pages] = kind
