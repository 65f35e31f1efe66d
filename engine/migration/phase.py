"""The migration phase: start, progress, switch-over and failure of live migrations.

Runs after the network phase, so each migration knows the rate its flow got this tick.
Guard clauses first (hosts down, no path), then every pre-copy advances together
(precopy.py), then each post-copy serves its VM's held-back touches and pushes
(postcopy.py).
"""

from __future__ import annotations

import numpy as np

from engine.commands import Migrate
from engine.memory import migration_hooks
from engine.migration.model import (
    ALGORITHMS,
    CANCELLED,
    FAILED,
    INF,
    MODES,
    POSTCOPY,
    PRECOPY,
    QEMU,
    Migration,
    MigrationTable,
    table_of,
)
from engine.migration.order import full_pass
from engine.migration.postcopy import postcopy_tick
from engine.migration.precopy import precopy_tick
from engine.migration.switchover import release
from engine.migration.switchover import to_postcopy as _to_postcopy
from engine.migration.writelog import TickWrites
from engine.state import Loc
from engine.vmlife import stop_vm
from engine.world import World


def active_migration(world: World, v: int) -> Migration | None:
    migrations = world.state.migrations
    if not isinstance(migrations, MigrationTable):
        # A world before its first migration, or the projection the checks of queued
        # commands run on (engine/pending.py): a plain list of migration-like rows.
        return next((m for m in migrations if m.vm == v and m.active), None)
    table = table_of(world.state)
    row = table.row_of_vm(v)
    return None if row is None else table[row]


