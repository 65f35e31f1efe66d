"""The console's one handle on the Simulation: ticks, previews, commands and saves.

The App may step from its own thread (fast ticks) or from a thread worker (slow ticks), so
every use of the simulation goes through one lock. Snapshots are frozen and safe to hand
to the UI thread. Nothing here imports Textual widgets; `Stepped` is the message a stepping
thread posts back, with the snapshot and what the console reads beside it (live.py).

A tick that raises must not take the game down. Dialogs refuse bad values before they
become commands, but should one slip through, the driver keeps a copy of a small world
taken before the first command of a tick was queued: the failed tick is undone, without
those commands, and the App is told (Stepped.error). A bigger world, or a failure without
commands, leaves the world as the exception left it; the App pauses and says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from app.console.format import describe_command
from app.console.live import LiveData, read_live, vm_wws
from app.savefile import write_save
from engine import Command, Event, Simulation, Snapshot, persistence
from engine.commands import Verdict
from engine.scenario import ScenarioSpec

FRAME_BUDGET_S = 1 / 60  # ticks that fit in this run on the UI thread
CHECKPOINT_BYTES = 512 * 2**20  # worlds up to this size are copied before commands apply


class EngineDriver:
    class Stepped(Message):
        """Ticks ran. A newer queued Stepped replaces an older one and takes its events,
        so snapshots may be skipped but events never are."""

        def __init__(self, generation: int, snapshot: Snapshot, events: list[Event],
                     live: LiveData | None = None, error: str | None = None) -> None:
            super().__init__()
            self.generation = generation
            self.snapshot = snapshot
            self.live = live or LiveData()
            self.events = events
            self.ticks = 1
            self.error = error  # a tick raised: what happened (the clock must stop)

        def can_replace(self, message: Message) -> bool:
            if not isinstance(message, EngineDriver.Stepped):
                return False
            if message.generation != self.generation or message.error or self.error:
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
        # (tick, world before the tick's first command, the commands queued since)
        self._checkpoint: tuple[int, tuple[dict[str, Any], persistence.Arrays],
                                list[Command]] | None = None
        self._last: tuple[Snapshot, LiveData] | None = None  # the last delivered

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
             every_s: float = float("inf"), stop_at: int | None = None) -> int:
        """Run up to n ticks, never past tick `stop_at`; returns the ticks run.

        A Stepped (snapshot + the events since the previous one) is delivered after the
        last tick run, and after earlier ticks once `every_s` wall seconds have passed
        since the previous delivery: a snapshot of a large data center costs a fair part
        of a tick, and the screen shows a few per second at most. A tick that raises ends
        the run with a Stepped whose `error` says what happened.
        """
        ran = 0
        events: list[Event] = []
        ticks = 0
        last_delivery = time.perf_counter()
        for i in range(n):
            if cancelled():
                break
            with self._lock:
                if stop_at is not None and self.sim.tick >= stop_at:
                    break
                start = time.perf_counter()
                try:
                    events.extend(self.sim.step(1))
                except Exception as err:  # noqa: BLE001 - the game must survive a bad tick
                    error, event = self._recover(err)
                    events.append(event)
                    self._deliver(deliver, events, ticks, error)
                    return ran
                self._checkpoint = None
                self.tick_cost_s = self._average(self.tick_cost_s, time.perf_counter() - start)
                ran, ticks = ran + 1, ticks + 1
                if i == n - 1 or start - last_delivery >= every_s:
                    self._deliver(deliver, events, ticks)
                    events, ticks, last_delivery = [], 0, time.perf_counter()
        if ticks or events:  # stopped between deliveries: the events still go up
            with self._lock:
                self._deliver(deliver, events, ticks)
        return ran

    def _recover(self, err: Exception) -> tuple[str, Event]:
        """Called under the lock after sim.step raised: undo the tick if we can."""
        tick, time_s = self.sim.tick, self.sim.time_s
        what = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        checkpoint, self._checkpoint = self._checkpoint, None
        if checkpoint is not None and checkpoint[0] == tick:
            self.sim = Simulation.from_state(checkpoint[1], check=self.sim.check)
            undone = "; ".join(describe_command(c) for c in checkpoint[2])
            message = (f"the engine failed at tick {tick} ({what}); the tick was undone "
                       f"without your commands: {undone}")
        else:
            message = (f"the engine failed at tick {tick} ({what}); the world may be "
                       "inconsistent: load a save (ctrl+o)")
        return message, Event(tick, time_s, "engine_error", message)

    def _deliver(self, deliver: Callable[[Stepped], object], events: list[Event],
                 ticks: int, error: str | None = None) -> None:
        """Called under the lock, so two threads can never reorder ticks."""
        start = time.perf_counter()
        try:
            snap, live = self.sim.snapshot(), read_live(self.sim)
        except Exception:  # noqa: BLE001 - a world broken by a failed tick: show the last
            if error is None or self._last is None:
                raise
            snap, live = self._last
        self._last = (snap, live)
        message = EngineDriver.Stepped(self.generation, snap, events, live, error)
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
            return self._submit(command)

    def _submit(self, command: Command) -> Verdict:
        """Under the lock: keep a copy of a small world before its tick's first command."""
        sim = self.sim
        first = not sim.world.pending
        if first and self.world_bytes() <= CHECKPOINT_BYTES:
            self._checkpoint = (sim.tick, sim.save_state(), [])
        verdict = sim.submit(command)
        if verdict.ok and self._checkpoint is not None and self._checkpoint[0] == sim.tick:
            self._checkpoint[2].append(command)
        return verdict

    def world_bytes(self) -> int:
        """What a copy or a save of the world holds: its arrays. The page arrays alone
        settle it for a big world (they are most of it, and summing them copies nothing;
        the save's arrays include converted copies, hundreds of MiB on a big world)."""
        pages = sum(a.nbytes for a in self.sim.world.state.pages.arrays().values())
        if pages > CHECKPOINT_BYTES:  # (the autosave bound is the same)
            return pages
        return sum(a.nbytes for a in persistence.to_plain(self.sim.world)[1].values())

    def save(self, folder: Path, name: str) -> Path:
        """Write folder/<name>.toml (a slot: an older save of that name is replaced)."""
        with self._lock:
            return write_save(folder / f"{name}.toml", self.sim)
