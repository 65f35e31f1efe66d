"""Command palette (ctrl+p): every operator action on every VM it applies to, plus the
clock and the game's own commands. Built from actions.ACTIONS, like the bindings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from app.console.actions import ACTIONS, default_target, placeable

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
        yield ("Switch the VM table's columns (basics / allocation and reclamation / SLA)",
               app.action_toggle_columns, "c")
        yield ("SLA and money: service, breaches, penalties, costs", app.action_sla, "e")

    def _action_entries(self) -> Iterator[Entry]:
        snap = self.console.snapshot
        live = self.console.live
        open_action = self.console.open_action
        for action in ACTIONS:
            if action.target == "global":
                yield action.title, partial(open_action, action.name, None, None), action.help
            elif action.target == "host":
                for host in snap.hosts:
                    yield (f"{action.title}: {host.id}",
                           partial(open_action, action.name, None, host.id), action.help)
            else:
                if action.target == "placeable":
                    vms = placeable(snap)
                elif action.target == "running":
                    vms = [v.id for v in snap.vms if v.running]
                elif action.target == "migrating":
                    vms = sorted(live.precopying())
                else:
                    vms = [v.id for v in snap.vms]
                for vm in vms:
                    yield (f"{action.title}: {vm}",
                           partial(open_action, action.name, vm, None), action.help)

    async def discover(self) -> Hits:
        app = self.console
        vm, host = app.current_targets()
        for action in ACTIONS:
            target = default_target(action, app.snapshot, vm, host, app.live)
            if target is not None:
                subject = target[0] or target[1]
                title = f"{action.title}: {subject}" if subject else action.title
                yield DiscoveryHit(title, partial(app.open_action, action.name, *target),
                                   help=action.help)
        for title, command, help_text in self._game_entries():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in [*self._game_entries(), *self._action_entries()]:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)
