"""A DataTable that never scrolls sideways: one flexible column (the engine's verdict)
takes whatever width the others leave, so a dialog fits an 80-column terminal. A reason
cut short here is shown in full in the dialog's verdict line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import Any, overload

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import DuplicateKey, Row, RowKey

SegmentLines = list[list[Segment]]  # a rendered cell, as DataTable keeps it
MIN_FLEX = 12  # "✔ accepted" and a little


class FixedWidths(DataTable[Any]):
    """A DataTable whose columns all have fixed widths and rows one line: nothing to
    measure. (DataTable measures each new cell to size auto-width columns, three
    terminal-size system calls a cell: most of a second for 1,000 new rows.)

    Its cells render again only when they change. DataTable keys its cache of rendered
    cells on a count of every change to the table, so updating one cell renders every
    cell on screen again (400 of them, half of a live frame of the VM table); here a
    cell's rendering is kept while the cell holds the same value (cells are replaced,
    never changed in place; a new cell equal to the old one counts as the same, so a table
    filled again, as a change of its columns does, reuses what it drew) at the same
    place, width and style."""

    CELL_CACHE = 4096  # rendered cells kept: a screenful of the widest column set, x4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set first: DataTable's __init__ already asks for the row order.
        self._kept_order: tuple[object, int, list[Row]] | None = None
        self._tall_rows = False  # a row added more than one line high
        super().__init__(*args, **kwargs)
        self._kept_cells: LRUCache[tuple[Any, ...], tuple[object, SegmentLines]] = \
            LRUCache(self.CELL_CACHE)

    # DataTable caches its row order, and the line of each row, per change of any cell:
    # every tick's cell updates rebuilt both for every row (0.3 s a tick for 100,000 VMs).
    # The order changes only when rows come, go or are sorted; each of those adds to
    # `_row_locations` or replaces it, so the order is kept while that mapping stays the
    # same object of the same length.
    @property
    def ordered_rows(self) -> list[Row]:
        locations = self._row_locations
        kept = self._kept_order
        if kept is not None and kept[0] is locations and kept[1] == len(locations):
            return kept[2]
        rows = [self.rows[locations.get_key(i)]  # type: ignore[index]
                for i in range(len(locations))]
        self._kept_order = (locations, len(locations), rows)
        return rows

    @property
    def _y_offsets(self) -> Any:
        """(row key, line within the row) of each line: with one-line rows, a view of the
        row order instead of a list of every line."""
        if self._tall_rows:
            return super()._y_offsets
        return _OneLineRows(self.ordered_rows)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        if height != 1:
            self._tall_rows = True
        return super().add_row(*cells, height=height, key=key, label=label)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        width = sum(col.get_render_width(self) for col in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width, self._total_row_height + header)

    def add_rows_at_once(self, rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """add_row for each (key, cells), one line high, with the per-row work done once:
        add_row re-validates the cursor and wakes the idle handler for every row, which
        is most of the cost of filling a 1,000-row table (a column switch does)."""
        if not rows:
            return
        start = self.row_count
        columns = [c.key for c in self.ordered_columns]
        for offset, (key, cells) in enumerate(rows):
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            if len(cells) > len(columns):
                raise ValueError("More values provided than there are columns.")
            self._row_locations[row_key] = start + offset
            self._data[row_key] = dict(zip_longest(columns, cells))
            self.rows[row_key] = Row(row_key, 1)
            self._new_rows.add(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if start == 0 and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as add_row does when the first row arrives
        self._update_count += 1
        self.check_idle()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> SegmentLines:
        if row_index < 0 or column_index < 0:  # the header and row labels: as DataTable
            return super()._render_cell(row_index, column_index, base_style, width, cursor,
                                        hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        value = self._data[row_key].get(column_key) \
            if row_key is not None and column_key is not None else None
        key = (row_key, column_key, row_index, column_index, base_style, width, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state)
        kept = self._kept_cells.get(key)
        if kept is not None and _same_cell(kept[0], value):
            return kept[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor,
                                     hover)
        self._kept_cells[key] = (value, lines)
        return lines


def _same_cell(a: object, b: object) -> bool:
    """Whether two cell values render alike: the same object, equal strings, or Texts
    alike in every attribute that renders (Text's == compares only text and spans)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, str):
        return a == b
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain == b.plain and a.spans == b.spans and a.style == b.style
                and a.justify == b.justify and a.overflow == b.overflow
                and a.no_wrap == b.no_wrap and a.end == b.end and a.tab_size == b.tab_size)
    return False


class _OneLineRows(Sequence[tuple[RowKey, int]]):
    """DataTable's list of (row key, line in the row) per line, for rows one line high."""

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> tuple[RowKey, int]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[RowKey, int]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [(row.key, 0) for row in self._rows[i]]
        return (self._rows[i].key, 0)

    def clear(self) -> None:
        """DataTable.clear clears the lines it was given: nothing is kept here."""


class FitTable(FixedWidths):
    def __init__(self, *, flexible: str, id: str | None = None,
                 cursor_type: str = "row") -> None:
        super().__init__(id=id, cursor_type=cursor_type)
        self.flexible = flexible

    def fit(self) -> None:
        """Give the flexible column the room the other columns leave."""
        if not self.columns or self.size.width == 0:
            return
        pad = 2 * self.cell_padding
        fixed = sum(col.width + pad for key, col in self.columns.items()
                    if key.value != self.flexible)
        width = max(MIN_FLEX, self.scrollable_content_region.width - fixed - pad - 1)
        for key, col in self.columns.items():
            if key.value == self.flexible and col.width != width:
                col.width = width
                self._require_update_dimensions = True
                self.refresh()

    def on_resize(self) -> None:
        self.fit()


def update_row(table: DataTable[Any], key: str, columns: Sequence[str],
               cells: Sequence[Text]) -> None:
    """Add the row, or update only the cells whose text changed (each update repaints
    the table: a dialog refreshed with the world must not repaint 100 hosts' rows)."""
    if key not in table.rows:
        table.add_row(*cells, key=key)
        return
    for column, cell in zip(columns, cells, strict=True):
        if table.get_cell(key, column) != cell:
            table.update_cell(key, column, cell)
