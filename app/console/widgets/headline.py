"""Headline metrics of the whole datacenter: profit, revenue/costs, service, free memory."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal

from app.console.format import money, percent
from app.console.widgets.metric import Metric
from engine import Snapshot
from engine.units import format_bytes

SPARK_POINTS = 120  # the most recent ticks shown in each sparkline


class Headline(Horizontal):
    DEFAULT_CSS = """
    Headline { height: 3; }
    """

    def compose(self) -> ComposeResult:
        yield Metric(id="metric-profit")
        yield Metric(id="metric-money")
        yield Metric(id="metric-service")
        yield Metric(id="metric-free")

    def show(self, snap: Snapshot) -> None:
        hist = snap.history

        def last(name: str) -> Sequence[float]:
            return hist.get(name, ())[-SPARK_POINTS:]

        stalled = hist.get("stalled_fraction", (0.0,))[-1:] or (0.0,)
        free = sum(h.free_bytes for h in snap.hosts)
        memory = sum(h.memory_bytes for h in snap.hosts)
        self.query_one("#metric-profit", Metric).show(f"Profit {money(snap.profit)}",
                                                      last("profit"))
        self.query_one("#metric-money", Metric).show(
            f"Rev {money(snap.revenue)} Cost {money(snap.costs + snap.penalties)}",
            last("profit_tick"))
        self.query_one("#metric-service", Metric).show(
            f"Stalled {percent(stalled[0])}", last("stalled_fraction"))
        self.query_one("#metric-free", Metric).show(
            f"Free {format_bytes(free)} ({percent(free / memory if memory else 0)})",
            last("free_bytes"))
