"""One VM: its memory breakdown, counters, allocation and reclamation, service and SLA
(lost service by cause), its live migration while there is one, history and the events
concerning it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from app.console.format import per_hour, percent
from app.console.screens.detail import DetailScreen
from app.console.view import ConsoleView
from app.console.widgets import update_text
from app.console.widgets.allocation_panel import AllocationPanel
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import LogPane
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.memory_breakdown import MemoryBreakdown
from app.console.widgets.metric import Metric
from app.console.widgets.migration_panel import MigrationPanel
from app.console.widgets.service_panel import ServicePanel
from engine import Event
from engine.units import format_bytes, format_rate


class VMDetailScreen(DetailScreen):
    TITLE_PREFIX = "VM"

    def compose(self) -> ComposeResult:
        yield ClockBar()
        yield Static(id="detail-head", classes="detail--head")
        with Horizontal(classes="detail--body"):
            with Vertical(classes="detail--col"):
                yield Static("Memory", classes="pane-title")
                yield MemoryBreakdown()
                yield Static("Counters", classes="pane-title")
                yield Static(id="detail-counters")
            with Vertical(classes="detail--col"):
                yield Static("Allocation and reclamation", classes="pane-title")
                yield AllocationPanel()
            with Vertical(classes="detail--col"):
                yield Static("Service and SLA", classes="pane-title")
                yield ServicePanel()
        with Horizontal(classes="detail--history"):
            yield Metric(id="hist-resident")
            yield Metric(id="hist-balloon")
            yield Metric(id="hist-service")
        with Horizontal(id="detail-bottom"):
            with Vertical(id="detail-migration"):
                yield Static("Live migration (G cancel · P post-copy)", classes="pane-title")
                yield MigrationPanel()
            yield LogPane("Events (/ searches)", log_id="detail-log", id="detail-events")
        yield KeyBar()

    def concerns(self, event: Event, view: ConsoleView) -> bool:
        return event.vm == self.subject

    def show(self, view: ConsoleView) -> None:
        """While the VM migrates (or just did), its migration takes the room of the history
        sparklines and half of the event log's."""
        migrating = view.live.latest(self.subject) is not None
        box = self.query_one("#detail-migration")
        if box.display != migrating:
            box.display = migrating
            self.query_one(".detail--history").display = not migrating
        super().show(view)

    def show_subject(self, view: ConsoleView) -> None:
        vm = view.snapshot.vm(self.subject)
        head = Text()
        head.append(vm.id, style="bold")
        if vm.running:
            head.append(f" running on {vm.host}", style="green")
        elif vm.status == "stopped":
            head.append(" stopped (press p to start it again)", style="yellow")
        else:
            head.append(" waiting for a host (press p to place it)", style="yellow")
        head.append(f" · {per_hour(vm.price_per_hour)} · tenant {vm.tenant} · {vm.workload}"
                    f" · shares {vm.shares}")
        update_text(self.query_one("#detail-head", Static), head)
        self.query_one(MemoryBreakdown).show(
            [("private", vm.private_bytes), ("shared", vm.shared_bytes),
             ("balloon", vm.balloon_bytes), ("swapped", vm.swapped_bytes),
             ("untouched", vm.untouched_bytes)],
            vm.configured_bytes,
            [("configured", format_bytes(vm.configured_bytes)),
             ("resident", format_bytes(vm.resident_bytes)),
             ("guest free", format_bytes(vm.guest_free_bytes)),
             ("target", format_bytes(vm.target_bytes)),
             ("min", format_bytes(vm.min_bytes)), ("max", format_bytes(vm.max_bytes))])
        service = percent(vm.service_level) if vm.running else "—"
        update_text(self.query_one("#detail-counters", Static),
            f"first touches  {vm.first_touches:>12,}\n"
            f"COW breaks     {vm.cow_breaks:>12,}\n"
            f"stalled ops    {vm.stalled_ops:>12,}\n"
            f"service level  {service:>12}\n"
            f"network        {format_rate(vm.net_bytes_per_s):>12}")
        self.query_one(AllocationPanel).show(vm)
        self.query_one(ServicePanel).show(vm)
        migration = view.live.latest(vm.id)
        if migration is not None:
            self.query_one(MigrationPanel).show([migration], view.live.wws, vm.id,
                                                compact=False)
        hist = view.histories
        resident = hist.vm(vm.id, "resident_bytes")
        self.query_one("#hist-resident", Metric).show(
            f"Resident {format_bytes(vm.resident_bytes)} (last {len(resident)} ticks)",
            resident[-120:])
        balloon = hist.vm(vm.id, "balloon_bytes")
        self.query_one("#hist-balloon", Metric).show(
            f"Balloon {format_bytes(vm.balloon_bytes)}", balloon[-120:])
        self.query_one("#hist-service", Metric).show(
            f"Service level {service}", hist.vm(vm.id, "service_level")[-120:])
