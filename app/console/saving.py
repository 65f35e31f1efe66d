"""Saves for the App: named slots (ctrl+s), the load list (ctrl+o), autosave every few
simulated minutes and on quit (ctrl+q asks first). Saving and loading run in thread
workers, since a big data center takes seconds and the UI keeps drawing meanwhile; a
loaded game starts paused.

OvercommitApp derives from SaveLoad and provides its driver, log (`_note`), clock
(`_pause`) and `_install`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App

from app.console.driver import CHECKPOINT_BYTES, EngineDriver
from app.console.format import slug
from app.console.screens.load_dialog import LoadDialog
from app.console.screens.overview import OverviewScreen
from app.console.screens.save_dialog import QuitDialog, SaveDialog
from app.savefile import read_save
from engine import InputError, Simulation, Snapshot

AUTOSAVE_S = 300.0  # simulated seconds between autosaves
AUTOSAVE_MAX_BYTES = CHECKPOINT_BYTES  # bigger worlds take too long to save every 5 min


class SaveLoad(App[int]):
    """The App's saves; OvercommitApp provides the hooks below."""

    driver: EngineDriver
    snapshot: Snapshot
    _next_autosave_s = AUTOSAVE_S
    _autosave_off_noted = False

    if TYPE_CHECKING:  # OvercommitApp defines these; declared here for the type checker
        @property
        def saves_dir(self) -> Path: ...

        def _note(self, kind: str, message: str, vm: str | None = None) -> None: ...

        def _pause(self) -> None: ...

        def _install(self, driver: EngineDriver) -> None: ...

        @property
        def loading(self) -> bool: ...

    def slot_name(self) -> str:
        return slug(self.driver.spec.scenario.name)

    def autosave_name(self) -> str:
        return f"autosave-{self.slot_name()}"

    def _shown(self, path: Path) -> Path:
        cwd = Path.cwd()
        return path.relative_to(cwd) if path.is_relative_to(cwd) else path

    # -- ctrl+s: a named slot -----------------------------------------------------------
    def action_save(self) -> None:
        self.push_screen(SaveDialog(self.saves_dir, self.slot_name()), self._slot_picked)

    def _slot_picked(self, name: str | None) -> None:
        if name:
            self._save_in_thread(self.saves_dir, name)

    @work(thread=True, group="save")
    def _save_in_thread(self, folder: Path, name: str, quiet: bool = False) -> None:
        try:
            written = self.driver.save(folder, name)
        except OSError as err:
            self.call_from_thread(self.notify, f"Cannot save to {folder}: {err.strerror}",
                                  severity="error")
            return
        self.call_from_thread(self._saved, written, quiet)

    def _saved(self, written: Path, quiet: bool = False) -> None:
        shown = self._shown(written)
        self._note("saved", f"{'autosaved' if quiet else 'saved'} to {shown}")
        if not quiet:
            self.notify(f"Saved to {shown}")

    # -- autosave -------------------------------------------------------------------------
    def reset_autosave(self, time_s: float) -> None:
        self._next_autosave_s = time_s + AUTOSAVE_S

    def _absorbed(self, snap: Snapshot) -> None:
        """After each delivered tick: autosave once enough simulated time has passed."""
        if snap.time_s + 1e-9 < self._next_autosave_s:
            return
        self.reset_autosave(snap.time_s)
        if self.driver.world_bytes() > AUTOSAVE_MAX_BYTES:
            if not self._autosave_off_noted:
                self._autosave_off_noted = True
                self._note("saved", "this world is too big to autosave every few minutes: "
                                    "ctrl+s saves it")
            return
        self._save_in_thread(self.saves_dir, self.autosave_name(), quiet=True)

    # -- ctrl+q: save, then quit ------------------------------------------------------------
    def action_confirm_quit(self) -> None:
        if isinstance(self.screen, QuitDialog):  # ctrl+q twice: save and quit
            self.screen.action_choose("save")
            return
        if self.loading or self.snapshot.tick == 0:  # nothing played yet to save
            self.exit()
            return
        self._pause()
        target = self._shown(self.saves_dir / f"{self.autosave_name()}.toml")
        self.push_screen(QuitDialog(str(target)), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice == "save":
            self.notify("Saving before quitting…")
            self._save_then_exit(self.saves_dir, self.autosave_name())
        elif choice == "quit":
            self.exit()

    @work(thread=True, group="save")
    def _save_then_exit(self, folder: Path, name: str) -> None:
        try:
            self.driver.save(folder, name)
        except OSError as err:
            self.call_from_thread(self.notify, f"Cannot save to {folder}: {err.strerror}; "
                                  "not quitting", severity="error")
            return
        self.call_from_thread(self.exit)

    # -- ctrl+o: load -----------------------------------------------------------------------
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
        self.reset_autosave(self.snapshot.time_s)
        self._note("loaded", f"loaded {path.name}: tick {self.snapshot.tick}, paused "
                             "(space runs the clock)")
        self.notify(f"Loaded {path.name} (tick {self.snapshot.tick}), paused")
