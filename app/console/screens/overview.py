"""The main screen: clock, headline metrics, hosts by rack, live migrations (while there
are any), the VMs; beside them the objectives and the event log (the side pane).

`v` collapses the side pane. On a narrow terminal (below NARROW_COLS) it starts collapsed
and, when shown, takes the whole width instead of the hosts and VMs; while it is hidden a
one-line strip above the footer keeps the objectives in sight.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from app.console.format import legend
from app.console.view import ConsoleView
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import EventLog, LogPane
from app.console.widgets.headline import Headline
from app.console.widgets.host_list import HostList
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.migration_panel import MigrationPanel
from app.console.widgets.objectives_panel import ObjectivesPanel, ObjectivesStrip
from app.console.widgets.vm_table import PENDING_MARK, VMTable
from engine import Event

SHORT_ROWS = 32  # the App's "-short" breakpoint
NARROW_COLS = 110  # below this the side pane takes turns with the hosts and VMs


class OverviewScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", key_display="/", show=False),
        Binding("o", "cycle_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("escape", "leave_filter", "Back to table", show=False),
        Binding("v", "toggle_pane", "Pane", show=False),
    ]

    pane_shown: bool | None = None  # None: as the width suggests

    def compose(self) -> ComposeResult:
        yield ClockBar()
        yield Headline()
        with Horizontal(id="main"):
            with Vertical(id="left-pane"):
                yield Static(Text.assemble(
                    ("Hosts ", "bold"), legend(["private", "shared", "free"], 1), "▏",
                    legend(["balloon", "swapped", "promised"], 1)), classes="pane-title")
                yield HostList(id="hosts")
                with Vertical(id="migrations"):
                    yield Static("Live migration (g migrate · G cancel · P post-copy)",
                                 classes="pane-title")
                    yield MigrationPanel()
                yield Input(placeholder=f"/ filter VMs · c columns · o sort · {PENDING_MARK} "
                            "command queued", id="vm-filter")
                yield VMTable(id="vms")
            with Vertical(id="side-pane"):
                yield Static("Objectives", classes="pane-title")
                yield ObjectivesPanel(id="objectives")
                yield LogPane("Events (/ searches)")
        yield ObjectivesStrip(id="objectives-strip")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(VMTable).focus()
        self._arrange()

    def on_resize(self) -> None:
        self._arrange()

    def on_screen_resume(self) -> None:
        closed = getattr(self.app, "dialog_closed", None)
        if callable(closed):
            closed()

    # -- the side pane ------------------------------------------------------------------
    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW_COLS

    def side_pane_visible(self) -> bool:
        return (not self.narrow) if self.pane_shown is None else self.pane_shown

    def _arrange(self) -> None:
        shown, narrow = self.side_pane_visible(), self.narrow
        self.query_one("#side-pane").set_class(not shown, "-hidden")
        left = self.query_one("#left-pane")
        left.set_class(not shown, "-alone")
        left.set_class(shown and narrow, "-hidden")
        self.query_one("#objectives-strip").set_class(not shown, "-shown")

    def action_toggle_pane(self) -> None:
        self.pane_shown = not self.side_pane_visible()
        self._arrange()
        if self.side_pane_visible() and self.narrow:
            self.query_one(EventLog).focus()
        elif not self.side_pane_visible():
            self.query_one(VMTable).focus()

    # -- data ---------------------------------------------------------------------------
    def show(self, view: ConsoleView) -> None:
        snap = view.snapshot
        self.query_one(ClockBar).show(snap, view.clock, view.duration_s)
        self.query_one(Headline).show(snap)
        self.query_one(HostList).show(snap.hosts)
        self.query_one(ObjectivesPanel).show(snap.objectives, snap.time_s, snap.tick_s,
                                             view.next_timeline)
        self.query_one(ObjectivesStrip).show(snap.objectives, view.next_timeline)
        table = self.query_one(VMTable)
        table.use_columns(view.vm_columns)
        table.show(snap.vms, snap.pending_vms())
        box = self.query_one("#migrations")
        box.display = bool(view.live.migrations)
        if view.live.migrations:
            # Short terminals get two lines per migration; the VM table needs the room.
            self.query_one(MigrationPanel).show(view.live.migrations, view.live.wws,
                                                table.selected_vm,
                                                brief=self.size.height < SHORT_ROWS)

    def log_events(self, events: Iterable[Event], tick_s: float) -> None:
        self.query_one(EventLog).show_events(events, tick_s)

    def clear_log(self) -> None:
        self.query_one(EventLog).clear()

    def log_note(self, line: Text) -> None:
        self.query_one(EventLog).write(line)

    def clear_filter(self) -> None:
        """A new world (a campaign level) starts with every VM shown."""
        self.query_one("#vm-filter", Input).value = ""
        self.query_one(VMTable).set_filter("")

    @property
    def selected_vm(self) -> str | None:
        return self.query_one(VMTable).selected_vm

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "vm-filter":
            return
        event.stop()
        self.query_one(VMTable).set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "vm-filter":
            return
        event.stop()
        self.query_one(VMTable).focus()

    def action_focus_filter(self) -> None:
        if self.side_pane_visible() and self.narrow:
            self.action_toggle_pane()
        self.query_one("#vm-filter", Input).focus()

    def action_leave_filter(self) -> None:
        self.query_one(VMTable).focus()

    def action_cycle_sort(self) -> None:
        self.query_one(VMTable).cycle_sort()

    def action_reverse_sort(self) -> None:
        table = self.query_one(VMTable)
        table.sort_by(table.sort_key, reverse=not table.sort_reverse)
