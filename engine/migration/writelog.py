"""The tick's writes of pre-copying VMs, each at a time within the tick; built once a tick.

The workload phase wrote the whole tick at once and logged the writes of pre-copying VMs
(`state.write_log`: pages, and whether each was dirty before). Here every write is given
a uniform random time within the tick, the log is grouped by migration in time order,
and the dirty bits the tick set are taken back: the migration phase re-applies each
migration's writes up to the moment it looks at its dirty log (a Xen batch peek, a
sync at the end of a round or a QEMU check). Each write is applied once, so the cost is
one sort of the tick's writes however many events the migrations have.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import ranges
from engine.migration.arena import I64
from engine.migration.model import MigrationTable
from engine.state import State

TIME_BITS = 24  # write times are multiples of 2^-24 tick: exact in a float64 key


class TickWrites:
    def __init__(self, state: State, table: MigrationTable, row_of_vm: I64,
                 rng: np.random.Generator) -> None:
        self.state, self.table = state, table
        n_rows = table.n
        logged = [(pg, was) for pg, was in state.write_log if pg.size]
        if logged:
            pages = np.concatenate([pg for pg, _ in logged])
            was = np.concatenate([w for _, w in logged])
        else:
            pages, was = np.zeros(0, np.int64), np.zeros(0, np.bool_)
        state.pages.dirty[pages[~was]] = False  # not dirty yet: written during the tick
        row = row_of_vm[state.vms.vm_of_pages(pages)]
        mine = row >= 0
        pages, row = pages[mine], row[mine]
        scale = float(1 << TIME_BITS)
        when = np.floor(rng.random(pages.size) * scale) / scale
        key = row + when
        order = np.argsort(key)
        self.key = key[order]
        self.pages = pages[order]
        self.when = when[order]
        # Per row: index of the first write not yet applied to the dirty log.
        self.next = np.searchsorted(self.key, np.arange(n_rows), side="left").astype(np.int64)

    def _until(self, rows: I64, frac: np.ndarray) -> I64:
        return np.asarray(np.searchsorted(self.key, rows + np.minimum(frac, 1.0), side="left"),
                          np.int64)

    def apply_until(self, rows: I64, frac: np.ndarray) -> I64:
        """Apply each row's writes made before `frac` of the tick; returns, per row, how
        many pages became dirty (first writes since the log was last cleared: each took a
        write-protection trap)."""
        traps = np.zeros(rows.size, np.int64)
        if rows.size == 0 or self.pages.size == 0:
            return traps
        start = self.next[rows]
        stop = np.maximum(self._until(rows, frac), start)
        self.next[rows] = stop
        idx = ranges(start, stop - start)
        if idx.size == 0:
            return traps
        pages = self.pages[idx]
        which = np.repeat(np.arange(rows.size), stop - start)
        dirty = self.state.pages.dirty
        fresh = ~dirty[pages]
        dirty[pages] = True
        pages, which = pages[fresh], which[fresh]
        if pages.size:
            order = np.argsort(pages)
            pages, which = pages[order], which[order]
            first = np.ones(pages.size, np.bool_)
            first[1:] = pages[1:] != pages[:-1]
            pages, which = pages[first], which[first]
            traps += np.bincount(which, minlength=rows.size)
            self._log(rows, which, pages)
        return traps

    def _log(self, rows: I64, which: I64, pages: I64) -> None:
        """Append newly dirtied pages to their rows' dirty lists (pages sorted, so each
        row's, of one VM's slice, are together)."""
        table = self.table
        if rows.size == 1:  # one migration looking (most peeks): its pages in order
            row = int(rows[0])
            at = int(table["dirty_base"][row] + table["dirty_len"][row])
            offset = int(self.state.vms["page_offset"][int(table["vm"][row])])
            table.dirty["page"][at:at + pages.size] = pages - offset + 1
            table["dirty_len"][row] += pages.size
            return
        r = rows[which]
        starts = np.flatnonzero(np.concatenate([[True], which[1:] != which[:-1]]))
        lengths = np.diff(np.append(starts, which.size))
        rank = np.arange(which.size) - np.repeat(starts, lengths)
        offset = self.state.vms["page_offset"][table["vm"][r]]
        table.dirty["page"][table["dirty_base"][r] + table["dirty_len"][r] + rank] = (
            pages - offset + 1)  # held as page + 1 (model.py)
        table["dirty_len"][rows[which[starts]]] += lengths

    def late(self, rows: I64) -> tuple[I64, I64]:
        """Each row's writes not applied yet (made after it stopped at the source), as
        (index into rows, page)."""
        start = self.next[rows]
        stop = np.maximum(self._until(rows, np.ones(rows.size)), start)
        idx = ranges(start, stop - start)
        return np.repeat(np.arange(rows.size), stop - start), self.pages[idx]
