"""check(state) -> violations. Run after every tick in tests and in --check mode.

Each check recomputes from the page arrays what the engine maintains incrementally, so a
mechanism that forgets a counter or leaks a frame is caught at the tick it happens.
"""

from __future__ import annotations

import numpy as np

from engine.memory.overhead import table_frames
from engine.state import N_KIND, N_LOC, GuestKind, Loc, State


def check(state: State) -> list[str]:
    out: list[str] = []
    p, vms, hosts, frames = state.pages, state.vms, state.hosts, state.frames
    n_frames_total = frames.refcount.size
    resident = (p.location == Loc.PRIVATE) | (p.location == Loc.SHARED)
    # Post-copy: a page still at the source keeps its source frame (or swap slot).
    remote = p.location == Loc.REMOTE
    compressed = p.location == Loc.COMPRESSED
    mapped_pages = resident | compressed | (remote & (p.frame >= 0))

    if np.any(p.frame[~mapped_pages] != -1):
        out.append("a non-resident page maps a frame")
    res_frames = p.frame[mapped_pages]
    if np.any(res_frames < 0) or np.any(res_frames >= n_frames_total):
        out.append("a resident page has no valid frame")
        return out
    # An untouched page reads as zero, unless the guest paged its data out to its disk.
    if np.any(p.content[(p.location == Loc.UNTOUCHED) & ~p.guest_swapped] != 0):
        out.append("an untouched page has non-zero content")
    if np.any(p.guest_swapped & ((p.location == Loc.PRIVATE) | (p.location == Loc.SHARED)
                                 | (p.location == Loc.SWAPPED) | compressed)):
        out.append("a page the guest paged out is still backed by the hypervisor")
    if np.any((p.location == Loc.BALLOONED) != (p.guest_kind == GuestKind.DRIVER)):
        out.append("ballooned pages and pages the balloon driver holds differ")

    # Overhead frames (memory/overhead.py) hold one reference each and no guest page.
    mapped = np.bincount(res_frames, minlength=n_frames_total) + np.bincount(
        table_frames(state), minlength=n_frames_total)
    if not np.array_equal(mapped, frames.refcount):
        bad = int(np.flatnonzero(mapped != frames.refcount)[0])
        out.append(f"frame {bad}: refcount {frames.refcount[bad]} but {mapped[bad]} pages map it")

    private_frames = p.frame[p.location == Loc.PRIVATE]
    if np.any(frames.refcount[private_frames] != 1):
        out.append("a private frame is mapped by more than one page")

    shared = np.flatnonzero(p.location == Loc.SHARED)
    if shared.size:
        order = np.argsort(p.frame[shared], kind="stable")
        f_sorted = p.frame[shared][order]
        c_sorted = p.content[shared][order]
        same_frame = f_sorted[1:] == f_sorted[:-1]
        if np.any(same_frame & (c_sorted[1:] != c_sorted[:-1])):
            out.append("pages sharing a frame have different content")

    # Per VM: counters match the arrays; frames lie on the VM's own host.
    # int32 indices: on the 1,000-VM world these page-sized temporaries are gigabytes, and
    # a save's load runs this check once.
    page_vm = np.repeat(np.arange(len(vms), dtype=np.int32), vms["n_pages"])
    counts = np.bincount(page_vm * N_LOC + p.location, minlength=len(vms) * N_LOC)
    counts = counts.reshape(len(vms), N_LOC).astype(np.int64)
    if not np.array_equal(counts, vms["loc_count"]):
        bad = int(np.flatnonzero(np.any(counts != vms["loc_count"], axis=1))[0])
        out.append(f"{vms.ids[bad]}: page counts by location {vms['loc_count'][bad].tolist()} "
                   f"but the pages say {counts[bad].tolist()}")
    if np.any(vms["loc_count"].sum(axis=1) != vms["n_pages"]):
        out.append("resident + swapped + ballooned + untouched != configured for some VM")
    kinds = np.bincount(page_vm * N_KIND + p.guest_kind, minlength=len(vms) * N_KIND)
    if not np.array_equal(kinds.reshape(len(vms), N_KIND), vms["kind_count"]):
        out.append("guest page-kind counts disagree with the pages")
    if not np.array_equal(np.bincount(page_vm[p.guest_swapped], minlength=len(vms)),
                          vms["guest_swapped_count"]):
        out.append("guest-swapped counts disagree with the pages")
    swapped_per_host = np.bincount(np.maximum(vms["host"], 0), weights=counts[:, Loc.SWAPPED],
                                   minlength=len(hosts)).astype(np.int64)
    page_host = vms["host"].astype(np.int32)[page_vm]  # where each page must live: its VM's host...
    for mig in state.migrations:
        if mig.status == "postcopy":  # ...or, for pages still remote, the source
            sl = slice(int(vms["page_offset"][mig.vm]),
                       int(vms["page_offset"][mig.vm] + vms["n_pages"][mig.vm]))
            page_host[sl] = np.where(remote[sl], mig.src, page_host[sl])
            swapped_per_host[mig.src] += int((remote[sl] & (p.frame[sl] < 0)).sum())
    zipped_per_host = np.bincount(np.maximum(vms["host"], 0),
                                  weights=counts[:, Loc.COMPRESSED], minlength=len(hosts))
    if not np.array_equal(zipped_per_host.astype(np.int64),
                          state.reclaim.hosts["compressed_pages"]):
        out.append("per-host compressed page counts disagree with the pages")
    if np.any(frames.refcount[p.frame[compressed]] > 2):
        out.append("a compression-cache frame holds more than two pages")
    if not np.array_equal(swapped_per_host, state.reclaim.hosts["swapped_pages"]):
        out.append("per-host swapped page counts disagree with the pages")
    if np.any((vms["host"] < 0) & (counts[:, Loc.PRIVATE] + counts[:, Loc.SHARED] > 0)):
        out.append("a stopped VM still has resident pages")
    host_of_vm = page_host[mapped_pages]
    del page_host
    lo = hosts.frame_offset.astype(np.int32)[host_of_vm]
    hi = lo + hosts.n_frames.astype(np.int32)[host_of_vm]
    if np.any((res_frames < lo) | (res_frames >= hi)):
        out.append("a guest page maps a frame on another host")

    out.extend(_sharing(state, page_vm))
    out.extend(_overhead(state))

    # Free lists: exactly the frames with refcount 0, each once, low and high apart.
    for h in range(len(hosts)):
        off, n, low = (int(hosts.frame_offset[h]), int(hosts.n_frames[h]),
                       int(hosts.low_frames[h]))
        free, free_low = int(hosts.free_count[h]), int(hosts.free_low[h])
        low_stack = frames.free_stack[off:off + free_low]
        high_stack = frames.free_stack[off + low:off + low + free - free_low]
        zero = np.flatnonzero(frames.refcount[off:off + n] == 0) + off
        listed = np.sort(np.concatenate([low_stack, high_stack]))
        if (free > n or free_low > low or listed.size != zero.size
                or not np.array_equal(listed, zero) or np.any(low_stack >= off + low)
                or np.any(high_stack < off + low)):
            out.append(f"host {hosts.ids[h]}: free lists do not match free frames")
    return out


