"""The top line: scenario, simulated time, tick, clock state and speed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from app.console.format import clock_text
from app.console.view import ClockState
from app.console.widgets import update_text
from engine import Snapshot


class ClockBar(Static):
    DEFAULT_CSS = """
    ClockBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, snap: Snapshot, clock: ClockState, duration_s: float | None,
             title: str = "") -> None:
        text = Text()
        text.append(f"{snap.scenario}", style="bold")
        if title:
            text.append(f" › {title}", style="bold")
        text.append("  ")
        text.append(clock_text(snap.time_s, snap.tick_s), style="bold reverse")
        if duration_s:
            text.append(f" / {clock_text(duration_s, snap.tick_s)}")
        text.append(f"  tick {snap.tick}  ")
        if clock.finished:
            text.append("■ OVER", style="bold magenta")
        elif clock.paused:
            text.append("❚❚ PAUSED", style="bold yellow")
        else:
            text.append("▶ RUNNING", style="bold green")
        text.append(f"  speed ×{clock.speed}")
        if not clock.paused and clock.ticks_per_s is not None:
            text.append(f" ({clock.ticks_per_s:.1f} ticks/s)")
        if clock.pause_in_dialogs:
            text.append("  ⏸ in dialogs", style="bold cyan")
        text.append("   space run/pause · . step · +/- speed", style="dim")
        update_text(self, text)
