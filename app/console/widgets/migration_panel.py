"""Live migrations: status, progress, rate, QEMU-style counters, the rounds of a pre-copy,
post-copy faults, and the VM's writable working set (WWS) as bars over its windows.

Takes the engine's migration reports (live.LiveData.migrations); the overview shows them
compactly (the focused one with its last rounds), a VM's detail screen its own in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text

from app.console.format import clock_text, duration, progress_bar, rate_text
from app.console.widgets import Panel, update_text
from engine.units import format_bytes, format_rate

STATUS = {
    "precopy": ("PRE-COPY", "bold cyan"),
    "stopcopy": ("STOP-AND-COPY", "bold yellow"),
    "postcopy": ("POST-COPY", "bold magenta"),
    "done": ("✔ DONE", "bold green"),
    "failed": ("✘ FAILED", "bold red"),
    "cancelled": ("CANCELLED", "yellow"),
}
BARS = " ▁▂▃▄▅▆▇█"
WINDOW_LABELS = {"60s": "1m", "120s": "2m", "300s": "5m", "600s": "10m"}
ROUNDS_FULL = 6  # rounds listed on the VM's detail screen (the latest ones)
ROUNDS_COMPACT = 3


def _seconds(s: float) -> str:
    return "—" if s <= 0 else duration(s)


def head_line(m: Mapping[str, Any]) -> Text:
    """'web1 h1 → h2  PRE-COPY round 2 · precopy/xen · 0:01:27'"""
    label, style = STATUS.get(m["status"], (m["status"], "bold"))
    text = Text()
    text.append(f"{m['vm']} ", style="bold")
    text.append(f"{m['src']} → {m['dst']}  ")
    text.append(label, style=style)
    if m["status"] == "precopy":
        text.append(f" round {max(len(m['rounds']), 1)}", style=style)
    text.append(f" · {m['mode']}/{m['algorithm']} · {clock_text(m['total_time_s'])}")
    return text


def progress_line(m: Mapping[str, Any], width: int) -> Text:
    """'237MiB sent, 786MiB left ▕███░░░░░░░▏ 23% · avg 99.6 Mbit/s · cap 100Mbit/s'"""
    sent, left = m["transferred_bytes"], m["remaining_bytes"]
    if m["status"] in ("failed", "cancelled"):
        return Text(f"{format_bytes(sent)} sent before it stopped · avg {m['mbps']:.1f} Mbit/s")
    done = m["status"] == "done"
    fraction = 1.0 if done else sent / (sent + left) if sent + left else 0.0
    head = f"{format_bytes(sent)} sent, {format_bytes(left)} left "
    tail = f" {fraction * 100:3.0f}% · avg {m['mbps']:.1f} Mbit/s"
    rounds = m["rounds"]
    if rounds and m["status"] == "precopy":
        tail += f" · cap {format_rate(rounds[-1]['rate_bytes_per_s'])}"
    text = Text(head)
    bar = max(6, min(24, width - len(head) - len(tail) - 1))
    text.append(progress_bar(fraction, bar), style="green" if done else "cyan")
    text.append(tail)
    return text


def state_line(m: Mapping[str, Any]) -> Text:
    """What matters in this phase: dirtying and downtime (pre-copy), faults (post-copy),
    the outcome (ended)."""
    text = Text()
    status = m["status"]
    if status in ("failed", "cancelled"):
        text.append(m["reason"] or status, style="red" if status == "failed" else "yellow")
        text.append(f"; {format_bytes(m['transferred_bytes'])} sent for nothing")
        return text
    went_remote = m["mode"] != "precopy" or m["status"] == "postcopy" or bool(
        m["network_faults"] or m["pushed_pages"])  # post-copy, hybrid, or switched
    if m["rounds"] and not went_remote:
        dirty = f"{rate_text(m['dirty_pages_rate'])} pages/s" if m["dirty_sync_count"] \
            else "after round 1"
        text.append(f"dirty {dirty} · syncs {m['dirty_sync_count']} · traps "
                    f"{m['dirty_log_traps']:,} · throttle ")
        text.append(f"{m['cpu_throttle_percentage']}%",
                    style="bold red" if m["cpu_throttle_percentage"] else "")
        if m["algorithm"] == "qemu":
            text.append(f" · expected downtime {_seconds(m['expected_downtime_s'])}")
    if status == "done" or m["resume_time_s"] is not None:
        if text:
            text.append("\n")
        text.append("downtime ", style="bold")
        text.append(duration(m["downtime_s"]), style="bold yellow")
        if m["stop_copy_pages"]:
            text.append(f" ({m['stop_copy_pages']:,} pages in stop-and-copy)")
    if went_remote:
        text.append(" · network faults ")
        text.append(f"{m['network_faults']:,}", style="bold magenta")
        text.append(f" · minor faults {m['minor_faults']:,} · pushed "
                    f"{m['pushed_pages']:,} pages")
    if m.get("swap_read_pages"):
        text.append("\n" if text else "")
        text.append(f"read back from swap {m['swap_read_pages']:,} pages, ")
        text.append(duration(m["swap_read_s"]), style="bold yellow")
        text.append(" of the sender's time")
    xbzrle = m.get("xbzrle") or {}
    if xbzrle.get("cache_size_bytes"):
        text.append(f"\nXBZRLE {xbzrle['cache_hits']:,} hits, {xbzrle['cache_misses']:,} "
                    f"misses, {format_bytes(xbzrle['bytes'])} as deltas")
    return text


def rounds_text(m: Mapping[str, Any], last: int) -> Text:
    rounds: Sequence[Mapping[str, Any]] = m["rounds"]
    text = Text(f"{'#':>3} {'duration':>8} {'to send':>8} {'sent':>8} {'skipped':>7} "
                f"{'dirtied':>7} {'rate':>10}", style="bold")
    if len(rounds) > last:
        text.append(f"\n{'…':>3} {len(rounds) - last} earlier", style="dim")
    now = m["start_s"] + m["total_time_s"]
    for i, r in enumerate(rounds[-last:]):
        running = m["status"] == "precopy" and i == len(rounds[-last:]) - 1
        duration = f"{now - r['start_s']:.2f}s…" if running else \
            f"{r['duration_s']:.2f}s" if r["duration_s"] > 0 else "cut"  # switched over
        text.append(f"\n{r['index']:>3} {duration:>8} {r['pages_to_send']:>8} "
                    f"{r['pages_sent']:>8} {r['pages_skipped']:>7} {r['pages_dirtied']:>7} "
                    f"{format_rate(r['rate_bytes_per_s']):>10}",
                    style="cyan" if running else "")
    return text


def wws_text(wws: Mapping[str, int], compact: bool = False) -> Text:
    """Bars of distinct pages written per window (1s ... 600s), on one scale."""
    text = Text()
    if not wws:
        return text
    top = max(max(wws.values()), 1)
    text.append("WWS ", style="bold")
    labels = Text("    ")
    for window, pages in wws.items():
        glyph = BARS[min(8, max(1, int(round(pages / top * 8))))] if pages else " "
        name = WINDOW_LABELS.get(window, window)
        cell = max(len(name), 3) + 1
        text.append((glyph * (cell - 1)).ljust(cell), style="dark_orange")
        labels.append(name.ljust(cell), style="dim")
    items = list(wws.items())
    picks = [items[0], items[min(3, len(items) - 1)], items[-1]]
    text.append(" pages: " + " · ".join(f"{WINDOW_LABELS.get(w, w)} {rate_text(p)}"
                                         for w, p in picks))
    if compact:
        return text
    return Text("\n").join([text, labels])


def migration_text(m: Mapping[str, Any], wws: Mapping[str, int] | None, width: int,
                   rounds: int) -> Text:
    parts = [head_line(m), progress_line(m, width)]
    state = state_line(m)
    if state:
        parts.append(state)
    if rounds and m["rounds"] and m["mode"] != "postcopy":
        parts.append(rounds_text(m, rounds))
    if wws:
        parts.append(wws_text(wws, compact=rounds <= ROUNDS_COMPACT))
    return Text("\n").join(parts)


def focus_order(migrations: Sequence[Mapping[str, Any]], focus_vm: str | None
                ) -> list[Mapping[str, Any]]:
    """The focused VM's migration first, then the active ones, then the latest ended."""
    active = [m for m in migrations if m["status"] in ("precopy", "stopcopy", "postcopy")]
    ended = [m for m in migrations if m not in active]
    order = [*active, *reversed(ended)]
    order.sort(key=lambda m: m["vm"] != focus_vm)  # stable: keeps the rest in order
    return order


