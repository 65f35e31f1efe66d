"""A stacked bar with a legend and the numbers behind it (for the detail screens)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from app.console.format import SEGMENTS, stacked_bar
from app.console.widgets import update_text
from engine.units import format_bytes


class MemoryBreakdown(Static):
    DEFAULT_CSS = """
    MemoryBreakdown { height: auto; }
    """

    _shown: tuple[Sequence[tuple[str, int]], int, Sequence[tuple[str, str]]] | None = None

    def show(self, parts: Sequence[tuple[str, int]], scale_bytes: int,
             extra: Sequence[tuple[str, str]] = ()) -> None:
        """parts: (kind, bytes) drawn in the bar; extra: further (label, value) rows."""
        self._shown = (parts, scale_bytes, extra)
        width = max(10, min(self.size.width - 2, 80)) if self.size.width else 40
        text = Text()
        text.append("▕")
        text.append_text(stacked_bar(parts, scale_bytes, width))
        text.append("▏\n")
        for kind, n in parts:
            glyph, style = SEGMENTS[kind]
            share = n / scale_bytes * 100 if scale_bytes else 0.0
            text.append(f"{glyph} ", style=style)
            text.append(f"{kind:<14}{format_bytes(n):>10}  {share:5.1f}%\n")
        for label, value in extra:
            text.append(f"  {label:<14}{value:>10}\n")
        text.rstrip()
        update_text(self, text)

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)
