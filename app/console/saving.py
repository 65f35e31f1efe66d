"""Save and load for the App (ctrl+s, ctrl+o): both run in thread workers, since saving or
reading a big data center takes seconds and the UI keeps drawing meanwhile.

OvercommitApp derives from SaveLoad and provides its driver, log (`_note`), clock
(`_pause`) and `_install`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App

from app.console.driver import EngineDriver
from app.console.format import slug
from app.console.screens.load_dialog import LoadDialog
from app.console.screens.overview import OverviewScreen
from app.savefile import read_save
from engine import InputError, Simulation, Snapshot


class SaveLoad(App[int]):
    """The App's saves; OvercommitApp provides the hooks below."""

    driver: EngineDriver
    snapshot: Snapshot

    if TYPE_CHECKING:  # OvercommitApp defines these; declared here for the type checker
        @property
        def saves_dir(self) -> Path: ...

        def _note(self, kind: str, message: str, vm: str | None = None) -> None: ...

        def _pause(self) -> None: ...

        def _install(self, driver: EngineDriver) -> None: ...

    def action_save(self) -> None:
        self._save_in_thread(self.saves_dir, slug(self.driver.spec.scenario.name))

    @work(thread=True, group="save")
    def _save_in_thread(self, folder: Path, name: str) -> None:
        try:
            written = self.driver.save(folder, name)
        except OSError as err:
            self.call_from_thread(self.notify, f"Cannot save to {folder}: {err.strerror}",
                                  severity="error")
            return
        self.call_from_thread(self._saved, written)

    def _saved(self, written: Path) -> None:
        cwd = Path.cwd()
        shown = written.relative_to(cwd) if written.is_relative_to(cwd) else written
        self._note("saved", f"saved to {shown}")
        self.notify(f"Saved to {shown}")

    def action_load(self) -> None:
        self.push_screen(LoadDialog(self.saves_dir), self._load_picked)

    def _load_picked(self, path: Path | None) -> None:
        if path is not None:
            self.load(path)

    @work(thread=True, exclusive=True, group="load")
    def load(self, path: Path) -> None:
        try:
            sim = read_save(path)
        except (InputError, OSError, ValueError) as err:
            self.call_from_thread(self.notify, str(err), title="Cannot load",
                                  severity="error")
            return
        self.call_from_thread(self._loaded, sim, path)

    def _loaded(self, sim: Simulation, path: Path) -> None:
        self.workers.cancel_group(self, "engine")
        self._pause()
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        self._install(EngineDriver(sim, self.driver.generation + 1))
        self._note("loaded", f"loaded {path.name}: tick {self.snapshot.tick}")
        self.notify(f"Loaded {path.name} (tick {self.snapshot.tick})")
