"""Force a VM's balloon or swap target: type a size (empty gives control back to the
allocation policy), see the engine's verdict and what the VM holds now, Enter to apply."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from app.console.parsing import parse_size
from app.console.screens.dialog import InputDialog
from app.console.view import Preview
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import Command, Snapshot
from engine.commands import SetBalloonTarget, SetSwapTarget
from engine.units import format_bytes

Kind = Literal["balloon", "swap"]

HINTS = {
    "balloon": "A size such as 256MiB (at most 65 % of the VM by default), or empty: back to "
               "the policy. The guest hands over its free pages first, then pages out its "
               "coldest memory to its own disk.",
    "swap": "A size such as 256MiB (at most max − min: the swap file), or empty: back to the "
            "policy. The hypervisor writes random pages to disk at disk speed; touching one "
            "stalls the VM for a disk read.",
}


class TargetDialog(InputDialog):

    def __init__(self, snapshot: Snapshot, vm: str, kind: Kind, preview: Preview) -> None:
        super().__init__(snapshot, vm, preview)
        self.vm_id = vm
        self.kind = kind

    def now_text(self) -> str:
        vm = self.snapshot.vm(self.vm_id)
        if self.kind == "balloon":
            driver = "" if vm.balloon_driver else "  (no balloon driver: enable it with d)"
            return (f"Now: balloon {format_bytes(vm.balloon_bytes)}, target "
                    f"{format_bytes(vm.balloon_target_bytes)}; guest paged out "
                    f"{format_bytes(vm.guest_swapped_bytes)}{driver}")
        return (f"Now: swapped {format_bytes(vm.swapped_bytes)}, resident "
                f"{format_bytes(vm.resident_bytes)}, min {format_bytes(vm.min_bytes)}")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Set the {self.kind} target of {self.vm_id}", classes="dialog--title")
            yield Static(self.vm_summary(), classes="dialog--body")
            yield Static(self.now_text(), id="target-now", classes="dialog--body")
            yield Static(HINTS[self.kind], classes="dialog--body -hint")
            yield Input(placeholder="empty: back to the policy", id="target-input")
            yield VerdictLine()
            yield Static("Enter: apply   Esc: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_verdict()
        self.query_one(Input).focus()

    def build_command(self) -> SetBalloonTarget | SetSwapTarget:
        text = self.query_one(Input).value.strip()
        target: int | None = None
        if text:
            target, self.echo = parse_size(text, f"{self.kind} target")
        if self.kind == "balloon":
            return SetBalloonTarget(vm=self.vm_id, target=target)
        return SetSwapTarget(vm=self.vm_id, target=target)

    def effect(self, command: Command) -> str:
        assert isinstance(command, SetBalloonTarget | SetSwapTarget)
        if command.target is None:
            return f"the policy sets {self.vm_id}'s {self.kind} target from the next tick"
        if self.kind == "balloon":
            return (f"{self.vm_id}'s balloon inflates toward {format_bytes(command.target)} "
                    "at a limited rate")
        return (f"the swap daemon writes {self.vm_id} out toward "
                f"{format_bytes(command.target)} at disk speed")

    def refresh_verdict(self) -> None:
        self.query_one("#target-now", Static).update(self.now_text())
        super().refresh_verdict()


