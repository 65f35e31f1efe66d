"""All VMs, running, queued and stopped: sortable by any column, filterable by text, with
column sets (vm_columns) whose columns of lowest priority drop out on a narrow terminal.

Updated from the snapshot's columns, row by row only where something changed: a refresh
compares the new columns with the last ones (numpy, no Python per VM), re-renders the
changed rows that are on screen and marks the others stale, to be rendered when they
scroll into view. Sorting reads the columns too. A 1,000-row table costs about as much
to refresh as the 40 rows it shows. VMs with a command queued for the next tick are
marked with PENDING_MARK.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from app.console.widgets.fit_table import FixedWidths
from app.console.widgets.vm_columns import COLUMN_SETS, Column, natural_ranks, where
from engine.report import VMRows

REBUILD_AFTER = 20  # rows leaving at once (e.g. a new filter) beyond which we rebuild
PENDING_MARK = "•"  # a command for this VM is queued for the next tick
_BLANK = Text("")  # a cell not rendered yet (shared: never changed in place)
MARGIN_ROWS = 5  # rows beyond the screen rendered with it (a smooth scroll)


class IdText(Text):
    """The VM column's cell: remembers the VM, so sorting needs no parsing."""

    vm_id = ""


def matches(hay: str, needle: str) -> bool:
    return all(word in hay for word in needle.lower().split())