def _sharing(state: State, page_vm: np.ndarray) -> list[str]:
    out: list[str] = []
    p, sharing, frames = state.pages, state.sharing, state.frames
    shared = p.location == Loc.SHARED
    private = p.location == Loc.PRIVATE
    fk = sharing.frame_keys
    keyed, frame_keys = fk.items()
    if (np.any(frame_keys == 0) or np.any(keyed >= fk.n_frames)
            or not np.array_equal(np.flatnonzero(np.unpackbits(fk.bits, bitorder="little")
                                                 [:fk.n_frames]), keyed)):
        out.append("the shared frames' bits disagree with their keys")
    if not np.all(fk.has(p.frame[shared])):
        out.append("a shared page maps a frame that is not in the sharing table")
    if np.any(fk.has(p.frame[private])):
        out.append("a private page maps a shared (copy-on-write) frame")
    if np.any(frames.refcount[keyed] == 0):
        out.append("a free frame is still keyed as shared")
    keys, vals, _ = sharing.stable.items()
    if np.any(fk.get(vals) != keys):
        out.append("a stable sharing entry points at a frame shared under another key")
    zero = np.bincount(page_vm[shared & (p.content == 0)], minlength=len(state.vms))
    if not np.array_equal(zero, state.vms["zero_shared"]):
        out.append("shared zero-page counts disagree with the pages")
    owner = np.searchsorted(state.hosts.frame_offset, keyed, side="right") - 1
    if not np.array_equal(np.bincount(owner, minlength=len(state.hosts)),
                          sharing.hosts["shared_frames"]):
        out.append("per-host shared frame counts disagree with the frames")
    if not np.array_equal(sharing.hints.occupied_per_host(), sharing.hosts["hint_count"]):
        out.append("hint counts disagree with the hint table")
    return out


def _overhead(state: State) -> list[str]:
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
    ksm = _ksm_counters(state)
    if ksm:
        out.append(ksm)
    return out


def _ksm_counters(state: State) -> str:
    """KSM's rmap_items and pages_unshared per host agree with the per-page state."""
    sharing, vms = state.sharing, state.vms
    scanned, flagged = sharing.ksm_scanned_at, sharing.ksm_unstable
    if scanned is None or flagged is None:
        return ""
    page_host = np.repeat(vms["host"], vms["n_pages"])
    n = len(state.hosts)
    on = page_host >= 0
    items = np.bincount(page_host[on & (scanned > 0)], minlength=n)
    unshared = np.bincount(page_host[on & flagged], minlength=n)
    if not (np.array_equal(items, sharing.hosts["ksm_rmap_items"])
            and np.array_equal(unshared, sharing.hosts["ksm_unshared"])):
        return "KSM rmap_items or pages_unshared disagree with the pages"
    return ""
