"""What-if branches in the console: fork (y), act differently, compare (Y) at one time,
continue in another branch or drop one; a fork that does nothing different stays
bit-identical to its parent; the fifth fork and forks beyond the memory budget are refused.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.pilot import Pilot

from app.console import forking
from app.console.app import OvercommitApp
from app.console.driver import EngineDriver
from app.console.screens.compare_screen import CompareScreen, commands_text, compare_table
from app.console.screens.overview import OverviewScreen
from app.console.widgets.event_log import EventLog
from engine import Simulation
from engine.commands import StartVM
from tests.app.test_console import SIZE, TUTORIAL, make_app, pilot_test


def plain(renderable: object) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def settle(pilot: Pilot[int]) -> None:
    """Let the fork or compare worker finish and its result reach the screen."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def fork(pilot: Pilot[int]) -> None:
    await pilot.press("y")
    await settle(pilot)


async def compare(pilot: Pilot[int]) -> CompareScreen:
    await pilot.press("Y")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, CompareScreen) and screen.summaries
    return screen


def log_text(app: OvercommitApp) -> str:
    """The overview's event log (under any screen), runs of spaces collapsed."""
    app.refresh_views()
    overview = app.screen_stack[0]
    assert isinstance(overview, OverviewScreen)
    lines = overview.query_one(EventLog).lines
    return " ".join(" ".join(line.text for line in lines).split())


def table_of(screen: CompareScreen) -> str:
    return plain(compare_table(screen.summaries, screen.selected))


def branch_names(app: OvercommitApp) -> list[str]:
    return [b.name for b in app._tree or ()]


@pilot_test
async def test_fork_place_the_customer_in_b_only_compare_and_go_back_to_a() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("full_stop", "full_stop")
        await fork(pilot)
        assert branch_names(app) == ["A", "B"] and app.clock.paused
        assert "forked at 0:00:10: now in branch B; A waits at 0:00:10; Y compares" in (
            log_text(app))
        assert app.driver.submit(StartVM(vm="web3", host="h2")).ok  # in B only
        await pilot.press(*["full_stop"] * 5)
        assert app.snapshot.tick == 7

        screen = await compare(pilot)
        a, b = screen.summaries
        assert (a.name, a.current, b.name, b.current) == ("A", False, "B", True)
        assert a.snapshot.tick == b.snapshot.tick == 7  # A ran headless to B's time
        assert a.snapshot.vm("web3").status == "queued" and b.snapshot.vm("web3").running
        assert b.snapshot.revenue > a.snapshot.revenue
        table = table_of(screen)
        assert "6/7 " in table and "7/7 ★" in table  # running VMs: B is better
        assert "forked from" in table and "A 0:00:10" in table  # B's origin
        commands = plain(commands_text(screen.summaries)).splitlines()
        assert "A  none" in commands and "B  0:00:10 start web3 on h2" in commands

        await pilot.press("space", "full_stop")  # the clock waits while comparing
        assert app.snapshot.tick == 7 and app.clock.paused
        await pilot.press("1")  # continue in A
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert app.snapshot.vm("web3").status == "queued" and app.snapshot.tick == 7
        assert "now in branch A at 0:00:35; B waits; Y compares" in log_text(app)
        await pilot.press("full_stop")  # A goes on from where it waited
        assert app.snapshot.tick == 8 and app.driver.sim.snapshot().vm("web3").status == (
            "queued")

        screen = await compare(pilot)  # B catches up by one tick; then drop B
        assert [s.snapshot.tick for s in screen.summaries] == [8, 8]
        assert screen.selected == "A"
        await pilot.press("x")  # the current branch cannot be dropped
        assert branch_names(app) == ["A", "B"]
        await pilot.press("right", "x")
        assert branch_names(app) == ["A", "B"]  # a second x confirms
        await pilot.press("x")
        await pilot.pause()
        assert branch_names(app) == ["A"] and [s.name for s in screen.summaries] == ["A"]
        assert "dropped branch B" in log_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


@pilot_test
async def test_a_fork_without_another_action_stays_bit_identical_and_four_is_the_most() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("full_stop")
        await fork(pilot)
        await pilot.press(*["full_stop"] * 8)  # B runs on; A waits at tick 1
        screen = await compare(pilot)
        assert "★" not in table_of(screen)  # nothing to choose between them
        digests = {b.driver.sim.digest() for b in app._tree or ()}
        assert len(digests) == 1  # A, run headless, ended bit-identical to B
        await pilot.press("escape")

        await fork(pilot)
        await fork(pilot)
        assert branch_names(app) == ["A", "B", "C", "D"]
        await fork(pilot)
        assert branch_names(app) == ["A", "B", "C", "D"] and app.driver is app._tree[-1].driver
        assert "cannot fork: at most 4 branches (A to D)" in log_text(app)

        # Another world installed (a load, a campaign level) leaves the branches behind.
        app._install(EngineDriver(Simulation.from_file(TUTORIAL), app.driver.generation + 1))
        app._drop_stale_branches()
        assert app._tree is None
        assert "the branches of the previous world (A, B, C, D) were dropped" in log_text(app)


@pilot_test
async def test_a_fork_beyond_the_memory_budget_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        world = app.driver
        monkeypatch.setattr(forking, "BRANCH_BUDGET_BYTES", 16 * 2**20)  # the tutorial: 12MiB
        await fork(pilot)
        assert branch_names(app) == ["A"] and app.driver.sim is world.sim
        assert "cannot fork: the branches would take" in log_text(app)
        assert "over the 16MiB budget" in log_text(app)

        monkeypatch.setattr(forking, "BRANCH_BUDGET_BYTES", 2**40)
        monkeypatch.setattr(forking, "available_memory", lambda: 8 * 2**20)
        await fork(pilot)
        assert branch_names(app) == ["A"]
        assert "only 8MiB of memory is free" in log_text(app)
