"""The guest OS's side of reclamation: which pages it gives up, and taking pages off the host.

When the balloon driver asks for memory, the guest hands over free pages first, then drops
clean page-cache pages, and only then pages out its coldest process memory to its own
virtual disk (guest paging). Picking is random among equals: a cheap stand-in for an LRU
clock that a probe of a few times the request finds without scanning the whole VM.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels, parallel
from engine.arrays import runs, unique_sorted
from engine.memory import frames as frame_alloc
from engine.memory import kind_bits, pick_loop, recency
from engine.memory.counts import count_moves, count_sorted, vm_of_sorted
from engine.sort_loop import sorted_ints
from engine.state import I64, N_KIND, N_LOC, U8, WORD_SHIFT, Bool, GuestKind, Loc, State

I8 = npt.NDArray[np.int8]

# Preference classes for the balloon (lower is given up first); INELIGIBLE never.
FREE, CACHE, ANON_COLD, ANON_HOT, INELIGIBLE = range(5)


# Balloon class by guest kind, whether the page is recent and its location (index:
# (kind * 2 + recent) * N_LOC + location, small enough for uint8 arithmetic).
# Recent: referenced in this sampling period or the last, so a period boundary (when the
# hypervisor clears its bits) does not make every page look cold to the guest.
_by_kind = np.full((N_KIND, 2, N_LOC), INELIGIBLE, np.int8)
_by_kind[GuestKind.FREE] = FREE
_by_kind[GuestKind.CACHE] = CACHE
_by_kind[GuestKind.ANON, 0] = ANON_COLD
_by_kind[GuestKind.ANON, 1] = ANON_HOT
# A post-copy page still at the source is not the guest's to give until it arrives.
_by_kind[:, :, Loc.REMOTE] = INELIGIBLE
_CLASS_OF = _by_kind.ravel()
assert _CLASS_OF.size <= 256
# The same by page record and recency, for the compiled picks.
_BALLOON_TABLE = pick_loop.class_table(
    lambda kind, loc, recent: _by_kind[kind, recent, loc], INELIGIBLE)

# A pick looks at this many random pages of a VM for each page it wants and takes the
# lowest classes among them (then scans for more where they fall short).
PICK_PROBES = 3

# The guest kind of a page of each balloon class other than INELIGIBLE (it tells them apart).
KIND_OF_CLASS = np.array([GuestKind.FREE, GuestKind.CACHE, GuestKind.ANON, GuestKind.ANON],
                         np.uint8)


def balloon_class_loc(state: State, pages: I64 | slice) -> tuple[I8, U8]:
    """Each page's balloon class and its location (inflating needs both)."""
    words = state.pages.word  # location and guest kind in one read
    word = words[pages] if isinstance(pages, slice) else parallel.take(words, pages)
    loc = word.astype(np.uint8)
    index = (word >> np.uint16(WORD_SHIFT["guest_kind"])).astype(np.uint8) * np.uint8(2)
    index += recency.recent(state, pages)
    index *= np.uint8(N_LOC)
    index += loc
    return np.take(_CLASS_OF, index), loc


def balloon_class(state: State, pages: I64 | slice) -> I8:
    return balloon_class_loc(state, pages)[0]


class AtLocation:
    """The pages at one location as the one class a pick takes (class 0, every other page
    INELIGIBLE): what the swap daemon (private pages) and a deflating balloon driver
    (ballooned pages) pick from. `table` classes a page by its record for the compiled
    probe (pick_loop.py)."""

    n_classes = 1  # only class 0 is ever picked: a scan looks for no other

    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        self.table = pick_loop.class_table(
            lambda kind, at, recent: np.where(at == loc, 0, INELIGIBLE).astype(np.int8),
            INELIGIBLE)

    def __call__(self, state: State, pages: I64 | slice) -> I8:
        return np.where(state.pages.at("location", pages) == self.loc, np.int8(0),
                        np.int8(INELIGIBLE))

    def scan(self, state: State, pages: I64 | slice) -> I64:
        """The pages at the location (class 0), ascending and distinct, in one pass: of
        a slice, or of an index array (a probe's draws, which may repeat)."""
        if isinstance(pages, slice):
            return pick_loop.pages_at(state, pages.start, pages.stop, self.loc)
        return unique_sorted(pick_loop.pages_among(state, pages, self.loc))


def pick(state: State, rng: np.random.Generator, v: int, k: int, classes: object,
         n_classes: int = INELIGIBLE) -> I64:
    """Up to k pages of VM v in order of their class (random within a class).

    `classes(state, pages)` gives each page a class; INELIGIBLE pages are never picked,
    nor any of a class from `n_classes` on (none has one: it spares the passes).
    `pages` is an index array, or for a scan of the whole VM its slice of the pages.
    """
    if k <= 0:
        return np.zeros(0, np.int64)
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    # The probe's pages as drawn: _by_class sorts and dedups only those of the classes it
    # takes (when they are scarce, a few of the 8k + 64), not all of them first.
    probe = off + rng.integers(0, n, size=min(n, 8 * k + 64))
    chosen = _by_class(state, rng, probe, k, classes, n_classes)
    # Every page of the VM in the probe, its classes taken: no scan finds more.
    seen_all = probe.size == n and unique_sorted(probe).size == n
    if chosen.size < k and not seen_all:  # too few in the probe: look at every page
        chosen = _by_class(state, rng, slice(off, off + n), k, classes, n_classes)
    return chosen


