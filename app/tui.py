"""`overcommit play`: open the operator console on a scenario or a save file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.campaign import Campaign
from app.savefile import is_save_file, read_save
from engine import Simulation, load_scenario

if TYPE_CHECKING:
    from textual.app import App

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios/tutorial/first-night.toml"


def open_simulation(path: Path) -> Simulation:
    """A scenario file or a save; bad input raises engine.InputError."""
    if is_save_file(path):
        return read_save(path)
    return Simulation.from_file(path)


def run_console(path: Path | None = None, *, paused: bool = False) -> int:
    """Run the console until the player quits; returns the process exit code.

    The world builds in the console, behind a loading screen with a progress bar (a data
    center takes seconds). A scenario is parsed first, so a bad file is reported before
    the console takes the screen; a build that fails is raised once the console closed.
    """
    path = Path(path) if path is not None else DEFAULT_SCENARIO
    if is_save_file(path):
        title = f"{path.name} (a save)"

        def build(progress: Callable[[int, int], None]) -> Simulation:
            return read_save(path)
    else:
        spec = load_scenario(path)
        title = spec.scenario.name

        def build(progress: Callable[[int, int], None]) -> Simulation:
            return Simulation.from_spec(spec, progress=progress)
    from app.console.app import OvercommitApp  # Textual loads only when playing

    app = OvercommitApp(paused=paused, build=build, title=title)
    code = _run(app)
    if app.build_error is not None:
        raise app.build_error
    return code


def run_campaign(campaign: Campaign) -> int:
    """The console on the level select; the first level not yet won is loaded behind it."""
    level = campaign.progress.first_to_play(campaign.levels)
    from app.console.app import OvercommitApp

    return _run(OvercommitApp(Simulation.from_spec(level.spec), paused=True,
                              saves_dir=campaign.progress.path.parent, campaign=campaign,
                              level=level))


def _run(app: App[int]) -> int:
    result = app.run()
    return app.return_code or (result if isinstance(result, int) else 0)
