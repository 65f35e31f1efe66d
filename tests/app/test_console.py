"""Pilot tests of the operator console, clock paused, ticks stepped by key."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList, ProgressBar
from textual.widgets.data_table import DuplicateKey
from textual.worker import get_current_worker

from app.console.app import OvercommitApp
from app.console.screens.help_screen import HelpScreen
from app.console.screens.host_detail import HostDetailScreen
from app.console.screens.load_dialog import LoadDialog
from app.console.screens.loading import LoadingScreen
from app.console.screens.overview import OverviewScreen
from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.save_dialog import SaveDialog
from app.console.screens.stop_dialog import StopDialog
from app.console.screens.value_dialog import ValueDialog
from app.console.screens.vm_detail import VMDetailScreen
from app.console.widgets.clock_bar import ClockBar
from app.console.widgets.event_log import EventLog
from app.console.widgets.host_list import HostList
from app.console.widgets.verdict_line import VerdictLine
from app.console.widgets.vm_table import VMTable
from app.tui import open_simulation, run_console
from engine import Event, InputError, Simulation, parse_scenario

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
    """The console on the tutorial, past its briefing (test_console_fixes.py opens it)."""
    return OvercommitApp(Simulation.from_file(path), paused=True, briefing=False)


def text_of(widget: Widget) -> str:
    return str(widget.render())


def log_text(app: OvercommitApp) -> str:
    """The event log as shown, wrapped lines joined and runs of spaces collapsed."""
    return " ".join(" ".join(line.text for line in app.screen.query_one(EventLog).lines).split())


def two_tables(first: DataTable, second: DataTable) -> App[None]:
    """An app showing just these two tables, one above the other."""

    class Two(App[None]):
        def compose(self) -> ComposeResult:
            yield first
            yield second

    return Two()


def table_cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def steps_settled(pilot) -> None:
    """Wait until the step keys pressed so far have all run: where ticks are slower than a
    frame (a slow machine), a step goes to a thread worker, and one pressed meanwhile is
    owed and starts its own worker once that one is done."""
    while pilot.app._busy() or pilot.app._steps_owed:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.pause()


def slow_ticks(app: OvercommitApp, seconds: float) -> Simulation:
    """Make each tick of the app's simulation take `seconds` longer; returns it."""
    sim = app.driver.sim
    real_step = sim.step

    def slow_step(n: int = 1) -> list[Event]:
        time.sleep(seconds)
        return real_step(n)

    sim.step = slow_step  # type: ignore[method-assign]
    return sim


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
        assert "0:00:15" in text_of(clock)  # the tutorial ticks 5 s
        assert "ticks/s" not in text_of(clock)  # no wall-clock numbers while paused
        await pilot.press("plus", "plus")
        assert app.clock.speed == 5 and "×5" in text_of(clock)
        await pilot.press("minus")
        assert app.clock.speed == 2