def _by_class(state: State, rng: np.random.Generator, pages: I64 | slice, k: int,
              classes: object, n_classes: int = INELIGIBLE) -> I64:
    """k pages by class, random within the last class taken; no sort of all candidates.
    Pages given by index may repeat (a probe's draws); those of a class are taken once
    each, ascending, before the random choice among them."""
    at = classes if isinstance(classes, AtLocation) else None
    if at is not None:  # pages at one location: found in one pass, not classed first
        n_classes = min(n_classes, at.n_classes)
    cls = None if at is not None else classes(state, pages)  # type: ignore[operator]
    chosen: list[I64] = []
    left = k
    for c in range(n_classes):
        if left == 0:
            break
        if at is not None:  # its one class: c is 0
            of_class = at.scan(state, pages)
        elif isinstance(pages, slice):  # a whole VM: its pages of the class by position
            of_class = np.flatnonzero(cls == c) + pages.start
        else:  # the probe's pages of the class, ascending and distinct
            of_class = unique_sorted(np.compress(cls == c, pages))
        if of_class.size > left:
            of_class = rng.choice(of_class, size=left, replace=False)
        chosen.append(of_class)
        left -= of_class.size
    return sorted_ints(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def probe(state: State, rng: np.random.Generator, want: I64, factor: int) -> tuple[I64, I64]:
    """Random candidate pages for every VM at once: `factor` per wanted page, plus 32."""
    vms = state.vms
    m = pick_loop.probe_counts(vms, want, factor)
    vm = np.repeat(np.arange(len(vms)), m)
    # Per-VM columns spread by repeat: what indexing them by `vm` gives, written in order.
    # In place: the same products as rng.random(k) * n_pages (exact in float64).
    local = rng.random(vm.size)
    local *= np.repeat(vms["n_pages"].astype(np.float64), m)
    pages = local.astype(np.int64)
    pages += np.repeat(vms["page_offset"], m)
    return vm, pages


def take(vm: I64, pages: I64, cls: npt.NDArray[np.integer[Any]], want: I64) -> I64:
    """Per VM, up to want[v] candidates, best class first.

    Candidates come from `probe`: grouped by VM and in random order, so the first ones of
    a class in probe order are a uniform random choice among them - no sort needed. Per
    VM, every candidate of a class better than its cut-off class (the one where the want
    runs out) is taken, and of the cut-off class the first ones up to the want: a few
    passes over the candidates, whatever the number of classes.
    """
    if vm.size == 0:
        return np.zeros(0, np.int64)
    # np.compress, not pages[chosen]: a boolean index branches on every element.
    return unique_sorted(np.compress(taken_by_rule(vm, cls, want), pages))


def taken_by_rule(vm: I64, cls: npt.NDArray[np.integer[Any]], want: I64) -> Bool:
    """Which candidates `take` takes (vm not empty)."""
    n = want.size
    want = want.astype(np.int64)
    # vm ascends (probe groups candidates by VM in order): per-VM values spread by repeat.
    starts = np.searchsorted(vm, np.arange(n + 1))
    per_vm = np.diff(starts)
    # Candidates per VM and class: a segment sum per class over a byte mask (several
    # times cheaper than a bincount of vm * classes + class over int64 keys).
    counts = np.zeros((n, INELIGIBLE), np.int64)
    some = np.flatnonzero(per_vm)
    for c in range(INELIGIBLE):
        counts[some, c] = np.add.reduceat((cls == c).view(np.uint8), starts[some],
                                          dtype=np.int32)
    before = np.cumsum(counts, axis=1) - counts  # candidates of better classes, per VM
    enough = before + counts >= want[:, None]
    cutoff = np.where(enough.any(axis=1), enough.argmax(axis=1), INELIGIBLE)
    # A VM with no cut-off class takes none of its INELIGIBLE candidates (quota 0).
    quota = np.where(cutoff < INELIGIBLE,
                     want - before[np.arange(n), np.minimum(cutoff, INELIGIBLE - 1)], 0)
    cut = np.repeat(cutoff.astype(cls.dtype), per_vm)
    chosen = cls < cut
    at_cut = np.flatnonzero(cls == cut)
    if at_cut.size:
        # Of a VM's candidates at its cut-off (a run of at_cut, in probe order), the first
        # `quota` are taken.
        first = np.searchsorted(at_cut, starts)[:-1]
        # Those runs' heads, one after another: positions in at_cut by range arithmetic.
        head = np.arange(int(quota.sum()))
        head += np.repeat(first - (np.cumsum(quota) - quota), quota)
        chosen[np.take(at_cut, head)] = True
    return np.asarray(chosen)


def pick_many(state: State, rng: np.random.Generator, want: I64, at: AtLocation) -> I64:
    """Up to want[v] pages of every VM v at `at`'s location, ascending; a VM the probe
    leaves well short (under half: duplicates in a probe cost a few) is scanned; the rest
    catch up next tick."""
    if kernels.compiled():  # the same picks, made in one loop (pick_loop.py)
        chosen = unique_sorted(pick_loop.probe_take(state, rng, want, PICK_PROBES, at.table,
                                                    INELIGIBLE)[0])
    else:
        vm, cand = probe(state, rng, want, PICK_PROBES)
        chosen = take(vm, cand, at(state, cand), want)
    return _scan_short(state, rng, want, chosen, at, at.n_classes)


def _scan_short(state: State, rng: np.random.Generator, want: I64, chosen: I64,
                classes: object, n_classes: int = INELIGIBLE) -> I64:
    """`chosen` (ascending) with the VMs it leaves well short scanned whole."""
    short = np.flatnonzero(2 * count_sorted(state.vms, chosen) < want)
    extra = [pick(state, rng, int(v), int(want[v]), classes, n_classes) for v in short]
    if extra:
        chosen = unique_sorted(np.concatenate([chosen, *extra]))
        # A full scan re-picks from scratch; keep each VM within its want.
        vm = vm_of_sorted(state.vms, chosen)
        _, starts, lengths = runs(vm)
        rank = np.arange(vm.size) - np.repeat(starts, lengths)
        chosen = np.compress(rank < want[vm], chosen)
    return chosen


# A candidate's balloon class and location ride in its sort key below its page number.
_CLASS_SHIFT, _PAGE_SHIFT = 3, 6


def pick_balloon(state: State, rng: np.random.Generator, want: I64) -> tuple[I64, I8, U8]:
    """`pick_many(state, rng, want, balloon_class)` with each page's class and location,
    looked up once per candidate (random reads over all pages are most of the cost)."""
    if not pick_loop.probe_counts(state.vms, want, PICK_PROBES).any():
        return np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.uint8)
    if kernels.compiled():  # the same picks, made in one loop (pick_loop.py)
        cand, cls, loc = pick_loop.probe_take(state, rng, want, PICK_PROBES, _BALLOON_TABLE,
                                              INELIGIBLE, use_recency=True)
        key = (cand << _PAGE_SHIFT) | (cls << _CLASS_SHIFT) | loc
    else:
        vm, cand = probe(state, rng, want, PICK_PROBES)
        cls, loc = balloon_class_loc(state, cand)
        key = np.compress(taken_by_rule(vm, cls, want),
                          (cand << _PAGE_SHIFT) | (cls << _CLASS_SHIFT) | loc)
    # Equal pages have equal keys, so distinct keys are distinct pages, in page order.
    keys = unique_sorted(key)
    chosen = keys >> _PAGE_SHIFT
    picked = _scan_short(state, rng, want, chosen, balloon_class)
    if picked is not chosen:
        return (picked, *balloon_class_loc(state, picked))
    cls = ((keys >> _CLASS_SHIFT) & ((1 << (_PAGE_SHIFT - _CLASS_SHIFT)) - 1)).astype(np.int8)
    return chosen, cls, (keys & ((1 << _CLASS_SHIFT) - 1)).astype(np.uint8)


