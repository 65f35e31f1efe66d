"""Random key presses (seeded) from the console's own bindings, and random strings typed
into the dialogs, never raise; the engine's invariants hold throughout."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from textual import events
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Input

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
from engine import Simulation, invariants
from engine.commands import Migrate

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "scenarios/tutorial/first-night.toml"
N_STEPS = 400
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


# Typed into whichever field a dialog has: the values that crashed a tick or a keystroke
# before (issue 14), and the ordinary ones that make the dialogs accept.
STRINGS = ["99999999999999999999999999", "1e400", "1e400MiB", "1e30", "1e23", "inf", "-inf",
           "nan", "NaN%", "-1", "abc", "", "   ", "0", "512", "150%", "75%", "0.5", "1,000",
           "0x10", "١٢٣", "64MiB", "256MiB", "1GiB", "2TiB", "50ms", "1Gbit/s", "12e-3"]


def test_random_keys_and_strings_never_raise(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded random keys from the console's bindings, and random strings typed into every
    dialog's fields; the app keeps running and the engine's invariants hold."""
    monkeypatch.chdir(tmp_path)  # ctrl+s writes saves/ here
    rng = random.Random(20240607)
    # Stepping and dialog keys weigh more, so the night moves on and the fields get typed.
    pool = binding_keys() + NAVIGATION + ["full_stop"] * 6 + list("smMbwlt") * 3
    seen: set[str] = set()
    typed = 0

    async def drive() -> None:
        nonlocal typed
        sim = Simulation.from_file(TUTORIAL)
        # A migration runs from the first tick, so the keys meet its panel, its cancel and
        # post-copy dialogs, and the failure tools can break it.
        assert sim.submit(Migrate(vm="web1", to="h2")).ok
        app = OvercommitApp(sim, paused=True)  # with the tutorial's briefing first
        async with app.run_test(size=(100, 32)) as pilot:
            # First every dialog with fields, each given every string in turn (the random
            # part may miss one: keys land in text fields, workers finish in their time).
            await pilot.press("enter", "space", "full_stop")
            for key in ("s", "m", "M", "b", "w", "l", "t", "g"):
                await pilot.press(key)
                for text in STRINGS:
                    for field in app.screen.query(Input):
                        field.value = text
                    await pilot.pause(0)
                seen.add(type(app.screen).__name__)
                await pilot.press("escape")
            for i in range(N_STEPS):
                fields = list(app.screen.query(Input)) if isinstance(app.screen, Dialog) else []
                if fields and rng.random() < 0.5:
                    rng.choice(fields).value = rng.choice(STRINGS)  # Changed: a preview
                    typed += 1
                    await pilot.pause(0)
                    if rng.random() < 0.3:
                        await press(pilot, "enter")
                elif i % 100 == 0:
                    await pilot.press(rng.choice(pool))  # the full pilot path now and then
                else:
                    await press(pilot, rng.choice(pool))
                seen.add(type(app.screen).__name__)
                if not app.clock.paused:  # keep the run deterministic and bounded
                    await press(pilot, "space")
                if i % 10 == 0:  # the keys often land in a text field: the night moves on
                    app.action_step()
                if i % 50 == 0:
                    with app.driver._lock:  # a stepping worker may be mid-tick
                        assert invariants.check(app.driver.sim.world.state) == [], i
            await pilot.pause()
            assert app.is_running
            assert app.snapshot.tick > 0
            assert invariants.check(app.driver.sim.world.state) == []
            assert app.driver.sim.world.state.migrations  # the keys saw one

    start = time.perf_counter()
    asyncio.run(drive())
    print(f"{N_STEPS} steps ({typed} strings typed) in {time.perf_counter() - start:.1f}s; "
          f"screens seen: {sorted(seen)}")
    assert {"OverviewScreen", "ValueDialog", "TargetDialog", "WorkloadDialog",
            "IdleTaxDialog", "MigrateDialog"} <= seen
    assert typed > 50
