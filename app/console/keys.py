"""The App's key bindings, as data (operator actions add theirs from actions.ACTIONS)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from app.console.actions import ACTIONS

CLOCK_BINDINGS: list[BindingType] = [
    Binding("space", "toggle_pause", "Run/Pause"),
    Binding("full_stop,n", "step", "Step", key_display="."),
    Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
    Binding("minus", "slower", "Slower", key_display="-"),
]

ACTION_BINDINGS: list[BindingType] = [
    Binding(a.key, f"operate('{a.name}')", a.label) for a in ACTIONS
]

APP_BINDINGS: list[BindingType] = [
    Binding("question_mark,f1", "help", "Help", key_display="?"),
    Binding("ctrl+s", "save", "Save"),
    Binding("ctrl+o", "load", "Load"),
    Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
]

ALL_BINDINGS: list[BindingType] = CLOCK_BINDINGS + ACTION_BINDINGS + APP_BINDINGS

# Keys that end the session: the random key test leaves these out.
QUIT_KEYS = ("ctrl+q", "ctrl+c")
