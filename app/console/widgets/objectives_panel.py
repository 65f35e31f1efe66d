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
