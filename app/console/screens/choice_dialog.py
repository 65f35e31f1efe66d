"""Pick one of a few commands (a sharing mode, a salting level, driver on or off), each
listed with what the engine says about it; Enter applies the highlighted one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from app.console.screens.dialog import Dialog, safe_preview
from app.console.view import ActionContext, Preview
from app.console.widgets.fit_table import FitTable
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine, verdict_text
from engine import Command, Snapshot
from engine.commands import Verdict


@dataclass(frozen=True)
class Choice:
    label: str  # what the list shows, e.g. "ksm  Linux KSM: stable and unstable trees"
    command: Command
    effect: str  # shown when the engine accepts it


class ChoiceDialog(Dialog):
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "choose", "Apply", show=True)]

    def __init__(self, snapshot: Snapshot, preview: Preview, *, title: str,
                 about: Callable[[Snapshot], str], choices: Sequence[Choice], current: int,
                 vm: str | None = None, host: str | None = None,
                 start: int | None = None) -> None:
        super().__init__(snapshot, vm, preview, host=host)
        self.title_text = title
        self.about = about
        self.choices = tuple(choices)
        self.current = current  # marked ●; -1: none is current
        self.start = current if start is None else start  # where the cursor starts
        self.verdicts: list[Verdict | None] = [None] * len(self.choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static(self.title_text, classes="dialog--title")
            yield Static(id="choice-about", classes="dialog--body")
            yield FitTable(flexible="choice", id="choices")
            yield VerdictLine()
            yield Static("↑↓: pick   Enter: apply   Esc: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Choice", key="choice", width=58)
        table.add_column("Engine says", key="verdict", width=24)
        self.call_after_refresh(table.fit)
        for i, choice in enumerate(self.choices):
            mark = "● " if i == self.current else "  "
            table.add_row(Text(mark + choice.label), Text("…"), key=str(i))
        table.move_cursor(row=max(self.start, 0), animate=False)
        self.refresh_verdict()
        table.focus()

    def refresh_verdict(self) -> None:
        self.query_one("#choice-about", Static).update(self.about_text())
        table = self.query_one(DataTable)
        for i, choice in enumerate(self.choices):
            self.verdicts[i] = safe_preview(self.preview, choice.command)
            table.update_cell(str(i), "verdict", verdict_text(self.verdicts[i]))
        self._show_highlighted()

    def with_live(self, ctx: ActionContext) -> Self:
        """Give the dialog the live data (migrations, links) its text may use."""
        self.live = ctx.live
        return self

    def about_text(self) -> str:
        return self.about(self.snapshot)

    def _highlighted(self) -> int:
        return self.query_one(DataTable).cursor_row

    def _show_highlighted(self) -> None:
        i = self._highlighted()
        if 0 <= i < len(self.choices):
            self.query_one(VerdictLine).show(self.verdicts[i], self.choices[i].effect)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_highlighted()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_choose(self) -> None:
        i = self._highlighted()
        if 0 <= i < len(self.choices):
            self.confirm(self.choices[i].command, self.verdicts[i])
