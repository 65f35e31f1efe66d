"""All VMs, running, queued and stopped: sortable by any column, filterable by text; two
column sets (vm_columns: the basics, or allocation and reclamation).

Updated incrementally: a refresh touches only the cells whose text changed, and rows are
added or removed only when the set of VMs (or the filter) changes, so a 1000-row table
stays cheap to refresh.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from app.console.widgets.vm_columns import COLUMN_SETS, Column, natural, where
from engine import VMView

REBUILD_AFTER = 20  # rows leaving at once (e.g. a new filter) beyond which we rebuild


def matches(vm: VMView, needle: str) -> bool:
    if not needle:
        return True
    hay = f"{vm.id} {where(vm)} {vm.tenant} {vm.workload}".lower()
    return all(word in hay for word in needle.lower().split())


class VMTable(DataTable[Text]):
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
        self._vms: tuple[VMView, ...] = ()
        self._cells: dict[str, tuple[str, ...]] = {}
        self._raw: dict[str, Any] = {}
        self._announced: str | None = None
        self.column_set = "basic"
        self._columns: tuple[Column, ...] = COLUMN_SETS["basic"]
        self._index = {c.key: i for i, c in enumerate(self._columns)}

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for col in self._columns:
            self.add_column(self._label(col), key=col.key, width=col.width)

    def use_columns(self, name: str) -> None:
        """Switch to another column set (vm_columns.COLUMN_SETS), keeping the cursor row."""
        if name == self.column_set:
            return
        current = self.selected_vm
        self.column_set, self._columns = name, COLUMN_SETS[name]
        self._index = {c.key: i for i, c in enumerate(self._columns)}
        if self.sort_key not in self._index:
            self.sort_key, self.sort_reverse = "vm", False
        self.clear(columns=True)
        self._cells.clear()
        self._raw.clear()
        self._add_columns()
        self.show(self._vms)
        if current is not None and current in self._cells:
            self.move_cursor(row=self.get_row_index(current), animate=False)

    def _label(self, col: Column) -> Text:
        arrow = (" ▼" if self.sort_reverse else " ▲") if col.key == self.sort_key else ""
        return Text(col.label + arrow, justify="right" if col.right else "left")

    @property
    def selected_vm(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def set_filter(self, text: str) -> None:
        self._filter = text.strip()
        self.show(self._vms)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        self.sort_reverse = (not self.sort_reverse if key == self.sort_key else False) \
            if reverse is None else reverse
        self.sort_key = key
        for col in self._columns:
            self.columns[col.key].label = self._label(col)  # type: ignore[index]
        self._resort()

    def cycle_sort(self) -> None:
        keys = [c.key for c in self._columns]
        self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)], reverse=False)

    def show(self, vms: tuple[VMView, ...]) -> None:
        self._vms = vms
        wanted = [v for v in vms if (self.only_host is None or v.host == self.only_host)
                  and matches(v, self._filter)]
        wanted_ids = {v.id for v in wanted}
        gone = [k for k in self._cells if k not in wanted_ids]
        if len(gone) > REBUILD_AFTER:  # remove_row is O(rows): start afresh instead
            self.clear()
            self._cells.clear()
            self._raw.clear()
        else:
            for key in gone:
                self.remove_row(key)
                del self._cells[key]
                self._raw.pop(key, None)
        first_fill = not self._cells
        added = False
        sort_changed = False
        sort_col = self._columns[self._index[self.sort_key]]
        for vm in wanted:
            cells = tuple(c.text(vm) for c in self._columns)
            old = self._cells.get(vm.id)
            self._cells[vm.id] = cells
            raw = sort_col.raw(vm)
            if old is None:
                self.add_row(*self._cells_text(cells), key=vm.id)
                added = True
            else:
                for col, before, after in zip(self._columns, old, cells, strict=True):
                    if before != after:
                        self.update_cell(vm.id, col.key, self._cell(col, after))
                sort_changed |= self._raw.get(vm.id) != raw
            self._raw[vm.id] = raw
        if added or sort_changed:
            self._resort(keep_cursor=not first_fill)

    def _cell(self, col: Column, text: str) -> Text:
        return Text(text, justify="right" if col.right else "left", no_wrap=True)

    def _cells_text(self, cells: tuple[str, ...]) -> list[Text]:
        return [self._cell(col, text) for col, text in zip(self._columns, cells, strict=True)]

    def _resort(self, keep_cursor: bool = True) -> None:
        sort_col = self._columns[self._index[self.sort_key]]
        by_id = {v.id: v for v in self._vms}
        self._raw = {k: sort_col.raw(by_id[k]) for k in self._cells if k in by_id}
        current = self.selected_vm if keep_cursor else None
        raw = self._raw
        self.sort("vm", key=lambda vm_id: (raw[str(vm_id)], natural(str(vm_id))),
                  reverse=self.sort_reverse)
        if current is not None and current in self._cells:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        elif not keep_cursor:
            self.move_cursor(row=0, animate=False)
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
        self._announce(self.selected_vm)
