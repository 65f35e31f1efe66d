"""OvercommitApp: owns the Simulation (through EngineDriver) and the game clock.

Attributes down, messages up: the App hands each screen a ConsoleView on refresh; widgets
post intents (VMTable.VMSelected, HostList.HostSelected); dialogs come back with a command
and only the App submits it. Ticks run on the UI thread while they fit in a frame, else in
a thread worker that posts EngineDriver.Stepped messages back.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import BindingType
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.worker import get_current_worker

from app.campaign import Campaign, Level
from app.console.actions import ACTIONS_BY_NAME, default_target, missing_target_message
from app.console.campaign_play import CampaignPlay
from app.console.clock import Clock
from app.console.driver import EngineDriver
from app.console.forking import Forking
from app.console.format import clock_text, describe_command
from app.console.history import Histories
from app.console.keys import ALL_BINDINGS
from app.console.palette import OperatorCommands
from app.console.saving import SaveLoad
from app.console.screens.help_screen import HelpScreen
from app.console.screens.host_detail import HostDetailScreen
from app.console.screens.level_select import LevelSelectScreen
from app.console.screens.loading import LoadingScreen
from app.console.screens.overview import OverviewScreen
from app.console.screens.sla_screen import SLAScreen
from app.console.screens.vm_detail import VMDetailScreen
from app.console.ticking import REFRESH_S, TIMER_HZ, Ticking
from app.console.view import ActionContext, ClockState, ConsoleView
from app.console.widgets.host_list import HostList
from app.console.widgets.vm_table import VMTable
from engine import Command, Event, Simulation, kernels

# Builds the world, calling progress(done, total) as its VMs power on.
Builder = Callable[[Callable[[int, int], None]], Simulation]
# Allocations between young garbage collections (CPython's default: 700). A frame makes
# tens of thousands of short-lived objects (Textual's strips and segments); collecting
# every 700 of them costs more than the garbage they free.
GC_YOUNG = 10_000
ARCHIVE_LEN = 5000  # events kept for the detail screens
LOG_BURST = 200  # at most this many log lines per refresh; the rest are summarised


def settle_garbage() -> None:
    """Collect, then freeze what is left. The world, its tables and the screens live as
    long as the world is played; the collector's full passes (one every few frames) would
    walk all of them each time, and on the 1,000-VM world those pauses reach 100 ms."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _BuildCancelled(Exception):
    """Raised from the progress callback to stop a build the player walked away from."""


