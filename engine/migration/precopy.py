"""Iterative pre-copy (Clark et al., NSDI'05; Xen's and QEMU's algorithms), in bulk.

All pre-copying migrations of a tick advance together, event by event: each step moves
every migration to its next event - a Xen batch (it peeks at the dirty log before each
batch of `xen_batch` bytes and leaves pages dirtied again for a later round), the end of
a pass, the end of a QEMU bandwidth window (every `qemu_bandwidth_window`), a post-copy
trigger, or the end of the tick - at the exact time its bytes say. The tick's writes are
applied to the dirty log up to the moment a migration looks at it (writelog.py).

Xen ends a round when its list is done: the dirty log becomes the next round's list,
sent at the round's dirtying rate + `xen_rate_increment` (within min and max), until one
of its four stop rules holds. QEMU tests at each window whether the pages left in its
bitmap fit `downtime_limit` x the bandwidth measured over the last window; if so it
syncs the bitmap and completes as soon as the exact pending pages fit (mid-pass if need
be); a pass that ends syncs too. Auto-converge: at a sync at least a second after the
last check, dirtying more than `throttle_trigger` of what was sent, twice in a row,
starts or raises the vCPU throttle.
"""

from __future__ import annotations

import numpy as np

from engine.migration import precopy_loop, switchover
from engine.migration.arena import I64
from engine.migration.model import PRECOPY, QEMU, MigrationTable
from engine.migration.qemu import qemu_sync, throttle_guests, window
from engine.migration.send import send
from engine.migration.sync import charge_traps
from engine.migration.writelog import TickWrites
from engine.migration.xen import peek, xen_round_end
from engine.world import World

F64 = np.ndarray
Bool = np.ndarray

MAX_STEPS = 1_000_000
WRAPPED = np.iinfo(np.int64).max  # wrap_at once the pass's walk has wrapped


def _xen_step(world: World, table: MigrationTable, tw: TickWrites, rows: I64, xen: Bool,
              batch_start: Bool, clock: F64, rate: F64, until: F64) -> tuple[F64, Bool]:
    """The step of the Xen rows among `rows`: a peek at the log where a batch starts, then
    the send until the batch's end or `until` (precopy_loop.py: one compiled loop). Returns
    (time, reached) for all of `rows`, those of the others left for the caller."""
    t, reached = np.zeros(rows.size), np.zeros(rows.size, np.bool_)
    if not xen.any():
        return t, reached
    x = rows[xen]
    if precopy_loop.usable(table, x):
        t[xen], reached[xen] = precopy_loop.step(world, table, tw, x, batch_start[xen],
                                                 clock[x], rate[x], until[xen])
        return t, reached
    if batch_start.any():
        peek(world, table, tw, rows[batch_start], clock[rows[batch_start]])
    t[xen], reached[xen] = send(world, table, x, clock[x], rate[x], table["batch_end"][x],
                                until[xen])
    return t, reached


def _events(world: World, table: MigrationTable, tw: TickWrites, rows: I64, t: F64,
            ended: Bool, timed: Bool, low: Bool) -> None:
    """What a step's rows met, as precopy_tick meets it: the end of a Xen round's list or
    of a QEMU pass, a QEMU window's end with the pass's rest under the threshold (its
    counters already updated: qemu.window's sync), or the post-copy trigger."""
    xen = table["algorithm"][rows] != QEMU
    if (ended & xen).any():
        xen_round_end(world, table, tw, rows[ended & xen], t[ended & xen])
    if (ended & ~xen).any():
        qemu_sync(world, table, tw, rows[ended & ~xen], t[ended & ~xen],
                  np.ones(int((ended & ~xen).sum()), np.bool_))
    if low.any():
        qemu_sync(world, table, tw, rows[low], t[low], np.zeros(int(low.sum()), np.bool_))
    for i in np.flatnonzero(timed & (table["status"][rows] == PRECOPY)).tolist():
        table.close_round(int(rows[i]), float(t[i]), 0)
        switchover.to_postcopy(world, table, int(rows[i]), float(t[i]))


