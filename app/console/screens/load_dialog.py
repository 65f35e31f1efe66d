"""Pick a save to resume: each with its scenario, simulated time and profit, newest first.
The loaded game starts paused."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.console.format import clock_text, money
from app.console.widgets.key_bar import KeyBar
from app.savefile import save_summary
from engine import InputError


def list_saves(folder: Path) -> list[Path]:
    """The saves in `folder`, most recently written first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.toml"), key=lambda p: (-p.stat().st_mtime, p.name))


def ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def save_line(path: Path, now: float) -> Text:
    """'first-night  First night  0:12:30  profit $1.23  (4 min ago)'."""
    text = Text(f"{path.stem:<24.24} ", style="bold")
    try:
        info = save_summary(path)
    except InputError:
        text.append("not a readable save", style="red")
        return text
    text.append(f"{info['scenario']:<20.20} ")
    text.append(f"{clock_text(info['time_s'])} ")
    text.append(f"profit {money(info['profit'])}",
                style="green" if info["profit"] >= 0 else "red")
    text.append(f"  ({ago(now - path.stat().st_mtime)})", style="dim")
    return text


class LoadDialog(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.saves = list_saves(folder)

    def compose(self) -> ComposeResult:
        now = time.time()
        with Vertical(classes="dialog -wide"):
            yield Static("Load a save", classes="dialog--title")
            if self.saves:
                yield Static(f"Saves in {self.folder}, newest first:", classes="dialog--body")
                yield OptionList(*[Option(save_line(p, now), id=str(i))
                                   for i, p in enumerate(self.saves)], id="load-saves")
                yield Static("Enter: load it, paused (the running game is replaced)   "
                             "Esc: cancel", classes="dialog--keys")
            else:
                yield Static(f"No saves in {self.folder} yet: ctrl+s saves the game.",
                             classes="dialog--body")
                yield Static("Esc: close", classes="dialog--keys")
        yield KeyBar()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.saves[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)
