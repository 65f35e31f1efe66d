"""A stacked bar with a legend and the numbers behind it (for the detail screens)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.text import Text
from textual.widgets import Static

from app.console.format import SEGMENTS, stacked_bar
from app.console.widgets import update_text
from engine.units import format_bytes

BarDrawer = Callable[[int], Text]  # width in cells -> the bar


class MemoryBreakdown(Static):
    DEFAULT_CSS = """
    MemoryBreakdown { height: auto; }
    """

    _shown: tuple[Sequence[tuple[str, int]], int, Sequence[tuple[str, str]],
                  BarDrawer | None, Mapping[str, str]] | None = None

    def show(self, parts: Sequence[tuple[str, int]], scale_bytes: int,
             extra: Sequence[tuple[str, str]] = (), draw: BarDrawer | None = None,
             notes: Mapping[str, str] | None = None) -> None:
        """parts: (kind, bytes) rows with their share of `scale_bytes`, drawn in the bar
        unless `draw` draws it; notes: a word after a row (e.g. 'on disk');
        extra: further (label, value) rows."""
        notes = notes or {}
        self._shown = (parts, scale_bytes, extra, draw, notes)
        width = max(10, min(self.size.width, 80)) if self.size.width else 40
        text = Text()
        if draw is not None:
            text.append_text(draw(width))
        else:
            text.append("▕")
            text.append_text(stacked_bar(parts, scale_bytes, width - 2))
            text.append("▏")
        text.append("\n")
        with_share = width >= 29  # "g kind      value     share%": the share goes first
        for kind, n in parts:
            glyph, style = SEGMENTS[kind]
            share = n / scale_bytes * 100 if scale_bytes else 0.0
            text.append(f"{glyph} ", style=style)
            text.append(f"{kind:<10}{format_bytes(n):>10}")
            if with_share:
                text.append(f" {share:5.1f}%")
            if kind in notes and 30 + len(notes[kind]) <= width:
                text.append(f" {notes[kind]}", style="dim")
            text.append("\n")
        label_w = 14 if width >= 26 else 10
        for label, value in extra:
            text.append(f"  {label:<{label_w}.{label_w}}{value:>10}\n")
        text.rstrip()
        update_text(self, text)

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)