def precopy_tick(world: World, table: MigrationTable, tw: TickWrites) -> None:
    state = world.state
    policy = world.spec.policy.migration
    end = state.time_s + state.tick_s
    rows = table.active_rows(PRECOPY)
    clock = np.full(table.n, state.time_s)
    # Rates: what the network gave at the current cap; after a cap change, the cap
    # within what the path gives.
    rate = table["flow_rate"].copy()
    cap = table["round_rate"].copy()
    throttle_guests(world, table, rows)
    for _ in range(MAX_STEPS):
        rows = rows[(table["status"][rows] == PRECOPY) & (clock[rows] < end - 1e-12)]
        if rows.size == 0:
            break
        if precopy_loop.usable(table, rows):
            # The steps below, in one loop, up to a step with an event.
            got = precopy_loop.steps(world, table, tw, rows, clock, rate, cap, end,
                                     MAX_STEPS, PRECOPY, WRAPPED)
            if got is not None:
                _events(world, table, tw, *got)
            continue
        qemu = table["algorithm"][rows] == QEMU
        changed = cap[rows] != table["round_rate"][rows]
        rate[rows] = np.where(changed, np.minimum(table["round_rate"][rows],
                                                  table["path_rate"][rows]), rate[rows])
        cap[rows] = table["round_rate"][rows]
        xen = ~qemu
        batch_start = xen & (table["cursor"][rows] == table["batch_end"][rows]) & (
            table["cursor"][rows] < table["list_len"][rows])
        window_end = table["window_start_s"][rows] + policy.qemu_bandwidth_window
        trigger = table["start_s"][rows] + table["postcopy_after_s"][rows]
        until = np.minimum(np.minimum(np.where(qemu, window_end, end), end), trigger)
        before = table["cursor"][rows]
        t, reached = _xen_step(world, table, tw, rows, xen, batch_start, clock, rate, until)
        if qemu.any():
            q = rows[qemu]
            t[qemu], reached[qemu] = send(world, table, q, clock[q], rate[q],
                                          table["list_len"][q], until[qemu])
        clock[rows] = t
        # The walk wrapped past the end of memory when it sent the first page below
        # where it started, or ran out of pages with none below.
        # (A walk that wrapped is past its wrap point for the rest of the pass: WRAPPED.)
        wrap = table["wrap_at"][rows]
        wrapped = (wrap != WRAPPED) & (before <= wrap) & (table["cursor"][rows] >= np.minimum(
            wrap, table["list_len"][rows] - 1) + 1)
        table["passes"][rows[wrapped]] += 1
        table["wrap_at"][rows[wrapped]] = WRAPPED
        ended = reached & (table["cursor"][rows] >= table["list_len"][rows])
        if (ended & xen).any():
            xen_round_end(world, table, tw, rows[ended & xen], t[ended & xen])
        if (ended & qemu).any():
            qemu_sync(world, table, tw, rows[ended & qemu], t[ended & qemu],
                      np.ones(int((ended & qemu).sum()), np.bool_))
        still = table["status"][rows] == PRECOPY
        at_window = still & qemu & ~ended & (t >= window_end - 1e-12)
        if at_window.any():
            window(world, table, tw, rows[at_window], t[at_window])
        timed = still & ~ended & (t >= trigger - 1e-12) & (table["status"][rows] == PRECOPY)
        for i in np.flatnonzero(timed).tolist():
            table.close_round(int(rows[i]), float(t[i]), 0)
            switchover.to_postcopy(world, table, int(rows[i]), float(t[i]))
    else:
        raise RuntimeError("pre-copy did not reach the end of the tick")
    going = table.active_rows(PRECOPY)
    table["traps"][going] += charge_traps(world, table, going,
                                          tw.apply_until(going, np.ones(going.size)))
    throttle_guests(world, table, going)
