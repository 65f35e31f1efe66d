"""Save to a named slot (ctrl+s), and quitting a game in progress (ctrl+q)."""

from __future__ import annotations

import re
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from app.console.screens.load_dialog import list_saves
from app.console.screens.mount_guard import MountGuard
from app.console.widgets.key_bar import KeyBar

SLOT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SaveDialog(MountGuard, ModalScreen[str | None]):
    """Dismisses with the slot's name (saves/<name>.toml), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path, default: str) -> None:
        super().__init__()
        self.folder = folder
        self.default = default
        self.slots = [p.stem for p in list_saves(folder)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="save-dialog"):
            yield Static("Save the game", classes="dialog--title")
            existing = ", ".join(self.slots[:8]) + (" …" if len(self.slots) > 8 else "")
            yield Static(f"Slots in {self.folder}: {existing or 'none yet'}",
                         classes="dialog--body")
            yield Input(value=self.default, id="save-name")
            yield Static(id="save-note", classes="dialog--body")
            yield Static("Enter: save   Esc: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._describe(self.default)

    def _describe(self, name: str) -> None:
        name = name.strip()
        if not SLOT.match(name):
            note = "✘ a slot name: letters, digits, '.', '-' or '_' (at most 64)"
        elif name in self.slots:
            note = f"replaces the save in slot {name!r}"
        else:
            note = f"a new slot: {name}.toml"
        self.query_one("#save-note", Static).update(note)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._describe(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if SLOT.match(name):
            self.dismiss(name)
        else:
            self.app.bell()

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitDialog(ModalScreen[str | None]):
    """Dismisses "save" (save, then quit), "quit" (without saving) or None (stay)."""

    BINDINGS = [Binding("enter,y", "choose('save')", "Save and quit"),
                Binding("n", "choose('quit')", "Quit without saving"),
                Binding("escape", "choose('stay')", "Keep playing")]

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quit-dialog"):
            yield Static("Quit Overcommit?", classes="dialog--title")
            yield Static(f"The game is saved first to {self.target} (ctrl+o loads it).",
                         classes="dialog--body")
            yield Static("Enter/y: save and quit   n: quit without saving   Esc: keep playing",
                         classes="dialog--keys")
        yield KeyBar()

    def action_choose(self, choice: str) -> None:
        self.dismiss(None if choice == "stay" else choice)
