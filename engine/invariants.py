"""check(state) -> violations. Run after every tick in tests and in --check mode.

Each check recomputes from the page arrays what the engine maintains incrementally, so a
mechanism that forgets a counter or leaks a frame is caught at the tick it happens.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from engine.arrays import runs
from engine.memory.overhead import table_frames
from engine.state import N_KIND, N_LOC, GuestKind, Loc, State

CHUNK_PAGES = 1 << 21  # pages a chunk: temporaries stay small on any world, two at once
_MAX_THREADS = 4  # chunks checked at once, at most; one a core below that


class _Tally:
    """What the per-page checks find over all chunks, and the per-VM, per-host and
    per-frame sums they rebuild, compared with the engine's counters at the end."""

    def __init__(self, state: State, whole: bool = True) -> None:
        """The tally of the whole check (`whole`), or a chunk's part of it (no per-frame
        counts: a chunk keeps the frames its pages map, which the whole tally counts)."""
        n_vms, n_hosts = len(state.vms), len(state.hosts)
        self.flags: set[str] = set()
        self.loc = np.zeros(n_vms * N_LOC, np.int64)
        self.kind = np.zeros(n_vms * N_KIND, np.int64)
        self.guest_swapped = np.zeros(n_vms, np.int64)
        self.zero_shared = np.zeros(n_vms, np.int64)
        self.remote_unbacked = np.zeros(n_hosts, np.int64)
        self.ksm_items = np.zeros(n_hosts, np.int64)
        self.ksm_unshared = np.zeros(n_hosts, np.int64)
        # References to each frame, by guest pages and overhead: int32 like the refcounts
        # (a bincount over all frames would be int64, and built per chunk).
        self.mapped = np.zeros(state.frames.refcount.size if whole else 0, np.int32)
        # A chunk's references to frames, counted (when its frame numbers can be trusted):
        # (first frame, counts from it) of each dense span, and the frames left over.
        self.counted: list[tuple[int, np.ndarray]] = []
        self.uncounted: np.ndarray | None = None
        self.distinct: tuple[np.ndarray, np.ndarray] | None = None  # (frames, counts)
        self.shared_frame: list[np.ndarray] = []
        self.shared_content: list[np.ndarray] = []
        self.bad_frames = False

    def add(self, part: _Tally) -> None:
        """A chunk's part, in page order. Once some chunk's frames cannot be trusted as
        indices, no more are counted (the check then reports just that)."""
        self.flags |= part.flags
        for total, more in ((self.loc, part.loc), (self.kind, part.kind),
                            (self.guest_swapped, part.guest_swapped),
                            (self.zero_shared, part.zero_shared),
                            (self.remote_unbacked, part.remote_unbacked),
                            (self.ksm_items, part.ksm_items),
                            (self.ksm_unshared, part.ksm_unshared)):
            total += more
        self.bad_frames |= part.bad_frames
        if self.bad_frames or part.uncounted is None:
            return
        for lo, counts in part.counted:
            self.mapped[lo:lo + counts.size] += counts
        if part.distinct is not None:
            distinct, times = part.distinct
            self.mapped[distinct] += times  # distinct frames: no repeat is lost
        _count_into(self.mapped, part.uncounted)
        self.shared_frame += part.shared_frame
        self.shared_content += part.shared_content


