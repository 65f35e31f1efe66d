"""Power-on and boot: a VM's memory goes from untouched to its booted layout.

A powered-on VM first gets its overhead frames (memory/overhead.py), then runs its boot
plan (memory/layout.py): the positions of the plan are guest pages to write with their
booted content. An instant boot (the default, which the calibrated scenarios assume) writes
every touched page at power-on; a timed boot writes the plan at the pace of the guest OS's
profile - with zero fill, every page zeroed first, then the images loaded - while the
host's reclamation and sharing run. Either way a VM whose host cannot give it a frame does
not lose the page: its boot stops at the first page it could not write, the VM stalls
(`boot_stall` event, lost service counted as memory_stall) and goes on when memory is free.
A booting VM runs no workload; its workload (and its phase schedule) starts at the end.

Power-on of many VMs is done in bulk: consecutive VMs with the same template and room on
their hosts are laid out with a few broadcast array operations per chunk of pages, so
building a 1,000-VM world costs about as much as writing its page arrays once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine import parallel
from engine.memory import frames as frame_alloc
from engine.memory import kind_bits, overhead
from engine.memory.layout import Template, template
from engine.memory.touch import apply_touches
from engine.spec import MemoryPolicy
from engine.state import I32, I64, U8, U64, WORD_SHIFT, Bool, GuestKind, Loc, State
from engine.workloads.images import boot_plan
from engine.world import World

# Pages laid out per broadcast step: bounds the temporaries (about 20 bytes a page).
CHUNK_PAGES = 1 << 22
Progress = Callable[[int, int], None]


def _template(state: State, v: int) -> Template:
    cols = state.vms
    return template(cols.specs[v], int(cols["n_pages"][v]), int(cols["max_pages"][v]),
                    state.page_size, state.layout_seed)


def power_on(state: State, policy: MemoryPolicy, vms: I64, hosts: I64, now_s: float,
             progress: Progress | None = None) -> I64:
    """Power `vms` on `hosts` (earlier VMs get memory first); returns, per VM, the pages
    its boot made resident at once. `progress(done, total)` follows the VMs laid out."""
    cols = state.vms
    vms, hosts = np.asarray(vms, np.int64), np.asarray(hosts, np.int64)
    cols["host"][vms] = hosts
    cols["started"][vms] = True
    cols["lost_vm"][vms] = False
    overhead.back(state, policy.overhead_frames, vms)
    templates = [_template(state, int(v)) for v in vms.tolist()]
    plans = [boot_plan(cols.specs[int(v)]) for v in vms.tolist()]
    timed = np.array([p.timed for p in plans], np.bool_)
    n_unique = np.array([t.n_unique for t in templates], np.int64)
    cols["boot_unique_base"][vms] = np.uint64(state.next_unique_content) + (
        np.cumsum(n_unique) - n_unique).astype(np.uint64)
    state.next_unique_content += int(n_unique.sum())
    total = np.array([t.plan_length(bool(x)) for t, x in zip(templates, timed, strict=True)],
                     np.int64)
    duration = np.array([p.duration_s for p in plans], np.float64)
    cols["booting"][vms] = True
    cols["boot_cursor"][vms] = 0
    cols["boot_total"][vms] = total
    cols["boot_rate"][vms] = np.where(timed, total / np.maximum(duration, 1e-9), 0.0)
    cols["boot_started_s"][vms] = now_s
    cols["phase_t0_s"][vms] = -1.0
    before = resident(state, vms)

    ready = ~timed & ((cols["overhead_held"][vms] >= cols["overhead_pages"][vms])
                      | (not policy.overhead_frames))
    need = np.array([t.n_touched for t in templates], np.int64)
    fast = ready & _fits(state, hosts, np.where(ready, need, 0))
    done = 0
    for start, stop in _runs(vms, fast, templates):
        t = templates[start]
        # Buffers for the chunks of this run, reused: fresh ones each chunk would cost a
        # page fault per page of them (the kernel zeroes every new mapping).
        per = max(1, CHUNK_PAGES // max(t.n, 1))
        frames_buf = np.empty((min(per, stop - start), t.n_touched), np.int32)
        at_buf = np.empty((0 if t.contiguous else frames_buf.shape[0], t.n_touched),
                          np.int64)
        for chunk in _chunks(start, stop, t.n):
            _lay_out(state, vms[chunk], t, frames_buf, at_buf)
            done += chunk.stop - chunk.start
            if progress is not None:
                progress(done, vms.size)
    slow = vms[ready & ~fast]
    if slow.size:
        advance(state, slow, cols["boot_total"][slow] - cols["boot_cursor"][slow])
    finish(state, vms[cols["booting"][vms] & (cols["boot_cursor"][vms] >= total)], now_s)
    if progress is not None:
        progress(vms.size, vms.size)
    return resident(state, vms) - before


def resident(state: State, vms: I64) -> I64:
    lc = state.vms["loc_count"]
    return np.asarray(lc[vms, Loc.PRIVATE] + lc[vms, Loc.SHARED], np.int64)


def _fits(state: State, hosts: I64, need: I64) -> Bool:
    """Which VMs' pages fit in their host's free frames, earlier VMs first."""
    order = np.argsort(hosts, kind="stable")
    sorted_hosts = hosts[order]
    cum = np.cumsum(need[order])
    starts = np.searchsorted(sorted_hosts, sorted_hosts, side="left")
    before_group = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0)
    fits = np.empty(hosts.size, np.bool_)
    fits[order] = cum - before_group <= state.hosts.free_count[sorted_hosts]
    return fits


def _runs(vms: I64, fast: Bool, templates: list[Template]) -> list[tuple[int, int]]:
    """Runs [start, stop) of VMs to lay out together: fast, consecutive (their pages are
    contiguous) and of one template."""
    out: list[tuple[int, int]] = []
    start = None
    for i in range(vms.size + 1):
        joins = (i < vms.size and fast[i] and start is not None
                 and vms[i] == vms[i - 1] + 1 and templates[i] is templates[start])
        if start is not None and not joins:
            out.append((start, i))
            start = None
        if start is None and i < vms.size and fast[i]:
            start = i
    return out


def _chunks(start: int, stop: int, n: int) -> list[slice]:
    per = max(1, CHUNK_PAGES // max(n, 1))
    return [slice(a, min(a + per, stop)) for a in range(start, stop, per)]


def _lay_out(state: State, vms: I64, t: Template, frames_buf: I32, at_buf: I64) -> None:
    """Instant boot of VMs with one template and contiguous pages, all with room."""
    cols, p = state.vms, state.pages
    m, n, k = vms.size, t.n, t.n_touched
    first = int(cols["page_offset"][vms[0]])
    sl = slice(first, first + m * n)
    got = frame_alloc.allocate_blocks(state, cols["host"][vms], k, out=frames_buf[:m])
    frame2d = p.frame[sl].reshape(m, n)
    # Location and guest kind as the record's words: one contiguous store (state.Pages).
    word = t.location.astype(np.uint16) | (
        t.kind.astype(np.uint16) << np.uint16(WORD_SHIFT["guest_kind"]))
    word2d = p.word[sl].reshape(m, n)
    content2d = p.content[sl].reshape(m, n)
    base = cols["boot_unique_base"][vms][:, None]

    def rows(r0: int, r1: int) -> None:
        """The pages of VMs r0..r1-1 (each VM's rows are its own: halves may run at once)."""
        if t.contiguous:
            frame2d[r0:r1, :k] = got[r0:r1]
        else:
            # A flat 1-D scatter per row block: numpy's 2-D fancy assignment is an order
            # of magnitude slower.
            at = at_buf[r0:r1]
            np.add((np.arange(r0, r1, dtype=np.int64) * n)[:, None] - r0 * n,
                   t.touched_pages[None, :], out=at)
            frame2d[r0:r1].reshape(-1)[at.ravel()] = got[r0:r1].ravel()
        word2d[r0:r1] = word
        if t.n_unique:  # unique pages: the template's rank plus each VM's base
            np.multiply(t.unique_u64, base[r0:r1], out=content2d[r0:r1])
            np.add(content2d[r0:r1], t.content, out=content2d[r0:r1])
        else:
            content2d[r0:r1] = t.content

    # Mostly page faults of fresh memory: two threads take them side by side.
    parallel.halves(rows, m, m * n * (p.content.itemsize + p.word.itemsize))
    kind_bits.refresh_rows(state, first, m, word)
    cols["loc_count"][vms, Loc.UNTOUCHED] -= k
    cols["loc_count"][vms, Loc.PRIVATE] += k
    cols["kind_count"][vms] = t.kind_counts
    cols["boot_cursor"][vms] = cols["boot_total"][vms]


def _plan(state: State, vms: I64, steps: I64) -> tuple[I32, I32, U64, U8, I64]:
    """This call's plan positions of each VM: (vm, rank, content, kind, global page), VMs
    grouped by template, in order within each.

    Planned PLAN_CHUNK positions at a time into arrays made once: a VM-by-VM boot of the
    data center plans 5 M positions, and whole-call temporaries (a dozen arrays of 8
    bytes a position) were fresh memory, most of the build's time when memory is cold.
    """
    cols = state.vms
    timed = cols["boot_rate"][vms] > 0
    groups: dict[tuple[int, bool], list[int]] = {}
    templates: dict[int, Template] = {}
    for i, v in enumerate(vms.tolist()):
        t = _template(state, v)
        templates[id(t)] = t
        groups.setdefault((id(t), bool(timed[i])), []).append(i)
    total = int(steps.sum())
    vm_out, rank_out = np.empty(total, np.int32), np.empty(total, np.int32)
    content_out, kind_out = np.empty(total, np.uint64), np.empty(total, np.uint8)
    page_out = np.empty(total, np.int64)
    at = 0
    for (tid, is_timed), members in groups.items():
        t = templates[tid]
        for idx in _plan_chunks(np.array(members, np.int64), steps):
            v, count = vms[idx], steps[idx]
            vm = np.repeat(v, count)
            rank = np.arange(vm.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count,
                                                                  count)
            local, filling = t.plan_pages(is_timed, np.repeat(cols["boot_cursor"][v], count)
                                          + rank)
            out = slice(at, at + vm.size)
            content = content_out[out]
            np.copyto(content, t.content[local])
            content[filling] = 0
            unique = t.unique[local] & ~filling
            content[unique] += cols["boot_unique_base"][vm[unique]]
            np.copyto(kind_out[out], np.where(filling, GuestKind.FREE, t.kind[local]),
                      casting="unsafe")
            vm_out[out], rank_out[out] = vm, rank
            np.add(cols["page_offset"][vm], local, out=page_out[out])
            at += vm.size
    return vm_out, rank_out, content_out, kind_out, page_out


PLAN_CHUNK = 1 << 20  # plan positions at a time: temporaries of 8 MiB, reused by malloc


def _plan_chunks(members: I64, steps: I64) -> list[I64]:
    """`members` cut, in order, into runs of VMs with at most PLAN_CHUNK positions between
    them (a VM with more is a run of its own)."""
    ends = np.cumsum(steps[members])
    cuts, start, base = [], 0, 0
    while start < members.size:
        stop = max(int(np.searchsorted(ends, base + PLAN_CHUNK, side="right")), start + 1)
        cuts.append(members[start:stop])
        base, start = int(ends[stop - 1]), stop
    return cuts


def advance(state: State, vms: I64, steps: I64) -> I64:
    """Write the next `steps` plan positions of each VM (stopping a VM at the first page
    it cannot get a frame for); returns the positions done per VM."""
    cols, p = state.vms, state.pages
    steps = np.minimum(steps, cols["boot_total"][vms] - cols["boot_cursor"][vms])
    keep = steps > 0
    vms, steps = vms[keep], steps[keep]
    n_vms = len(cols)
    done = np.zeros(n_vms, np.int64)
    if vms.size == 0:
        return done
    vm, rank, content, kind, page = _plan(state, vms, steps)
    # A zero written to a never-touched page of a VM at its max reads as zero already:
    # nothing to allocate (else a zero-filling guest with max < memory never boots).
    at_max = resident(state, np.arange(n_vms)) >= cols["max_pages"]
    loc = p.at("location", page)
    noop = (content == 0) & (loc == Loc.UNTOUCHED) & at_max[vm]
    runs = _touch_runs(state, vm, loc)
    for k in (GuestKind.FREE, GuestKind.CACHE, GuestKind.ANON):
        for run in runs:
            mine = (kind[run] == k) & ~noop[run]
            if mine.any():
                pages = page[run][mine]
                apply_touches(state, np.zeros(0, np.int64), pages, content[run][mine],
                              np.zeros(n_vms, np.int64),
                              np.bincount(vm[run][mine], minlength=n_vms),
                              kind=int(k), blocked=cols["blocked"])
    loc = p.at("location", page)
    served = noop | (loc == Loc.PRIVATE) | (loc == Loc.SHARED)
    first_bad = np.full(n_vms, np.iinfo(np.int64).max)
    bad = np.flatnonzero(~served)[::-1]
    first_bad[vm[bad]] = rank[bad]  # the last assignment wins: the lowest rank
    done[vms] = np.minimum(first_bad[vms], steps)
    cols["boot_cursor"][vms] += done[vms]
    return done


def _touch_runs(state: State, vm: I32, loc: U8) -> list[slice]:
    """The plan positions each kind's touches are made in, call by call: all at once, or
    runs of whole VMs of at most PLAN_CHUNK positions (a longer VM is a run of its own)
    where that is the same thing with smaller temporaries. It is where the VMs come in
    page order, no page is shared and no VM has pages at a migration source: a call then
    only faults pages in, in page order, each VM's on its own counts (memory/touch.py), so
    calls over runs in turn make the same faults in the same order as one call."""
    whole = [slice(0, vm.size)]
    if vm.size <= PLAN_CHUNK or state.vms["loc_count"][:, Loc.REMOTE].any():
        return whole
    first = np.flatnonzero(np.concatenate([[True], vm[1:] != vm[:-1]]))
    offset = state.vms["page_offset"][vm[first]]
    if np.any(offset[1:] <= offset[:-1]) or np.any(loc == Loc.SHARED):
        return whole
    ends = np.append(first[1:], vm.size)
    runs, start = [], 0
    while start < first.size:
        stop = max(int(np.searchsorted(ends, int(first[start]) + PLAN_CHUNK, side="right")),
                   start + 1)
        runs.append(slice(int(first[start]), int(ends[stop - 1])))
        start = stop
    return runs


def finish(state: State, vms: I64, now_s: float) -> None:
    """Boots that are done: the workload (and its schedule) starts."""
    cols = state.vms
    cols["booting"][vms] = False
    cols["phase_t0_s"][vms] = now_s


def run_boot(world: World) -> None:
    """The boot phase: overhead first, then each booting VM's next plan positions."""
    state = world.state
    cols, tick_s = state.vms, state.tick_s
    was_stalling = cols["boot_stall_s_tick"] > 0
    cols["boot_stall_s_tick"][:] = 0.0
    host = cols["host"]
    running = (host >= 0) & state.hosts.up[np.maximum(host, 0)]
    backed = world.spec.policy.memory.overhead_frames
    # Overhead still owed (a host short at power-on or at a migration's reservation) is
    # taken as soon as frames are free, before anything else.
    owed = running & (cols["overhead_held"] < cols["overhead_pages"])
    if backed and owed.any():
        overhead.back(state, backed, np.flatnonzero(owed))
    vms = np.flatnonzero(cols["booting"] & running)
    if vms.size == 0:
        return
    ready = (cols["overhead_held"][vms] >= cols["overhead_pages"][vms]) | (not backed)
    left = cols["boot_total"][vms] - cols["boot_cursor"][vms]
    rate = cols["boot_rate"][vms]
    want = np.minimum(np.where(rate > 0, np.ceil(rate * tick_s).astype(np.int64), left), left)
    done = advance(state, vms[ready], want[ready])[vms]
    stalled = np.where(ready, 1.0 - done / np.maximum(want, 1), 1.0)
    cols["boot_stall_s_tick"][vms] = stalled * tick_s
    cols["boot_stall_s"][vms] += stalled * tick_s
    for i in np.flatnonzero((stalled > 0) & ~was_stalling[vms]).tolist():
        v, h = int(vms[i]), int(host[vms[i]])
        why = ("no memory for its overhead" if not ready[i] else
               "it is blocked until it is back at its target" if cols["blocked"][v] else
               "no free memory" if state.hosts.free_count[h] == 0 else "it has reached its max")
        world.emit("boot_stall", f"{cols.ids[v]} boot stalls on {state.hosts.ids[h]}: {why} "
                   f"({int(cols['boot_cursor'][v])} of {int(cols['boot_total'][v])} pages "
                   "written)", vm=cols.ids[v], host=state.hosts.ids[h])
    end_s = state.time_s + tick_s
    booted = vms[cols["boot_cursor"][vms] >= cols["boot_total"][vms]]
    finish(state, booted, end_s)
    for v in booted.tolist():
        took = end_s - float(cols["boot_started_s"][v])
        world.emit("vm_booted", f"{cols.ids[v]} booted in {took:.0f} s",
                   vm=cols.ids[v], host=state.hosts.ids[int(host[v])])
