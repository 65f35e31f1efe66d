"""While the world builds: the scenario's name and a bar following the VMs powered on.

A data center of a thousand VMs takes seconds to build. The App builds it in a thread
worker (app.py), so this screen paints at once and its bar moves; the main screen
replaces it when the world is ready.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ProgressBar, Static


class LoadingScreen(Screen[None]):
    DEFAULT_CSS = """
    LoadingScreen { align: center middle; }
    LoadingScreen > Vertical {
        width: 64; max-width: 100%; height: auto; border: round $primary; padding: 1 2;
    }
    LoadingScreen #loading-title { text-style: bold; }
    LoadingScreen ProgressBar { margin: 1 0 0 0; }
    LoadingScreen #loading-count, LoadingScreen #loading-hint { color: $text-muted; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.done = 0
        self.total: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Building {self.title_text}", id="loading-title", markup=False)
            yield ProgressBar(total=None, show_eta=False)
            yield Static("laying out the VMs' memory…", id="loading-count")
            yield Static("ctrl+q quits", id="loading-hint")

    def advance(self, done: int, total: int) -> None:
        """`done` of `total` VMs powered on (the engine's build progress)."""
        self.done, self.total = done, total
        bars = self.query(ProgressBar)
        if not bars:  # not composed yet: on_mount shows it
            return
        bars.first().update(total=max(total, 1), progress=done)
        self.query_one("#loading-count", Static).update(
            f"{done:,} of {total:,} VMs powered on" if done < total else
            f"{total:,} VMs powered on; opening the console…")

    def on_mount(self) -> None:
        if self.total is not None:  # progress that came before the screen was up
            self.advance(self.done, self.total)
