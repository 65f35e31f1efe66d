"""The App's key bindings, as data (operator actions add theirs from actions.ACTIONS).

The footer shows related actions under one label (Textual binding groups), so that every
key fits on one line; the help screen lists each one.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

from app.console.actions import ACTIONS

GROUPS = {
    "alloc": Binding.Group("Alloc"),
    "reclaim": Binding.Group("Reclaim"),
    "host": Binding.Group("Host"),
    "migrate": Binding.Group("Migrate"),
    "faults": Binding.Group("Fail"),
}

# The clock bar shows these keys beside the clock; the footer keeps its room for actions.
CLOCK_BINDINGS: list[BindingType] = [
    Binding("space", "toggle_pause", "Run/Pause", show=False),
    Binding("full_stop,n", "step", "Step", key_display=".", show=False),
    Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False),
    Binding("minus", "slower", "Slower", key_display="-", show=False),
]

ACTION_BINDINGS: list[BindingType] = [
    Binding(a.key, f"operate('{a.name}')", a.label, group=GROUPS.get(a.group), show=a.footer)
    for a in ACTIONS
]

APP_BINDINGS: list[BindingType] = [
    Binding("c", "toggle_columns", "Columns", show=False),  # named in the VM filter line
    Binding("e,dollar_sign", "sla", "SLA", key_display="e"),
    Binding("question_mark,f1", "help", "Help", key_display="?"),
    Binding("ctrl+s", "save", "Save", show=False),  # in the help and the palette
    Binding("ctrl+o", "load", "Load", show=False),
    Binding("L", "levels", "Levels", show=False),  # campaign: the level select
    Binding("B", "briefing", "Briefing", show=False),  # the level's briefing again
    Binding("y", "fork", "Fork", show=False),  # what-if: branch the world (forking.py)
    Binding("Y", "compare", "Compare", show=False),  # the branches side by side
    Binding("a", "toggle_dialog_pause", "Pause in dialogs", show=False),
    Binding("ctrl+q", "confirm_quit", "Quit", priority=True),  # asks, saves, then quits
]

ALL_BINDINGS: list[BindingType] = CLOCK_BINDINGS + ACTION_BINDINGS + APP_BINDINGS

# Keys that end the session: the random key test leaves these out.
QUIT_KEYS = ("ctrl+q", "ctrl+c")
