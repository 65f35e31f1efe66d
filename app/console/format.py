"""Text helpers shared by the console's widgets: clock, money, commands, memory bars.

Everything here is a pure function of its arguments, so screens render the same text for
the same snapshot (the snapshot tests rely on that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text

from engine.commands import (
    CancelMigration,
    Command,
    Migrate,
    PlaceVM,
    SetBalloonDriver,
    SetBalloonTarget,
    SetHostUp,
    SetIdleTax,
    SetLink,
    SetMax,
    SetMin,
    SetSalting,
    SetShares,
    SetSharing,
    SetSwapTarget,
    SetWorkload,
    StartVM,
    StopVM,
    SwitchToPostcopy,
)
from engine.units import format_bytes, format_rate

# One glyph per kind of memory, so the bars read without colour.
SEGMENTS: dict[str, tuple[str, str]] = {
    "private": ("█", "dodger_blue2"),
    "shared": ("▓", "medium_purple2"),
    "balloon": ("▒", "dark_orange"),
    "swapped": ("░", "red3"),
    "untouched": ("·", "grey50"),
    "free": ("·", "green4"),
    "promised": ("╌", "grey42"),  # promised to VMs beyond the host's RAM
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
    """Dollars and cents ($1,234.56; $0.42); below a cent, a tenth of a cent ($0.004), so
    that a small non-zero amount does not read as nothing."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 10_000:
        return f"{sign}${amount:,.0f}"
    if amount >= 0.01 or amount == 0:
        return f"{sign}${amount:,.2f}"
    return f"{sign}${amount:.3f}" if amount >= 0.0005 else "$0.000"


def per_hour(value: float) -> str:
    return f"{money(value)}/h"


