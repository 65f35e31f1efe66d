"""What the App hands down to its screens on every refresh: data, never the simulation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.console.history import Histories
from app.console.live import LiveData
from engine import Command, Event, ScenarioSpec, Snapshot
from engine.commands import Verdict


@dataclass(frozen=True)
class ClockState:
    paused: bool
    speed: int
    ticks_per_s: float | None  # measured; None while paused (keeps paused frames stable)
    finished: bool  # the scenario's duration is over
    pause_in_dialogs: bool = False  # the clock pauses while a dialog is open


@dataclass(frozen=True)
class ConsoleView:
    snapshot: Snapshot
    clock: ClockState
    duration_s: float | None
    next_timeline: str | None  # e.g. "0:02:00 start web3 on h2"
    histories: Histories
    events: Sequence[tuple[int, Event]]  # the App's archive (sequence number, event)
    selected_vm: str | None
    vm_columns: str = "basic"  # the VM tables' column set (vm_columns.COLUMN_SETS)
    live: LiveData = LiveData()  # migrations, cost parts, links (live.py)


# Ask the engine what it would answer to a command, without queueing it.
Preview = Callable[[Command], Verdict]
# A VM's writable working set now: distinct pages written per window ("10s": 812).
WWSReader = Callable[[str], dict[str, int]]


def no_wws(vm: str) -> dict[str, int]:
    return {}


@dataclass(frozen=True)
class ActionContext:
    """What an action's dialog is given: data and a preview function, never the simulation."""

    snapshot: Snapshot
    preview: Preview
    spec: ScenarioSpec  # the scenario as loaded (initial workloads, salting level...)
    vm: str | None = None
    host: str | None = None
    live: LiveData = LiveData()
    wws: WWSReader = no_wws
