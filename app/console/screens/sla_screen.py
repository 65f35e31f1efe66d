"""`e`/`$`: service, SLA and money for the whole data center: where the money goes, the
service lost by cause, every VM's service level, breaches and penalties, and the events
that cost money (breaches, lost VMs, failures, migrations)."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from app.console.format import money, percent
from app.console.screens.detail import DetailScreen
from app.console.view import ConsoleView
from app.console.widgets import row_text, update_text
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import LogPane
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.metric import Metric
from app.console.widgets.money_panel import MoneyPanel
from app.console.widgets.service_panel import lost_text
from app.console.widgets.vm_table import VMTable
from engine import Event, Snapshot
from engine.state import LOSS_CAUSES

SPARK_POINTS = 120
KINDS = frozenset({"sla_breach", "vm_lost", "host_down", "host_up", "migration_started",
                   "migration_finished", "migration_failed", "migration_cancelled",
                   "migration_switched", "objective"})


def summary_text(snap: Snapshot, width: int = 80) -> Text:
    cols = snap.columns  # sums over every VM: columns, not rows
    running = cols["running"]
    served = cols["service_level"][running]
    mean = float(served.mean()) if served.size else 1.0
    breaches = cols["sla_breaches"]
    breached = [snap.vms.ids[i] for i in np.flatnonzero(breaches)[:5].tolist()]
    lost = {cause: float(cols[f"lost_{cause}_s"].sum()) for cause in LOSS_CAUSES}
    rows = [
        row_text("running VMs", f"{int(running.sum())}/{len(snap.vms)}", width=width),
        row_text("service now", percent(mean), "mean of running VMs", width=width),
        row_text("SLA breaches", f"{int(breaches.sum())}",
                 ", ".join(breached[:4]) + (" …" if len(breached) > 4 else ""),
                 "bold red" if breached else "green", width),
        row_text("penalties", money(snap.penalties), "credits paid back",
                 "red" if snap.penalties else "", width),
        Text("Lost service by cause, all VMs", style="bold"),
        lost_text(lost, width),
    ]
    return Text("\n").join(rows)


class SLAScreen(DetailScreen):
    TITLE_PREFIX = "SLA and money"

    def __init__(self) -> None:
        super().__init__("")

    def compose(self) -> ComposeResult:
        yield ClockBar()
        with Horizontal(classes="detail--body"):
            with Vertical(classes="detail--col"):
                yield Static("Money", classes="pane-title")
                yield MoneyPanel()
            with Vertical(classes="detail--col"):
                yield Static("Service", classes="pane-title")
                yield Static(id="sla-summary")
        with Horizontal(classes="detail--history"):
            yield Metric(id="hist-profit")
            yield Metric(id="hist-penalties")
            yield Metric(id="hist-service")
        yield Static("VMs: service, SLA and money (enter opens one)", classes="pane-title")
        yield VMTable(id="sla-vms")
        yield LogPane("Events that cost money (/ searches)", log_id="detail-log")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(VMTable).focus()

    def concerns(self, event: Event, view: ConsoleView) -> bool:
        return event.kind in KINDS

    def show_subject(self, view: ConsoleView) -> None:
        snap = view.snapshot
        self.query_one(MoneyPanel).show(snap, view.live.money)
        summary = self.query_one("#sla-summary", Static)
        update_text(summary, summary_text(snap, summary.size.width or 60))
        hist = view.histories
        self.query_one("#hist-profit", Metric).show(
            f"Profit {money(snap.profit)}", snap.history.get("profit", ())[-SPARK_POINTS:])
        self.query_one("#hist-penalties", Metric).show(
            f"Penalties {money(snap.penalties)}",
            hist.datacenter("penalties")[-SPARK_POINTS:])
        service = hist.datacenter("service_mean")
        self.query_one("#hist-service", Metric).show(
            f"Service {percent(service[-1]) if service else '—'}", service[-SPARK_POINTS:])
        table = self.query_one(VMTable)
        table.use_columns("sla")
        table.show(snap.vms, snap.pending_vms())