@pilot_test
async def test_the_compiled_loops_warm_up_then_the_world_is_frozen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The warm-up thread tells the app by a message (an app gone meanwhile drops it); the
    # app then freezes what lives on, numba's objects with the rest, and unfreezes it all
    # when it closes.
    import gc

    from engine import kernels

    monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
    warmed = threading.Event()

    def hook(message: Any) -> None:
        if isinstance(message, OvercommitApp.KernelsWarm):
            warmed.set()

    gc.unfreeze()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if warmed.is_set() and gc.get_freeze_count() > 0:
                break
        assert warmed.is_set() and gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


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
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)  # a named slot, the scenario's by default
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        save = tmp_path / "saves" / "first-night.toml"
        assert save.is_file()
        assert "saved to saves/first-night.toml" in log_text(app)
        await pilot.press("full_stop", "full_stop")
        await pilot.pause()
        assert app.snapshot.tick == 5
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, LoadDialog)
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1
        line = str(options.get_option_at_index(0).prompt)  # scenario, time and profit
        assert "First night" in line and "0:00:15" in line and "profit $" in line
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, LoadDialog)
        assert app.snapshot.tick == 3 and app.clock.paused  # a loaded game starts paused
        assert "tick 3" in text_of(app.screen.query_one(ClockBar))
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.snapshot.tick == 4
    resumed = open_simulation(save)  # what `overcommit play SAVE` opens
    assert resumed.tick == 3


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
async def test_a_sorted_vm_table_follows_the_values_tick_by_tick() -> None:
    """Sorted by resident memory (which grows as the guests boot), the table reorders
    each tick the same VMs are shown, and a cell updates in place."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(VMTable)
        table.sort_by("resident", reverse=True)
        orders = set()
        for _ in range(6):
            await pilot.press("full_stop")
            await pilot.pause()
            rows = app.snapshot.vms
            resident = rows.columns["resident_bytes"]
            shown = [str(r.key.value) for r in table.ordered_rows]
            got = [float(resident[rows.index_of(v)]) for v in shown]
            assert got == sorted(got, reverse=True) and len(shown) == len(rows)
            orders.add(tuple(shown))
            top = shown[0]
            assert table_cell(table, top, "resident").split() and \
                table_cell(table, top, "resident") == table._texts(rows, rows.index_of(top))[
                    [c.key for c in table._columns].index("resident")]
        assert len(orders) > 1  # the order did change along the way


def test_run_console_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run_console(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario]\nname = 3\n")
    with pytest.raises(InputError):
        run_console(broken)


# Five sizes of VM: five runs laid out apart, so the build reports progress five times.
SEVERAL_SIZES = {
    "scenario": {"name": "several sizes", "seed": 1, "duration": "1h"},
    "switch": [{"id": "tor"}, {"id": "gw", "kind": "gateway"}],
    "link": [{"a": "tor", "b": "gw", "capacity": "10Gbit/s"}],
    "host_group": [{"id": "h", "count": 4, "memory": "256MiB", "switch": "tor"}],
    "vm_group": [{"id": f"g{m}", "count": 2, "memory": f"{m}MiB", "hosts": ["*"]}
                 for m in (8, 12, 16, 20, 24)],
}


@pilot_test
async def test_loading_screen_while_the_world_builds() -> None:
    spec = parse_scenario(SEVERAL_SIZES)
    gate = threading.Event()  # holds the build after its second step, for a look
    steps: list[tuple[int, int]] = []
    ui_thread = threading.get_ident()

    def build(progress: Callable[[int, int], None]) -> Simulation:
        def step(done: int, total: int) -> None:
            assert threading.get_ident() != ui_thread  # built off the UI thread
            steps.append((done, total))
            progress(done, total)
            if len(steps) == 2:
                assert gate.wait(timeout=30)

        return Simulation.from_spec(spec, progress=step)

    app = OvercommitApp(paused=True, briefing=False, build=build, title="several sizes")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2000):  # until the second step reached the screen
            await pilot.pause(0.01)
            if isinstance(app.screen, LoadingScreen) and app.screen.done == 4:
                break
        screen = app.screen
        assert isinstance(screen, LoadingScreen) and app.loading
        bar = screen.query_one(ProgressBar)
        assert (bar.progress, bar.total) == (4, 10)
        assert "4 of 10 VMs powered on" in text_of(screen.query_one("#loading-count"))
        assert "Building several sizes" in text_of(screen.query_one("#loading-title"))
        await pilot.press("space", "full_stop")  # no world yet: the clock keys do nothing
        gate.set()
        for _ in range(300):
            await pilot.pause(0.01)
            if isinstance(app.screen, OverviewScreen):
                break
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen) and not app.loading
        assert len(app.screen_stack) == 1  # the loading screen is gone, not underneath
        assert app.screen.query_one(VMTable).row_count == 10
        assert app.snapshot.tick == 0 and app.clock.paused
        assert len(steps) >= 5 and steps[-1] == (10, 10)


def test_a_failed_build_is_raised_after_the_console_closes(tmp_path: Path) -> None:
    def build(progress: Callable[[int, int], None]) -> Simulation:
        raise InputError("world.toml", "host[0].memory", "too big to build")

    async def run() -> OvercommitApp:
        app = OvercommitApp(build=build, title="doomed")
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(100):
                await pilot.pause(0.01)
                if app.build_error is not None:
                    break
        return app

    app = asyncio.run(run())
    assert isinstance(app.build_error, InputError) and "too big" in str(app.build_error)


@pilot_test
async def test_quitting_while_the_world_builds_stops_the_build() -> None:
    spec = parse_scenario(SEVERAL_SIZES)
    steps: list[tuple[int, int]] = []
    resumed = threading.Event()

    def build(progress: Callable[[int, int], None]) -> Simulation:
        worker = get_current_worker()

        def step(done: int, total: int) -> None:
            steps.append((done, total))
            progress(done, total)
            if len(steps) == 1:  # the build goes on only once the player has quit
                for _ in range(3000):
                    if worker.is_cancelled:
                        break
                    time.sleep(0.01)
                resumed.set()

        return Simulation.from_spec(spec, progress=step)

    app = OvercommitApp(build=build, title="several sizes")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            await pilot.pause(0.01)
            if isinstance(app.screen, LoadingScreen) and app.screen.done == 2:
                break
        await pilot.press("ctrl+q")  # quits at once: nothing was played
    for _ in range(3000):
        if resumed.is_set():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # time for the build to go on, were it not stopped
    assert steps == [(2, 10), (4, 10)]  # stopped at its next step, not built on
    assert app.build_error is None


@pilot_test
async def test_rows_added_at_once_are_rows_like_any_other() -> None:
    """FixedWidths.add_rows_at_once (a column switch refills the VM table with it) leaves
    the table as add_row would, row for row."""
    from app.console.widgets.fit_table import FixedWidths

    app = two_tables(FixedWidths(id="one"), FixedWidths(id="bulk"))
    async with app.run_test(size=(60, 30)) as pilot:
        one, bulk = app.query_one("#one", FixedWidths), app.query_one("#bulk", FixedWidths)
        rows = [(f"r{i}", [f"cell {i}", str(i * i)]) for i in range(12)]
        for table in (one, bulk):
            table.add_column("A", key="a", width=8)
            table.add_column("B", key="b", width=5)
        for key, cells in rows[:3]:
            one.add_row(*cells, key=key)
        bulk.add_rows_at_once(rows[:3])
        for key, cells in rows[3:]:
            one.add_row(*cells, key=key)
        bulk.add_rows_at_once(rows[3:])
        await pilot.pause()
        for table in (one, bulk):
            assert table.row_count == 12
            assert [r.key.value for r in table.ordered_rows] == [k for k, _ in rows]
            assert table.get_row("r5") == ["cell 5", "25"]
            assert table.get_row_at(11) == ["cell 11", "121"]
            assert table.cursor_coordinate == (0, 0)
            assert table.virtual_size == one.virtual_size
        assert [one.render_line(y).text for y in range(8)] == \
            [bulk.render_line(y).text for y in range(8)]
        with pytest.raises(DuplicateKey):
            bulk.add_rows_at_once([("r1", ["again"])])


@pilot_test
async def test_fixed_widths_keeps_its_row_order_only_while_rows_stay() -> None:
    """The row order and line index a FixedWidths keeps across cell updates follow every
    way rows come, go or move, and match DataTable's own (its rows one line high)."""
    from app.console.widgets.fit_table import FixedWidths

    app = two_tables(FixedWidths(id="kept"), DataTable(id="plain"))
    async with app.run_test(size=(60, 30)) as pilot:
        kept, plain = app.query_one("#kept", FixedWidths), app.query_one("#plain", DataTable)

        def same() -> None:
            order = [r.key.value for r in plain.ordered_rows]
            assert [r.key.value for r in kept.ordered_rows] == order
            assert len(kept._y_offsets) == len(plain._y_offsets) == len(order)
            assert [kept._y_offsets[y] for y in range(len(order))] == list(plain._y_offsets)
            assert kept._y_offsets[1:3] == plain._y_offsets[1:3]
            assert [kept.render_line(y).text for y in range(len(order) + 1)] == \
                [plain.render_line(y).text for y in range(len(order) + 1)]

        for table in (kept, plain):
            table.add_column("A", key="a", width=6)
            for i in (3, 1, 2):
                table.add_row(f"v{i}", key=f"r{i}")
        await pilot.pause()
        same()
        for table in (kept, plain):
            table.update_cell("r1", "a", "w1")  # a cell changes: the order stays
        same()
        for table in (kept, plain):
            table.sort("a")  # same length, new order
        await pilot.pause()
        same()
        for table in (kept, plain):
            table.remove_row("r2")
            table.add_row("v9", key="r9")  # one goes, one comes: same length again
        await pilot.pause()
        same()
        for table in (kept, plain):
            table.clear()
            table.add_row("z", key="z")
        await pilot.pause()
        same()
        kept.add_row("tall\nrow", key="t", height=2)  # a taller row: DataTable's lines
        assert kept._tall_rows and len(kept._y_offsets) == 3
        assert kept._y_offsets[2] == (kept.ordered_rows[1].key, 1)


