"""All VMs, running and queued: sortable by any column, filterable by text.

Updated incrementally: a refresh touches only the cells whose text changed, and rows are
added or removed only when the set of VMs (or the filter) changes, so a 1000-row table
stays cheap to refresh.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from app.console.format import percent
from engine import VMView
from engine.units import format_bytes


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    raw: Callable[[VMView], Any]  # what sorting compares
    text: Callable[[VMView], str]
    right: bool = False


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts vm2 before vm10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.findall(r"\d+|\D+", text))


def _service(vm: VMView) -> str:
    if not vm.running:
        return "—"
    flag = " !" if vm.service_level < 0.99 else ""
    return percent(vm.service_level) + flag


COLUMNS: tuple[Column, ...] = (  # most telling first: narrow screens show the left ones
    Column("vm", "VM", 10, lambda v: natural(v.id), lambda v: v.id),
    Column("host", "Host", 7, lambda v: natural(v.host or ""),
           lambda v: v.host or "queued"),
    Column("service", "Service", 8, lambda v: v.service_level if v.running else -1.0,
           _service, right=True),
    Column("resident", "Resident", 8, lambda v: v.resident_bytes,
           lambda v: format_bytes(v.resident_bytes), right=True),
    Column("configured", "Memory", 8, lambda v: v.configured_bytes,
           lambda v: format_bytes(v.configured_bytes), right=True),
    Column("target", "Target", 8, lambda v: v.target_bytes,
           lambda v: format_bytes(v.target_bytes), right=True),
    Column("shares", "Shares", 6, lambda v: v.shares, lambda v: str(v.shares), right=True),
    Column("workload", "Workload", 10, lambda v: natural(v.workload),
           lambda v: v.workload.split(":")[-1]),
    Column("tenant", "Tenant", 8, lambda v: natural(v.tenant), lambda v: v.tenant),
)
COLUMN_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}
REBUILD_AFTER = 20  # rows leaving at once (e.g. a new filter) beyond which we rebuild


def matches(vm: VMView, needle: str) -> bool:
    if not needle:
        return True
    hay = f"{vm.id} {vm.host or 'queued'} {vm.tenant} {vm.workload}".lower()
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

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(self._label(col), key=col.key, width=col.width)

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
        for col in COLUMNS:
            self.columns[col.key].label = self._label(col)  # type: ignore[index]
        self._resort()

    def cycle_sort(self) -> None:
        keys = [c.key for c in COLUMNS]
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
        sort_col = COLUMN_INDEX[self.sort_key]
        for vm in wanted:
            cells = tuple(c.text(vm) for c in COLUMNS)
            old = self._cells.get(vm.id)
            self._cells[vm.id] = cells
            raw = COLUMNS[sort_col].raw(vm)
            if old is None:
                self.add_row(*self._cells_text(cells), key=vm.id)
                added = True
            else:
                for col, before, after in zip(COLUMNS, old, cells, strict=True):
                    if before != after:
                        self.update_cell(vm.id, col.key, self._cell(col, after))
                sort_changed |= self._raw.get(vm.id) != raw
            self._raw[vm.id] = raw
        if added or sort_changed:
            self._resort(keep_cursor=not first_fill)

    def _cell(self, col: Column, text: str) -> Text:
        return Text(text, justify="right" if col.right else "left", no_wrap=True)

    def _cells_text(self, cells: tuple[str, ...]) -> list[Text]:
        return [self._cell(col, text) for col, text in zip(COLUMNS, cells, strict=True)]

    def _resort(self, keep_cursor: bool = True) -> None:
        sort_col = COLUMNS[COLUMN_INDEX[self.sort_key]]
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

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.VMSelected(str(event.row_key.value)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.VMHighlighted(str(event.row_key.value)))
