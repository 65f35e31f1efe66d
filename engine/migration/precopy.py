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

from engine.migration import switchover
from engine.migration.arena import I64, ranges
from engine.migration.model import PRECOPY, QEMU, XEN, MigrationTable
from engine.migration.order import RowPages, build_lists, needs_sending, sorted_unique
from engine.migration.send import Batch, send
from engine.migration.writelog import TickWrites
from engine.world import World

F64 = np.ndarray
QEMU_CHECK_PERIOD_S = 1.0  # ram.c: throttling is considered at most once a second
MAX_STEPS = 1_000_000


def _frac(world: World, t: F64) -> F64:
    return (t - world.state.time_s) / world.state.tick_s


def _take_dirty(world: World, table: MigrationTable, tw: TickWrites, rows: I64,
                at: F64) -> RowPages:
    """Sync: the pages each row's dirty log gained up to `at`; the log starts over."""
    table["traps"][rows] += _charge_traps(world, table, rows, tw.apply_until(rows, _frac(
        world, at)))
    length = table["dirty_len"][rows]
    dirty = RowPages(np.repeat(np.arange(rows.size), length),
                     table.dirty["page"][ranges(table["dirty_base"][rows], length)].astype(
                         np.int64))
    world.state.pages.dirty[dirty.pages(world.state, table, rows)] = False
    table["dirty_len"][rows] = 0
    table["last_sync_s"][rows] = at
    table["dirty_sync_count"][rows] += 1
    return dirty


def _charge_traps(world: World, table: MigrationTable, rows: I64, first_writes: I64) -> I64:
    """First writes of a page since the last sync trap (write protection), or fill a PML
    buffer (one exit per `pml_batch`)."""
    policy = world.spec.policy.migration
    per = np.where(table["pml"][rows], 1.0 / policy.pml_batch, 1.0)
    np.add.at(world.state.vms["lost_dirty_log_s_tick"], table["vm"][rows],
              policy.trap_cost * first_writes * per)
    return first_writes


def _unsent(world: World, table: MigrationTable, rows: I64) -> RowPages:
    """The pages each row's pass has not sent yet."""
    cursor, length = table["cursor"][rows], table["list_len"][rows]
    left = np.maximum(length - cursor, 0)
    which = np.repeat(np.arange(rows.size), left)
    idx = ranges(cursor, left)
    full = np.take(table["pass_full"][rows], which)
    entry = idx.copy()  # a full pass's entries are its pages
    entry[~full] = table.lists["entry"][np.take(table["list_base"][rows], which[~full])
                                        + idx[~full]]
    return RowPages(which, entry).where(entry >= 0)


def _sending(world: World, table: MigrationTable, rows: I64, pages: RowPages) -> RowPages:
    hints = np.take(table["free_page_hints"][rows], pages.which)
    return pages.where(needs_sending(world.state, pages.pages(world.state, table, rows), hints))