@pilot_test
async def test_fixed_widths_draws_a_cell_again_only_when_it_would_look_different() -> None:
    """A table filled again with equal cells (a column switch refills the VM table) reuses
    their renderings; a cell that differs in text, spans or justification is drawn."""
    from rich.text import Text

    from app.console.widgets.fit_table import FixedWidths

    app = two_tables(FixedWidths(id="kept"), DataTable(id="plain"))
    async with app.run_test(size=(60, 30)) as pilot:
        kept, plain = app.query_one("#kept", FixedWidths), app.query_one("#plain", DataTable)
        drawn: list[object] = []
        real = DataTable._render_cell

        def counting(self: DataTable, row: int, *args: Any, **kwargs: Any) -> Any:
            if self is kept and row >= 0:
                drawn.append(self.get_cell_at(Coordinate(row, args[0])))
            return real(self, row, *args, **kwargs)

        def fill(cells: list[Text]) -> None:
            for table in (kept, plain):
                table.clear(columns=True)
                table.add_column("A", key="a", width=8)
                for i, cell in enumerate(cells):
                    table.add_row(cell, key=f"r{i}")

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(DataTable, "_render_cell", counting)
            fill([Text("one"), Text("two")])
            await pilot.pause()
            assert len(drawn) == 2
            drawn.clear()
            fill([Text("one"), Text("two")])  # equal, new objects: nothing drawn
            await pilot.pause()
            assert drawn == []
            bold = Text("two")
            bold.stylize("bold")
            fill([Text("one", justify="right"), bold])  # each differs: both drawn
            await pilot.pause()
            assert [str(c) for c in drawn] == ["one", "two"]
            assert [kept.render_line(y).text for y in range(3)] == \
                [plain.render_line(y).text for y in range(3)]


