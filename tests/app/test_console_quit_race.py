"""Quitting the console just as a screen opens ends it cleanly: no screen's mount handler
looks for widgets the closing app has already taken down (app/console/screens/
mount_guard.py). Each screen the operator can open is opened and the app shut down at
once, before the screen is up."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.console.actions import ACTIONS
from app.console.app import OvercommitApp
from engine import Simulation
from tests.app.test_console import TUTORIAL
from tests.app.test_console_game import SIZE, pilot_test

OPENERS = [f"operate:{a.name}" for a in ACTIONS] + [
    "help", "sla", "briefing", "save", "load", "confirm_quit", "fork", "compare"]


@pytest.mark.parametrize("opener", OPENERS)
@pilot_test
async def test_quitting_as_a_screen_opens_raises_nothing(opener: str, tmp_path: Path) -> None:
    app = OvercommitApp(Simulation.from_file(TUTORIAL), paused=True, briefing=False,
                        saves_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        before = len(app.screen_stack)
        if opener.startswith("operate:"):
            app.action_operate(opener.removeprefix("operate:"))
        else:
            getattr(app, f"action_{opener}")()
        # The screen was asked for (some actions only warn: no target, nothing to do).
        pushed = len(app.screen_stack) > before
    # Leaving the block shut the app down with the screen half open; any exception from
    # its handlers would have been raised out of run_test.
    assert app.return_code in (0, None)
    if opener in ("operate:migrate", "operate:place", "save", "help"):
        assert pushed, f"{opener} opened no screen: the test would prove nothing"


@pilot_test
async def test_a_level_started_as_the_level_select_opens_raises_nothing(
        tmp_path: Path) -> None:
    # The level select asked for, and a level started (which pops it) before the select is
    # up: its mount handler finds its options gone and must do nothing (mount_guard.py).
    from app.campaign import Campaign
    from app.console.screens.level_select import LevelSelectScreen
    from tests.app.test_campaign_console import make_levels

    campaign = Campaign.open(make_levels(tmp_path / "c", 1), tmp_path / "saves")
    first = campaign.levels[0]
    app = OvercommitApp(Simulation.from_spec(first.spec), paused=True,
                        saves_dir=tmp_path / "saves", campaign=campaign, level=first)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.action_levels()
        assert isinstance(app.screen, LevelSelectScreen)
        app.start_level(first)  # at once: the select's Mount comes after it is popped
        await pilot.pause()
        assert not any(isinstance(s, LevelSelectScreen) for s in app.screen_stack)
    assert app.return_code in (0, None)
