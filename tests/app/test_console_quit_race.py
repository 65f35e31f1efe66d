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
