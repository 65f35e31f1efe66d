"""Set a VM's shares, min or max: type a value, see the engine's verdict, Enter to apply."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from app.console.parsing import parse_count, parse_size
from app.console.screens.dialog import InputDialog
from app.console.view import Preview
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import Command, SetMax, SetMin, SetShares, Snapshot
from engine.units import format_bytes

Kind = Literal["shares", "min", "max"]

HINTS = {
    "shares": "A whole number (ESX default: 10 per MiB of configured memory).",
    "min": "A size such as 256MiB or 1GiB: memory guaranteed to the VM.",
    "max": "A size between the VM's min and its configured memory.",
}


class ValueDialog(InputDialog):

    def __init__(self, snapshot: Snapshot, vm: str, kind: Kind, preview: Preview) -> None:
        super().__init__(snapshot, vm, preview)
        self.vm_id = vm
        self.kind = kind

    def current(self) -> str:
        vm = self.snapshot.vm(self.vm_id)
        if self.kind == "shares":
            return str(vm.shares)
        return format_bytes(vm.min_bytes if self.kind == "min" else vm.max_bytes)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Set {self.kind} of {self.vm}", classes="dialog--title")
            yield Static(self.vm_summary(), classes="dialog--body")
            yield Static(f"Now: {self.current()}.  {HINTS[self.kind]}",
                         classes="dialog--body")
            yield Input(value=self.current(), id="value-input")
            yield VerdictLine()
            yield Static("Enter: apply   Esc: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_verdict()
        self.query_one(Input).focus()

    def build_command(self) -> Command:
        text = self.query_one(Input).value
        if self.kind == "shares":
            shares = parse_count(text, "shares")
            self.echo = f"= {shares:,} shares"
            return SetShares(vm=self.vm_id, shares=shares)
        size, self.echo = parse_size(text, self.kind)
        if self.kind == "min":
            return SetMin(vm=self.vm_id, min=size)
        return SetMax(vm=self.vm_id, max=size)


