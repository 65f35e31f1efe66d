"""Place a waiting customer request (or start a stopped VM again): every host with its free
memory, overcommit ratio and what the engine says about starting the VM there."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from app.console.format import STATE_STYLES, per_hour
from app.console.screens.dialog import Dialog, billing_now, safe_preview
from app.console.widgets.fit_table import FitTable, update_row
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine, verdict_text
from engine import StartVM
from engine.commands import Verdict
from engine.units import format_bytes


class PlaceDialog(Dialog):
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "place", "Place here", show=True)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static(self.title_text(), classes="dialog--title")
            yield Static(self.vm_summary(), classes="dialog--body")
            yield Static(id="place-revenue", classes="dialog--body")
            yield FitTable(flexible="verdict", id="place-hosts")
            yield VerdictLine()
            yield Static("Enter: place on the highlighted host   Esc: cancel",
                         classes="dialog--keys")
        yield KeyBar()

    def title_text(self) -> str:
        vm = self.snapshot.vm(self.vm or "")
        return f"Start {vm.id} again" if vm.status in ("stopped", "lost") else f"Place {vm.id}"

    def revenue_text(self) -> str:
        vm = self.snapshot.vm(self.vm or "")
        now = billing_now(self.snapshot)
        return (f"Revenue: +{per_hour(vm.price_per_hour)} from the next tick, for the share "
                f"of its work that is served (running VMs bill {per_hour(now)} → "
                f"{per_hour(now + vm.price_per_hour)}).")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in (("host", "Host", 8), ("state", "State", 5),
                                  ("free", "Free", 9), ("ratio", "Overcommit", 14),
                                  ("verdict", "Engine says", 60)):
            table.add_column(label, key=key, width=width)
        self.call_after_refresh(table.fit)
        self.verdicts: dict[str, Verdict] = {}
        self.refresh_verdict()
        table.focus()

    def refresh_verdict(self) -> None:
        vm_id = self.vm or ""
        self.query_one("#place-revenue", Static).update(self.revenue_text())
        table = self.query_one(DataTable)
        configured = self.snapshot.vm(vm_id).configured_bytes
        for host in self.snapshot.hosts:
            verdict = safe_preview(self.preview, StartVM(vm=vm_id, host=host.id))
            self.verdicts[host.id] = verdict
            after = (host.configured_vm_bytes + configured) / host.memory_bytes \
                if host.memory_bytes else 0.0
            cells = (Text(host.id), Text(host.state, style=STATE_STYLES.get(host.state, "")),
                     Text(format_bytes(host.free_bytes), justify="right"),
                     Text(f"{host.overcommit_ratio:.2f}x → {after:.2f}x"),
                     verdict_text(verdict))
            update_row(table, host.id, ("host", "state", "free", "ratio", "verdict"), cells)
        self._show_highlighted()

    def _highlighted_host(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _show_highlighted(self) -> None:
        host = self._highlighted_host()
        verdict = self.verdicts.get(host) if host else None
        self.query_one(VerdictLine).show(
            verdict, f"{self.vm} powers on on {host} at the next tick")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_highlighted()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_place()

    def action_place(self) -> None:
        host = self._highlighted_host()
        if host is None or self.vm is None:
            return
        self.confirm(StartVM(vm=self.vm, host=host), self.verdicts.get(host))