def _peek(world: World, table: MigrationTable, tw: TickWrites, rows: I64, t: F64) -> None:
    """Xen: before each batch, pages of the batch dirtied again this round are skipped."""
    table["traps"][rows] += _charge_traps(world, table, rows,
                                          tw.apply_until(rows, _frac(world, t)))
    batch = max(1, world.spec.policy.migration.xen_batch // world.state.page_size)
    cursor = table["cursor"][rows]
    end = np.minimum(cursor + batch, table["list_len"][rows])
    table["batch_end"][rows] = end
    b = Batch(world, table, rows, cursor, end - cursor)
    again = ~b.skip & np.take(world.state.pages.dirty, b.page)
    idx = table["list_base"][rows][b.which] + cursor[b.which] + (
        np.arange(b.which.size) - np.repeat(np.cumsum(end - cursor) - (end - cursor),
                                             end - cursor))
    table.lists["entry"][idx[again]] = -1
    table["round_skipped"][rows] += np.bincount(b.which[again], minlength=rows.size)


def _stop_rules(world: World, table: MigrationTable, rows: I64, remaining: I64) -> np.ndarray:
    """Xen: stop when fewer than `xen_min_pages` remain, after `xen_max_rounds`, once
    `xen_max_sent_factor` x memory has been sent, or when the rate is at its max and the
    round sent more than the one before."""
    policy = world.spec.policy.migration
    memory = world.state.vms["n_pages"][table["vm"][rows]] * world.state.page_size
    prev = table["prev_round_sent"][rows]
    at_max = table["round_rate"][rows] >= table["max_rate"][rows] * (1 - 1e-9)
    return np.asarray(
        (remaining < policy.xen_min_pages) | (table["round_index"][rows] >= policy.xen_max_rounds)
        | (table["bytes_sent"][rows] >= policy.xen_max_sent_factor * memory)
        | (at_max & (prev >= 0) & (table["round_sent"][rows] > prev)))


def _close_rounds(world: World, table: MigrationTable, rows: I64, at: F64,
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


def _auto_converge(world: World, table: MigrationTable, rows: I64, at: F64) -> None:
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


def _xen_round_end(world: World, table: MigrationTable, tw: TickWrites, rows: I64,
                   at: F64) -> None:
    state, policy = world.state, world.spec.policy.migration
    dirty = _take_dirty(world, table, tw, rows, at)
    dirtied = dirty.counts(rows.size)
    pending = _sending(world, table, rows, dirty)
    stop = _stop_rules(world, table, rows, pending.counts(rows.size))
    _close_rounds(world, table, rows, at, dirtied)
    switch = _postcopy_due(table, rows, at) & ~stop
    go_on = ~stop & ~switch
    duration = np.maximum(at - table["round_start_s"][rows], 1e-9)
    rate = dirtied * state.page_size / duration + policy.xen_rate_increment
    table["round_rate"][rows] = np.where(go_on, np.clip(rate, table["min_rate"][rows],
                                                        table["max_rate"][rows]),
                                         table["round_rate"][rows])
    _continue(world, table, tw, rows, at, pending, stop, switch,
              np.zeros(rows.size, np.int64))


def _postcopy_due(table: MigrationTable, rows: I64, at: F64) -> np.ndarray:
    after = table["postcopy_after_passes"][rows]
    return np.asarray(((after > 0) & (table["passes"][rows] >= after))
                      | (at >= table["start_s"][rows] + table["postcopy_after_s"][rows]))


def _continue(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64,
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


def _qemu_sync(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64,
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
    unsent = _unsent(world, table, rows)
    dirty = _take_dirty(world, table, tw, rows, at)
    # New to the bitmap: dirtied pages the pass had not sent yet are in it already.
    both = RowPages(np.concatenate([unsent.which, dirty.which]),
                    np.concatenate([unsent.local, dirty.local]))
    pending = _sending(world, table, rows, both)
    order, keep = sorted_unique(pending.which, pending.local,
                                int(pending.local.max()) + 1 if pending.local.size else 1)
    pending = RowPages(pending.which[order][keep], pending.local[order][keep])
    n_pending = pending.counts(rows.size)
    in_pass = unsent.counts(rows.size)
    table["period_dirty"][rows] += np.maximum(n_pending - in_pass, 0)
    _close_rounds(world, table, rows, at, dirty.counts(rows.size))
    _auto_converge(world, table, rows, at)
    throttle_guests(world, table, rows)
    pending_bytes = n_pending * state.page_size
    threshold = table["bandwidth"][rows] * table["downtime_limit_s"][rows]
    stop = (pending_bytes == 0) | (pending_bytes < threshold)
    switch = _postcopy_due(table, rows, at) & ~stop
    _continue(world, table, tw, rows, at, pending, stop, switch, start)


def _window(world: World, table: MigrationTable, tw: TickWrites, rows: I64, at: F64) -> None:
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
        _qemu_sync(world, table, tw, rows[low], at[low], np.zeros(int(low.sum()), np.bool_))


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
        qemu = table["algorithm"][rows] == QEMU
        changed = cap[rows] != table["round_rate"][rows]
        rate[rows] = np.where(changed, np.minimum(table["round_rate"][rows],
                                                  table["path_rate"][rows]), rate[rows])
        cap[rows] = table["round_rate"][rows]
        xen = ~qemu
        peek = xen & (table["cursor"][rows] == table["batch_end"][rows]) & (
            table["cursor"][rows] < table["list_len"][rows])
        if peek.any():
            _peek(world, table, tw, rows[peek], clock[rows[peek]])
        limit = np.where(xen, table["batch_end"][rows], table["list_len"][rows])
        window_end = table["window_start_s"][rows] + policy.qemu_bandwidth_window
        trigger = table["start_s"][rows] + table["postcopy_after_s"][rows]
        until = np.minimum(np.minimum(np.where(qemu, window_end, end), end), trigger)
        before = table["cursor"][rows]
        t, reached = send(world, table, rows, clock[rows], rate[rows], limit, until)
        clock[rows] = t
        # The walk wrapped past the end of memory when it sent the first page below
        # where it started, or ran out of pages with none below.
        wrap = table["wrap_at"][rows]
        wrapped = (before <= wrap) & (table["cursor"][rows] >= np.minimum(
            wrap + 1, table["list_len"][rows]))
        table["passes"][rows[wrapped]] += 1
        table["wrap_at"][rows[wrapped]] = np.iinfo(np.int64).max
        ended = reached & (table["cursor"][rows] >= table["list_len"][rows])
        if (ended & xen).any():
            _xen_round_end(world, table, tw, rows[ended & xen], t[ended & xen])
        if (ended & qemu).any():
            _qemu_sync(world, table, tw, rows[ended & qemu], t[ended & qemu],
                       np.ones(int((ended & qemu).sum()), np.bool_))
        still = table["status"][rows] == PRECOPY
        at_window = still & qemu & ~ended & (t >= window_end - 1e-12)
        if at_window.any():
            _window(world, table, tw, rows[at_window], t[at_window])
        timed = still & ~ended & (t >= trigger - 1e-12) & (table["status"][rows] == PRECOPY)
        for i in np.flatnonzero(timed).tolist():
            table.close_round(int(rows[i]), float(t[i]), 0)
            switchover.to_postcopy(world, table, int(rows[i]), float(t[i]))
    else:
        raise RuntimeError("pre-copy did not reach the end of the tick")
    going = table.active_rows(PRECOPY)
    table["traps"][going] += _charge_traps(world, table, going,
                                           tw.apply_until(going, np.ones(going.size)))
    throttle_guests(world, table, going)
