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
             problem: str | None = None, echo: str = "") -> None:
        """The engine's verdict, or why the input makes no command; `echo` says what the
        input was read as ("= 512 B — did you mean 512 MiB?")."""
        self.problem = problem
        if problem is not None:
            self.update(Text.assemble(("✘ invalid", "bold red"), f": {problem}"))
            return
        text = Text()
        if echo:
            text.append(echo, style="bold yellow" if "did you mean" in echo else "bold")
            text.append("  ")
        text.append("The engine says: ")
        text.append_text(verdict_text(verdict, accepted_note))
        self.update(text)

    problem: str | None = None