def unmap(state: State, pages: I64, new_loc: int, vm: I64 | None = None,
          loc: U8 | None = None) -> None:
    """Pages leave guest memory for `new_loc` (ballooned or swapped): frames go back.

    `vm` and `loc`, when given, are the pages' VMs and locations (callers that have them
    spare the lookups)."""
    if pages.size == 0:
        return
    p, vms = state.pages, state.vms
    if vm is None:
        vm = vms.vm_of_pages(pages)
    if loc is None:
        loc = p.at("location", pages)
    # Only shared pages need their content: the zero page's sharers are counted per VM.
    shared = np.flatnonzero(loc == Loc.SHARED)
    if shared.size:
        zero = np.take(p.content, np.take(pages, shared)) == 0
        vms["zero_shared"] -= np.bincount(np.compress(zero, np.take(vm, shared)),
                                          minlength=len(vms))
    mapped = np.take(p.frame, pages)
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


def set_kind(state: State, pages: I64, kind: int, vm: I64 | None = None,
             old: U8 | None = None) -> None:
    """The guest uses `pages` for `kind` now; `vm` and `old` (their VMs and kinds) when
    the caller has them."""
    p = state.pages
    count_moves(state, state.vms.vm_of_pages(pages) if vm is None else vm,
                p.at("guest_kind", pages) if old is None else old, kind,
                "kind_count", N_KIND)
    p.guest_kind[pages] = kind
    if kind_bits.marks_kind(kind):
        kind_bits.mark(state, pages)