def _xbzrle_slots(world: World) -> int:
    """QEMU sizes its cache to a power of two of pages (pow2floor)."""
    pages = max(1, world.spec.policy.migration.xbzrle_cache // world.state.page_size)
    return 1 << (pages.bit_length() - 1)


def start(world: World, cmd: Migrate) -> Migration:
    state, policy = world.state, world.spec.policy.migration
    table = table_of(state)
    v = state.vms.index(cmd.vm)
    now = state.time_s
    xen = cmd.algorithm == "xen"
    max_rate = cmd.max_rate or (policy.xen_max_rate if xen else policy.qemu_max_bandwidth)
    min_rate = min(cmd.min_rate or (policy.xen_min_rate if xen else max_rate), max_rate)
    postcopy_rate = (cmd.max_postcopy_rate if cmd.max_postcopy_rate is not None
                     else policy.max_postcopy_bandwidth)
    passes = cmd.postcopy_after_passes
    if passes is None:
        passes = policy.postcopy_after_passes if cmd.mode == "hybrid" else 0
    workload = state.vms.specs[v].workload
    row = table.add(
        vm=v, src=int(state.vms["host"][v]), dst=state.hosts.index(cmd.to),
        mode=MODES.index(cmd.mode), algorithm=ALGORITHMS.index(cmd.algorithm), start_s=now,
        max_rate=max_rate, min_rate=min_rate,
        downtime_limit_s=cmd.downtime_limit or policy.qemu_downtime_limit,
        activation_s=policy.activation if xen else policy.qemu_activation,
        postcopy_rate=postcopy_rate if postcopy_rate > 0 else INF,
        postcopy_after_s=INF if cmd.postcopy_after is None else cmd.postcopy_after,
        postcopy_after_passes=passes, auto_converge=cmd.auto_converge, xbzrle=cmd.xbzrle,
        prepaging=cmd.prepaging, pml=cmd.pml, free_page_hints=cmd.free_page_hints,
        stun=cmd.stun,
        changed_fraction=(workload.changed_fraction if workload.changed_fraction is not None
                          else policy.xbzrle_delta_fraction),
        round_rate=min_rate if xen else max_rate, status=PRECOPY, window_start_s=now,
        period_start_s=now, last_sync_s=now)
    # Reservation at the destination: the VM's overhead frames (memory/overhead.py).
    migration_hooks.migration_started(state, v, int(table["dst"][row]),
                                      world.spec.policy.memory.overhead_frames)
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    state.pages.dirty[off:off + n] = False
    state.vms["precopying"][v] = cmd.mode != "postcopy"
    world.emit("migration_started", f"{cmd.vm} migrating {state.hosts.ids[int(table['src'][row])]}"
               f" -> {cmd.to} ({cmd.mode}, {cmd.algorithm})", vm=cmd.vm, host=cmd.to)
    if cmd.mode == "postcopy":
        _set_up(world, table, np.array([row], np.int64))
        _to_postcopy(world, table, row, now)
    else:
        table["fresh"][row] = True  # set up with the tick's other new ones
    return table[row]


def _set_up(world: World, table: MigrationTable, rows: np.ndarray) -> None:
    """Page data for new migrations; the first pass of the pre-copies among them."""
    state = world.state
    sizes = state.vms["n_pages"][table["vm"]]
    bases, new = table.pages.alloc(table["page_base"], sizes, sizes[rows])
    table["page_base"][:] = bases
    table["page_base"][rows] = new
    pre = rows[table["status"][rows] == PRECOPY]
    bases, new = table.dirty.alloc(table["dirty_base"], sizes, sizes[pre])
    table["dirty_base"][:] = bases
    table["dirty_base"][pre], table["dirty_len"][pre] = new, 0
    xb = rows[table["xbzrle"][rows] & (table["algorithm"][rows] == QEMU)]
    if xb.size:
        slots = np.full(xb.size, _xbzrle_slots(world), np.int64)
        bases, new = table.cache.alloc(table["cache_base"], table["cache_slots"], slots)
        table["cache_base"][:] = bases
        table["cache_base"][xb], table["cache_slots"][xb] = new, slots
    if pre.size:
        full_pass(state, table, pre)
        table.open_round(pre, table["start_s"][pre])
    table["fresh"][rows] = False


def to_postcopy(world: World, mig: Migration, at_s: float) -> None:
    """Switch a running pre-copy to post-copy (an operator's command)."""
    table = table_of(world.state)
    if table["fresh"][mig.id]:  # started by a command earlier in this same tick
        _set_up(world, table, np.array([mig.id], np.int64))
    _to_postcopy(world, table, mig.id, at_s)


def fail(world: World, mig: Migration, reason: str) -> None:
    """Pre-copy: the VM stays at the source. Post-copy: no complete copy anywhere."""
    state = world.state
    table = table_of(state)
    row = mig.id
    v = int(table["vm"][row])
    vm = state.vms.ids[v]
    table["end_s"][row] = state.time_s
    table.reasons[row] = reason
    table.close_round(row, state.time_s, 0)
    if table["status"][row] == POSTCOPY:
        off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
        p = state.pages
        frameless = (p.location[off:off + n] == Loc.REMOTE) & (p.frame[off:off + n] < 0)
        state.reclaim.hosts["swapped_pages"][int(table["src"][row])] -= int(frameless.sum())
        stop_vm(state, v)
        state.vms["lost_vm"][v] = True
        table["status"][row] = FAILED
        release(state, table, np.array([row], np.int64))
        world.emit("vm_lost", f"{vm} lost: {reason} during post-copy", vm=vm)
        return
    migration_hooks.migration_abandoned(state, v)  # the reservation goes back
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    state.pages.dirty[off:off + n] = False
    state.vms["throttle"][v] = 0.0
    state.vms["precopying"][v] = False
    table["status"][row] = CANCELLED if reason == "cancelled" else FAILED
    release(state, table, np.array([row], np.int64))
    world.emit("migration_failed" if reason != "cancelled" else "migration_cancelled",
               f"migration of {vm} stopped ({reason}); it keeps running on "
               f"{state.hosts.ids[int(table['src'][row])]}", vm=vm)


def _broken(world: World, rows: np.ndarray) -> list[tuple[int, str]]:
    table = table_of(world.state)
    hosts = world.state.hosts
    src, dst = table["src"][rows], table["dst"][rows]
    out = []
    pairs = {(int(a), int(b)) for a, b in zip(src.tolist(), dst.tolist(), strict=True)}
    no_path = {pair for pair in pairs
               if not world.topology.has_path(hosts.ids[pair[0]], hosts.ids[pair[1]])}
    down = ~hosts.up[src] | ~hosts.up[dst] | np.array(
        [(int(a), int(b)) in no_path for a, b in zip(src, dst, strict=True)], np.bool_)
    for i in np.flatnonzero(down).tolist():
        a, b = int(src[i]), int(dst[i])
        reason = (f"source {hosts.ids[a]} failed" if not hosts.up[a] else
                  f"destination {hosts.ids[b]} failed" if not hosts.up[b] else
                  "the network path between them is down")
        out.append((int(rows[i]), reason))
    return out


def run_migrations(world: World) -> None:
    state = world.state
    table = table_of(state)
    read_before, sent_before = table["swap_read_s"].copy(), table["bytes_sent"].copy()
    for row, reason in _broken(world, table.active_rows()):
        fail(world, table[row], reason)
    fresh = np.flatnonzero(table["fresh"])
    if fresh.size:
        _set_up(world, table, fresh)
    rows = table.active_rows(PRECOPY)
    if rows.size:
        row_of_vm = np.full(len(state.vms), -1, np.int64)
        row_of_vm[table["vm"][rows]] = rows
        tw = TickWrites(state, table, row_of_vm, world.streams["migration"])
        precopy_tick(world, table, tw)
    postcopy_tick(world, table)
    state.held_touches.clear()
    # How long each sender waited for its source's disk per byte it sent this tick: next
    # tick its flow asks the links for no more than it can send (engine/network.py).
    n = read_before.size
    sent = table["bytes_sent"][:n] - sent_before
    table["read_s_per_byte"][:n] = np.where(
        sent > 0, (table["swap_read_s"][:n] - read_before) / np.maximum(sent, 1), 0.0)


__all__ = ["QEMU", "active_migration", "fail", "run_migrations", "start", "to_postcopy"]
