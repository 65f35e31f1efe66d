"""The console's one handle on the Simulation: ticks, previews, commands and saves.

The App may step from its own thread (fast ticks) or from a thread worker (slow ticks), so
every use of the simulation goes through one lock. Snapshots are frozen and safe to hand
to the UI thread. Nothing here imports Textual widgets; `Stepped` is the message a stepping
thread posts back, with the snapshot and what the console reads beside it (live.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from app.console.live import LiveData, read_live, vm_wws
from app.savefile import write_save
from engine import Command, Event, Simulation, Snapshot
from engine.commands import Verdict
from engine.scenario import ScenarioSpec

FRAME_BUDGET_S = 1 / 60  # ticks that fit in this run on the UI thread


class EngineDriver:
    class Stepped(Message):
        """Ticks ran. A newer queued Stepped replaces an older one and takes its events,
        so snapshots may be skipped but events never are."""

        def __init__(self, generation: int, snapshot: Snapshot, events: list[Event],
                     live: LiveData | None = None) -> None:
            super().__init__()
            self.generation = generation
            self.snapshot = snapshot
            self.live = live or LiveData()
            self.events = events
            self.ticks = 1

        def can_replace(self, message: Message) -> bool:
            if not isinstance(message, EngineDriver.Stepped):
                return False
            if message.generation != self.generation:
                return False
            message.events[:0] = self.events
            message.ticks += self.ticks
            return True

    def __init__(self, sim: Simulation, generation: int = 0) -> None:
        self.sim = sim
        self.generation = generation
        self.tick_cost_s = 0.0  # moving averages, wall seconds
        self.snapshot_cost_s = 0.0
        self._lock = threading.Lock()

    @property
    def spec(self) -> ScenarioSpec:
        return self.sim.spec

    def fits_in_frame(self, n: int) -> bool:
        """Can n ticks and a snapshot run on the UI thread without dropping a frame?"""
        return n * self.tick_cost_s + self.snapshot_cost_s <= FRAME_BUDGET_S

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self.sim.snapshot()

    def live(self) -> LiveData:
        with self._lock:
            return read_live(self.sim)

    def wws(self, vm: str) -> dict[str, int]:
        with self._lock:
            return vm_wws(self.sim, vm)

    def step(self, n: int, deliver: Callable[[Stepped], object],
             cancelled: Callable[[], bool] = lambda: False,
             every_s: float = float("inf")) -> int:
        """Run up to n ticks; returns the ticks run.

        A Stepped (snapshot + the events since the previous one) is delivered after the
        last tick run, and after earlier ticks once `every_s` wall seconds have passed
        since the previous delivery: a snapshot of a large data center costs a fair part
        of a tick, and the screen shows a few per second at most.
        """
        ran = 0
        events: list[Event] = []
        ticks = 0
        last_delivery = time.perf_counter()
        for i in range(n):
            if cancelled():
                break
            with self._lock:
                start = time.perf_counter()
                events.extend(self.sim.step(1))
                self.tick_cost_s = self._average(self.tick_cost_s, time.perf_counter() - start)
                ran, ticks = ran + 1, ticks + 1
                if i == n - 1 or start - last_delivery >= every_s:
                    self._deliver(deliver, events, ticks)
                    events, ticks, last_delivery = [], 0, time.perf_counter()
        if ticks:  # cancelled between deliveries: the events still go up
            with self._lock:
                self._deliver(deliver, events, ticks)
        return ran

    def _deliver(self, deliver: Callable[[Stepped], object], events: list[Event],
                 ticks: int) -> None:
        """Called under the lock, so two threads can never reorder ticks."""
        start = time.perf_counter()
        message = EngineDriver.Stepped(self.generation, self.sim.snapshot(), events,
                                       read_live(self.sim))
        self.snapshot_cost_s = self._average(self.snapshot_cost_s,
                                             time.perf_counter() - start)
        message.ticks = ticks
        deliver(message)

    @staticmethod
    def _average(old: float, new: float) -> float:
        return new if old == 0 else 0.8 * old + 0.2 * new

    def preview(self, command: Command) -> Verdict:
        with self._lock:
            return self.sim.preview(command)

    def submit(self, command: Command) -> Verdict:
        with self._lock:
            return self.sim.submit(command)

    def save(self, folder: Path, name: str) -> Path:
        """Write folder/<name>-t<tick>.toml; the tick is read under the lock it saves."""
        with self._lock:
            return write_save(folder / f"{name}-t{self.sim.tick}.toml", self.sim)
