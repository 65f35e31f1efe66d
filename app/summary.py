"""What `overcommit run` prints: the event log, the end-of-run summary (hosts, money,
objectives) and, when the scenario migrated, a migration summary in the manner of QEMU's
`info migrate` (status, total time, downtime, transferred, passes).

Every string goes through engine/text.py on its way out: ids and messages are the
engine's, but names and descriptions come from scenario files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import Event, Simulation
from engine.text import printable
from engine.units import format_bytes, format_rate, format_seconds

LOGGED_EVENTS = frozenset({"vm_started", "vm_stopped", "command_rejected", "host_state",
                           "memory_stall", "objective"})
LOG_LIMIT = 40
HOST_ROWS = 40  # a summary of a 100-host run stays readable; the report has every host
# QEMU's names for a migration's status (query-migrate).
QEMU_STATUS = {"reserving": "setup", "precopy": "active", "stopcopy": "device",
               "postcopy": "postcopy-active", "done": "completed", "failed": "failed",
               "cancelled": "cancelled"}


def say(console: Console, text: str) -> None:
    # Plain lines: ids and field paths like vm[2].host are not markup, and long lines
    # stay whole so logs can be grepped. No control character reaches the terminal.
    console.print(printable(text), markup=False, soft_wrap=True)


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def money(amount: float) -> str:
    return f"-${-amount:,.4f}" if amount < 0 else f"${amount:,.4f}"


def clock(seconds: float) -> str:
    """Simulated time as H:MM:SS (tenths when a tick is shorter than a second)."""
    hours, rest = divmod(round(seconds, 1), 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:02.0f}" if float(secs).is_integer() else f"{secs:04.1f}"
    return f"{int(hours)}:{int(minutes):02d}:{secs_text}"


class EventLog:
    """Prints the events worth a line, up to a limit, and counts the rest."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.total = 0
        self.shown = 0
        self.hidden = 0

    def add(self, events: Sequence[Event]) -> None:
        self.total += len(events)
        if not self.enabled:
            return
        for event in events:
            if event.kind not in LOGGED_EVENTS:
                continue
            if self.shown >= LOG_LIMIT:
                self.hidden += 1
                continue
            self.shown += 1
            say(self.console, f"{clock(event.time_s)}  {event.kind:<16} {event.message}")

    def close(self) -> None:
        if self.hidden:
            say(self.console, f"... {self.hidden} more events")



def print_summary(console: Console, sim: Simulation, ticks: int, wall_s: float,
                  n_events: int) -> None:
    snap = sim.snapshot()
    say(console, f"{snap.scenario}: tick {snap.tick}")
    table = Table()
    for name in ("host", "state", "memory", "free", "VMs", "overcommit", "NIC use"):
        table.add_column(name, justify="left" if name in ("host", "state") else "right")
    for h in snap.hosts[:HOST_ROWS] if len(snap.hosts) > HOST_ROWS + 10 else snap.hosts:
        free = _share(h.free_bytes, h.memory_bytes)
        nic = _share(h.nic_used_bytes_per_s, h.nic_capacity_bytes_per_s)
        table.add_row(h.id, h.state if h.up else "down", format_bytes(h.memory_bytes),
                      f"{format_bytes(h.free_bytes)} ({free})", str(h.n_vms),
                      f"{h.overcommit_ratio:.2f}x",
                      f"{format_rate(h.nic_used_bytes_per_s)} ({nic})")
    if len(snap.hosts) > HOST_ROWS + 10:
        table.caption = f"{len(snap.hosts) - HOST_ROWS} more hosts; --report FILE has them all"
    console.print(table)
    rate = f"{ticks / wall_s:,.1f}" if wall_s > 0 else "-"
    lines = [
        f"sim time {clock(snap.time_s)}: {ticks} ticks in {wall_s:.2f}s "
        f"({rate} ticks/s), {n_events} events",
        f"revenue {money(snap.revenue)}  costs {money(snap.costs)}  "
        f"penalties {money(snap.penalties)}  profit {money(snap.profit)}",
    ]
    for obj in snap.objectives:
        lines.append(f"objective {obj['status']:<7} {obj['description']} "
                     f"(now {obj['value']:.4g})")
    for line in lines:
        say(console, line)




def print_migrations(console: Console, migrations: Sequence[dict[str, Any]]) -> None:
    """One line per migration, with QEMU `info migrate`'s fields (status, total time,
    downtime, transferred, passes); nothing when there was none."""
    if not migrations:
        return
    say(console, f"migrations ({len(migrations)}, as `info migrate` shows them):")
    for m in migrations[:LOG_LIMIT]:
        status = QEMU_STATUS.get(m["status"], m["status"])
        if m.get("reason") and m["status"] in ("failed", "cancelled"):
            status += f" ({m['reason']})"
        say(console, f"  {m['vm']} {m['src']} -> {m['dst']} {m['mode']}/{m['algorithm']}: "
                     f"{status}, total time {format_seconds(m['total_time_s'])}, downtime "
                     f"{format_seconds(m['downtime_s'])}, transferred "
                     f"{format_bytes(m['transferred_bytes'])}, passes {_passes(m)}"
                     + _swap_reads(m))
    if len(migrations) > LOG_LIMIT:
        say(console, f"  ... {len(migrations) - LOG_LIMIT} more (--report FILE has them all)")


def _swap_reads(m: dict[str, Any]) -> str:
    """The pages read back from the source's swap first, if any, and the sender's wait."""
    if not m.get("swap_read_pages"):
        return ""
    return (f", {m['swap_read_pages']:,} pages read back from swap "
            f"({format_seconds(m['swap_read_s'])} waited)")


def _passes(m: dict[str, Any]) -> int:
    # Pre-copy rounds: the last round's index (a long migration keeps only its last
    # rounds, engine/migration/model.py MAX_ROUNDS_KEPT).
    return int(m["rounds"][-1]["index"]) if m["rounds"] else 0


def objectives_failed(sim: Simulation) -> bool:
    return any(obj["status"] == "failed" for obj in sim.snapshot().objectives)
