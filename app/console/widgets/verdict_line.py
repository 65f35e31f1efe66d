"""What the engine will say about a command: accepted, or rejected with its reason."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.commands import Verdict


def verdict_text(verdict: Verdict | None, accepted_note: str = "") -> Text:
    text = Text()
    if verdict is None:
        text.append("…", style="dim")
    elif verdict.ok:
        text.append("✔ accepted", style="bold green")
        if accepted_note:
            text.append(f": {accepted_note}")
    else:
        text.append("✘ rejected", style="bold red")
        text.append(f": {verdict.reason}")
    return text


class VerdictLine(Static):
    DEFAULT_CSS = """
    VerdictLine { height: auto; margin: 1 0 0 0; }
    """

    def show(self, verdict: Verdict | None, accepted_note: str = "",
             problem: str | None = None) -> None:
        if problem is not None:
            self.update(Text.assemble(("✘ invalid", "bold red"), f": {problem}"))
            return
        self.update(Text.assemble("The engine says: ", verdict_text(verdict, accepted_note)))
