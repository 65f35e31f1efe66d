"""QEMU's loop (migration.c, ram.c): bandwidth measured each window and the pending test
against the downtime limit, the sync that completes as soon as the exact pending bytes
fit, auto-converge, and what a vCPU throttle takes from the guest."""

from __future__ import annotations

import numpy as np

from engine.migration.arena import I64
from engine.migration.model import MigrationTable
from engine.migration.order import RowPages, unique_pairs
from engine.migration.send import Batch
from engine.migration.sync import (
    close_rounds,
    continue_after,
    postcopy_due,
    sending,
    take_dirty,
    unsent,
)
from engine.migration.writelog import TickWrites
from engine.world import World

F64 = np.ndarray
QEMU_CHECK_PERIOD_S = 1.0  # ram.c: throttling is considered at most once a second


def auto_converge(world: World, table: MigrationTable, rows: I64, at: F64) -> None:
    """QEMU's migration_trigger_throttle and mig_throttle_guest_down, at a sync."""
    policy = world.spec.policy.migration
    due = at - table["period_start_s"][rows] >= QEMU_CHECK_PERIOD_S - 1e-9
    if not due.any():
        return
    r, at = rows[due], at[due]
    sent = table["bytes_sent"][r] - table["period_bytes"][r]
    dirtied = table["period_dirty"][r] * world.state.page_size
    table["dirty_pages_rate"][r] = table["period_dirty"][r] / np.maximum(
        at - table["period_start_s"][r], 1e-9)
    high = dirtied > policy.throttle_trigger * sent
    auto = table["auto_converge"][r]
    strikes = np.where(high, table["converge_strikes"][r] + 1, 0)
    up = auto & (strikes >= 2)
    throttle = table["throttle"][r]
    table["throttle"][r] = np.where(up, np.where(
        throttle == 0, policy.throttle_initial,
        np.minimum(policy.throttle_max, throttle + policy.throttle_increment)), throttle)
    table["converge_strikes"][r] = np.where(up, 0, strikes)
    table["period_start_s"][r] = at
    table["period_dirty"][r] = 0
    table["period_bytes"][r] = table["bytes_sent"][r]


def throttle_guests(world: World, table: MigrationTable, rows: I64) -> None:
    """What the throttle takes from each guest. QEMU's throttle makes a vCPU sleep
    pct/(1 - pct) of each 10 ms slice: it removes CPU time, so a workload that computes
    only `cpu_util` of its time keeps its pace until 1 - pct falls below that. Stunning
    (Clark) pauses the dirtying processes outright."""
    vms = world.state.vms
    v = table["vm"][rows]
    pct = table["throttle"][rows]
    cpu = vms["cpu_util"][v]
    slowed = 1.0 - np.minimum(1.0, (1.0 - pct) / np.maximum(cpu, 1e-9))
    vms["throttle"][v] = np.where(table["stun"][rows], pct, np.where(cpu > 0, slowed, 0.0))


def qemu_sync(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64,
              pass_end: np.ndarray) -> None:
    """migration_iteration_run: sync the bitmap; complete when the exact pending bytes
    fit the threshold (or nothing is pending), else go on from where the walk is."""
    state = world.state
    # The walk goes on from the next page it would have sent (a pass that ended: from 0).
    b = Batch(world, table, rows, np.minimum(table["cursor"][rows],
                                             np.maximum(table["list_len"][rows] - 1, 0)),
              (table["list_len"][rows] > 0).astype(np.int64))
    start = np.zeros(rows.size, np.int64)
    start[b.which] = b.local
    start[pass_end] = 0
    left = unsent(world, table, rows)
    dirty = take_dirty(world, table, tw, rows, at)
    # New to the bitmap: dirtied pages the pass had not sent yet are in it already.
    left_sending, dirty_sending = (sending(world, table, rows, x) for x in (left, dirty))
    pending = unique_pairs(RowPages(np.concatenate([left_sending.which, dirty_sending.which]),
                                    np.concatenate([left_sending.local, dirty_sending.local])),
                           presorted=left_sending.which.size)
    n_pending = pending.counts(rows.size)
    in_pass = left.counts(rows.size)
    table["period_dirty"][rows] += np.maximum(n_pending - in_pass, 0)
    close_rounds(world, table, rows, at, dirty.counts(rows.size))
    auto_converge(world, table, rows, at)
    throttle_guests(world, table, rows)
    pending_bytes = n_pending * state.page_size
    threshold = table["bandwidth"][rows] * table["downtime_limit_s"][rows]
    stop = (pending_bytes == 0) | (pending_bytes < threshold)
    switch = postcopy_due(table, rows, at) & ~stop
    continue_after(world, table, tw, rows, at, pending, stop, switch, start)


def window(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64) -> None:
    """QEMU's migration_update_counters: bandwidth over the window, the threshold, the
    expected downtime; then the iteration's pending estimate against the threshold."""
    state = world.state
    length = world.spec.policy.migration.qemu_bandwidth_window
    bandwidth = table["window_bytes"][rows] / length
    table["bandwidth"][rows] = bandwidth
    table["window_bytes"][rows] = 0.0
    table["window_start_s"][rows] += length
    estimate = (table["list_len"][rows] - table["cursor"][rows]) * state.page_size
    table["expected_downtime_s"][rows] = estimate / np.maximum(bandwidth, 1.0)
    low = estimate < bandwidth * table["downtime_limit_s"][rows]
    if low.any():
        qemu_sync(world, table, tw, rows[low], at[low], np.zeros(int(low.sum()), np.bool_))
