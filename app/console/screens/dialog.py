"""Base of the action dialogs: a modal that shows the engine's verdict before confirming.

A dialog gets the snapshot and a `preview` function (ask the engine, queue nothing) from
the App; it never touches the simulation. Confirming dismisses it with the command, which
the App then submits; a rejected command cannot be confirmed, its reason stays on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input

from app.console.format import per_hour
from app.console.live import LiveData
from app.console.parsing import PROBLEMS
from app.console.screens.mount_guard import MountGuard
from app.console.view import ConsoleView, Preview
from app.console.widgets.verdict_line import VerdictLine
from engine import Command, Snapshot
from engine.commands import Rejected, Verdict
from engine.units import format_bytes


def billing_now(snap: Snapshot) -> float:
    """What the running VMs bill per hour at their list prices."""
    cols = snap.columns
    return float(cols["price_per_hour"][cols["running"]].sum())


class Dialog(MountGuard, ModalScreen[Command | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, snapshot: Snapshot, vm: str | None, preview: Preview, *,
                 host: str | None = None, live: LiveData | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.live = live or LiveData()  # migrations, links (refreshed with the snapshot)
        self.vm = vm
        self.host = host
        self.preview = preview
        self.rejections = 0  # confirmations refused because the engine said no

    def vm_summary(self) -> str:
        if self.vm is None:
            return ""
        vm = self.snapshot.vm(self.vm)
        where = {"running": f"on {vm.host}", "queued": "waiting for a host",
                 "stopped": "stopped"}.get(vm.status, vm.status)
        return (f"{vm.id}: {format_bytes(vm.configured_bytes)}, {vm.workload}, "
                f"tenant {vm.tenant}, {per_hour(vm.price_per_hour)}, {where}")

    def show(self, view: ConsoleView) -> None:
        """The world moved on: ask again what the engine says."""
        self.snapshot = view.snapshot
        self.live = view.live
        self.refresh_verdict()

    def refresh_verdict(self) -> None:  # overridden
        pass

    def confirm(self, command: Command | None, verdict: Verdict | None) -> None:
        if command is not None and verdict is not None and verdict.ok:
            self.dismiss(command)
            return
        self.rejections += 1
        self.app.bell()
        self.query_one(VerdictLine).add_class("-refused")

    def action_cancel(self) -> None:
        self.dismiss(None)


def input_problem(err: Exception, with_field: bool = False) -> str:
    """What is wrong with typed input, in one line: pydantic's first complaint (optionally
    naming the command's field), or the parser's own message."""
    if not isinstance(err, ValidationError):
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    detail = err.errors(include_url=False)[0]
    msg = str(detail["msg"]).removeprefix("Value error, ")
    field = ".".join(str(p) for p in detail["loc"])
    return f"{field}: {msg}" if with_field and field else msg


def safe_preview(preview: Preview, command: Command) -> Verdict:
    """The engine's verdict; should judging itself fail on an odd value, a refusal."""
    try:
        return preview(command)
    except Exception as err:  # noqa: BLE001 - a typed value must never take the game down
        return Rejected(f"the engine cannot judge this value ({type(err).__name__})")


class InputDialog(Dialog):
    """A dialog whose inputs make one command: every keystroke asks the engine again (an
    invalid input shows its problem and makes no command), and Enter confirms. Parsing
    goes through app/console/parsing.py: whatever it or the command's model raises is
    shown as the one-line problem."""

    command: Command | None = None
    verdict: Verdict | None = None
    echo = ""  # what build_command read the input as, e.g. "= 512MiB"
    PROBLEM_WITH_FIELD = False  # name the command's field when the input is invalid

    if TYPE_CHECKING:  # every input dialog defines it
        def build_command(self) -> Command:
            """The command the inputs describe; raises ValueError (or pydantic's) if none."""

    def effect(self, command: Command) -> str:
        return "applies at the next tick"

    def refresh_verdict(self) -> None:
        line = self.query_one(VerdictLine)
        self.echo = ""
        try:
            self.command = self.build_command()
        except PROBLEMS as err:
            self.command, self.verdict = None, None
            line.show(None, problem=input_problem(err, self.PROBLEM_WITH_FIELD))
            return
        self.verdict = safe_preview(self.preview, self.command)
        line.show(self.verdict, self.effect(self.command), echo=self.echo)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_verdict()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.refresh_verdict()
        self.confirm(self.command, self.verdict)
