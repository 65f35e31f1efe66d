"""Random key presses (seeded) from the console's own bindings never raise."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from textual import events
from textual.binding import Binding
from textual.pilot import Pilot

from app.console.app import OvercommitApp
from app.console.keys import ALL_BINDINGS, QUIT_KEYS
from app.console.screens.choice_dialog import ChoiceDialog
from app.console.screens.confirm_dialog import ConfirmDialog
from app.console.screens.detail import DetailScreen
from app.console.screens.dialog import Dialog
from app.console.screens.end_screen import EndScreen
from app.console.screens.help_screen import HelpScreen
from app.console.screens.idle_tax_dialog import IdleTaxDialog
from app.console.screens.load_dialog import LoadDialog
from app.console.screens.migrate_dialog import MigrateDialog
from app.console.screens.overview import OverviewScreen
from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.stop_dialog import StopDialog
from engine import Simulation
from engine.commands import Migrate

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "scenarios/tutorial/first-night.toml"
N_KEYS = 2000
NAVIGATION = ["up", "down", "left", "right", "enter", "escape", "tab", "shift+tab",
              "pageup", "pagedown", "home", "end", "backspace"]


CHARS = {"full_stop": ".", "plus": "+", "minus": "-", "question_mark": "?", "slash": "/",
         "equals_sign": "=", "space": " ", "dollar_sign": "$"}


async def press(pilot: Pilot[int], key: str) -> None:
    """One key, as pilot.press sends it, then wait until the screen has handled it.

    pilot.press also waits for the process to look idle (two 20 ms sleeps at least), which
    would make thousands of keys take minutes; here the next key follows as soon as the
    screen has processed this one and repainted.
    """
    char = CHARS.get(key, key if len(key) == 1 else None)
    event = events.Key(key, char)
    event.set_sender(pilot.app)
    driver = pilot.app._driver
    assert driver is not None
    driver.send_message(event)
    await pilot.pause(0)


def binding_keys() -> list[str]:
    """Every key the console binds (app, overview, dialogs), less the ones that quit."""
    bindings = [*ALL_BINDINGS, *OverviewScreen.BINDINGS, *DetailScreen.BINDINGS,
                *Dialog.BINDINGS, *PlaceDialog.BINDINGS, *StopDialog.BINDINGS,
                *ChoiceDialog.BINDINGS, *IdleTaxDialog.BINDINGS, *EndScreen.BINDINGS,
                *HelpScreen.BINDINGS, *LoadDialog.BINDINGS, *MigrateDialog.BINDINGS,
                *ConfirmDialog.BINDINGS]
    keys = set()
    for binding in bindings:
        assert isinstance(binding, Binding)
        keys.update(k.strip() for k in binding.key.split(","))
    return sorted(keys - set(QUIT_KEYS))


def test_binding_keys_cover_the_actions() -> None:
    keys = binding_keys()
    for key in ("space", "full_stop", "plus", "minus", "p", "x", "s", "m", "M",
                "b", "w", "d", "t", "h", "z", "l", "c", "g", "G", "P", "f", "k", "e",
                "dollar_sign", "ctrl+g", "y", "n",
                "question_mark", "ctrl+s", "ctrl+o", "slash", "o", "escape"):
        assert key in keys
    assert "ctrl+q" not in keys


def test_random_keys_never_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ctrl+s writes saves/ here
    rng = random.Random(20240607)
    # Stepping keys weigh more so the night moves on while the rest pokes at the UI.
    pool = binding_keys() + NAVIGATION + ["full_stop"] * 6 + list("0123456789.%GiBM")
    keys = [rng.choice(pool) for _ in range(N_KEYS)]
    seen: set[str] = set()

    async def drive() -> None:
        sim = Simulation.from_file(TUTORIAL)
        # A migration runs from the first tick, so the keys meet its panel, its cancel and
        # post-copy dialogs, and the failure tools can break it.
        assert sim.submit(Migrate(vm="web1", to="h2")).ok
        app = OvercommitApp(sim, paused=True)
        async with app.run_test(size=(100, 32)) as pilot:
            for i, key in enumerate(keys):
                if i % 100 == 0:
                    await pilot.press(key)  # the full pilot path now and then
                else:
                    await press(pilot, key)
                seen.add(type(app.screen).__name__)
                if not app.clock.paused:  # keep the run deterministic and bounded
                    await press(pilot, "space")
            await pilot.pause()
            assert app.is_running
            assert app.snapshot.tick > 0
            assert app.driver.sim.world.state.migrations  # the keys saw one

    start = time.perf_counter()
    asyncio.run(drive())
    print(f"{N_KEYS} keys in {time.perf_counter() - start:.1f}s; screens seen: {sorted(seen)}")
    assert {"OverviewScreen"} < seen  # the keys did open other screens too