def check(state: State) -> list[str]:
    """Every invariant, the page arrays read a chunk at a time (a save's load runs this
    on the whole data center: whole-array temporaries there were 6 GiB)."""
    vms, hosts, frames = state.vms, state.hosts, state.frames
    tally = _Tally(state)
    postcopy = [(int(vms["page_offset"][m.vm]), int(vms["n_pages"][m.vm]), m.src)
                for m in state.migrations if m.status == "postcopy"]
    for part in _chunk_tallies(state, postcopy):
        tally.add(part)
    flags = tally.flags
    out = [msg for msg in ("a non-resident page maps a frame",) if msg in flags]
    if tally.bad_frames:
        return [*out, "a resident page has no valid frame"]
    out += [msg for msg in (
        "an untouched page has non-zero content",
        "a page the guest paged out is still backed by the hypervisor",
        "an untouched page is not on the guest's free list",
        "ballooned pages and pages the balloon driver holds differ",
        "a free or cached page is not marked so for the page cache's walks") if msg in flags]

    # Overhead frames (memory/overhead.py) hold one reference each and no guest page.
    mapped = tally.mapped
    _count_into(mapped, table_frames(state))
    if not np.array_equal(mapped, frames.refcount):
        bad = int(np.flatnonzero(mapped != frames.refcount)[0])
        out.append(f"frame {bad}: refcount {frames.refcount[bad]} but {mapped[bad]} pages map it")
    if "a private frame is mapped by more than one page" in flags:
        out.append("a private frame is mapped by more than one page")
    if tally.shared_frame:
        f_all = np.concatenate(tally.shared_frame)
        order = np.argsort(f_all, kind="stable")
        f_sorted = f_all[order]
        c_sorted = np.concatenate(tally.shared_content)[order]
        same_frame = f_sorted[1:] == f_sorted[:-1]
        if np.any(same_frame & (c_sorted[1:] != c_sorted[:-1])):
            out.append("pages sharing a frame have different content")

    # Per VM: counters match the arrays; frames lie on the VM's own host.
    counts = tally.loc.reshape(len(vms), N_LOC)
    if not np.array_equal(counts, vms["loc_count"]):
        bad = int(np.flatnonzero(np.any(counts != vms["loc_count"], axis=1))[0])
        out.append(f"{vms.ids[bad]}: page counts by location {vms['loc_count'][bad].tolist()} "
                   f"but the pages say {counts[bad].tolist()}")
    if np.any(vms["loc_count"].sum(axis=1) != vms["n_pages"]):
        out.append("resident + swapped + ballooned + untouched != configured for some VM")
    if not np.array_equal(tally.kind.reshape(len(vms), N_KIND), vms["kind_count"]):
        out.append("guest page-kind counts disagree with the pages")
    if not np.array_equal(tally.guest_swapped, vms["guest_swapped_count"]):
        out.append("guest-swapped counts disagree with the pages")
    # A page still at a post-copy source without a frame is in the source's swap.
    swapped_per_host = np.bincount(np.maximum(vms["host"], 0), weights=counts[:, Loc.SWAPPED],
                                   minlength=len(hosts)).astype(np.int64)
    swapped_per_host += tally.remote_unbacked
    zipped_per_host = np.bincount(np.maximum(vms["host"], 0),
                                  weights=counts[:, Loc.COMPRESSED], minlength=len(hosts))
    if not np.array_equal(zipped_per_host.astype(np.int64),
                          state.reclaim.hosts["compressed_pages"]):
        out.append("per-host compressed page counts disagree with the pages")
    if "a compression-cache frame holds more than two pages" in flags:
        out.append("a compression-cache frame holds more than two pages")
    if not np.array_equal(swapped_per_host, state.reclaim.hosts["swapped_pages"]):
        out.append("per-host swapped page counts disagree with the pages")
    if np.any((vms["host"] < 0) & (counts[:, Loc.PRIVATE] + counts[:, Loc.SHARED] > 0)):
        out.append("a stopped VM still has resident pages")
    if "a guest page maps a frame on another host" in flags:
        out.append("a guest page maps a frame on another host")

    out.extend(_sharing(state, tally))
    out.extend(_overhead(state, tally))

    # Free lists: exactly the frames with refcount 0, each once, low and high apart.
    for h in range(len(hosts)):
        off, n, low = (int(hosts.frame_offset[h]), int(hosts.n_frames[h]),
                       int(hosts.low_frames[h]))
        free, free_low = int(hosts.free_count[h]), int(hosts.free_low[h])
        low_stack = frames.stack_run(off, off + free_low)
        high_stack = frames.stack_run(off + low, off + low + free - free_low)
        zero = np.flatnonzero(frames.refcount[off:off + n] == 0) + off
        listed = np.sort(np.concatenate([low_stack, high_stack]))
        if (free > n or free_low > low or listed.size != zero.size
                or not np.array_equal(listed, zero) or np.any(low_stack >= off + low)
                or np.any(high_stack < off + low)):
            out.append(f"host {hosts.ids[h]}: free lists do not match free frames")
    return out