class OvercommitApp(Ticking, Forking, CampaignPlay, SaveLoad):
    CSS_PATH = "console.tcss"
    TITLE = "Overcommit"
    BINDINGS: ClassVar[list[BindingType]] = ALL_BINDINGS
    COMMANDS = App.COMMANDS | {OperatorCommands}
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"),
                                                                   (32, "-tall")]
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"),
                                                                     (100, "-wide")]
    NOT_IN_DIALOGS = frozenset({"operate", "save", "load", "help", "toggle_columns", "sla",
                                "levels", "briefing", "fork", "compare", "toggle_pane"})
    COLUMN_CYCLE = ("basic", "memory", "sla")

    class WorldBuilt(Message):
        """The build worker is done: the world, or why there is none."""

        def __init__(self, sim: Simulation | None, error: BaseException | None) -> None:
            super().__init__()
            self.sim = sim
            self.error = error

    class BuildProgress(Message):
        """`done` of `total` VMs powered on; a newer one replaces one not shown yet."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, OvercommitApp.BuildProgress)

    class KernelsWarm(Message):
        """The compiled loops are loaded: numba's objects can join the frozen ones."""

    def __init__(self, sim: Simulation | None = None, *, paused: bool = False,
                 saves_dir: Path | None = None, campaign: Campaign | None = None,
                 level: Level | None = None, briefing: bool = True,
                 build: Builder | None = None, title: str = "the world") -> None:
        """Give the world (`sim`), or a `build` that makes it, given a progress callback:
        the console then opens on a loading screen and builds it in a thread worker."""
        super().__init__()
        if (sim is None) == (build is None):
            raise ValueError("give either sim or build")
        self.show_briefing = briefing  # the scenario's briefing before its clock starts
        self.campaign = campaign
        self.level = level
        self.clock = Clock(paused=paused)
        self.saves_dir_override = saves_dir
        self.selected_vm: str | None = None
        self.vm_columns = "basic"  # the VM tables' column set, switched by `c`
        self.events: deque[tuple[int, Event]] = deque(maxlen=ARCHIVE_LEN)
        self._event_seq = 0
        self._pending_log: list[Event] = []
        self.pause_in_dialogs = campaign is not None
        self._builder = build
        self._build_title = title
        self.build_error: BaseException | None = None  # run_console raises it after exit
        if sim is not None:
            self._install(EngineDriver(sim))

    @property
    def loading(self) -> bool:
        """The world is still being built (the loading screen is up)."""
        return self._builder is not None

    # -- the simulation ----------------------------------------------------------------
    def _install(self, driver: EngineDriver) -> None:
        settle_garbage()  # the last world's cycles go; this one's objects are frozen next
        self.driver = driver
        self.histories = Histories()
        self.snapshot = driver.snapshot()
        self.live = driver.live()
        self.histories.record(self.snapshot)
        self._finished = self._is_finished(self.snapshot)
        self._ended = self._all_judged(self.snapshot)
        self.reset_autosave(self.snapshot.time_s)
        if self.is_running:  # a new world (a load, a fork, a level): its first frame, then
            self.call_after_refresh(settle_garbage)

    @property
    def saves_dir(self) -> Path:
        return self.saves_dir_override or Path.cwd() / "saves"

    def get_default_screen(self) -> Screen[None]:
        return LoadingScreen(self._build_title) if self.loading else OverviewScreen()

    def on_mount(self) -> None:
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(GC_YOUNG, *self._gc_threshold[1:])
        # The engine's compiled loops are compiled (or loaded from numba's cache) beside
        # the build, not in the first tick, which runs on the UI thread (engine/kernels.py).
        threading.Thread(target=self._warm_up_kernels, name="overcommit-warm-up",
                         daemon=True).start()
        if self._builder is not None:
            self._build_world(self._builder)
        else:
            self._start()

    def _warm_up_kernels(self) -> None:
        try:
            kernels.warm_up()
        except Exception:  # noqa: BLE001 - a broken numba, which shows at the tick that
            return  # needs it
        if kernels.compiled():  # numba's objects (some 43 k) join the frozen ones, which
            # the collector's full passes do not walk. A message, not call_from_thread:
            # an app that has gone meanwhile just drops it.
            self.post_message(self.KernelsWarm())

    @on(KernelsWarm)
    def _kernels_warm(self) -> None:
        self.call_after_refresh(settle_garbage)

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()  # the console's objects may go now

    # -- building the world (off the UI thread, so the loading screen paints) ----------
    @work(thread=True, exclusive=True, group="build")
    def _build_world(self, build: Builder) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the player quit: stop at the next batch of VMs
                raise _BuildCancelled
            self.post_message(self.BuildProgress(done, total))

        try:
            sim = build(progress)
        except _BuildCancelled:
            return
        except Exception as err:  # noqa: BLE001 - bad input or a bug: raised after exit
            self.post_message(self.WorldBuilt(None, err))
            return
        self.post_message(self.WorldBuilt(sim, None))

    @on(BuildProgress)
    def _build_progress(self, message: BuildProgress) -> None:
        if isinstance(self.screen, LoadingScreen):
            self.screen.advance(message.done, message.total)

    @on(WorldBuilt)
    def _world_built(self, message: WorldBuilt) -> None:
        if message.sim is None:
            self.build_error = message.error
            self.exit(return_code=1)
            return
        self._install(EngineDriver(message.sim))
        self._builder = None
        # The loading screen is the default mode's base, which no screen can replace: the
        # console runs in a mode of its own, and the loading screen stays behind, emptied.
        loading = self.screen
        self.add_mode("console", OverviewScreen)
        self.switch_mode("console")
        loading.query("*").remove()
        self._start()

    def _start(self) -> None:
        """The world is there: start the clock's timers, greet, open the first screen."""
        self._tick_timer = self.set_interval(1 / TIMER_HZ, self._on_clock_timer,
                                             pause=self.clock.paused)
        self.set_interval(REFRESH_S, self._refresh_if_due)
        self.call_after_refresh(self._welcome)
        self.call_after_refresh(self._open_first_screen)
        self.call_after_refresh(settle_garbage)  # with the VM table's rows

    def _welcome(self) -> None:
        meta = self.driver.spec.scenario
        self._note("welcome", f"{meta.name}: {meta.description} Press ? for help.")

    def _next_timeline(self) -> str | None:
        """The first scheduled entry the engine has not applied yet. It applies entries at
        the start of the first tick whose time reaches theirs, in file order."""
        timeline, snap = self.driver.spec.timeline, self.snapshot
        applied_before = snap.time_s - snap.tick_s + 1e-9
        i = 0
        while i < len(timeline) and timeline[i].at <= applied_before:
            i += 1
        if i >= len(timeline):
            return None
        return f"{clock_text(timeline[i].at, snap.tick_s)} {describe_command(timeline[i].command)}"

    # -- log and views -----------------------------------------------------------------
    def _record_event(self, event: Event) -> None:
        self._event_seq += 1
        self.events.append((self._event_seq, event))
        self._pending_log.append(event)

    def _note(self, kind: str, message: str, vm: str | None = None) -> None:
        snap = self.snapshot
        self._record_event(Event(snap.tick, snap.time_s, kind, message, vm))
        self.refresh_views()

    def _clear_log(self) -> None:
        """A new world (a campaign level) starts with an empty log and archive."""
        self.events.clear()
        self._pending_log.clear()
        overview = self._overview()
        if overview is not None:
            overview.clear_log()

    def _flush_log(self) -> None:
        pending, self._pending_log = self._pending_log, []
        if not pending:
            return
        overview = self._overview()
        if overview is None:
            return
        skipped = pending[:-LOG_BURST]
        if skipped:
            kinds: dict[str, int] = {}
            for ev in skipped:
                kinds[ev.kind] = kinds.get(ev.kind, 0) + 1
            summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            first = skipped[0]
            overview.log_events([Event(first.tick, first.time_s, "skipped",
                                       f"{len(skipped)} events not shown ({summary})")],
                                self.snapshot.tick_s)
        overview.log_events(pending[-LOG_BURST:], self.snapshot.tick_s)

    def _overview(self) -> OverviewScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, OverviewScreen):
                return screen
        return None

    def view(self) -> ConsoleView:
        now = time.monotonic()
        clock = ClockState(self.clock.paused, self.clock.speed, self.clock.ticks_per_s(now),
                           self._finished, self.pause_in_dialogs)
        return ConsoleView(self.snapshot, clock, self.driver.spec.scenario.duration,
                           self._next_timeline(), self.histories, tuple(self.events),
                           self.selected_vm, self.vm_columns, self.live)

    def refresh_views(self) -> None:
        if not self.is_running or not self.screen_stack or self.loading:
            return
        self._last_refresh = time.monotonic()
        self._dirty = False
        self._flush_log()
        view = self.view()
        for screen in self.screen_stack:
            show = getattr(screen, "show", None)
            if callable(show) and screen.is_mounted:
                show(view)

    def _refresh_if_due(self) -> None:
        if self._dirty or self._pending_log:
            self.refresh_views()

    def action_toggle_columns(self) -> None:
        cycle = self.COLUMN_CYCLE
        self.vm_columns = cycle[(cycle.index(self.vm_columns) + 1) % len(cycle)]
        self.refresh_views()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Operator actions, save, load and help wait until the open dialog is closed; on
        # the level select (and while the world builds) only its own keys and quit work: no
        # world is in play there.
        if isinstance(self.screen, LevelSelectScreen) or self.loading:
            return action in ("quit", "confirm_quit")
        return not (action in self.NOT_IN_DIALOGS and isinstance(self.screen, ModalScreen))

    def push_screen(self, screen: Screen[Any] | str, callback: Any = None,
                    wait_for_dismiss: bool = False, *, mode: str | None = None) -> Any:
        result = super().push_screen(screen, callback, wait_for_dismiss,  # type: ignore[call-overload]
                                     mode=mode)
        target = self.get_screen(screen) if isinstance(screen, str) else screen
        self.dialog_opened(target)
        return result

    # -- selection and navigation (messages up from widgets) -----------------------
    @on(VMTable.VMHighlighted)
    def _vm_highlighted(self, message: VMTable.VMHighlighted) -> None:
        self.selected_vm = message.vm

    @on(VMTable.VMSelected)
    def _vm_selected(self, message: VMTable.VMSelected) -> None:
        self.selected_vm = message.vm
        # A double click selects the row twice: the detail screen opens once.
        if not self._showing(VMDetailScreen, message.vm):
            self._open_detail(VMDetailScreen, message.vm)

    @on(HostList.HostSelected)
    def _host_selected(self, message: HostList.HostSelected) -> None:
        if not self._showing(HostDetailScreen, message.host):
            self._open_detail(HostDetailScreen, message.host)

    def _open_detail(self, kind: type[VMDetailScreen | HostDetailScreen], subject: str) -> None:
        """One screen of each kind, installed once and reused for the next subject."""
        name = f"detail:{kind.__name__}"
        if self.is_screen_installed(name):
            screen = self.get_screen(name)
            assert isinstance(screen, kind)
            if screen in self.screen_stack:  # the other detail screen links here: a new one
                self.push_screen(kind(subject))
                self.call_after_refresh(self.refresh_views)
                return
            screen.set_subject(subject, self.view())
        else:
            self.install_screen(kind(subject), name)
        self.push_screen(name)
        self.call_after_refresh(self.refresh_views)

    def _showing(self, kind: type[VMDetailScreen | HostDetailScreen], subject: str) -> bool:
        top = self.screen_stack[-1] if self.screen_stack else None
        return isinstance(top, kind) and top.subject == subject

    # -- operator actions: dialogs, then submit --------------------------------------
    def current_targets(self) -> tuple[str | None, str | None]:
        """(VM, host) the operator is looking at, on the topmost screen under any dialog:
        a detail screen's subject, the VM table's row, the host list's highlighted host
        (or the selected VM's host, unless the host list has the focus)."""
        screen = next(s for s in reversed(self.screen_stack) if not isinstance(s, ModalScreen))
        vm, host = self.selected_vm, None
        if isinstance(screen, VMDetailScreen):
            vm = screen.subject
        elif screen.query(VMTable):
            vm = screen.query(VMTable).first().selected_vm or vm
        if isinstance(screen, HostDetailScreen):
            host = screen.subject
        elif screen.query(HostList):
            hosts = screen.query(HostList).first()
            host = hosts.highlighted_host
            if not hosts.has_focus and vm is not None and vm in self.snapshot.vms:
                host = self.snapshot.vm(vm).host or host
        elif vm is not None and vm in self.snapshot.vms:
            host = self.snapshot.vm(vm).host
        return vm, host

    def action_operate(self, name: str) -> None:
        action = ACTIONS_BY_NAME[name]
        target = default_target(action, self.snapshot, *self.current_targets(), self.live)
        if target is None:
            self.notify(missing_target_message(action), severity="warning")
            return
        self.open_action(name, *target)

    def open_action(self, name: str, vm: str | None, host: str | None) -> None:
        action = ACTIONS_BY_NAME[name]
        context = ActionContext(self.snapshot, self.driver.preview, self.driver.spec, vm, host,
                                self.live, self.driver.wws)
        dialog = action.dialog
        if isinstance(dialog, type) and getattr(dialog, "REUSABLE", False):
            # Kept once built: composing it is most of what opening it costs.
            name = f"dialog:{name}"
            if self.is_screen_installed(name):
                screen = self.get_screen(name)
                screen.reuse(context)  # type: ignore[attr-defined]
            else:
                self.install_screen(dialog(context), name)
            self.push_screen(name, self._submit)
            return
        self.push_screen(dialog(context), self._submit)

    def _submit(self, command: Command | None) -> None:
        if command is None:
            return
        verdict = self.driver.submit(command)
        vm = getattr(command, "vm", None)
        # The snapshot lists the queued commands: the VM table marks their VMs now.
        self.snapshot = self.driver.snapshot()
        if verdict.ok:
            self._note("operator", f"{describe_command(command)}: accepted, applies at "
                       "the next tick", vm if isinstance(vm, str) else None)
        else:
            self._note("rejected", f"{describe_command(command)}: {verdict.reason}",
                       vm if isinstance(vm, str) else None)
            self.notify(verdict.reason, title="Rejected", severity="error")

    # -- help and the SLA screen (save and load: saving.SaveLoad) ---------------------
    def action_help(self) -> None:
        # Installed once and kept: rendering its Markdown is most of the cost of opening it.
        if not self.is_screen_installed("help"):
            self.install_screen(HelpScreen(list(ALL_BINDINGS)), "help")
        self.push_screen("help")

    def action_sla(self) -> None:
        if not isinstance(self.screen, SLAScreen):
            if not self.is_screen_installed("sla"):  # built once: its table holds every VM
                self.install_screen(SLAScreen(), "sla")
            screen = self.get_screen("sla")
            assert isinstance(screen, SLAScreen)
            if screen.is_mounted:
                screen.show(self.view())  # (DetailScreen.show) no frame of stale figures
            self.push_screen("sla")
            self.call_after_refresh(self.refresh_views)
