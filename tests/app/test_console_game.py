"""Pilot tests of the game loop: the clock (paused, stepped, running in a thread worker),
timeline announcements, and the win/lose screen when every objective is judged."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.widget import Widget
from textual.worker import WorkerCancelled

from app.console.app import OvercommitApp
from app.console.clock import SPEEDS, Clock
from app.console.driver import EngineDriver
from app.console.screens.end_screen import EndScreen
from app.console.widgets.event_log import EventLog
from engine import Event, Simulation
from tests.app.test_console import slow_ticks

SIZE = (120, 40)


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(folder: Path, text: str) -> OvercommitApp:
    path = folder / "scenario.toml"
    path.write_text(text)
    return OvercommitApp(Simulation.from_file(path), paused=True)


def text_of(widget: Widget) -> str:
    return str(widget.render())


def log_text(app: OvercommitApp) -> str:
    """The event log as shown, wrapped lines joined and runs of spaces collapsed."""
    return " ".join(" ".join(line.text for line in app.screen.query_one(EventLog).lines).split())


TIMELINE_SCENARIO = """
[scenario]
name = "Busy evening"
[[host]]
id = "h1"
memory = "256MiB"
low_memory = "64MiB"
[[vm]]
id = "v1"
memory = "64MiB"
workload = { kind = "idle" }
[[timeline]]
at = "3s"
kind = "start_vm"
vm = "v1"
host = "h1"
"""


@pilot_test
async def test_timeline_events_are_announced_in_the_log(tmp_path: Path) -> None:
    app = make_app(tmp_path, TIMELINE_SCENARIO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Next: 0:00:03 start v1 on h1" in text_of(app.screen.query_one("#objectives"))
        await pilot.press(*["full_stop"] * 4)
        await pilot.pause()
        log = log_text(app)
        # The engine announces the entry (kind "timeline") in its own words.
        assert "timeline scheduled: start vm vm=v1 host=h1" in log
        assert "started v1 powered on on h1" in log
        assert log.count("scheduled:") == 1
        assert log.index("scheduled: start vm") < log.index("v1 powered on")
        assert "Next:" not in text_of(app.screen.query_one("#objectives"))


WIN_SCENARIO = """
[scenario]
name = "Short shift"
duration = "5s"
[[host]]
id = "h1"
memory = "256MiB"
low_memory = "64MiB"
[[vm]]
id = "v1"
host = "h1"
memory = "64MiB"
workload = { kind = "idle" }
[[objective]]
metric = "running_vms"
at_least = 1
by = "5s"
description = "Keep v1 up"
"""


@pytest.mark.parametrize(("bound", "title"), [(1, "You won"), (2, "lost")])
@pilot_test
async def test_win_or_lose_when_all_objectives_are_judged(tmp_path: Path, bound: int,
                                                          title: str) -> None:
    app = make_app(tmp_path, WIN_SCENARIO.replace("at_least = 1", f"at_least = {bound}"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for _ in range(5):
            await pilot.press("full_stop")
        await pilot.pause()
        assert isinstance(app.screen, EndScreen)
        assert title in text_of(app.screen.query_one(".dialog--title"))
        assert app.clock.paused
        await pilot.press("escape")
        assert not isinstance(app.screen, EndScreen)
        await pilot.press("full_stop")  # keeps watching; no second end screen
        await pilot.pause()
        assert not isinstance(app.screen, EndScreen)


@pilot_test
async def test_running_clock_in_a_thread_worker_keeps_every_event(tmp_path: Path) -> None:
    app = make_app(tmp_path, TIMELINE_SCENARIO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.driver.tick_cost_s = 1.0  # pretend ticks are slow: they go to a thread worker
        app.action_faster()
        app.action_faster()  # x5
        await pilot.press("space")
        assert not app.clock.paused
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snapshot.tick >= 6:
                break
        await pilot.press("space")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.clock.paused and app.snapshot.tick >= 4
        assert app._worker is not None  # the thread path really ran
        kinds = [ev.kind for _, ev in app.events]
        assert kinds.count("vm_started") == 1 and kinds.count("timeline") == 1


@pilot_test
async def test_stepping_while_a_worker_ticks_keeps_ticks_in_order(tmp_path: Path) -> None:
    app = make_app(tmp_path, TIMELINE_SCENARIO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sim = slow_ticks(app, 0.05)
        app.driver.tick_cost_s = 1.0  # every run of ticks goes to a thread worker
        app._run_ticks(5)
        await pilot.pause(0.06)
        assert app._busy()
        await pilot.press("full_stop", "full_stop")  # stop the worker, then step twice
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.snapshot.tick == sim.tick >= 3 and app._steps_owed == 0
        assert app.snapshot.tick < 7  # the worker stopped early: no 5 + 2 ticks
        ticks = [ev.tick for _, ev in app.events if ev.kind != "welcome"]
        assert ticks == sorted(ticks)


def test_newer_snapshots_replace_queued_ones_but_keep_their_events(tmp_path: Path) -> None:
    snap = make_app(tmp_path, TIMELINE_SCENARIO).snapshot
    first = EngineDriver.Stepped(0, snap, [Event(0, 0.0, "a", "first")])
    second = EngineDriver.Stepped(0, snap, [Event(1, 1.0, "b", "second")])
    assert first.can_replace(second)
    assert [e.message for e in second.events] == ["first", "second"] and second.ticks == 2
    stale = EngineDriver.Stepped(1, snap, [])  # from a simulation loaded since
    assert not second.can_replace(stale)


def test_clock_speeds_and_owed_ticks() -> None:
    clock = Clock(paused=False)
    assert clock.due(10.0) == 0  # the first call only starts the count
    assert clock.due(12.0) == 1  # x1, but no more than half a second owed at once
    for _ in range(10):
        clock.faster()
    assert clock.speed == SPEEDS[-1] == 100
    assert clock.due(12.125) == 12  # 12.5 owed: the half tick carries over
    assert clock.due(12.25) == 13
    clock.pause()
    assert clock.due(20.0) == 0 and clock.ticks_per_s(20.0) is None


@pilot_test
async def test_a_scheduled_command_that_is_rejected_is_notified(tmp_path: Path) -> None:
    # v1 reserves more than h1 has: admission control turns the scheduled start down.
    too_big = TIMELINE_SCENARIO.replace('memory = "64MiB"\nworkload',
                                        'memory = "1GiB"\nmin = "512MiB"\nworkload')
    app = make_app(tmp_path, too_big)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*["full_stop"] * 4)
        await pilot.pause()
    assert len(notes) == 1 and "start_vm rejected" in notes[0], notes


@pilot_test
async def test_every_step_key_runs_its_tick_when_ticks_go_to_a_worker(tmp_path: Path) -> None:
    """Steps pressed quickly while an earlier step's tick runs in a thread worker (a big
    world, or a slow machine) each run: one pressed on a busy stepper is owed, never
    cancels the steps asked for before it."""
    app = make_app(tmp_path, TIMELINE_SCENARIO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sim = slow_ticks(app, 0.02)
        start = app.snapshot.tick
        for _ in range(3):
            app.driver.tick_cost_s = 1.0  # each step goes to a thread worker
            app.action_step()
        for _ in range(3):  # the owed steps start a worker of their own when it is done
            with contextlib.suppress(WorkerCancelled):  # (a cancelled one is the bug)
                await app.workers.wait_for_complete()
            await pilot.pause(0.05)
        assert app._worker is not None  # the thread path really ran
        assert app.snapshot.tick == sim.tick == start + 3 and app._steps_owed == 0
        ticks = [ev.tick for _, ev in app.events if ev.kind != "welcome"]
        assert ticks == sorted(ticks)
