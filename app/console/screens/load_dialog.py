"""Pick a save from the saves/ folder to resume."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.console.widgets.key_bar import KeyBar


def list_saves(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


class LoadDialog(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.saves = list_saves(folder)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static("Load a save", classes="dialog--title")
            if self.saves:
                yield Static(f"Saves in {self.folder}:", classes="dialog--body")
                yield OptionList(*[Option(Text(p.name), id=str(i))
                                   for i, p in enumerate(self.saves)], id="load-saves")
                yield Static("Enter: load it (the running game is replaced)   Esc: cancel",
                             classes="dialog--keys")
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
