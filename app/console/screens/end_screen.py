"""The night is judged: every objective has a verdict. Win or lose, and why."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from app.console.format import money
from app.console.widgets.objectives_panel import objective_lines
from engine import Snapshot


def won(objectives: tuple[dict[str, Any], ...]) -> bool:
    return all(o["status"] == "met" for o in objectives)


class EndScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "dismiss_screen", "Keep watching"),
                Binding("ctrl+q", "app.quit", "Quit")]

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def compose(self) -> ComposeResult:
        snap = self.snapshot
        win = won(snap.objectives)
        title = Text("★ You won the night ★" if win else "✘ The night is lost",
                     style="bold green" if win else "bold red")
        body = Text()
        for obj in snap.objectives:
            body.append_text(objective_lines(obj, snap.time_s, snap.tick_s))
            body.append("\n")
        body.append(f"\nProfit {money(snap.profit)}  (revenue {money(snap.revenue)}, "
                    f"costs {money(snap.costs)}, penalties {money(snap.penalties)})")
        with Vertical(classes="dialog -wide", id="end"):
            yield Static(title, classes="dialog--title")
            yield Static(body, classes="dialog--body")
            yield Static("Enter/Esc: keep watching (the clock stays paused)   ctrl+q: quit",
                         classes="dialog--keys")

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)
