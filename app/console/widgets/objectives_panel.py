"""Objectives with their status and progress, and the next timeline event."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from app.console.format import clock_text, metric_text, progress_bar
from app.console.widgets import update_text

STATUS = {"met": ("✔ MET   ", "bold green"), "failed": ("✘ FAILED", "bold red"),
          "pending": ("… open  ", "yellow")}


def objective_lines(obj: dict[str, Any], time_s: float, tick_s: float) -> Text:
    label, style = STATUS.get(obj["status"], (obj["status"], ""))
    text = Text(no_wrap=False)
    text.append(label, style=style)
    text.append(f" {obj['description']}\n")
    value = float(obj["value"])
    if obj.get("at_least") is not None:
        bound = float(obj["at_least"])
        fraction = value / bound if bound > 0 else float(value >= bound)
        text.append(f"   {progress_bar(fraction)} {metric_text(obj['metric'], value)} "
                    f"of ≥ {metric_text(obj['metric'], bound)}")
    else:
        bound = float(obj["at_most"])
        ok = "within" if value <= bound else "over"
        text.append(f"   {metric_text(obj['metric'], value)}, {ok} "
                    f"≤ {metric_text(obj['metric'], bound)}")
    if obj["status"] == "pending":
        left = max(float(obj["by_s"]) - time_s, 0.0)
        text.append(f" · {clock_text(left, tick_s)} left", style="dim")
    return text


class ObjectivesPanel(Static):
    DEFAULT_CSS = """
    ObjectivesPanel { height: auto; }
    """

    def show(self, objectives: tuple[dict[str, Any], ...], time_s: float, tick_s: float,
             next_timeline: str | None) -> None:
        text = Text()
        if not objectives:
            text.append("No objectives: play freely.", style="dim")
        for i, obj in enumerate(objectives):
            if i:
                text.append("\n")
            text.append_text(objective_lines(obj, time_s, tick_s))
        if next_timeline:
            text.append("\nNext: ", style="bold blue")
            text.append(next_timeline)
        update_text(self, text)


def strip_text(objectives: tuple[dict[str, Any], ...], next_timeline: str | None) -> Text:
    """One line: how many objectives are met, failed and open, the most urgent open one,
    and the key that shows them all."""
    text = Text(no_wrap=True, overflow="ellipsis")
    counts = {s: sum(o["status"] == s for o in objectives) for s in ("met", "failed",
                                                                    "pending")}
    text.append("Objectives ", style="bold")
    text.append(f"✔{counts['met']} ", style="green")
    text.append(f"✘{counts['failed']} ", style="red" if counts["failed"] else "dim")
    text.append(f"…{counts['pending']}", style="yellow")
    pending = sorted((o for o in objectives if o["status"] == "pending"),
                     key=lambda o: float(o["by_s"]))
    if pending:
        o = pending[0]
        bound = o["at_least"] if o.get("at_least") is not None else o["at_most"]
        sign = "≥" if o.get("at_least") is not None else "≤"
        text.append(f" · {o['metric'].replace('_', ' ')} "
                    f"{metric_text(o['metric'], float(o['value']))} of {sign} "
                    f"{metric_text(o['metric'], float(bound))}")
    elif next_timeline:
        text.append(f" · next {next_timeline}")
    text.append("  v: objectives & log", style="dim")
    return text


class ObjectivesStrip(Static):
    """The objectives in one line, while the side pane is hidden."""

    DEFAULT_CSS = """
    ObjectivesStrip { height: 1; padding: 0 1; background: $boost; display: none; }
    """

    def show(self, objectives: tuple[dict[str, Any], ...], next_timeline: str | None) -> None:
        update_text(self, strip_text(objectives, next_timeline))
