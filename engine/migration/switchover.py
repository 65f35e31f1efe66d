"""Switch-over: the stop-and-copy of pre-copy, the switch to post-copy, and moving a VM's
memory from the source host to the destination.

Pages the destination holds get destination frames (shared pages become private there
and may be re-shared by its scanner); the source's frames and swap slots are released
only at commit. Pages still at the source in post-copy become REMOTE: they keep their
source frame (or swap slot) until pulled or pushed. At a pre-copy switch-over the content
the destination received is checked against the source's, page by page.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import ranges
from engine.memory import frames as frame_alloc
from engine.memory import migration_hooks
from engine.memory.counts import count_moves
from engine.migration.arena import I64
from engine.migration.model import (
    DONE,
    POSTCOPY,
    PRECOPY,
    XEN,
    MigrationTable,
)
from engine.migration.order import RowPages
from engine.migration.send import Batch, Cost, record
from engine.network import EMPTY_FLOWS
from engine.state import N_LOC, Loc, State
from engine.units import format_seconds
from engine.world import World

F64 = np.ndarray


def _location_counts(loc: np.ndarray) -> I64:
    """Pages by location (a compare per location: bincount would widen every byte)."""
    return np.array([np.count_nonzero(loc == k) for k in range(N_LOC)], np.int64)


def vm_to_destination(state: State, pages: I64, v: int, src: int, dst: int) -> None:
    """Give `pages` of VM `v` (moving src -> dst) destination frames, or destination swap
    where the destination is full (written there: the destination's disk time). One VM
    at a time: the per-host sums are scalars and the destination's frames two slices of
    its free stacks."""
    p, vms = state.pages, state.vms
    if pages.size == 0:
        return
    loc = p.at("location", pages)
    old = p.frame[pages]
    reclaim = state.reclaim.hosts
    by_loc = _location_counts(loc)
    remote_swapped = int(np.count_nonzero((loc == Loc.REMOTE) & (old < 0))) if (
        by_loc[Loc.REMOTE]) else 0
    reclaim["swapped_pages"][src] -= int(by_loc[Loc.SWAPPED]) + remote_swapped
    reclaim["compressed_pages"][src] -= int(by_loc[Loc.COMPRESSED])
    if by_loc[Loc.SHARED]:
        vms["zero_shared"][v] -= int(np.count_nonzero((loc == Loc.SHARED)
                                                      & (p.content[pages] == 0)))
    got = frame_alloc.allocate_on(state, dst, pages.size)
    frame_alloc.release(state, old[old >= 0])
    n_ok = int(np.count_nonzero(got >= 0))  # the frames given are a prefix
    p.frame[pages] = got
    p.location[pages[:n_ok]] = Loc.PRIVATE
    counts = vms["loc_count"]
    counts[v, Loc.PRIVATE] += n_ok
    if n_ok == pages.size:
        counts[v] -= by_loc
    else:
        counts[v] -= _location_counts(loc[:n_ok])
        p.location[pages[n_ok:]] = Loc.SWAPPED
        out = pages.size - n_ok
        counts[v, Loc.SWAPPED] += out
        counts[v] -= _location_counts(loc[n_ok:])
        reclaim["swapped_pages"][dst] += out
        # Written to the destination's swap disk: its time, and swap-outs, as the swap
        # daemon's are.
        reclaim["swapout_tick"][dst] += out
        reclaim["disk_busy_s_tick"][dst] += out * state.page_size / float(
            state.hosts.swap_disk_bytes_per_s[dst])
        vms["swapouts"][v] += out


def holding(state: State, flat: I64 | slice) -> np.ndarray:
    """Which of these pages hold data the destination must have."""
    loc = state.pages.at("location", flat)
    return np.asarray((loc == Loc.PRIVATE) | (loc == Loc.SHARED) | (loc == Loc.SWAPPED)
                      | (loc == Loc.REMOTE) | (loc == Loc.COMPRESSED))


def _row_pages(state: State, table: MigrationTable, rows: I64) -> tuple[I64, I64, I64]:
    """Flat pages of the rows' VMs, the index of the row of each, and local indices."""
    vms = state.vms
    v = table["vm"][rows]
    sizes = vms["n_pages"][v].astype(np.int64)
    offset = vms["page_offset"][v].astype(np.int64)
    flat = ranges(offset, sizes)
    which = np.repeat(np.arange(rows.size), sizes)
    return flat, which, flat - offset[which]


def release(state: State, table: MigrationTable, rows: I64, pages: bool = True) -> None:
    """Free the migrations' send lists, XBZRLE caches and (`pages`) page data."""
    n_pages = state.vms["n_pages"][table["vm"]]
    for base, arena, size in (("list_base", table.lists, table["list_len"]),
                              ("cache_base", table.cache, table["cache_slots"]),
                              ("dirty_base", table.dirty, n_pages),
                              ("page_base", table.pages, n_pages if pages else None)):
        if size is None:
            continue
        had = rows[table[base][rows] >= 0]
        arena.free(int(size[had].sum()))
        table[base][had] = -1


def commit(state: State, table: MigrationTable, rows: I64, late_rows: I64,
           late_pages: I64) -> None:
    """Pre-copy switch-over: check what was sent, then move the VMs. `late_pages` were
    written after the pause, i.e. at the destination once it runs: not part of the check.
    One VM at a time, over slices: its pages and its page data are contiguous (and the
    frame allocator sorts what it is given, a VM's pages far faster alone)."""
    p, vms = state.pages, state.vms
    # Each row's late pages (grouped by row, as TickWrites.late gives them).
    order = np.argsort(late_rows, kind="stable")
    late_rows, late_pages = late_rows[order], late_pages[order]
    late_edges = np.searchsorted(late_rows, np.arange(rows.size + 1)).tolist()
    for i, row in enumerate(rows.tolist()):
        v, src, dst = (int(table[c][row]) for c in ("vm", "src", "dst"))
        off, n = int(vms["page_offset"][v]), int(vms["n_pages"][v])
        base = int(table["page_base"][row])
        keep = holding(state, slice(off, off + n))
        wrong = keep & (~table.pages["at_dest"][base:base + n]
                        | (table.pages["sent"][base:base + n] != p.content[off:off + n]))
        wrong[late_pages[late_edges[i]:late_edges[i + 1]] - off] = False
        table["content_mismatches"][row] = int(np.count_nonzero(wrong))
        p.dirty[off:off + n] = False
        pages = np.flatnonzero(keep) + off
        vm_to_destination(state, pages, v, src, dst)
        migration_hooks.vm_moved(state, v, src)  # overhead and KSM follow the VM
        vms["host"][v] = dst


def _pause(state: State, table: MigrationTable, rows: I64, seconds: F64) -> None:
    v = table["vm"][rows]
    np.add.at(state.vms["lost_downtime_s_tick"], v, seconds)
    np.add.at(state.vms["downtime_s"], v, seconds)


def stop_and_copy(world: World, table: MigrationTable, rows: I64, at: F64, pending: RowPages,
                  late_rows: I64, late_pages: I64) -> None:
    """The VMs pause while their pending pages and CPU state cross: Xen at its max rate,
    QEMU uncapped (its rate limit applies to the iterations only), after the reads of
    those the source swapped out. Then commit and activation at the destination."""
    state, policy = world.state, world.spec.policy.migration
    b = Batch.explicit(pending.which, pending.local, pending.pages(state, table, rows),
                       rows.size)
    c = Cost(world, table, rows, b, last_stage=True)
    record(world, table, rows, b, c, c.sendable)
    n = rows.size
    total = np.bincount(b.which, c.bytes, minlength=n) + policy.cpu_state
    xen = table["algorithm"][rows] == XEN
    path = np.maximum(table["path_rate"][rows], 1.0)
    rate = np.where(xen, np.minimum(table["max_rate"][rows], path), path)
    downtime = total / rate + table["activation_s"][rows]
    if c.read_s is not None:  # the paused sender reads the swapped ones back first
        downtime += np.bincount(b.which, c.read_s, minlength=n)
    table["status"][rows] = DONE
    table["stop_pages"][rows] = np.bincount(b.which[c.sendable], minlength=n)
    table["stop_bytes"][rows] = total.astype(np.int64)
    table["bytes_sent"][rows] += policy.cpu_state
    commit(state, table, rows, late_rows, late_pages)
    _pause(state, table, rows, downtime)
    table["downtime_s"][rows] = downtime
    table["end_s"][rows] = table["resume_s"][rows] = at + downtime
    v = table["vm"][rows]
    state.vms["throttle"][v] = 0.0
    state.vms["precopying"][v] = False
    release(state, table, rows)
    hosts, vms = state.hosts.ids, state.vms.ids
    for i, row in enumerate(rows.tolist()):
        vm = vms[int(v[i])]
        world.emit("migration_finished", f"{vm} now runs on {hosts[int(table['dst'][row])]}: "
                   f"{int(table['round_index'][row])} rounds, "
                   f"{table['bytes_sent'][row] / 1024**2:.0f} MiB sent, "
                   f"{format_seconds(table['end_s'][row] - table['start_s'][row])} in all, "
                   f"downtime {format_seconds(float(downtime[i]))}", vm=vm,
                   host=hosts[int(table["dst"][row])])


def path_rate(world: World, row: int, table: MigrationTable) -> float:
    """What the path gives this migration's flow uncapped, the other flows as they are."""
    flows = world.flow_set if world.flow_set is not None else EMPTY_FLOWS
    topology, ids = world.topology, world.state.hosts.ids
    mine = np.flatnonzero(flows.migration_rows == row)
    if mine.size:
        i = flows.vms.size + int(mine[0])
        wanted = flows.demands.copy()
        wanted[i] = np.inf if flows.lengths[i] > 0 else 0.0
        return float(flows.rates(topology, wanted)[i])
    path = topology.path(ids[int(table["src"][row])], ids[int(table["dst"][row])])
    extended = flows.with_flow(path, np.inf if path.size else 0.0)
    return float(extended.rates(topology)[-1])


def go_remote(state: State, table: MigrationTable, row: int) -> None:
    """Post-copy switch-over: the VM runs at the destination from now on; pages it has
    there already (a hybrid's clean pre-copied pages) move now, the rest become REMOTE."""
    p = state.pages
    rows = np.array([row], np.int64)
    flat, _, local = _row_pages(state, table, rows)
    keep = holding(state, flat)
    pages, local = flat[keep], local[keep]
    base = int(table["page_base"][row])
    clean = table.pages["at_dest"][base + local] & (
        table.pages["sent"][base + local] == p.content[pages])
    table.pages["sent"][base + local] = p.content[pages]  # the source copy is frozen now
    table["content_mismatches"][row] = 0
    v, src, dst = (int(table[c][row]) for c in ("vm", "src", "dst"))
    moving = pages[clean]
    vm_to_destination(state, moving, v, src, dst)
    remote = pages[~clean]
    loc = p.at("location", remote)
    state.reclaim.hosts["compressed_pages"][src] -= int((loc == Loc.COMPRESSED).sum())
    state.vms["zero_shared"][v] -= int(((loc == Loc.SHARED) & (p.content[remote] == 0)).sum())
    count_moves(state, np.full(remote.size, v, np.int64), loc, Loc.REMOTE)
    p.location[remote] = Loc.REMOTE
    table.pages["at_dest"][base:base + int(state.vms["n_pages"][v])] = False
    table.pages["at_dest"][base + local[clean]] = True
    table.pages["pushed"][base:base + int(state.vms["n_pages"][v])] = False
    migration_hooks.vm_moved(state, v, src)  # overhead and KSM follow the VM
    state.vms["host"][v] = dst


def pull(state: State, table: MigrationTable, row: int, pages: I64) -> I64:
    """Bring the REMOTE ones of `pages` over; returns them."""
    pages = pages[state.pages.at("location", pages) == Loc.REMOTE]
    v, src, dst = (int(table[c][row]) for c in ("vm", "src", "dst"))
    vm_to_destination(state, pages, v, src, dst)
    off = int(state.vms["page_offset"][v])
    table.pages["at_dest"][int(table["page_base"][row]) + pages - off] = True
    return pages


def to_postcopy(world: World, table: MigrationTable, row: int, at: float) -> None:
    """Stop the VM just long enough to send its CPU state; it resumes at the destination
    and its memory follows (pushed, or fetched when it faults)."""
    state, policy = world.state, world.spec.policy.migration
    table.close_round(row, at, 0)
    # The CPU and device state go uncapped (the post-copy cap is for RAM).
    rate = max(path_rate(world, row, table), 1.0)
    downtime = policy.cpu_state / rate + float(table["activation_s"][row])
    v = int(table["vm"][row])
    state.vms["precopying"][v] = False
    state.vms["throttle"][v] = 0.0
    table["throttle"][row] = 0.0
    go_remote(state, table, row)
    release(state, table, np.array([row], np.int64), pages=False)
    table["bytes_sent"][row] += policy.cpu_state
    table["status"][row] = POSTCOPY
    table["downtime_s"][row] = downtime
    table["resume_s"][row] = table["vm_free_s"][row] = at + downtime
    table["push_from_s"][row] = at + policy.cpu_state / rate
    table["path_rate"][row] = rate
    table["flow_rate"][row] = min(rate, float(table["postcopy_rate"][row]))
    table["round_rate"][row] = table["postcopy_rate"][row]
    table["pivot"][row] = 0
    table["edge_lo"][row], table["edge_hi"][row] = 0, -1
    table["push_pos"][row] = 0
    _pause(state, table, np.array([row], np.int64), np.array([downtime]))
    vm = state.vms.ids[v]
    world.emit("migration_switched", f"{vm} resumed on {state.hosts.ids[int(table['dst'][row])]}"
               f" after {format_seconds(downtime)}; its memory follows (post-copy)", vm=vm)


def finish_postcopy(world: World, table: MigrationTable, row: int, at: float) -> None:
    state = world.state
    table["status"][row] = DONE
    table["end_s"][row] = at
    release(state, table, np.array([row], np.int64))
    vm = state.vms.ids[int(table["vm"][row])]
    world.emit("migration_finished", f"{vm}'s memory is all on "
               f"{state.hosts.ids[int(table['dst'][row])]}: {int(table['network_faults'][row])} "
               f"network faults, {int(table['pushed_pages'][row])} pages pushed", vm=vm)


__all__ = ["PRECOPY", "finish_postcopy", "go_remote", "pull", "stop_and_copy", "to_postcopy"]
