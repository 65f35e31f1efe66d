"""The world as it will be when the queued commands apply: a cheap projection to check
commands against.

`control.check` reads per-VM and per-host scalars, link states and the migrations in
flight, never the pages. `projected(world)` copies just those, then plays the timeline
entries due at the next tick and the operator's queued commands in the order the tick
will, each only if it passes the check there (as apply_commands does). So a second
placement of the same VM, or a balloon target right after enabling the driver, is judged
as the next tick will judge it. Page arrays are shared with the world and never written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine import control
from engine.commands import (
    CancelMigration,
    Command,
    Migrate,
    PlaceVM,
    SetBalloonDriver,
    SetHostUp,
    SetLink,
    SetMax,
    SetMin,
    SetWorkload,
    StartVM,
    StopVM,
    SwitchToPostcopy,
)
from engine.migration import phase as migration_phase
from engine.state import VMs
from engine.vmlife import price_per_hour
from engine.world import World

# The per-VM columns the projected commands change (the rest are shared, read-only).
_VM_COLUMNS = ("host", "started", "lost_vm", "min_pages", "max_pages", "balloon_driver",
               "ws_pages", "hot_pages")


@dataclass
class QueuedMigration:
    """A migration as the checks see it: queued to start, switched, or stopped."""

    vm: int
    src: int
    dst: int
    status: str = "precopy"

    @property
    def active(self) -> bool:
        return self.status in ("precopy", "stopcopy", "postcopy")


def due_commands(world: World) -> list[Command]:
    """Timeline entries the next tick applies before the operator's commands."""
    now = world.state.time_s + 1e-9
    timeline = world.spec.timeline
    i, due = world.timeline_next, []
    while i < len(timeline) and timeline[i].at <= now:
        due.append(timeline[i].command)
        i += 1
    return due


def projected(world: World) -> World:
    """A world for checks only, with the next tick's commands applied."""
    state = world.state
    vms = VMs(list(state.vms.ids), list(state.vms.specs), dict(state.vms.arrays))
    for name in _VM_COLUMNS:
        vms.arrays[name] = vms.arrays[name].copy()
    topology = copy.copy(world.topology)
    topology.link_up = topology.link_up.copy()
    topology._paths = {}  # the cache belongs to the world's link states
    proj = replace(world, pending=[], events=[], topology=topology,
                   state=replace(state, vms=vms, hosts=replace(state.hosts,
                                                               up=state.hosts.up.copy()),
                                 migrations=list(state.migrations)))
    for cmd in [*due_commands(world), *world.pending]:
        if control.check(proj, cmd) is None:
            _apply(proj, cmd)
    return proj


def _stop_migration(world: World, v: int, status: str) -> None:
    migrations = world.state.migrations
    for i, m in enumerate(migrations):
        if m.vm == v and m.active:
            migrations[i] = QueuedMigration(m.vm, m.src, m.dst, status)


def _apply(world: World, cmd: Command) -> None:
    """What a command changes that a later check reads (commands not below change
    nothing a check reads)."""
    act = _WORLD_ACTIONS.get(type(cmd))
    if act is not None:
        act(world, cmd)
        return
    vm_act = _VM_ACTIONS.get(type(cmd))
    if vm_act is not None:
        vm_act(world, cmd, world.state.vms.index(getattr(cmd, "vm")))  # noqa: B009


def _place(world: World, cmd: PlaceVM) -> None:
    state, page = world.state, world.state.page_size
    v = state.vms.append(cmd.vm, 0, cmd.vm.memory // page, page,
                         price_per_hour(world.spec, cmd.vm), world.spec.policy.sla)
    state.vms["host"][v] = state.hosts.index(str(cmd.vm.host))
    state.vms["started"][v] = True


def _host_up(world: World, cmd: SetHostUp) -> None:
    state, vms = world.state, world.state.vms
    h = state.hosts.index(cmd.host)
    state.hosts.up[h] = cmd.up
    if not cmd.up:
        for m in list(state.migrations):
            if m.active and h in (m.src, m.dst):
                _stop_migration(world, m.vm, "failed")
        on_host = vms["host"] == h
        vms["lost_vm"][on_host] = True
        vms["host"][on_host] = -1


def _link(world: World, cmd: SetLink) -> None:
    world.topology.set_link_state(cmd.a, cmd.b, cmd.up)


def _start(world: World, cmd: StartVM, v: int) -> None:
    vms = world.state.vms
    vms["host"][v] = world.state.hosts.index(cmd.host)
    vms["started"][v], vms["lost_vm"][v] = True, False


def _stop(world: World, cmd: StopVM, v: int) -> None:
    vms = world.state.vms
    mig = migration_phase.active_migration(world, v)
    _stop_migration(world, v, "cancelled")
    if mig is None or mig.status != "postcopy":
        vms["host"][v] = -1
    else:  # a post-copy stopped half-way takes the VM with it
        vms["host"][v], vms["lost_vm"][v] = -1, True


def _migrate(world: World, cmd: Migrate, v: int) -> None:
    state = world.state
    status = "precopy" if cmd.mode != "postcopy" else "postcopy"
    state.migrations.append(QueuedMigration(v, int(state.vms["host"][v]),
                                            state.hosts.index(cmd.to), status))


def _set_min(world: World, cmd: SetMin, v: int) -> None:
    world.state.vms["min_pages"][v] = cmd.min // world.state.page_size


def _set_max(world: World, cmd: SetMax, v: int) -> None:
    world.state.vms["max_pages"][v] = cmd.max // world.state.page_size


def _balloon_driver(world: World, cmd: SetBalloonDriver, v: int) -> None:
    world.state.vms["balloon_driver"][v] = cmd.enabled


def _workload(world: World, cmd: SetWorkload, v: int) -> None:
    vms, page = world.state.vms, world.state.page_size
    if cmd.working_set is not None:
        vms["ws_pages"][v] = max(1, cmd.working_set // page)
        vms["hot_pages"][v] = min(vms["hot_pages"][v], vms["ws_pages"][v])
    if cmd.hot_set is not None:
        vms["hot_pages"][v] = max(1, cmd.hot_set // page)


_WORLD_ACTIONS: dict[type, Callable[[World, Any], None]] = {
    PlaceVM: _place, SetHostUp: _host_up, SetLink: _link}
_VM_ACTIONS: dict[type, Callable[[World, Any, int], None]] = {
    StartVM: _start, StopVM: _stop, Migrate: _migrate,
    CancelMigration: lambda world, cmd, v: _stop_migration(world, v, "cancelled"),
    SwitchToPostcopy: lambda world, cmd, v: _stop_migration(world, v, "postcopy"),
    SetMin: _set_min, SetMax: _set_max, SetBalloonDriver: _balloon_driver,
    SetWorkload: _workload,
}
