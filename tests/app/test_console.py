"""Pilot tests of the operator console, clock paused, ticks stepped by key."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, OptionList

from app.console.app import OvercommitApp
from app.console.clock import SPEEDS, Clock
from app.console.driver import EngineDriver
from app.console.screens.end_screen import EndScreen
from app.console.screens.help_screen import HelpScreen
from app.console.screens.host_detail import HostDetailScreen
from app.console.screens.load_dialog import LoadDialog
from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.stop_dialog import StopDialog
from app.console.screens.value_dialog import ValueDialog
from app.console.screens.vm_detail import VMDetailScreen
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import EventLog
from app.console.widgets.host_list import HostList
from app.console.widgets.vm_table import VMTable
from app.console.widgets.verdict_line import VerdictLine
from app.tui import open_simulation, run_console
from engine import Event, InputError, Simulation

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "scenarios/tutorial/first-night.toml"
SIZE = (120, 40)


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(path: Path = TUTORIAL) -> OvercommitApp:
    return OvercommitApp(Simulation.from_file(path), paused=True)


def text_of(widget: object) -> str:
    return str(getattr(widget, "render")())


def log_text(app: OvercommitApp) -> str:
    """The event log as shown, wrapped lines joined and runs of spaces collapsed."""
    return " ".join(" ".join(line.text for line in app.screen.query_one(EventLog).lines).split())


def table_cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def select_vm(pilot, vm: str) -> None:
    table = pilot.app.screen.query_one(VMTable)
    table.move_cursor(row=table.get_row_index(vm))
    await pilot.pause()
    assert pilot.app.selected_vm == vm


@pilot_test
async def test_opens_on_the_tutorial_and_steps_by_key() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        clock = app.screen.query_one(ClockBar)
        assert "First night" in text_of(clock)
        assert "tick 0" in text_of(clock) and "PAUSED" in text_of(clock)
        await pilot.press("full_stop", "full_stop", "n")
        await pilot.pause()
        assert app.snapshot.tick == 3
        assert "tick 3" in text_of(clock)
        assert "0:00:03" in text_of(clock)
        assert "ticks/s" not in text_of(clock)  # no wall-clock numbers while paused
        await pilot.press("plus", "plus")
        assert app.clock.speed == 5 and "×5" in text_of(clock)
        await pilot.press("minus")
        assert app.clock.speed == 2


@pilot_test
async def test_select_a_vm_and_open_its_detail() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(VMTable)
        assert table.row_count == 7
        first = table.selected_vm
        await pilot.press("down")
        assert app.selected_vm not in (None, first)
        chosen = app.selected_vm
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, VMDetailScreen) and app.screen.subject == chosen
        assert f"VM {chosen}" in text_of(app.screen.query_one(ClockBar))
        await pilot.press("full_stop")
        await pilot.pause()
        assert "tick 1" in text_of(app.screen.query_one(ClockBar))
        await pilot.press("escape")
        assert not isinstance(app.screen, VMDetailScreen)


@pilot_test
async def test_host_detail_from_the_host_list() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        hosts = app.screen.query_one(HostList)
        hosts.focus()
        hosts.highlighted = hosts.get_option_index("host:h2")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostDetailScreen) and app.screen.subject == "h2"
        vms_here = app.screen.query_one(VMTable)
        assert {str(k.value) for k in vms_here.rows} == {"web2", "batch1", "desk2"}


@pilot_test
async def test_place_the_queued_vm_and_see_it_start() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(VMTable)
        assert table_cell(table, "web3", "host") == "queued"
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PlaceDialog) and dialog.vm == "web3"
        hosts = dialog.query_one(DataTable)
        for host in ("h1", "h2"):
            assert "accepted" in table_cell(hosts, host, "verdict")
            assert "x →" in table_cell(hosts, host, "ratio")
        await pilot.press("down", "enter")  # h2
        await pilot.pause()
        assert not isinstance(app.screen, PlaceDialog)
        assert "start web3 on h2: accepted" in log_text(app)
        await pilot.press("full_stop")
        await pilot.pause()
        assert table_cell(table, "web3", "host") == "h2"
        assert app.snapshot.vm("web3").running
        assert "started web3 powered on on h2" in log_text(app)


@pilot_test
async def test_stopping_a_vm_that_is_not_running_is_refused_with_the_reason() -> None:
    app = make_app()
    untouched = Simulation.from_file(TUTORIAL)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "web3")
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, StopDialog)
        verdict = text_of(dialog.query_one(VerdictLine))
        assert "rejected" in verdict and "web3 is not running" in verdict
        await pilot.press("enter")  # cannot confirm a rejected command
        await pilot.pause()
        assert app.screen is dialog and dialog.rejections == 1
        await pilot.press("escape", "full_stop")
        await pilot.pause()
    untouched.step(1)
    assert app.driver.sim.digest() == untouched.digest()


@pilot_test
async def test_min_above_max_is_refused_and_changes_nothing() -> None:
    app = make_app()
    untouched = Simulation.from_file(TUTORIAL)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "web1")
        await pilot.press("m")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ValueDialog) and dialog.kind == "min"
        field = dialog.query_one(Input)
        assert field.value == "256MiB"
        field.value = "2GiB"
        await pilot.pause()
        assert "min 2GiB exceeds max 1GiB" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and dialog.rejections == 1
        field.value = "a lot"
        await pilot.pause()
        assert "invalid" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("escape", "full_stop")
        await pilot.pause()
        assert app.snapshot.vm("web1").min_bytes == 256 * 2**20
    untouched.step(1)
    assert app.driver.sim.digest() == untouched.digest()


@pilot_test
async def test_set_shares_is_applied_at_the_next_tick() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "db1")
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ValueDialog)
        dialog.query_one(Input).value = "20000"
        await pilot.pause()
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter", "full_stop")
        await pilot.pause()
        assert app.snapshot.vm("db1").shares == 20000
        assert table_cell(app.screen.query_one(VMTable), "db1", "shares") == "20000"


@pilot_test
async def test_save_then_load_restores_the_tick(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("full_stop", "full_stop", "full_stop", "ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        save = tmp_path / "saves" / "first-night-t3.toml"
        assert save.is_file()
        assert "saved to saves/first-night-t3.toml" in log_text(app)
        await pilot.press("full_stop", "full_stop")
        await pilot.pause()
        assert app.snapshot.tick == 5
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, LoadDialog)
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, LoadDialog)
        assert app.snapshot.tick == 3
        assert "tick 3" in text_of(app.screen.query_one(ClockBar))
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.snapshot.tick == 4
    resumed = open_simulation(save)  # what `overcommit play SAVE` opens
    assert resumed.tick == 3


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
    path = tmp_path / "busy.toml"
    path.write_text(TIMELINE_SCENARIO)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Next: 0:00:03 start v1 on h1" in text_of(app.screen.query_one("#objectives"))
        await pilot.press(*["full_stop"] * 4)
        await pilot.pause()
        log = log_text(app)
        assert "timeline scheduled: start v1 on h1" in log
        assert "started v1 powered on on h1" in log
        assert log.index("scheduled: start v1") < log.index("v1 powered on")
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
    path = tmp_path / "short.toml"
    path.write_text(WIN_SCENARIO.replace("at_least = 1", f"at_least = {bound}"))
    app = make_app(path)
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
async def test_help_explains_the_actions() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        for words in ("overcommit ratio", "Place a waiting VM", "Stop a VM",
                      "Set memory shares", "ctrl+s"):
            assert words in app.screen.text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pilot_test
async def test_command_palette_opens_an_action_dialog() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"stop a vm: batch1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StopDialog) and app.screen.vm == "batch1"
        assert "accepted" in text_of(app.screen.query_one(VerdictLine))


@pilot_test
async def test_filter_and_sort_the_vm_table() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(VMTable)
        await pilot.press("slash", *"apache")
        await pilot.pause()
        assert {str(k.value) for k in table.rows} == {"web1", "web2", "web3"}
        await pilot.press("escape")
        assert app.focused is table
        app.screen.query_one(Input).value = ""
        await pilot.pause()
        assert table.row_count == 7
        table.sort_by("configured", reverse=True)
        await pilot.pause()
        first = str(table.coordinate_to_cell_key((0, 0)).row_key.value)
        assert first in ("db1", "web1", "web2")  # the 1GiB VMs
        await pilot.press("o")
        assert table.sort_key == "target"


@pilot_test
async def test_running_clock_in_a_thread_worker_keeps_every_event(tmp_path: Path) -> None:
    path = tmp_path / "busy.toml"
    path.write_text(TIMELINE_SCENARIO)
    app = make_app(path)
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


def test_newer_snapshots_replace_queued_ones_but_keep_their_events() -> None:
    sim = Simulation.from_file(TUTORIAL)
    snap = sim.snapshot()
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


def test_run_console_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run_console(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario]\nname = 3\n")
    with pytest.raises(InputError):
        run_console(broken)
