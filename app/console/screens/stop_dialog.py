"""Stop a VM, after seeing what the engine says about it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from app.console.format import per_hour
from app.console.screens.dialog import Dialog, billing_now, safe_preview
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import StopVM
from engine.commands import Verdict
from engine.units import format_bytes


class StopDialog(Dialog):
    BINDINGS = [Binding("escape,n", "cancel", "Cancel"),
                Binding("enter,y", "stop_vm", "Stop it")]

    verdict: Verdict | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Stop {self.vm}?", classes="dialog--title")
            yield Static(self.vm_summary(), classes="dialog--body")
            yield Static(id="stop-effect", classes="dialog--body")
            yield VerdictLine()
            yield Static("Enter/y: stop it   Esc/n: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_verdict()

    def refresh_verdict(self) -> None:
        vm = self.snapshot.vm(self.vm or "")
        self.verdict = safe_preview(self.preview, StopVM(vm=vm.id))
        now = billing_now(self.snapshot)
        effect = (f"Frees about {format_bytes(vm.resident_bytes)} on {vm.host}. Revenue: "
                  f"−{per_hour(vm.price_per_hour)} from the next tick (running VMs bill "
                  f"{per_hour(now)} → {per_hour(now - vm.price_per_hour)})."
                  if vm.running else "It is not running.")
        self.query_one("#stop-effect", Static).update(effect)
        self.query_one(VerdictLine).show(self.verdict, f"{self.vm} powers off at the next tick")

    def action_stop_vm(self) -> None:
        self.confirm(StopVM(vm=self.vm or ""), self.verdict)
