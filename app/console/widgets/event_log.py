"""The event log: engine events, timeline announcements and the operator's own actions."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from app.console.format import clock_text
from engine import Event

KIND_STYLES = {
    "vm_started": "green",
    "vm_stopped": "yellow",
    "memory_stall": "red",
    "host_state": "dark_orange",
    "command_rejected": "bold red",
    "command_applied": "cyan",
    "objective": "bold magenta",
    "timeline": "bold blue",
    "operator": "bold cyan",
    "rejected": "bold red",
    "saved": "bold green",
    "migration_started": "cyan",
    "migration_switched": "cyan",
    "migration_finished": "bold green",
    "migration_failed": "bold red",
    "migration_cancelled": "yellow",
    "vm_lost": "bold red",
    "host_down": "bold red",
    "host_up": "green",
    "sla_breach": "red",
}


LABELS = {
    "vm_started": "started",
    "vm_stopped": "stopped",
    "memory_stall": "STALL",
    "host_state": "host",
    "command_rejected": "REJECTED",
    "command_applied": "applied",
    "operator": "you",
    "rejected": "REFUSED",
    "migration_started": "migration",
    "migration_switched": "post-copy",
    "migration_finished": "migrated",
    "migration_failed": "MIG FAIL",
    "migration_cancelled": "mig stop",
    "vm_lost": "VM LOST",
    "host_down": "HOST DOWN",
    "host_up": "host up",
    "sla_breach": "SLA",
}


def event_line(time_s: float, tick_s: float, kind: str, message: str) -> Text:
    text = Text()
    text.append(clock_text(time_s, tick_s), style="dim")
    text.append(f" {LABELS.get(kind, kind)[:9]:<9} ", style=KIND_STYLES.get(kind, ""))
    text.append(message)
    return text


class EventLog(RichLog):
    DEFAULT_CSS = """
    EventLog { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=2000, wrap=True, min_width=20, markup=False,
                         auto_scroll=True)

    def show_events(self, events: Iterable[Event], tick_s: float) -> None:
        for ev in events:
            self.write(event_line(ev.time_s, tick_s, ev.kind, ev.message))

    def note(self, time_s: float, tick_s: float, kind: str, message: str) -> None:
        self.write(event_line(time_s, tick_s, kind, message))
