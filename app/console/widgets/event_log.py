"""The event log: engine events, timeline announcements and the operator's own actions.

Two things keep it readable on a big world. Repeated events of one subject collapse into
one line with a count: a host whose memory state flaps between high and soft, a VM that
keeps stalling. The line moves to the bottom with the latest message ("… · 12× since
0:01:20") while the repeats come within FLAP_WINDOW_S of each other. And `/` searches:
the log shows only the lines that contain every word typed (LogPane holds the field).

Entries are wrapped to the width once and kept as strips, re-wrapped when the width
changes, so a long log scrolls and re-filters without rendering it again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

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
    "engine_error": "bold white on red",
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
    "engine_error": "ERROR",
}

COLLAPSE = {"host_state": "host", "memory_stall": "vm"}  # kind -> the subject's field
FLAP_WINDOW_S = 120.0  # repeats further apart than this start a new line
MAX_ENTRIES = 2000


def event_line(time_s: float, tick_s: float, kind: str, message: str) -> Text:
    text = Text()
    text.append(clock_text(time_s, tick_s), style="dim")
    text.append(f" {LABELS.get(kind, kind)[:9]:<9} ", style=KIND_STYLES.get(kind, ""))
    text.append(message)
    return text


@dataclass(eq=False)
class Entry:
    text: Text
    key: tuple[str, str] | None = None  # (kind, subject) of a collapsible event
    count: int = 1
    first_s: float = 0.0
    last_s: float = 0.0
    plain: str = ""
    strips: list[Strip] = field(default_factory=list)
    width: int = -1


class EventLog(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    EventLog { height: 1fr; padding: 0 1; }
    """
    BINDINGS = [Binding("slash", "search", "Search the log", key_display="/", show=False)]

    class SearchRequested(Message):
        """`/` in the log: LogPane opens its search field."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[Entry] = deque()
        self._open: dict[tuple[str, str], Entry] = {}
        self._lines: list[Strip] = []
        self._query = ""
        self.shown_count = 0  # entries that match the search

    # -- writing ------------------------------------------------------------------------
    def show_events(self, events: Iterable[Event], tick_s: float) -> None:
        at_end = self._at_end()
        for ev in events:
            self._add(ev.time_s, tick_s, ev.kind, ev.message,
                      getattr(ev, COLLAPSE[ev.kind]) if ev.kind in COLLAPSE else None)
        self._relayout(at_end)

    def write(self, line: Text) -> None:
        at_end = self._at_end()
        self._append(Entry(line, plain=line.plain.lower()))
        self._relayout(at_end)

    def note(self, time_s: float, tick_s: float, kind: str, message: str) -> None:
        self.write(event_line(time_s, tick_s, kind, message))

    def _add(self, time_s: float, tick_s: float, kind: str, message: str,
             subject: str | None) -> None:
        key = (kind, subject) if subject else None
        entry = self._open.get(key) if key else None
        if entry is not None and time_s - entry.last_s <= FLAP_WINDOW_S:
            self.entries.remove(entry)  # it moves to the bottom with the latest message
            entry.count += 1
            entry.last_s = time_s
            text = event_line(time_s, tick_s, kind, message)
            text.append(f" · {entry.count}× since {clock_text(entry.first_s, tick_s)}",
                        style="bold")
            entry.text, entry.plain, entry.width = text, text.plain.lower(), -1
            self.entries.append(entry)
            return
        text = event_line(time_s, tick_s, kind, message)
        entry = Entry(text, key, 1, time_s, time_s, text.plain.lower())
        if key:
            self._open[key] = entry
        self._append(entry)

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        while len(self.entries) > MAX_ENTRIES:
            old = self.entries.popleft()
            if old.key and self._open.get(old.key) is old:
                del self._open[old.key]

    def clear(self) -> None:
        self.entries.clear()
        self._open.clear()
        self._relayout(True)

    # -- searching ----------------------------------------------------------------------
    def action_search(self) -> None:
        self.post_message(self.SearchRequested())

    def set_query(self, query: str) -> None:
        self._query = query.strip().lower()
        self._relayout(True)

    @property
    def query_text(self) -> str:
        return self._query

    def matches(self, entry: Entry) -> bool:
        return all(word in entry.plain for word in self._query.split())

    @property
    def lines(self) -> list[Strip]:
        """The wrapped lines shown (as a RichLog's `lines`)."""
        return self._lines

    def lines_text(self) -> list[str]:
        """The entries shown (for tests and the search count), as plain text."""
        return [e.text.plain for e in self.entries if self.matches(e)]

    # -- layout and rendering ---------------------------------------------------------------
    def _width(self) -> int:
        return max(self.scrollable_content_region.width, 20)

    def _at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def _strips(self, entry: Entry, width: int) -> list[Strip]:
        if entry.width != width:
            console = self.app.console
            options = console.options.update_width(width)
            lines = Segment.split_lines(console.render(entry.text, options))
            entry.strips = [Strip(line).adjust_cell_length(width) for line in lines]
            entry.width = width
        return entry.strips

    def _relayout(self, scroll_to_end: bool) -> None:
        if not self.is_mounted:
            return
        width = self._width()
        shown = [e for e in self.entries if self.matches(e)] if self._query \
            else list(self.entries)
        self.shown_count = len(shown)
        self._lines = [strip for e in shown for strip in self._strips(e, width)]
        size = Size(width, len(self._lines))
        update_scrollbars = getattr(self, "_scroll_update", None)
        if size != self.virtual_size and update_scrollbars is not None:
            # The log's own size is its container's (height 1fr): more lines change only
            # its scrollbars, not the screen's layout, which setting virtual_size redoes
            # (a whole-screen repaint, 15-30 ms, each tick with an event).
            self.set_reactive(EventLog.virtual_size, size)
            update_scrollbars(size)
        else:
            self.virtual_size = size  # unchanged, or a Textual without the hook
        self.refresh()
        if scroll_to_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self) -> None:
        self._relayout(self._at_end())

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return self._lines[index].crop_extend(0, width, self.rich_style).apply_style(
            self.rich_style)


class LogPane(Vertical):
    """A title, the log and its search field (shown by `/` in the log, Esc closes it)."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-search { display: none; height: 1; border: none; padding: 0 1; }
    LogPane.-searching > #log-search { display: block; }
    """
    BINDINGS = [Binding("escape", "close_search", "Close search", show=False)]

    def __init__(self, title: str = "Events", *, log_id: str = "log",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.log_id = log_id

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="pane-title", id="log-title")
        yield EventLog(id=self.log_id)
        yield Input(placeholder="search the log: words to find (Esc closes)", id="log-search")

    @property
    def log(self) -> EventLog:
        return self.query_one(EventLog)

    def on_event_log_search_requested(self, event: EventLog.SearchRequested) -> None:
        event.stop()
        self.add_class("-searching")
        self.query_one("#log-search", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.log.set_query(event.value)
        self._title()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.log.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without a search open, Esc belongs to the screen (back, or to the VM table).
        return action != "close_search" or self.has_class("-searching")

    def action_close_search(self) -> None:
        self.remove_class("-searching")
        self.query_one("#log-search", Input).value = ""
        self.log.set_query("")
        self._title()
        self.log.focus()

    def _title(self) -> None:
        log = self.log
        title = self.title
        if log.query_text:
            title += f" matching {log.query_text!r}: {log.shown_count} of {len(log.entries)}"
        self.query_one("#log-title", Static).update(title)
