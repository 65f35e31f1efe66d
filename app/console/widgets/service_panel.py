"""One VM's service and SLA: service level now and on average, availability, latency,
breaches and penalties, and the service it lost so far by cause, as labelled bars."""

from __future__ import annotations

from rich.text import Text

from app.console.format import duration, mini_bar, money, percent
from app.console.widgets import LABEL_W, Panel, row_text, update_text
from engine import VMView

# engine.state.LOSS_CAUSES, in words
CAUSES = {
    "swap": "swap-ins",
    "guest_paging": "guest paging",
    "page_cache": "page cache",
    "cow": "COW breaks",
    "dirty_log": "dirty logging",
    "postcopy": "post-copy",
    "downtime": "downtime",
    "memory_stall": "memory stall",
    "throttle": "throttle",
    "nic": "NIC",
}


def lost_text(lost: dict[str, float], width: int = 80) -> Text:
    """A bar per cause, on the scale of the largest, with its seconds."""
    top = max(lost.values(), default=0.0)
    label_w = LABEL_W if width >= LABEL_W + 16 else max(width - 11, 6)
    bar = max(0, min(20, width - label_w - 12))  # a narrow panel keeps the seconds only
    rows = []
    for cause, seconds in lost.items():
        label = CAUSES.get(cause, cause)
        row = Text(f"{label:<{label_w}.{label_w}}")
        if bar:
            row.append(mini_bar(seconds / top if top > 0 else 0.0, bar),
                       style="red3" if seconds else "")
        row.append(f" {duration(seconds) if seconds else '0':>9}",
                   style="" if seconds else "dim")
        rows.append(row)
    return Text("\n").join(rows)


def service_text(vm: VMView, width: int = 80) -> Text:
    breached = vm.sla_breaches > 0
    rows = [
        row_text("service now", percent(vm.service_level) if vm.running else "—",
                 "this tick", "bold" if vm.running and vm.service_level < 0.99 else "",
                 width),
        row_text("service avg", percent(vm.service_level_avg), "served / running",
                 width=width),
        row_text("availability", percent(vm.availability), "up / contracted", width=width),
        row_text("latency", duration(vm.latency_s), "mean op", width=width),
        row_text("SLA", vm.sla_status, f"{vm.sla_breaches} breaches",
                 "bold red" if breached else "green", width),
        row_text("revenue", money(vm.revenue), width=width),
        row_text("penalties", money(vm.penalties), "credits",
                 "red" if vm.penalties else "", width),
        Text("Lost service (cumulative)", style="bold"),
        lost_text(vm.lost_s, width),
    ]
    return Text("\n").join(rows)


class ServicePanel(Panel):
    _vm: VMView | None = None

    def show(self, vm: VMView) -> None:
        self._vm = vm
        self.rerender()

    def rerender(self) -> None:
        if self._vm is not None:
            update_text(self, service_text(self._vm, self.panel_width()))