class MigrationPanel(Panel):
    """show(): one VM's migration in full (`compact=False`), or the overview's summary:
    the focused one with its last rounds, then a few more (`brief`: two lines each)."""

    DEFAULT_CSS = """
    MigrationPanel { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    MAX_COMPACT = 3  # migrations summarised on the overview

    _shown: tuple[tuple[Mapping[str, Any], ...], Mapping[str, Mapping[str, int]],
                  str | None, bool, bool] | None = None

    def show(self, migrations: Sequence[Mapping[str, Any]],
             wws: Mapping[str, Mapping[str, int]], focus_vm: str | None = None,
             compact: bool = True, brief: bool = False) -> None:
        self._shown = (tuple(migrations), wws, focus_vm, compact, brief)
        self.rerender()

    def rerender(self) -> None:
        if self._shown is None:
            return
        migrations, wws, focus_vm, compact, brief = self._shown
        width = self.panel_width()
        order = focus_order(migrations, focus_vm)
        if not order:
            update_text(self, Text("No migration.", style="dim"))
            return
        if not compact:
            m = order[0]
            update_text(self, migration_text(m, wws.get(m["vm"]), width, ROUNDS_FULL))
            return
        first = 0 if brief else 1
        blocks = [] if brief else [
            migration_text(order[0], wws.get(order[0]["vm"]), width, ROUNDS_COMPACT)]
        for m in order[first:self.MAX_COMPACT]:
            blocks.append(Text("\n").join([head_line(m), progress_line(m, width)]))
        more = len(order) - self.MAX_COMPACT
        if more > 0:
            blocks.append(Text(f"… and {more} more (open a VM for its migration)",
                               style="dim"))
        update_text(self, Text("\n").join(blocks))
