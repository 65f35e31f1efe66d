"""Shared frame of the host and VM detail screens: clock, back key, events concerning it."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from app.console.view import ConsoleView
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import EventLog
from engine import Event

FIRST_EVENTS = 200  # how many past events a detail screen starts with


class DetailScreen(Screen[None]):
    BINDINGS = [Binding("escape,backspace", "back", "Back")]
    TITLE_PREFIX = ""

    def __init__(self, subject: str) -> None:
        super().__init__()
        self.subject = subject
        self._seen_seq = -1

    def set_subject(self, subject: str, view: ConsoleView | None = None) -> None:
        """Show another VM or host: the App keeps one screen of each kind and reuses it
        (composing a detail screen anew costs most of its opening time)."""
        self.subject = subject
        self._seen_seq = -1
        if self.is_mounted:
            self.query_one(EventLog).clear()
            if view is not None:
                self.show(view)

    def concerns(self, event: Event, view: ConsoleView) -> bool:  # overridden
        return False

    def show(self, view: ConsoleView) -> None:
        self.query_one(ClockBar).show(view.snapshot, view.clock, view.duration_s,
                                      f"{self.TITLE_PREFIX} {self.subject}".strip())
        self.show_subject(view)
        fresh = [(seq, ev) for seq, ev in view.events
                 if seq > self._seen_seq and self.concerns(ev, view)]
        if self._seen_seq < 0:
            fresh = fresh[-FIRST_EVENTS:]
        if view.events:
            self._seen_seq = view.events[-1][0]
        self.query_one(EventLog).show_events((ev for _, ev in fresh), view.snapshot.tick_s)

    def show_subject(self, view: ConsoleView) -> None:  # overridden
        pass

    def on_screen_resume(self) -> None:
        closed = getattr(self.app, "dialog_closed", None)
        if callable(closed):
            closed()

    def action_back(self) -> None:
        self.dismiss(None)
