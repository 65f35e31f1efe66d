"""Before a level's clock starts: the situation, the goals and the hints, on one card."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from app.console.format import clock_text
from engine.objectives import describe
from engine.scenario import ScenarioSpec


def briefing_text(spec: ScenarioSpec) -> Text:
    """The briefing, then each objective with its deadline and the scripted events' count."""
    meta = spec.scenario
    text = Text()
    text.append(meta.briefing.strip() or meta.description)
    if spec.objectives:
        text.append("\n\nTo win:", style="bold")
        for obj in spec.objectives:
            text.append("\n  • ")
            text.append(describe(obj))
            text.append(f"  (judged at {clock_text(obj.by, meta.tick_s)})", style="dim")
    else:
        text.append("\n\nNo objectives: play freely.", style="dim")
    if spec.timeline:
        text.append(f"\n\n{len(spec.timeline)} scripted event(s) will happen; the objectives "
                    "panel shows the next one.", style="dim")
    return text


class BriefingScreen(ModalScreen[bool]):
    """Dismisses True to start the clock, False to go back (the level select, if any)."""

    BINDINGS = [Binding("enter", "start", "Start"),
                Binding("escape", "back", "Back")]

    def __init__(self, spec: ScenarioSpec, title: str, back_label: str) -> None:
        super().__init__()
        self.spec = spec
        self.title_text = title
        self.back_label = back_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide", id="briefing"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog--title")
            with VerticalScroll(id="briefing-body"):
                yield Static(briefing_text(self.spec), classes="dialog--body")
            yield Static(f"Enter: start the clock   Esc: {self.back_label}",
                         classes="dialog--keys")

    def action_start(self) -> None:
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
