"""Command palette (ctrl+p): every operator action on every VM it applies to, plus the
clock and the game's own commands. Built from actions.ACTIONS, like the bindings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from app.console.actions import ACTIONS, default_target

if TYPE_CHECKING:
    from app.console.app import OvercommitApp

Entry = tuple[str, Callable[[], object], str]


class OperatorCommands(Provider):
    @property
    def console(self) -> OvercommitApp:
        return cast("OvercommitApp", self.app)

    def _game_entries(self) -> Iterator[Entry]:
        app = self.console
        yield "Run / pause the clock", app.action_toggle_pause, "space"
        yield "Step one tick", app.action_step, "."
        yield "Faster clock", app.action_faster, "+"
        yield "Slower clock", app.action_slower, "-"
        yield "Save the game", app.action_save, "ctrl+s: saves/<scenario>-t<tick>.toml"
        yield "Load a save", app.action_load, "ctrl+o"
        yield "Help: memory model, actions and keys", app.action_help, "?"

    def _action_entries(self) -> Iterator[Entry]:
        snap = self.console.snapshot
        for action in ACTIONS:
            for vm in snap.vms:
                if action.target == "queued" and vm.running:
                    continue
                yield (f"{action.title}: {vm.id}",
                       partial(self.console.open_action, action.name, vm.id),
                       action.help)

    async def discover(self) -> Hits:
        app = self.console
        for action in ACTIONS:
            vm = default_target(action, app.snapshot, app.selected_vm)
            if vm is not None:
                yield DiscoveryHit(f"{action.title}: {vm}",
                                   partial(app.open_action, action.name, vm),
                                   help=action.help)
        for title, command, help_text in self._game_entries():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in [*self._game_entries(), *self._action_entries()]:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)