def _count_into(counts: np.ndarray, frames: np.ndarray) -> None:
    """counts[f] += 1 for each f in frames (repeats count): a bincount over the span they
    cover where that span is dense (several times faster than add.at), else a sort of
    them (_count_sorted), or add.at for a few. Counts the overhead frames (spread over
    every host) and what _count_by_host leaves (pages mapping frames off their host)."""
    if frames.size == 0:
        return
    lo, hi = int(frames.min()), int(frames.max())
    if hi - lo <= 4 * frames.size + (1 << 20):
        counts[lo:hi + 1] += np.bincount(frames - lo, minlength=hi - lo + 1).astype(
            counts.dtype)
    elif frames.size > _SCATTERED:
        distinct, times = _count_sorted(frames)
        counts[distinct] += times  # distinct frames: no repeat is lost
    else:
        np.add.at(counts, frames, 1)


Counted = tuple[list[tuple[int, np.ndarray]], tuple[np.ndarray, np.ndarray] | None, np.ndarray]


def _count_by_host(frames: np.ndarray, host: np.ndarray, frame_offset: np.ndarray,
                   n_frames: np.ndarray) -> Counted:
    """A chunk's references to frames counted by the thread that checks the chunk:
    `host` is the host each page must be on, whose frames (`frame_offset`, `n_frames`) it
    maps. Returns (pieces of dense counts: first frame, int32 counts from it; distinct
    frames and their counts, or None; the few frames left for _count_into). A chunk of a
    few VMs holds a few runs of a host: a dense bincount a run, the frames off their
    page's host (violations the check reports; a stopped VM's, host -1) left over. A
    chunk of many small VMs (100,000 VMs at 2 MiB pages: thousands a chunk), or a
    post-copy's pages interleaving two hosts, is sorted instead (as are many leftovers)."""
    counted: list[tuple[int, np.ndarray]] = []
    left: list[np.ndarray] = []
    if frames.size == 0:
        return counted, None, frames
    starts = np.flatnonzero(host[1:] != host[:-1]) + 1
    if starts.size >= _RUNS:
        return counted, _count_sorted(frames), frames[:0]
    run_host = host[np.concatenate([[0], starts])].tolist()
    for h, f in zip(run_host, np.split(frames, starts), strict=True):
        if h < 0:
            left.append(f)
            continue
        inside = (f >= frame_offset[h]) & (f < frame_offset[h] + n_frames[h])
        if not inside.all():
            left.append(f[~inside])
            f = f[inside]
        if f.size:
            lo = int(f.min())
            counted.append((lo, np.bincount(f - lo).astype(np.int32)))
    rest = np.concatenate(left) if left else frames[:0]
    if rest.size > _SCATTERED:
        return counted, _count_sorted(rest), frames[:0]
    return counted, None, rest


