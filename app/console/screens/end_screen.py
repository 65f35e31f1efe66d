"""The night is judged: every objective has a verdict. Win or lose, and why; in a campaign,
the record and what to play next."""

from __future__ import annotations

from typing import Any, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from app.console.format import clock_text, money
from app.console.widgets.objectives_panel import objective_lines
from engine import Snapshot

EndChoice = Literal["retry", "next", "levels"]


def won(objectives: tuple[dict[str, Any], ...]) -> bool:
    return all(o["status"] == "met" for o in objectives)


class EndScreen(ModalScreen[EndChoice | None]):
    BINDINGS = [Binding("escape,enter", "dismiss_screen", "Keep watching"),
                Binding("ctrl+q", "app.confirm_quit", "Quit"),
                Binding("r", "choose('retry')", "Retry"),
                Binding("n", "choose('next')", "Next level"),
                Binding("L", "choose('levels')", "Levels")]

    def __init__(self, snapshot: Snapshot, campaign_line: str | None = None,
                 has_next: bool = False) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.campaign_line = campaign_line
        self.has_next = has_next

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "choose":
            return True
        # Retry, next and levels belong to a campaign; next only once it is open.
        return self.campaign_line is not None and (parameters != ("next",) or self.has_next)

    def compose(self) -> ComposeResult:
        snap = self.snapshot
        win = won(snap.objectives)
        what = "night" if self.campaign_line is None else "level"
        title = Text(f"★ You won the {what} ★" if win else f"✘ The {what} is lost",
                     style="bold green" if win else "bold red")
        body = Text()
        for obj in snap.objectives:
            body.append_text(objective_lines(obj, snap.time_s, snap.tick_s))
            body.append("\n")
        body.append(f"\nProfit {money(snap.profit)} at {clock_text(snap.time_s, snap.tick_s)}  "
                    f"(revenue {money(snap.revenue)}, costs {money(snap.costs)}, "
                    f"penalties {money(snap.penalties)})")
        keys = "Enter/Esc: keep watching (the clock stays paused)   ctrl+q: quit"
        if self.campaign_line is None:
            body.append("\n\nMore nights, one mechanism each: ", style="bold")
            body.append("overcommit campaign", style="bold cyan")
            body.append(" (ballooning, the idle tax, swap storms, live migration...)")
        else:
            body.append(f"\n\n{self.campaign_line}", style="bold")
            keys = ("n: next level   " if self.has_next else "") + \
                "r: retry   L: levels   " + keys
        with Vertical(classes="dialog -wide", id="end"):
            yield Static(title, classes="dialog--title")
            yield Static(body, classes="dialog--body")
            yield Static(keys, classes="dialog--keys")

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)

    def action_choose(self, choice: EndChoice) -> None:
        self.dismiss(choice)
