"""A load spike: change a running VM's reads and writes per second and its working set.
Empty fields stay as they are; the scenario's values are shown to go back to."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from app.console.format import rate_text
from app.console.parsing import parse_number, parse_size
from app.console.screens.dialog import InputDialog
from app.console.view import Preview
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import Command, Snapshot
from engine.commands import SetWorkload
from engine.spec import WorkloadSpec
from engine.units import format_bytes

SPIKE = 4  # the dialog offers this many times the scenario's rates

FIELDS = (("reads_per_s", "Reads/s"), ("writes_per_s", "Writes/s"),
          ("working_set", "Working set"))


class WorkloadDialog(InputDialog):
    PROBLEM_WITH_FIELD = True

    def __init__(self, snapshot: Snapshot, vm: str, preview: Preview,
                 workload: WorkloadSpec | None) -> None:
        super().__init__(snapshot, vm, preview)
        self.vm_id = vm
        self.workload = workload  # as the scenario defined it (None: placed since)

    def scenario_text(self) -> str:
        w = self.workload
        if w is None:
            return "The scenario does not define this VM's workload."
        ws = format_bytes(w.working_set) if w.working_set is not None else "all memory"
        return (f"Scenario: {w.reads_per_s:g} reads/s, {w.writes_per_s:g} writes/s, working "
                f"set {ws} (type these to end a spike). Suggested: {SPIKE}× the rates.")

    def compose(self) -> ComposeResult:
        w = self.workload
        start = {"reads_per_s": f"{w.reads_per_s * SPIKE:g}" if w else "",
                 "writes_per_s": f"{w.writes_per_s * SPIKE:g}" if w else "",
                 "working_set": ""}
        with Vertical(classes="dialog"):
            yield Static(f"Load spike on {self.vm_id}", classes="dialog--title")
            yield Static(self.vm_summary(), classes="dialog--body")
            yield Static(self.scenario_text(), classes="dialog--body -hint")
            yield Static(id="load-now", classes="dialog--body")
            for key, label in FIELDS:
                with Horizontal(classes="dialog--field"):
                    yield Label(label)
                    yield Input(value=start[key], placeholder="unchanged", id=f"load-{key}")
            yield VerdictLine()
            yield Static("Enter: apply   Tab: next field   Esc: cancel",
                         classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_verdict()
        self.query_one("#load-reads_per_s", Input).focus()

    def build_command(self) -> SetWorkload:
        text = {key: self.query_one(f"#load-{key}", Input).value.strip() for key, _ in FIELDS}
        labels = dict(FIELDS)
        reads = parse_number(text["reads_per_s"], labels["reads_per_s"]) \
            if text["reads_per_s"] else None
        writes = parse_number(text["writes_per_s"], labels["writes_per_s"]) \
            if text["writes_per_s"] else None
        working_set = None
        if text["working_set"]:
            working_set, self.echo = parse_size(text["working_set"], "working set")
        return SetWorkload(vm=self.vm_id, reads_per_s=reads, writes_per_s=writes,
                           working_set=working_set)

    def refresh_verdict(self) -> None:
        vm = self.snapshot.vm(self.vm_id)
        self.query_one("#load-now", Static).update(
            f"Now: {rate_text(vm.throughput_per_s)} touches/s served, service level "
            f"{vm.service_level:.1%}, resident {format_bytes(vm.resident_bytes)}")
        super().refresh_verdict()

    def effect(self, command: Command) -> str:
        return "the new demand applies at the next tick"