@pilot_test
async def test_a_late_delivery_of_an_older_tick_does_not_take_the_screen_back() -> None:
    """A stopped worker's last Stepped can be handled after the step that followed it:
    the screen keeps the newer world, and the older tick's events still reach the log."""
    from app.console.driver import EngineDriver
    from engine.events import Event

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        old_snap, old_live = app.driver.snapshot(), app.driver.live()
        for _ in range(3):
            await pilot.press("full_stop")
        await pilot.pause()
        newer = app.snapshot.tick
        assert newer == old_snap.tick + 3
        late = EngineDriver.Stepped(app.driver.generation, old_snap,
                                    [Event(old_snap.tick, old_snap.time_s, "note",
                                           "a late event from tick zero")], old_live, None)
        late.ticks = 1
        app.post_message(late)
        await pilot.pause()
        assert app.snapshot.tick == newer and app.live is not old_live
        assert "a late event from tick zero" in log_text(app)


MANY_HOSTS = {
    "scenario": {"name": "many hosts", "seed": 1, "duration": "1h"},
    "switch": [{"id": "tor"}, {"id": "gw", "kind": "gateway"}],
    "link": [{"a": "tor", "b": "gw", "capacity": "10Gbit/s"}],
    "policy": {"memory": {"overhead_per_vm": "4KiB"}},
    "host_group": [{"id": "h", "count": 40, "memory": "64MiB", "switch": "tor"}],
    "vm_group": [{"id": "v", "count": 40, "memory": "256KiB", "hosts": ["*"]}],
}


@pilot_test
async def test_the_host_list_draws_the_hosts_on_screen_and_the_others_as_they_come_in() -> None:
    app = OvercommitApp(Simulation.from_spec(parse_scenario(MANY_HOSTS)), paused=True,
                        briefing=False)
    async with app.run_test(size=SIZE) as pilot:
        hosts = app.screen.query_one(HostList)
        for _ in range(200):  # until the first frame shows the hosts
            await pilot.pause(0.01)
            if hosts.option_count:
                break

        def line(host: str) -> str:
            return str(hosts.get_option(f"host:{host}").prompt)

        assert "free" in line("h0") and "NIC" in line("h0")
        assert "free" not in line("h39")  # below the list's 16 rows: not drawn yet
        hosts.scroll_end(animate=False)
        await pilot.pause()
        assert "free" in line("h39") and "NIC" in line("h39")
        narrow = len(line("h39"))
        await pilot.press("v")  # the side pane goes: the host list is wider, back at the top
        await pilot.pause()
        assert not app.screen.side_pane_visible()
        assert len(line("h0")) > narrow  # drawn again at its new width
        assert "free" not in line("h39")
        hosts.scroll_end(animate=False)
        await pilot.pause()
        assert len(line("h39")) == len(line("h0"))
        await pilot.press("v")
        await pilot.pause()
        assert len(line("h0")) == narrow
