"""Set the idle memory tax of one host or of every host: type a rate (0.75 or 75%), pick
the scope, see the engine's verdict, Enter to apply."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from app.console.parsing import InputProblem, parse_percent
from app.console.screens.dialog import InputDialog
from app.console.view import Preview
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import Command, Snapshot
from engine.commands import SetIdleTax

EVERY_HOST = "*"
MAX_TAX = 0.99  # SetIdleTax's bound
ABOUT = ("The tax τ makes idle memory cost more when memory is revoked: a VM's claim is "
         "shares / (pages · (f + k(1 − f))), k = 1/(1 − τ), f its active fraction. At 0 "
         "memory follows shares alone; near 1 idle VMs give their memory to active ones, "
         "which serve more work (and earn more) on a crowded host.")


class IdleTaxDialog(InputDialog):
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("up", "scope(-1)", "Scope up", show=False),
                Binding("down", "scope(1)", "Scope down", show=False)]


    def __init__(self, snapshot: Snapshot, host: str | None, preview: Preview) -> None:
        super().__init__(snapshot, None, preview, host=host)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Set the idle memory tax", classes="dialog--title")
            yield Static(ABOUT, classes="dialog--body -hint")
            yield DataTable(cursor_type="row", id="tax-scope")
            yield Input(value=self._start_value(), id="tax-input")
            yield VerdictLine()
            yield Static("Type the rate (75% or 0.75; 0 … 99 %)   ↑↓: host or every host   "
                         "Enter: apply   Esc: cancel", classes="dialog--keys")
        yield KeyBar()

    def _start_value(self) -> str:
        host = self.snapshot.host(self.host) if self.host else self.snapshot.hosts[0]
        return f"{host.idle_tax:.2f}"

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Scope", key="scope", width=16)
        table.add_column("Tax now", key="tax", width=10)
        for host in self.snapshot.hosts:
            table.add_row(Text(host.id), Text(f"{host.idle_tax:.0%}"), key=host.id)
        table.add_row(Text("every host"), Text(""), key=EVERY_HOST)
        if self.host is not None:
            table.move_cursor(row=table.get_row_index(self.host), animate=False)
        self.refresh_verdict()
        self.query_one(Input).focus()

    def scope(self) -> str | None:
        table = self.query_one(DataTable)
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return None if key == EVERY_HOST else key

    def refresh_verdict(self) -> None:
        table = self.query_one(DataTable)
        for host in self.snapshot.hosts:
            table.update_cell(host.id, "tax", Text(f"{host.idle_tax:.0%}"))
        super().refresh_verdict()

    def build_command(self) -> SetIdleTax:
        tax, self.echo = parse_percent(self.query_one(Input).value, "tax")
        if tax > MAX_TAX:
            raise InputProblem(f"tax: at most {MAX_TAX:.0%} (a tax of 100 % or more would "
                               f"make idle memory infinitely expensive), got {tax:.0%}")
        return SetIdleTax(host=self.scope(), tax=tax)

    def effect(self, command: Command) -> str:
        assert isinstance(command, SetIdleTax)
        return f"τ = {command.tax:.0%} on {command.host or 'every host'} from the next tick"

    def action_scope(self, delta: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=min(max(table.cursor_row + delta, 0), table.row_count - 1))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.refresh_verdict()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.refresh_verdict()
        self.confirm(self.command, self.verdict)


