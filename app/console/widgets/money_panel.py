"""Where the money goes: revenue, the parts of the costs (power, capital, network),
penalty credits and profit, in total and at this tick's rate per hour."""

from __future__ import annotations

from rich.text import Text

from app.console.format import money, per_hour
from app.console.live import Money
from app.console.widgets import Panel, row_text, update_text
from engine import Snapshot


def money_text(snap: Snapshot, parts: Money, width: int = 80) -> Text:
    hourly = 3600.0 / snap.tick_s if snap.tick_s else 0.0
    profit_tick = parts.revenue_tick - parts.costs_tick - parts.penalties_tick
    rows = [
        row_text("revenue", money(snap.revenue), f"now {per_hour(parts.revenue_tick * hourly)}",
                 "green", width),
        row_text("− power", money(parts.power), "hosts, idle + load", width=width),
        row_text("− capital", money(parts.capital), "hosts, per hour", width=width),
        row_text("− network", money(parts.network), "migration traffic", width=width),
        row_text("  = costs", money(snap.costs), f"now {per_hour(parts.costs_tick * hourly)}",
                 width=width),
        row_text("− penalties", money(snap.penalties),
                 f"now {per_hour(parts.penalties_tick * hourly)}",
                 "red" if snap.penalties else "", width),
        row_text("= profit", money(snap.profit), f"now {per_hour(profit_tick * hourly)}",
                 "bold green" if snap.profit >= 0 else "bold red", width),
    ]
    return Text("\n").join(rows)


class MoneyPanel(Panel):
    _shown: tuple[Snapshot, Money] | None = None

    def show(self, snap: Snapshot, parts: Money) -> None:
        self._shown = (snap, parts)
        self.rerender()

    def rerender(self) -> None:
        if self._shown is not None:
            update_text(self, money_text(*self._shown, width=self.panel_width()))
