"""What every pre-copy does at a dirty-log sync, Xen's or QEMU's: take the pages the log
gained (and start it over), close the round, and go on - a new pass, the stop-and-copy,
or the switch to post-copy. Dirty-logging traps are charged as the log is replayed."""

from __future__ import annotations

import numpy as np

from engine.arrays import ranges
from engine.migration import switchover
from engine.migration.arena import I64
from engine.migration.model import XEN, MigrationTable
from engine.migration.order import RowPages, build_lists, needs_sending
from engine.migration.writelog import TickWrites
from engine.world import World

F64 = np.ndarray


def frac(world: World, t: F64) -> F64:
    return (t - world.state.time_s) / world.state.tick_s


def take_dirty(world: World, table: MigrationTable, tw: TickWrites, rows: I64,
               at: F64) -> RowPages:
    """Sync: the pages each row's dirty log gained up to `at`; the log starts over."""
    table["traps"][rows] += charge_traps(world, table, rows, tw.apply_until(rows, frac(
        world, at)))
    length = table["dirty_len"][rows]
    dirty = RowPages(np.repeat(np.arange(rows.size), length),
                     table.dirty["page"][ranges(table["dirty_base"][rows], length)].astype(
                         np.int64) - 1)  # held as page + 1 (model.py)
    world.state.pages.dirty[dirty.pages(world.state, table, rows)] = False
    table["dirty_len"][rows] = 0
    table["last_sync_s"][rows] = at
    table["dirty_sync_count"][rows] += 1
    return dirty


def charge_traps(world: World, table: MigrationTable, rows: I64, first_writes: I64) -> I64:
    """First writes of a page since the last sync trap (write protection), or fill a PML
    buffer (one exit per `pml_batch`)."""
    policy = world.spec.policy.migration
    per = np.where(table["pml"][rows], 1.0 / policy.pml_batch, 1.0)
    np.add.at(world.state.vms["lost_dirty_log_s_tick"], table["vm"][rows],
              policy.trap_cost * first_writes * per)
    return first_writes


def unsent(world: World, table: MigrationTable, rows: I64) -> RowPages:
    """The pages each row's pass has not sent yet."""
    cursor, length = table["cursor"][rows], table["list_len"][rows]
    left = np.maximum(length - cursor, 0)
    which = np.repeat(np.arange(rows.size), left)
    idx = ranges(cursor, left)
    if table["pass_full"][rows].all():
        return RowPages(which, idx)  # a full pass's entries are its pages
    full = np.take(table["pass_full"][rows], which)
    entry = idx.copy()
    entry[~full] = table.lists["entry"][np.take(table["list_base"][rows], which[~full])
                                        + idx[~full]]
    return RowPages(which, entry).where(entry >= 0)


def sending(world: World, table: MigrationTable, rows: I64, pages: RowPages) -> RowPages:
    hints = np.take(table["free_page_hints"][rows], pages.which)
    return pages.where(needs_sending(world.state, pages.pages(world.state, table, rows), hints))


def close_rounds(world: World, table: MigrationTable, rows: I64, at: F64,
                 dirtied: I64) -> None:
    """Close the rounds ending at a sync. Stunning (Clark's paravirtual option): while a
    round leaves as many pages dirty as it sent, the guest's busiest processes are paused
    a step further (a quarter of their pace at a time)."""
    stun = table["stun"][rows] & (dirtied >= table["round_sent"][rows]) & (
        table["round_sent"][rows] > 0)
    table["throttle"][rows[stun]] = np.minimum(world.spec.policy.migration.throttle_max,
                                               table["throttle"][rows[stun]] + 0.25)
    duration = np.maximum(at - table["round_start_s"][rows], 1e-9)
    table["dirty_pages_rate"][rows] = np.where(
        table["algorithm"][rows] == XEN, dirtied / duration, table["dirty_pages_rate"][rows])
    for i, row in enumerate(rows.tolist()):
        table.close_round(row, float(at[i]), int(dirtied[i]))
    table["prev_round_sent"][rows] = table["round_sent"][rows]


def postcopy_due(table: MigrationTable, rows: I64, at: F64) -> np.ndarray:
    after = table["postcopy_after_passes"][rows]
    return np.asarray(((after > 0) & (table["passes"][rows] >= after))
                      | (at >= table["start_s"][rows] + table["postcopy_after_s"][rows]))


def continue_after(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64,
                   pending: RowPages, stop: np.ndarray, switch: np.ndarray, start: I64) -> None:
    """After a sync: stop and copy, switch to post-copy, or send `pending` in a new pass."""
    go_on = ~stop & ~switch
    if go_on.any():
        build_lists(world.state, table, rows[go_on], pending.of_rows(go_on), start[go_on])
        table.open_round(rows[go_on], at[go_on])
        table["carry_bytes"][rows[go_on]] = 0.0
    if stop.any():
        # Writes after the pause happen at the destination once it runs: not copied, and
        # not part of the content check.
        late_rows, late_pages = tw.late(rows[stop])
        switchover.stop_and_copy(world, table, rows[stop], at[stop], pending.of_rows(stop),
                                 late_rows, late_pages)
    for i in np.flatnonzero(switch).tolist():
        switchover.to_postcopy(world, table, int(rows[i]), float(at[i]))
