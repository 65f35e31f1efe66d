"""Text helpers shared by the console's widgets: clock, money, commands, memory bars.

Everything here is a pure function of its arguments, so screens render the same text for
the same snapshot (the snapshot tests rely on that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.text import Text

from engine.commands import Command, PlaceVM, SetMax, SetMin, SetShares, StartVM, StopVM
from engine.units import format_bytes

# One glyph per kind of memory, so the bars read without colour.
SEGMENTS: dict[str, tuple[str, str]] = {
    "private": ("█", "dodger_blue2"),
    "shared": ("▓", "medium_purple2"),
    "balloon": ("▒", "dark_orange"),
    "swapped": ("░", "red3"),
    "untouched": ("·", "grey50"),
    "free": ("·", "green4"),
}
STATE_STYLES = {"high": "green", "soft": "yellow", "hard": "dark_orange", "low": "bold red"}


def clock_text(seconds: float, tick_s: float = 1.0) -> str:
    """Simulated time as h:mm:ss (with tenths when a tick is shorter than a second)."""
    whole = int(seconds)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    text = f"{h}:{m:02d}:{s:02d}"
    if tick_s < 1.0:
        text += f".{int(round((seconds - whole) * 10)) % 10}"
    return text


def money(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.4f}"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def metric_text(metric: str, value: float) -> str:
    """An objective's metric value in its own unit."""
    if metric in ("profit", "revenue"):
        return money(value)
    if metric == "stalled_fraction":
        return percent(value)
    if metric == "running_vms":
        return f"{value:g}"
    return f"{value:.4g}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "scenario"


def describe_command(cmd: Command) -> str:
    """A command in operator words, e.g. 'start web3 on h2'."""
    if isinstance(cmd, StartVM):
        return f"start {cmd.vm} on {cmd.host}"
    if isinstance(cmd, PlaceVM):
        return f"place new VM {cmd.vm.id} on {cmd.vm.host}"
    if isinstance(cmd, StopVM):
        return f"stop {cmd.vm}"
    if isinstance(cmd, SetShares):
        return f"set shares of {cmd.vm} to {cmd.shares}"
    if isinstance(cmd, SetMin):
        return f"set min of {cmd.vm} to {format_bytes(cmd.min)}"
    if isinstance(cmd, SetMax):
        return f"set max of {cmd.vm} to {format_bytes(cmd.max)}"
    return str(getattr(cmd, "kind", cmd))


def stacked_bar(parts: Sequence[tuple[str, int]], scale_bytes: int, width: int,
                pad: bool = True) -> Text:
    """A bar of `width` cells for `scale_bytes`; each (kind, bytes) part gets its glyph.

    Parts beyond the scale are cut off; rounding gives leftover cells to the largest parts
    so the bar is always exactly `width` cells long when the parts fill the scale.
    """
    text = Text()
    if width <= 0 or scale_bytes <= 0:
        return text
    exact = [(kind, max(n, 0) * width / scale_bytes) for kind, n in parts]
    cells = [int(x) for _, x in exact]
    total = min(sum(n for _, n in parts), scale_bytes) * width // scale_bytes
    order = sorted(range(len(exact)), key=lambda i: exact[i][1] - cells[i], reverse=True)
    for i in order:
        if sum(cells) >= total:
            break
        cells[i] += 1
    used = 0
    for (kind, _), n in zip(exact, cells, strict=True):
        n = min(n, width - used)
        if n > 0:
            glyph, style = SEGMENTS[kind]
            text.append(glyph * n, style=style)
            used += n
    if pad and used < width:  # parts that do not fill the scale leave a blank
        text.append(" " * (width - used))
    return text


def legend(kinds: Sequence[str]) -> Text:
    text = Text()
    for kind in kinds:
        glyph, style = SEGMENTS[kind]
        text.append(glyph * 2, style=style)
        text.append(f" {kind}  ")
    text.rstrip()
    return text


def progress_bar(fraction: float, width: int = 10) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(round(fraction * width))
    return "█" * full + "░" * (width - full)