def duration(seconds: float) -> str:
    """A duration as people say it: 350 ms, 4.5 s, 1 min 26 s, 2 h 05 min."""
    s = abs(seconds)
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 59.5:
        return f"{s:.3g} s"
    if s < 3600 - 0.5:
        minutes, rest = divmod(round(s), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(round(s / 60), 60)
    return f"{hours} h {rest:02d} min"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def metric_text(metric: str, value: float) -> str:
    """An objective's metric value in its own unit."""
    if metric in ("profit", "revenue", "penalties"):
        return money(value)
    if metric == "stalled_fraction":
        return percent(value)
    if metric == "service_level":  # SLAs live in the last nines
        return f"{value * 100:.2f}%"
    if metric in ("running_vms", "vms_on_host", "lost_vms", "sla_breaches", "swapins"):
        return f"{value:,.0f}"
    if metric == "downtime_s":
        return duration(value)
    return f"{value:.4g}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "scenario"


def describe_command(cmd: Command) -> str:
    """A command in operator words, e.g. 'start web3 on h2'."""
    describe = _DESCRIBE.get(type(cmd))
    return describe(cmd) if describe is not None else str(getattr(cmd, "kind", cmd))


def _target(cmd: SetBalloonTarget | SetSwapTarget) -> str:
    what = "balloon" if isinstance(cmd, SetBalloonTarget) else "swap"
    to = "the policy's" if cmd.target is None else format_bytes(cmd.target)
    return f"set {what} target of {cmd.vm} to {to}"


_DESCRIBE: dict[type, Callable[[Any], str]] = {
    StartVM: lambda c: f"start {c.vm} on {c.host}",
    PlaceVM: lambda c: f"place new VM {c.vm.id} on {c.vm.host}",
    StopVM: lambda c: f"stop {c.vm}",
    SetShares: lambda c: f"set shares of {c.vm} to {c.shares}",
    SetMin: lambda c: f"set min of {c.vm} to {format_bytes(c.min)}",
    SetMax: lambda c: f"set max of {c.vm} to {format_bytes(c.max)}",
    SetBalloonTarget: _target,
    SetSwapTarget: _target,
    SetBalloonDriver: lambda c: (f"{'enable' if c.enabled else 'disable'} the balloon "
                                 f"driver of {c.vm}"),
    SetIdleTax: lambda c: f"set the idle memory tax of {c.host or 'every host'} to {c.tax:.0%}",
    SetSharing: lambda c: f"switch page sharing on {c.host} to {c.mode}",
    SetSalting: lambda c: f"set page-sharing salting to level {c.level}",
    SetWorkload: lambda c: f"set the load of {c.vm}: {workload_changes(c)}",
    Migrate: lambda c: f"migrate {c.vm} to {c.to} ({migrate_options(c)})",
    CancelMigration: lambda c: f"cancel the migration of {c.vm}",
    SwitchToPostcopy: lambda c: f"switch the migration of {c.vm} to post-copy",
    SetHostUp: lambda c: f"bring host {c.host} back up" if c.up else f"fail host {c.host}",
    SetLink: lambda c: f"take link {c.a}–{c.b} {'up' if c.up else 'down'}",
}


def migrate_options(cmd: Migrate) -> str:
    parts: list[str] = [cmd.mode, cmd.algorithm]
    if cmd.max_rate is not None:
        parts.append(f"max {format_rate(cmd.max_rate)}")
    if cmd.downtime_limit is not None and cmd.algorithm == "qemu":
        parts.append(f"downtime ≤ {duration(cmd.downtime_limit)}")
    parts += [name for name, on in (("auto-converge", cmd.auto_converge),
                                    ("XBZRLE", cmd.xbzrle), ("stun", cmd.stun),
                                    ("PML", cmd.pml), ("free-page hints", cmd.free_page_hints))
              if on]
    if cmd.mode != "precopy" and not cmd.prepaging:
        parts.append("no pre-paging")
    if cmd.max_postcopy_rate:
        parts.append(f"post-copy max {format_rate(cmd.max_postcopy_rate)}")
    if cmd.postcopy_after is not None:
        parts.append(f"post-copy after {duration(cmd.postcopy_after)}")
    if cmd.postcopy_after_passes is not None:
        parts.append(f"post-copy after {cmd.postcopy_after_passes} passes")
    return ", ".join(parts)


def workload_changes(cmd: SetWorkload) -> str:
    parts = []
    if cmd.reads_per_s is not None:
        parts.append(f"{cmd.reads_per_s:g} reads/s")
    if cmd.writes_per_s is not None:
        parts.append(f"{cmd.writes_per_s:g} writes/s")
    if cmd.working_set is not None:
        parts.append(f"working set {format_bytes(cmd.working_set)}")
    if cmd.hot_set is not None:
        parts.append(f"hot set {format_bytes(cmd.hot_set)}")
    if cmd.file_reads_per_s is not None:
        parts.append(f"{cmd.file_reads_per_s:g} file reads/s")
    return ", ".join(parts) or "unchanged"


def short_bytes(n_bytes: float) -> str:
    """A size in at most five cells for dense tables: 0, 512K, 12.3M, 1.05G."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if abs(n_bytes) >= factor:
            return f"{n_bytes / factor:.3g}{unit}"
    return f"{int(n_bytes)}"


def rate_text(per_s: float) -> str:
    """A per-second count in few cells: 0, 12, 1.2k, 34k, 1.5M."""
    if per_s < 1000:
        return f"{per_s:.0f}" if per_s >= 10 or per_s == int(per_s) else f"{per_s:.1f}"
    if per_s < 1e6:
        return f"{per_s / 1e3:.1f}k" if per_s < 1e4 else f"{per_s / 1e3:.0f}k"
    return f"{per_s / 1e6:.1f}M"


def mini_bar(fraction: float, width: int = 10) -> str:
    """A bar of eighths, for fractions next to each other (active estimate vs true)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return text.ljust(width)


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


def legend(kinds: Sequence[str], glyphs: int = 2) -> Text:
    text = Text()
    for kind in kinds:
        glyph, style = SEGMENTS[kind]
        text.append(glyph * glyphs, style=style)
        text.append(f" {kind}  " if glyphs > 1 else f"{kind} ")
    text.rstrip()
    return text


def progress_bar(fraction: float, width: int = 10) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(round(fraction * width))
    return "█" * full + "░" * (width - full)