def _count_sorted(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each distinct frame, how often it occurs), by a sort: for frames of many hosts."""
    distinct, _, times = runs(np.sort(frames))
    return distinct, times.astype(np.int32)


_RUNS = 64  # runs of one host in a chunk, above which its frames are sorted instead
_SCATTERED = 1 << 14  # scattered frames counted by add.at, at most; more are sorted


def _chunk_tallies(state: State, postcopy: list[tuple[int, int, int]]) -> Iterator[_Tally]:
    """Each chunk's tally, in page order. Chunks are checked side by side, one a core
    (numpy lets go of the GIL over a chunk's arrays; the data center's check: 6.8 s on
    one core, 4.1-4.9 s on two), a few ahead of the one the caller adds."""
    n = len(state.pages)
    bounds = [(a, min(a + CHUNK_PAGES, n)) for a in range(0, n, CHUNK_PAGES)]
    workers = min(os.cpu_count() or 1, _MAX_THREADS, len(bounds))
    if workers <= 1:
        for a, b in bounds:
            yield _check_pages(state, a, b, postcopy)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
        ahead: deque[Future[_Tally]] = deque()
        for a, b in bounds:
            ahead.append(pool.submit(_check_pages, state, a, b, postcopy))
            if len(ahead) > workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _check_pages(state: State, a: int, b: int, postcopy: list[tuple[int, int, int]]) -> _Tally:
    """The per-page checks of pages [a, b), and their part of the sums. Reads the state
    only: chunks may be checked at once."""
    tally = _Tally(state, whole=False)
    p, vms, hosts, frames, sharing = (state.pages, state.vms, state.hosts, state.frames,
                                      state.sharing)
    flags, n_vms, n_hosts = tally.flags, len(vms), len(hosts)
    loc = np.ascontiguousarray(p.location[a:b])
    kind = np.ascontiguousarray(p.guest_kind[a:b])
    frame = p.frame[a:b]
    content = p.content[a:b]
    guest_swapped = p.guest_swapped[a:b]
    page_vm = vms.vm_of_pages(np.arange(a, b, dtype=np.int64))
    page_host = vms["host"][page_vm]  # where each page must live: its VM's host...
    resident = (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    remote = loc == Loc.REMOTE
    compressed = loc == Loc.COMPRESSED
    for start, n, src in postcopy:  # ...or, for pages still remote, the source
        lo, hi = max(start, a), min(start + n, b)
        if lo < hi:
            sl = slice(lo - a, hi - a)
            page_host[sl] = np.where(remote[sl], src, page_host[sl])
            tally.remote_unbacked[src] += int((remote[sl] & (frame[sl] < 0)).sum())
    # Post-copy: a page still at the source keeps its source frame (or swap slot).
    mapped_pages = resident | compressed | (remote & (frame >= 0))
    if np.any(frame[~mapped_pages] != -1):
        flags.add("a non-resident page maps a frame")
    res_frames = frame[mapped_pages]
    if np.any(res_frames < 0) or np.any(res_frames >= frames.refcount.size):
        tally.bad_frames = True
    # An untouched page reads as zero, unless the guest paged its data out to its disk.
    if np.any(content[(loc == Loc.UNTOUCHED) & ~guest_swapped] != 0):
        flags.add("an untouched page has non-zero content")
    if np.any(guest_swapped & (resident | (loc == Loc.SWAPPED) | compressed)):
        flags.add("a page the guest paged out is still backed by the hypervisor")
    # A page is untouched only on the guest's free list (never used, or handed back by
    # the balloon): the file cache's fill walks rely on it (workloads/filecache.py).
    if np.any(kind[loc == Loc.UNTOUCHED] != GuestKind.FREE):
        flags.add("an untouched page is not on the guest's free list")
    if np.any((loc == Loc.BALLOONED) != (kind == GuestKind.DRIVER)):
        flags.add("ballooned pages and pages the balloon driver holds differ")
    # The page cache's walks pass only the pages marked (state.Pages.free_or_cached).
    marked = np.unpackbits(p.free_or_cached[a >> 6:(b + 63) >> 6].view(np.uint8),
                           bitorder="little")[a & 63:(a & 63) + b - a]
    if np.any(((kind == GuestKind.FREE) | (kind == GuestKind.CACHE)) & (marked == 0)):
        flags.add("a free or cached page is not marked so for the page cache's walks")
    tally.loc += np.bincount(page_vm * N_LOC + loc, minlength=n_vms * N_LOC)
    tally.kind += np.bincount(page_vm * N_KIND + kind, minlength=n_vms * N_KIND)
    tally.guest_swapped += np.bincount(page_vm[guest_swapped], minlength=n_vms)
    shared = loc == Loc.SHARED
    private = loc == Loc.PRIVATE
    tally.zero_shared += np.bincount(page_vm[shared & (content == 0)], minlength=n_vms)
    if sharing.ksm_scanned_at is not None and sharing.ksm_unstable is not None:
        owner = vms["host"][page_vm]
        on = owner >= 0
        tally.ksm_items += np.bincount(owner[on & (sharing.ksm_scanned_at[a:b] > 0)],
                                       minlength=n_hosts)
        tally.ksm_unshared += np.bincount(owner[on & sharing.ksm_unstable[a:b]],
                                          minlength=n_hosts)
    if tally.bad_frames:
        return tally  # frame numbers cannot be trusted as indices
    if np.any(frames.refcount[frame[private]] != 1):
        flags.add("a private frame is mapped by more than one page")
    tally.shared_frame.append(frame[shared])
    tally.shared_content.append(content[shared])
    if np.any(frames.refcount[frame[compressed]] > 2):
        flags.add("a compression-cache frame holds more than two pages")
    host_of_page = page_host[mapped_pages]
    tally.counted, tally.distinct, tally.uncounted = _count_by_host(
        res_frames, host_of_page, hosts.frame_offset, hosts.n_frames)
    lo = hosts.frame_offset[host_of_page]
    hi = lo + hosts.n_frames[host_of_page]
    if np.any((res_frames < lo) | (res_frames >= hi)):
        flags.add("a guest page maps a frame on another host")
    fk = sharing.frame_keys
    if not np.all(fk.has(frame[shared])):
        flags.add("a shared page maps a frame that is not in the sharing table")
    if np.any(fk.has(frame[private])):
        flags.add("a private page maps a shared (copy-on-write) frame")
    return tally


def _sharing(state: State, tally: _Tally) -> list[str]:
    out: list[str] = []
    sharing, frames = state.sharing, state.frames
    fk = sharing.frame_keys
    keyed, frame_keys = fk.items()
    if (np.any(frame_keys == 0) or np.any(keyed >= fk.n_frames)
            or not np.array_equal(np.flatnonzero(np.unpackbits(fk.bits, bitorder="little")
                                                 [:fk.n_frames]), keyed)):
        out.append("the shared frames' bits disagree with their keys")
    for msg in ("a shared page maps a frame that is not in the sharing table",
                "a private page maps a shared (copy-on-write) frame"):
        if msg in tally.flags:
            out.append(msg)
    if np.any(frames.refcount[keyed] == 0):
        out.append("a free frame is still keyed as shared")
    keys, vals, _ = sharing.stable.items()
    if np.any(fk.get(vals) != keys):
        out.append("a stable sharing entry points at a frame shared under another key")
    if not np.array_equal(tally.zero_shared, state.vms["zero_shared"]):
        out.append("shared zero-page counts disagree with the pages")
    owner = state.hosts.host_of_frames(keyed)
    if not np.array_equal(np.bincount(owner, minlength=len(state.hosts)),
                          sharing.hosts["shared_frames"]):
        out.append("per-host shared frame counts disagree with the frames")
    if not np.array_equal(sharing.hints.occupied_per_host(), sharing.hosts["hint_count"]):
        out.append("hint counts disagree with the hint table")
    return out


def _overhead(state: State, tally: _Tally) -> list[str]:
    """Overhead frames: as many as each VM's counters say, on the right host."""
    out: list[str] = []
    vms, table, hosts = state.vms, state.overhead, state.hosts
    slot_vm = np.repeat(np.arange(len(vms)), vms["overhead_pages"])
    if slot_vm.size != table.frames.size:
        return ["overhead table slots disagree with the VMs' overhead sizes"]
    for name, arr, where in (("held", table.frames, vms["host"]),
                             ("reserved", table.reserved, vms["overhead_dst"])):
        used = arr >= 0
        count = np.bincount(slot_vm[used], minlength=len(vms))
        if not np.array_equal(count, vms[f"overhead_{name}"]):
            out.append(f"overhead frames {name} disagree with the VM counters")
            continue
        owner = np.searchsorted(hosts.frame_offset, arr[used], side="right") - 1
        if np.any(owner != where[slot_vm[used]]):
            out.append(f"an overhead frame {name} for a VM lies on another host")
    if np.any((vms["host"] < 0) & (vms["overhead_held"] > 0)):
        out.append("a stopped VM still holds overhead frames")
    sharing = state.sharing
    if sharing.ksm_scanned_at is not None and sharing.ksm_unstable is not None and not (
            np.array_equal(tally.ksm_items, sharing.hosts["ksm_rmap_items"])
            and np.array_equal(tally.ksm_unshared, sharing.hosts["ksm_unshared"])):
        # KSM's rmap_items and pages_unshared per host agree with the per-page state.
        out.append("KSM rmap_items or pages_unshared disagree with the pages")
    return out
