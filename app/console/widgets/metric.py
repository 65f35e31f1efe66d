"""A headline number over a sparkline of its history."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from app.console.widgets import update_text


class Metric(Vertical):
    DEFAULT_CSS = """
    Metric { height: 3; width: 1fr; padding: 0 1; }
    Metric > .metric--label { height: 1; }
    Metric > Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static(classes="metric--label")
        yield Sparkline([])

    def show(self, label: str, data: Sequence[float]) -> None:
        update_text(self.query_one(".metric--label", Static), label)
        spark = self.query_one(Sparkline)
        values = list(data)
        if spark.data != values:
            spark.data = values
