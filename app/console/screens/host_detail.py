"""One host: its memory breakdown, history, the VMs on it and the events concerning it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from app.console.format import STATE_STYLES
from app.console.screens.detail import DetailScreen
from app.console.view import ConsoleView
from app.console.widgets import update_text
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import EventLog
from app.console.widgets.memory_breakdown import MemoryBreakdown
from app.console.widgets.metric import Metric
from app.console.widgets.vm_table import VMTable
from engine import Event
from engine.units import format_bytes, format_rate


class HostDetailScreen(DetailScreen):
    TITLE_PREFIX = "host"

    def compose(self) -> ComposeResult:
        yield ClockBar()
        yield Static(id="detail-head", classes="detail--head")
        with Horizontal(classes="detail--body"):
            with Vertical(classes="detail--col"):
                yield Static("Memory", classes="pane-title")
                yield MemoryBreakdown()
            with Vertical(classes="detail--col"):
                yield Static("Counters (VMs here)", classes="pane-title")
                yield Static(id="detail-counters")
                yield Static("History", classes="pane-title")
                yield Metric(id="hist-free")
                yield Metric(id="hist-nic")
                yield Static("VMs here", classes="pane-title")
                yield VMTable(id="host-vms", only_host=self.subject)
        yield Static("Events", classes="pane-title")
        yield EventLog(id="detail-log")
        yield Footer()

    _vms_here: frozenset[str] = frozenset()

    def concerns(self, event: Event, view: ConsoleView) -> bool:
        return event.host == self.subject or event.vm in self._vms_here

    def show_subject(self, view: ConsoleView) -> None:
        self._vms_here = frozenset(v.id for v in view.snapshot.vms if v.host == self.subject)
        host = view.snapshot.host(self.subject)
        head = Text()
        head.append(host.id, style="bold")
        head.append(f" · switch {host.switch or '—'} · state ")
        head.append(host.state if host.up else "DOWN",
                    style=STATE_STYLES.get(host.state, "") if host.up else "bold red")
        head.append(f" · {host.n_vms} VMs · overcommit {host.overcommit_ratio:.2f}x")
        update_text(self.query_one("#detail-head", Static), head)
        self.query_one(MemoryBreakdown).show(
            [("private", host.private_bytes), ("shared", host.shared_bytes),
             ("free", host.free_bytes)],
            host.memory_bytes,
            [("memory", format_bytes(host.memory_bytes)),
             ("promised", format_bytes(host.configured_vm_bytes)),
             ("sharing saves", format_bytes(host.shared_saved_bytes)),
             ("ballooned", format_bytes(host.balloon_bytes)),
             ("swapped", format_bytes(host.swapped_bytes)),
             ("NIC", f"{format_rate(host.nic_used_bytes_per_s)} / "
                     f"{format_rate(host.nic_capacity_bytes_per_s)}")])
        mine = [v for v in view.snapshot.vms if v.host == host.id]
        update_text(self.query_one("#detail-counters", Static),
                    f"first touches  {sum(v.first_touches for v in mine):>12,}\n"
                    f"COW breaks     {sum(v.cow_breaks for v in mine):>12,}\n"
                    f"stalled ops    {sum(v.stalled_ops for v in mine):>12,}\n"
                    f"guest free     {format_bytes(sum(v.guest_free_bytes for v in mine)):>12}")
        hist = view.histories
        self.query_one("#hist-free", Metric).show(
            f"Free {format_bytes(host.free_bytes)}", hist.host(host.id, "free_bytes")[-120:])
        self.query_one("#hist-nic", Metric).show(
            f"NIC {format_rate(host.nic_used_bytes_per_s)}",
            hist.host(host.id, "nic_used_bytes_per_s")[-120:])
        self.query_one(VMTable).show(view.snapshot.vms)
