"""The App's clock: running ticks, pausing, stepping, the end of the night, and a tick that
fails.

Ticks run on the UI thread while they fit in a frame, else in a thread worker that posts
EngineDriver.Stepped messages back. Pausing stops that worker after its current tick and
shows the tick it stopped at, so the world is paused at the tick on screen. While the
scenario's time is not up, the clock never runs past its end (a worker's batch included).
With `pause_in_dialogs` (on by default in the campaign), opening a dialog pauses the clock
and closing it starts the clock again.

OvercommitApp derives from Ticking and provides the log (`_note`, `_record_event`),
`refresh_views`, `_show_verdict` and `_absorbed` (autosave).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, get_current_worker

from app.console.clock import Clock
from app.console.driver import EngineDriver
from app.console.history import Histories
from app.console.live import LiveData
from engine import Event, Snapshot

TIMER_HZ = 30  # how often the running clock checks for owed ticks
REFRESH_S = 0.25  # views refresh at most this often while the clock runs


class Ticking(App[int]):
    driver: EngineDriver
    clock: Clock
    snapshot: Snapshot
    live: LiveData
    histories: Histories
    pause_in_dialogs: bool = False
    _tick_timer: Timer
    _worker: Worker[int] | None = None
    _steps_owed = 0  # step keys pressed while a worker was still ticking
    _stepping = False  # the worker runs steps the operator asked for, not the clock's ticks
    _last_refresh = 0.0
    _dirty = False  # a snapshot arrived that the screens have not shown yet
    _finished = False  # the scenario's time is up
    _ended = False  # every objective is judged
    _dialog_paused = False  # the clock was paused because a dialog opened

    if TYPE_CHECKING:  # OvercommitApp defines these; declared here for the type checker
        def _note(self, kind: str, message: str, vm: str | None = None) -> None: ...

        def _record_event(self, event: Event) -> None: ...

        def refresh_views(self) -> None: ...

        def _show_verdict(self, snap: Snapshot) -> None: ...

        def _absorbed(self, snap: Snapshot) -> None: ...

    # -- running ------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._worker is not None and not self._worker.is_finished

    def _on_clock_timer(self) -> None:
        n = self.clock.due(time.monotonic())
        if n and not self._busy():
            self._run_ticks(n)

    def end_tick(self) -> int | None:
        """The tick at which the scenario's time is up (None: it runs for ever)."""
        duration = self.driver.spec.scenario.duration
        if duration is None:
            return None
        return int(round(duration / self.driver.spec.scenario.tick_s))

    def _run_ticks(self, n: int, steps: bool = False) -> None:
        """n ticks: the clock's, or with `steps` the operator's step keys (each is run,
        however long a tick takes)."""
        end = None if self._finished else self.end_tick()
        if self.driver.fits_in_frame(n):
            batch: list[EngineDriver.Stepped] = []
            self.driver.step(n, batch.append, stop_at=end)
            for message in batch:
                self._absorb(message)
        else:
            self._stepping = steps
            self._worker = self._step_in_thread(n, end)

    @work(thread=True, exclusive=True, group="engine")
    def _step_in_thread(self, n: int, end: int | None) -> int:
        worker = get_current_worker()
        return self.driver.step(n, self.post_message, lambda: worker.is_cancelled,
                                every_s=REFRESH_S / 2, stop_at=end)

    @on(EngineDriver.Stepped)
    def _stepped(self, message: EngineDriver.Stepped) -> None:
        if message.generation == self.driver.generation:
            self._absorb(message)

    def _absorb(self, message: EngineDriver.Stepped) -> None:
        snap = message.snapshot
        self.clock.ran(message.ticks, time.monotonic())
        if snap.tick < self.snapshot.tick:
            # A stopped worker's last delivery, handled after the step that followed it
            # (its message and the worker's end can reach the queue in either order):
            # its events go to the log, the screen keeps the newer world.
            for event in message.events:
                self._record_event(event)
            self._dirty = True
            if self.clock.paused:
                self.refresh_views()
            return
        rejected = [e for e in message.events if e.kind == "command_rejected"]
        for event in message.events:
            self._record_event(event)
        if rejected:
            # A scripted arrival or an operator command that no longer fits when it applies:
            # easy to miss in a scrolling log, and it usually decides the night.
            more = f" (and {len(rejected) - 1} more, see the log)" if len(rejected) > 1 else ""
            self.notify(rejected[0].message + more, title="Rejected", severity="warning")
        self.snapshot = snap
        self.live = message.live
        self.histories.record(snap)
        self._dirty = True
        if message.error is not None:
            self._pause()
            self.notify(message.error, title="Engine error: the clock is paused",
                        severity="error", timeout=30)
        if self.clock.paused or time.monotonic() - self._last_refresh >= REFRESH_S:
            self.refresh_views()
        self._check_end(snap)
        self._absorbed(snap)

    # -- the end ------------------------------------------------------------------------
    @staticmethod
    def _all_judged(snap: Snapshot) -> bool:
        return bool(snap.objectives) and all(o["status"] != "pending" for o in snap.objectives)

    def _is_finished(self, snap: Snapshot) -> bool:
        end = self.end_tick()
        return end is not None and snap.tick >= end

    def _check_end(self, snap: Snapshot) -> None:
        if not self._finished and self._is_finished(snap):
            self._finished = True
            self._pause()
            self._note("clock", "the scenario's time is up; the clock is paused "
                                "(space runs on)")
        if not self._ended and self._all_judged(snap):
            self._ended = True
            self._pause()
            self.refresh_views()
            self._show_verdict(snap)

    # -- clock actions ------------------------------------------------------------------
    def _pause(self) -> None:
        """Stop at once: a worker running the clock's ticks stops after its current tick,
        which it then delivers, so the screen shows the tick the world is paused at. A
        worker running step keys' ticks runs them all: they were asked for while paused."""
        self.clock.pause()
        self._tick_timer.pause()
        self._dialog_paused = False
        if self._busy() and self._worker is not None and not self._stepping:
            self._worker.cancel()

    def _resume(self) -> None:
        self.clock.resume()
        self._tick_timer.resume()
        self.refresh_views()

    def action_toggle_pause(self) -> None:
        if self.clock.paused:
            self._resume()
        else:
            self._pause()
        self.refresh_views()

    def action_step(self) -> None:
        if not self.clock.paused:
            self._pause()
        if self._busy() and self._worker is not None:
            # One stepper at a time, or ticks could reach the screen out of order: the step
            # runs once the worker has delivered its ticks. A worker running the clock's
            # ticks stops after its current one; a worker running earlier steps runs them
            # all (stopped before its first tick, a step asked for would be lost).
            if not self._stepping:
                self._worker.cancel()
            self._steps_owed += 1
            return
        self._run_ticks(1, steps=True)
        self.refresh_views()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._worker and event.worker.is_finished and self._steps_owed:
            n, self._steps_owed = self._steps_owed, 0
            self._run_ticks(n, steps=True)

    def action_faster(self) -> None:
        self.clock.faster()
        self.refresh_views()

    def action_slower(self) -> None:
        self.clock.slower()
        self.refresh_views()

    # -- dialogs pause the clock (an option) -------------------------------------------
    def action_toggle_dialog_pause(self) -> None:
        self.pause_in_dialogs = not self.pause_in_dialogs
        state = "pauses" if self.pause_in_dialogs else "keeps running"
        self.notify(f"The clock {state} while a dialog is open (a toggles)")
        self.refresh_views()

    def dialog_opened(self, screen: Screen[object]) -> None:
        if (self.pause_in_dialogs and isinstance(screen, ModalScreen)
                and not self.clock.paused):
            self._pause()
            self._dialog_paused = True
            self.refresh_views()

    def dialog_closed(self) -> None:
        """A screen that is not a dialog is on top again."""
        if self._dialog_paused and not isinstance(self.screen, ModalScreen):
            self._dialog_paused = False
            self._resume()
