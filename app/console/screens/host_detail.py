"""One host: its memory, page sharing and reclamation, history, the VMs on it and the
events concerning it."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from app.console.format import STATE_STYLES
from app.console.screens.detail import DetailScreen
from app.console.view import ConsoleView
from app.console.widgets import update_text
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import LogPane
from app.console.widgets.host_list import memory_bar
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.memory_breakdown import MemoryBreakdown
from app.console.widgets.metric import Metric
from app.console.widgets.reclaim_panel import ReclaimPanel
from app.console.widgets.sharing_panel import SharingPanel
from app.console.widgets.vm_table import VMTable
from engine import Event
from engine.units import format_bytes, format_rate

NOTES = {"balloon": "guest, no frames", "swapped": "on disk"}


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
                yield Static("Page sharing", classes="pane-title")
                yield SharingPanel()
            with Vertical(classes="detail--col"):
                yield Static("Reclamation", classes="pane-title")
                yield ReclaimPanel()
        with Horizontal(classes="detail--history"):
            yield Metric(id="hist-free")
            yield Metric(id="hist-saved")
            yield Metric(id="hist-nic")
        yield Static("VMs here", classes="pane-title")
        yield VMTable(id="host-vms", only_host=self.subject)
        yield LogPane("Events (/ searches)", log_id="detail-log")
        yield KeyBar()

    _vms_here: frozenset[str] = frozenset()

    def set_subject(self, subject: str, view: ConsoleView | None = None) -> None:
        if self.is_mounted:
            self.query_one(VMTable).set_host(subject)
        super().set_subject(subject, view)

    def concerns(self, event: Event, view: ConsoleView) -> bool:
        return event.host == self.subject or event.vm in self._vms_here

    def show_subject(self, view: ConsoleView) -> None:
        snap = view.snapshot
        h = snap.vms.host_ids.index(self.subject)
        mine = [snap.vms[i] for i in np.flatnonzero(snap.columns["host_index"] == h).tolist()]
        self._vms_here = frozenset(v.id for v in mine)
        host = snap.host(self.subject)
        head = Text()
        head.append(host.id, style="bold")
        head.append(f" · switch {host.switch or '—'} · state ")
        head.append(host.state if host.up else "DOWN",
                    style=STATE_STYLES.get(host.state, "") if host.up else "bold red")
        head.append(f" · {host.n_vms} VMs · overcommit {host.overcommit_ratio:.2f}x"
                    f" · sharing {host.sharing_mode} · idle tax {host.idle_tax:.0%}")
        update_text(self.query_one("#detail-head", Static), head)
        self.query_one(MemoryBreakdown).show(
            [("private", host.private_bytes), ("shared", host.shared_bytes),
             ("free", host.free_bytes), ("balloon", host.balloon_bytes),
             ("swapped", host.swapped_bytes)],
            host.memory_bytes,
            [("memory", format_bytes(host.memory_bytes)),
             ("promised", format_bytes(host.configured_vm_bytes)),
             ("saved (sharing)", format_bytes(host.shared_saved_bytes)),
             ("NIC", f"{format_rate(host.nic_used_bytes_per_s)}")],
            draw=lambda width: memory_bar(host, width), notes=NOTES)
        self.query_one(SharingPanel).show(host)
        self.query_one(ReclaimPanel).show(host, mine)
        hist = view.histories
        self.query_one("#hist-free", Metric).show(
            f"Free {format_bytes(host.free_bytes)}", hist.host(host.id, "free_bytes")[-120:])
        self.query_one("#hist-saved", Metric).show(
            f"Saved by sharing {format_bytes(host.shared_saved_bytes)}",
            hist.host(host.id, "shared_saved_bytes")[-120:])
        self.query_one("#hist-nic", Metric).show(
            f"NIC {format_rate(host.nic_used_bytes_per_s)}",
            hist.host(host.id, "nic_used_bytes_per_s")[-120:])
        table = self.query_one(VMTable)
        table.use_columns(view.vm_columns)
        table.show(snap.vms, snap.pending_vms())
