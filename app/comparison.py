"""Published vs simulated: one row per published value, and the table that prints them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine import ScenarioSpec
from engine.spec import Expectation

Metrics = dict[str, float]
BOUND_SIGN = {"at_least": "≥ ", "at_most": "≤ ", "two_sided": ""}


@dataclass(frozen=True)
class Row:
    experiment: str
    source: str
    expectation: Expectation
    simulated: float | None  # None: the experiment does not compute this metric

    @property
    def holds(self) -> bool:
        return self.simulated is not None and self.expectation.holds(self.simulated)

    @property
    def relative_error(self) -> float | None:
        published = self.expectation.published
        if self.simulated is None or published == 0:
            return None
        return (self.simulated - published) / abs(published)

    def as_json(self) -> dict[str, Any]:
        exp = self.expectation
        return {"experiment": self.experiment, "metric": exp.metric, "published": exp.published,
                "unit": exp.unit, "bound": exp.bound, "abs_tol": exp.abs_tol,
                "rel_tol": exp.rel_tol, "simulated": self.simulated,
                "relative_error": self.relative_error, "holds": self.holds,
                "note": exp.note, "source": self.source}


def compare(stem: str, spec: ScenarioSpec, metrics: Metrics) -> list[Row]:
    assert spec.reproduce is not None
    return [Row(stem, spec.reproduce.source, exp, metrics.get(exp.metric))
            for exp in spec.reproduce.expect]


def _number(value: float, unit: str = "") -> str:
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def _published(exp: Expectation) -> str:
    text = BOUND_SIGN[exp.bound] + _number(exp.published, exp.unit)
    if exp.bound != "two_sided":
        return text
    # The tolerance is part of the claim: 0.67 ± 0.08 holds where 0.67 ± 0.01 would not.
    if exp.rel_tol is not None:
        return f"{text} ± {exp.rel_tol:.0%}"
    return f"{text} ± {_number(exp.abs_tol or 0.0)}"


def print_table(console: Console, rows: list[Row]) -> None:
    table = Table(title="Paper reproductions: published vs simulated")
    for name in ("experiment", "metric", "published", "simulated", "rel. error", "verdict"):
        table.add_column(name, justify="left" if name in ("experiment", "metric") else "right")
    for i, row in enumerate(rows):
        exp = row.expectation
        first = i == 0 or rows[i - 1].experiment != row.experiment
        last = i == len(rows) - 1 or rows[i + 1].experiment != row.experiment
        error = row.relative_error
        table.add_row(
            Text(row.experiment if first else ""), Text(exp.metric), Text(_published(exp)),
            Text("not computed" if row.simulated is None else _number(row.simulated, exp.unit)),
            Text("-" if error is None else f"{error:+.1%}"),
            Text("holds", "green") if row.holds else Text("fails", "bold red"),
            end_section=last)
    console.print(table)
