"""Checking and applying commands against the current world.

`check` answers with a reason when a command cannot apply now (guard clauses, one per
condition); `apply` assumes it passed the check. Commands are checked when submitted and
again when applied at the start of the next tick, since the world may have moved on.
"""

from __future__ import annotations

from engine import vmlife
from engine.commands import (
    Command,
    PlaceVM,
    SetMax,
    SetMin,
    SetSalting,
    SetShares,
    SetSharing,
    StartVM,
    StopVM,
)
from engine.state import SHARING_MODES
from engine.units import format_bytes
from engine.world import World


def _vm_index(world: World, vm_id: str) -> int | None:
    ids = world.state.vms.ids
    return ids.index(vm_id) if vm_id in ids else None


def _host_index(world: World, host_id: str) -> int | None:
    ids = world.state.hosts.ids
    return ids.index(host_id) if host_id in ids else None


def _reservation_reason(world: World, h: int, min_bytes: int, vm_id: str) -> str | None:
    """Reservations are guarantees: their sum on a host may not exceed its memory."""
    state = world.state
    running_here = state.vms["host"] == h
    reserved = int(state.vms["min_pages"][running_here].sum()) * state.page_size
    capacity = int(state.hosts.n_frames[h]) * state.page_size
    if reserved + min_bytes > capacity:
        return (f"{vm_id} reserves {format_bytes(min_bytes)} but host "
                f"{state.hosts.ids[h]} has only {format_bytes(capacity - reserved)} unreserved")
    return None


def check(world: World, cmd: Command) -> str | None:
    state = world.state
    if isinstance(cmd, PlaceVM):
        if cmd.vm.id in state.vms.ids:
            return f"a VM named {cmd.vm.id!r} already exists"
        if cmd.vm.host is None:
            return "place_vm needs vm.host"
        h = _host_index(world, cmd.vm.host)
        if h is None:
            return f"no host {cmd.vm.host!r}"
        if not state.hosts.up[h]:
            return f"host {cmd.vm.host} is down"
        return _reservation_reason(world, h, cmd.vm.min, cmd.vm.id)
    if isinstance(cmd, SetSalting):
        return None
    if isinstance(cmd, SetSharing):
        return None if _host_index(world, cmd.host) is not None else f"no host {cmd.host!r}"
    v = _vm_index(world, cmd.vm)
    if v is None:
        return f"no VM {cmd.vm!r}"
    running = bool(state.vms["host"][v] >= 0)
    if isinstance(cmd, StartVM):
        h = _host_index(world, cmd.host)
        if h is None:
            return f"no host {cmd.host!r}"
        if running:
            return f"{cmd.vm} is already running on {state.hosts.ids[state.vms['host'][v]]}"
        if not state.hosts.up[h]:
            return f"host {cmd.host} is down"
        min_bytes = int(state.vms["min_pages"][v]) * state.page_size
        return _reservation_reason(world, h, min_bytes, cmd.vm)
    if isinstance(cmd, StopVM):
        return None if running else f"{cmd.vm} is not running"
    memory = int(state.vms["n_pages"][v]) * state.page_size
    if isinstance(cmd, SetMin):
        max_bytes = int(state.vms["max_pages"][v]) * state.page_size
        if cmd.min > max_bytes:
            return f"min {format_bytes(cmd.min)} exceeds max {format_bytes(max_bytes)}"
        if running:
            h = int(state.vms["host"][v])
            others = cmd.min - int(state.vms["min_pages"][v]) * state.page_size
            return _reservation_reason(world, h, max(others, 0), cmd.vm)
        return None
    if isinstance(cmd, SetMax):
        min_bytes = int(state.vms["min_pages"][v]) * state.page_size
        if not min_bytes <= cmd.max <= memory:
            return (f"max must lie between min {format_bytes(min_bytes)} and the configured "
                    f"{format_bytes(memory)}")
        return None
    return None  # SetShares: any non-negative number, checked by the model


def apply(world: World, cmd: Command) -> None:
    state, page = world.state, world.state.page_size
    if isinstance(cmd, PlaceVM):
        v = vmlife.define_vm(state, world.spec, cmd.vm)
        h = state.hosts.index(str(cmd.vm.host))
        _start(world, v, h)
        return
    if isinstance(cmd, SetSalting):
        state.sharing.salting = cmd.level
        world.emit("command_applied", f"page-sharing salting level = {cmd.level}")
        return
    if isinstance(cmd, SetSharing):
        h = state.hosts.index(cmd.host)
        state.sharing.hosts["mode"][h] = SHARING_MODES.index(cmd.mode)
        world.emit("command_applied", f"{cmd.host} page sharing = {cmd.mode}", host=cmd.host)
        return
    v = state.vms.index(cmd.vm)
    if isinstance(cmd, StartVM):
        _start(world, v, state.hosts.index(cmd.host))
    elif isinstance(cmd, StopVM):
        host = state.hosts.ids[int(state.vms["host"][v])]
        vmlife.stop_vm(state, v)
        world.emit("vm_stopped", f"{cmd.vm} powered off on {host}", vm=cmd.vm, host=host)
    elif isinstance(cmd, SetShares):
        state.vms["shares"][v] = cmd.shares
        world.emit("command_applied", f"{cmd.vm} shares = {cmd.shares}", vm=cmd.vm)
    elif isinstance(cmd, SetMin):
        state.vms["min_pages"][v] = cmd.min // page
        world.emit("command_applied", f"{cmd.vm} min = {format_bytes(cmd.min)}", vm=cmd.vm)
    elif isinstance(cmd, SetMax):
        state.vms["max_pages"][v] = cmd.max // page
        world.emit("command_applied", f"{cmd.vm} max = {format_bytes(cmd.max)}", vm=cmd.vm)


def _start(world: World, v: int, h: int) -> None:
    state = world.state
    vm_id, host_id = state.vms.ids[v], state.hosts.ids[h]
    got = vmlife.start_vm(state, world.streams, v, h)
    world.emit("vm_started", f"{vm_id} powered on on {host_id} "
               f"({format_bytes(got * state.page_size)} touched at boot)", vm=vm_id, host=host_id)
