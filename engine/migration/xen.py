"""Xen's pre-copy rounds (Clark et al., NSDI'05; xc_linux_save): a peek at the dirty log
before each batch, the dynamic rate, and the four stop rules at the end of a round."""

from __future__ import annotations

import numpy as np

from engine.migration.arena import I64
from engine.migration.model import MigrationTable
from engine.migration.send import Batch
from engine.migration.sync import (
    charge_traps,
    close_rounds,
    continue_after,
    frac,
    postcopy_due,
    sending,
    take_dirty,
)
from engine.migration.writelog import TickWrites
from engine.pagescale import per_simulated_page
from engine.world import World

F64 = np.ndarray


def peek(world: World, table: MigrationTable, tw: TickWrites, rows: I64, t: F64) -> None:
    """Xen: before each batch, pages of the batch dirtied again this round are skipped."""
    table["traps"][rows] += charge_traps(world, table, rows,
                                         tw.apply_until(rows, frac(world, t)))
    batch = max(1, world.spec.policy.migration.xen_batch // world.state.page_size)
    cursor = table["cursor"][rows]
    end = np.minimum(cursor + batch, table["list_len"][rows])
    table["batch_end"][rows] = end
    b = Batch(world, table, rows, cursor, end - cursor)
    again = ~b.skip & np.take(world.state.pages.dirty, b.page)
    idx = b.list_index  # where the batch's entries are: Xen's passes are always listed
    assert idx is not None  # (order.full_pass and build_lists give every Xen row a list)
    table.lists["entry"][idx[again]] = -1
    table["round_skipped"][rows] += np.bincount(b.which[again], minlength=rows.size)


def stop_rules(world: World, table: MigrationTable, rows: I64, remaining: I64) -> np.ndarray:
    """Xen: stop when fewer than `xen_min_pages` remain, after `xen_max_rounds`, once
    `xen_max_sent_factor` x memory has been sent, or when the rate is at its max and the
    round sent more than the one before."""
    policy = world.spec.policy.migration
    memory = world.state.vms["n_pages"][table["vm"][rows]] * world.state.page_size
    prev = table["prev_round_sent"][rows]
    at_max = table["round_rate"][rows] >= table["max_rate"][rows] * (1 - 1e-9)
    few = per_simulated_page(policy.xen_min_pages, world.state.page_size)  # ~256 KB
    return np.asarray(
        (remaining < few) | (table["round_index"][rows] >= policy.xen_max_rounds)
        | (table["bytes_sent"][rows] >= policy.xen_max_sent_factor * memory)
        | (at_max & (prev >= 0) & (table["round_sent"][rows] > prev)))


def xen_round_end(world: World, table: MigrationTable, tw: TickWrites, rows: I64,
                  at: F64) -> None:
    state, policy = world.state, world.spec.policy.migration
    dirty = take_dirty(world, table, tw, rows, at)
    dirtied = dirty.counts(rows.size)
    pending = sending(world, table, rows, dirty)
    stop = stop_rules(world, table, rows, pending.counts(rows.size))
    close_rounds(world, table, rows, at, dirtied)
    switch = postcopy_due(table, rows, at) & ~stop
    go_on = ~stop & ~switch
    duration = np.maximum(at - table["round_start_s"][rows], 1e-9)
    rate = dirtied * state.page_size / duration + policy.xen_rate_increment
    table["round_rate"][rows] = np.where(go_on, np.clip(rate, table["min_rate"][rows],
                                                        table["max_rate"][rows]),
                                         table["round_rate"][rows])
    continue_after(world, table, tw, rows, at, pending, stop, switch,
                   np.zeros(rows.size, np.int64))