class VMTable(FixedWidths):
    class VMSelected(Message):
        """Enter on a row."""

        def __init__(self, vm: str) -> None:
            super().__init__()
            self.vm = vm

    class VMHighlighted(Message):
        """The cursor moved onto a row."""

        def __init__(self, vm: str) -> None:
            super().__init__()
            self.vm = vm

    def __init__(self, *, id: str | None = None, only_host: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.only_host = only_host
        self.sort_key = "vm"
        self.sort_reverse = False
        self._filter = ""
        self._rows: VMRows | None = None
        self._pending: frozenset[str] = frozenset()
        self._cells: dict[str, tuple[str, ...]] = {}  # what each row shows
        self._stale: set[str] = set()  # rows whose text may be out of date
        self._order: tuple[str, ...] = ()
        # The rows' snapshot indices in `_cells` order, for the snapshot's ids they were
        # taken from (VMs come and go rarely: a tick reuses them, no lookup per VM).
        self._index: tuple[int, tuple[str, ...], list[str], np.ndarray] | None = None
        self._cells_version = 0  # counts changes of which VMs are in `_cells`
        self._sorted_by: tuple[list[str] | None, np.ndarray] = (None, np.zeros(0, np.int64))
        self._wanted_last: tuple[tuple[str, ...], np.ndarray] | None = None
        self._hay: dict[str, str] = {}  # per VM: what the filter searches
        self._announced: str | None = None
        self.column_set = "basic"
        self._columns: tuple[Column, ...] = COLUMN_SETS["basic"]
        self._fit_width = 0

    def on_mount(self) -> None:
        self._columns = self._fitting(COLUMN_SETS[self.column_set])
        self._add_columns()
        self.watch(self, "scroll_y", self._scrolled, init=False)

    # -- columns --------------------------------------------------------------------------
    def _fitting(self, columns: tuple[Column, ...]) -> tuple[Column, ...]:
        """The columns that fit the table's width, dropping those of lowest priority."""
        width = self.size.width or 200
        self._fit_width = width
        kept = list(columns)
        while len(kept) > 2 and sum(c.width + 2 for c in kept) + 2 > width:
            kept.remove(max(kept[2:], key=lambda c: (c.priority, kept.index(c))))
        return tuple(kept)

    def _add_columns(self) -> None:
        for col in self._columns:
            self.add_column(self._label(col), key=col.key, width=col.width)

    def use_columns(self, name: str, force: bool = False) -> None:
        """Switch to another column set (vm_columns.COLUMN_SETS), keeping the cursor row."""
        columns = self._fitting(COLUMN_SETS[name])
        if name == self.column_set and columns == self._columns and not force:
            return
        current = self.selected_vm
        self.column_set, self._columns = name, columns
        if self.sort_key not in {c.key for c in columns}:
            self.sort_key, self.sort_reverse = "vm", False
        self.clear(columns=True)
        self._cells.clear()
        self._cells_version += 1
        self._order = ()
        self._add_columns()
        if self._rows is not None:
            self.show(self._rows, self._pending)
        if current is not None and current in self._cells:
            self.move_cursor(row=self.get_row_index(current), animate=False)

    def on_resize(self) -> None:
        if self.size.width != self._fit_width and self.is_mounted:
            self.use_columns(self.column_set)

    def _label(self, col: Column) -> Text:
        arrow = (" ▼" if self.sort_reverse else " ▲") if col.key == self.sort_key else ""
        return Text(col.label + arrow, justify="right" if col.right else "left")

    @property
    def selected_vm(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def set_host(self, host: str | None) -> None:
        """Show the VMs of another host (a detail screen reused for another host)."""
        self.only_host = host
        if self._rows is not None:
            self.show(self._rows, self._pending)

    # -- filter and sort ------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        self._filter = text.strip()
        if self._rows is not None:
            self.show(self._rows, self._pending)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        self.sort_reverse = (not self.sort_reverse if key == self.sort_key else False) \
            if reverse is None else reverse
        self.sort_key = key
        for col in self._columns:
            self.columns[col.key].label = self._label(col)  # type: ignore[index]
        self._resort(force=True)

    def cycle_sort(self) -> None:
        keys = [c.key for c in self._columns]
        self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)], reverse=False)

    # -- refresh --------------------------------------------------------------------------
    def _wanted(self, rows: VMRows) -> np.ndarray:
        """Snapshot indices of the VMs the table shows (this host's, matching the filter)."""
        cols = rows.columns
        idx = np.arange(len(rows))
        if self.only_host is not None:
            h = rows.host_ids.index(self.only_host) if self.only_host in rows.host_ids else -2
            idx = idx[cols["host_index"] == h]
        if not self._filter:
            return idx
        needle = self._filter.lower()
        return np.array([i for i in idx.tolist() if matches(self._haystack(rows, i), needle)],
                        np.int64)

    def _haystack(self, rows: VMRows, i: int) -> str:
        h = int(rows.columns["host_index"][i])
        where_text = rows.host_ids[h] if h >= 0 else rows[i].status
        key = f"{rows.ids[i]}\0{where_text}"
        hay = self._hay.get(key)
        if hay is None:
            if len(self._hay) > 4 * len(rows.ids):  # VMs that moved: old keys go
                self._hay.clear()
            spec = rows.specs[i]
            workload = spec.workload.kind if spec.app is None else \
                f"{spec.workload.kind}:{spec.app}"
            hay = self._hay[key] = f"{rows.ids[i]} {where_text} {spec.tenant} {workload}".lower()
        return hay

    def show(self, rows: VMRows, pending: frozenset[str] = frozenset()) -> None:
        old, old_pending = self._rows, self._pending
        self._rows, self._pending = rows, pending
        wanted = self._wanted(rows)
        last = self._wanted_last
        self._wanted_last = (rows.ids, wanted)
        if (last is not None and self._cells and _same_ids(last[0], rows.ids)
                and np.array_equal(last[1], wanted)):
            # The same VMs shown as last time (most ticks): only changed rows are redone.
            self._stale |= self._changed(old, rows, wanted) | (old_pending ^ pending)
            self._resort()
            self._render_visible()
            return
        wanted_ids = {rows.ids[i] for i in wanted.tolist()}
        gone = [k for k in self._cells if k not in wanted_ids]
        if gone:
            self._cells_version += 1
        if len(gone) > REBUILD_AFTER:  # remove_row is O(rows): start afresh instead
            self.clear()
            self._cells.clear()
            self._order = ()
        else:
            for key in gone:
                self.remove_row(key)
                del self._cells[key]
        self._stale &= wanted_ids
        self._stale |= self._changed(old, rows, wanted) | (old_pending ^ pending)
        added = False
        first_fill = not self._cells  # the cursor starts on the first row, once sorted
        blank = ("",) * len(self._columns)
        new_rows = []
        for i in wanted.tolist():
            vm_id = rows.ids[i]
            if vm_id not in self._cells:
                # Added blank and stale: only the rows that land on screen get their text
                # now (a column switch or a resize re-adds every row).
                self._cells[vm_id] = blank
                new_rows.append((vm_id, self._blank_cells(vm_id)))
                self._stale.add(vm_id)
                added = True
        if new_rows:
            self._cells_version += 1
        self.add_rows_at_once(new_rows)
        self._resort(force=added, keep_cursor=not first_fill)
        self._render_visible()

    def _changed(self, old: VMRows | None, new: VMRows, wanted: np.ndarray) -> set[str]:
        """VMs whose columns differ from the last snapshot's (all of them if the VMs did)."""
        if old is None or not _same_ids(old.ids, new.ids):
            return {new.ids[i] for i in wanted.tolist()}
        mask = np.zeros(len(new), np.bool_)
        for name, values in new.columns.items():
            mask |= values != old.columns[name]
        return {new.ids[i] for i in np.flatnonzero(mask).tolist()}

    def _visible_ids(self) -> list[str]:
        top = max(int(self.scroll_y) - MARGIN_ROWS, 0)
        bottom = int(self.scroll_y) + self.size.height + MARGIN_ROWS
        return [row.key.value for row in self.ordered_rows[top:bottom]
                if row.key.value is not None]

    def _render_visible(self) -> None:
        rows = self._rows
        if rows is None or not self._stale:
            return
        for vm_id in self._visible_ids():
            if vm_id not in self._stale:
                continue
            self._stale.discard(vm_id)
            cells = self._texts(rows, rows.index_of(vm_id))
            before = self._cells[vm_id]
            self._cells[vm_id] = cells
            for col, was, now in zip(self._columns, before, cells, strict=True):
                if was != now or col.key == "vm":
                    self.update_cell(vm_id, col.key, self._cell(vm_id, col, now))

    def _scrolled(self) -> None:
        self._render_visible()

    def _texts(self, rows: VMRows, i: int) -> tuple[str, ...]:
        vm = rows[i]
        texts = tuple(c.text(vm) for c in self._columns)
        if vm.id in self._pending:
            texts = (f"{texts[0]} {PENDING_MARK}", *texts[1:])
        return texts

    def _cell(self, vm_id: str, col: Column, text: str) -> Text:
        cell = IdText(text, no_wrap=True) if col.key == "vm" else \
            Text(text, justify="right" if col.right else "left", no_wrap=True)
        if isinstance(cell, IdText):
            cell.vm_id = vm_id
            if text.endswith(PENDING_MARK):
                cell.stylize("bold cyan", len(text) - 1)
        return cell

    def _blank_cells(self, vm_id: str) -> list[Text]:
        first = IdText("")
        first.vm_id = vm_id
        return [first, *([_BLANK] * (len(self._columns) - 1))]

    def _cell_index(self, rows: VMRows) -> tuple[list[str], np.ndarray]:
        """The VMs in `_cells` (in its order) and their indices in the snapshot, kept while
        neither changes (a list object that stays the same for as long)."""
        kept = self._index
        if kept is not None and kept[0] == self._cells_version and _same_ids(kept[1], rows.ids):
            return kept[2], kept[3]
        ids = list(self._cells)
        index = np.array([rows.index_of(k) for k in ids], np.int64)
        self._index = (self._cells_version, rows.ids, ids, index)
        return ids, index

    def _resort(self, force: bool = False, keep_cursor: bool = True) -> None:
        """Order the rows by the sort column, from the snapshot's columns."""
        rows = self._rows
        if rows is None or not self._cells:
            return
        col = next(c for c in self._columns if c.key == self.sort_key)
        keys = col.key_of(rows)
        ids, index = self._cell_index(rows)
        primary = np.asarray(keys, np.float64)[index]
        tie = natural_ranks(rows)[index]
        order = np.lexsort((tie, -primary if self.sort_reverse else primary))
        basis, last_order = self._sorted_by
        if not force and basis is ids and np.array_equal(order, last_order):
            return  # the same rows in the same order (no tuple of 100,000 ids to compare)
        self._sorted_by = (ids, order)
        new_order = tuple(ids[i] for i in order.tolist())
        if new_order == self._order and not force:
            return
        self._order = new_order
        rank = {vm_id: r for r, vm_id in enumerate(new_order)}
        current = self.selected_vm if keep_cursor else None
        self.sort("vm", key=lambda cell: rank[cell.vm_id])
        if current is not None and current in self._cells:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        elif not keep_cursor:
            self.move_cursor(row=0, animate=False)
        self._render_visible()
        self._announce(self.selected_vm)

    def _announce(self, vm: str | None) -> None:
        """Tell the App which VM is under the cursor, also when sorting moved another row
        under it (the DataTable posts no highlight for that)."""
        if vm is not None and vm != self._announced:
            self._announced = vm
            self.post_message(self.VMHighlighted(vm))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.VMSelected(str(event.row_key.value)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._render_visible()
        self._announce(self.selected_vm)


def _same_ids(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """The same VMs in the same order (a snapshot's ids: usually the very same tuple)."""
    return a is b or a == b


__all__ = ["PENDING_MARK", "VMTable", "where"]
