"""Checking and applying commands against the current world.

`check` answers with a reason when a command cannot apply now (guard clauses, one per
condition); `apply` assumes it passed the check. Commands are checked when submitted and
again when applied at the start of the next tick, since the world may have moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine import budgets, vmlife
from engine.commands import (
    CancelMigration,
    Command,
    Migrate,
    PlaceVM,
    SetBalloonDriver,
    SetBalloonTarget,
    SetHostUp,
    SetIdleTax,
    SetLink,
    SetMax,
    SetMin,
    SetSalting,
    SetShares,
    SetSharing,
    SetSwapTarget,
    SetThresholds,
    SetWorkload,
    StartVM,
    StopVM,
    SwitchToPostcopy,
)
from engine.memory import overhead as mem_overhead
from engine.migration import phase as migration_phase
from engine.spec import VMSpec
from engine.state_tables import SHARING_MODES
from engine.units import format_bytes, format_rate
from engine.workloads import schedule
from engine.workloads.columns import workload_columns
from engine.workloads.images import regions
from engine.world import World


def _vm(world: World, vm_id: str) -> int | None:
    ids = world.state.vms.ids
    return ids.index(vm_id) if vm_id in ids else None


def _host(world: World, host_id: str) -> int | None:
    ids = world.state.hosts.ids
    return ids.index(host_id) if host_id in ids else None


def overhead_pages(world: World, vcpus: int) -> int:
    return mem_overhead.pages_for(world.spec.policy.memory, vcpus, world.state.page_size)


def admission(world: World, h: int, min_bytes: int, max_bytes: int, vm_id: str,
              leaving: int | None = None, vcpus: int = 1) -> str | None:
    """ESX admission control: min + overhead must fit in unreserved memory and max - min
    in the host's swap space, counting the VMs running there (but `leaving`)."""
    state = world.state
    page = state.page_size
    overhead = overhead_pages(world, vcpus) * page
    here = state.vms["host"] == h
    if leaving is not None:
        here[leaving] = False
    # Overhead of the VMs there, and of those on their way in (reserved by a migration).
    coming = state.vms["overhead_dst"] == h
    reserved = (int(state.vms["min_pages"][here].sum())
                + int(state.vms["overhead_pages"][here | coming].sum())) * page
    capacity = int(state.hosts.n_frames[h]) * page
    if reserved + min_bytes + overhead > capacity:
        return (f"{vm_id} needs {format_bytes(min_bytes + overhead)} reserved (min + "
                f"overhead) but host {state.hosts.ids[h]} has only "
                f"{format_bytes(max(capacity - reserved, 0))} unreserved memory")
    swap_used = int((state.vms["max_pages"][here] - state.vms["min_pages"][here]).sum()) * page
    swap_space = state.hosts.specs[h].swap_space
    if swap_used + max_bytes - min_bytes > swap_space:
        return (f"{vm_id} needs {format_bytes(max_bytes - min_bytes)} of swap (max - min) but "
                f"host {state.hosts.ids[h]} has only {format_bytes(swap_space - swap_used)} "
                "of swap space left")
    return None


def _placement(world: World, vm_id: str, host_id: str | None, spec: VMSpec) -> str | None:
    if host_id is None:
        return "a placement needs a host"
    h = _host(world, host_id)
    if h is None:
        return f"no host {host_id!r}"
    if not world.state.hosts.up[h]:
        return f"host {host_id} is down"
    return admission(world, h, spec.min, spec.max_bytes, vm_id, vcpus=spec.vcpus)


@dataclass(frozen=True)
class _VMNow:
    """What the checks of a VM's commands look at."""
    v: int
    running: bool
    memory: int  # bytes configured
    min_bytes: int
    max_bytes: int


def _check_vm(world: World, cmd: Any, v: int) -> str | None:
    state, page = world.state, world.state.page_size
    check_cmd = _VM_CHECKS.get(type(cmd))
    if check_cmd is None:
        return None
    return check_cmd(world, cmd, _VMNow(v, bool(state.vms["host"][v] >= 0),
                                        int(state.vms["n_pages"][v]) * page,
                                        int(state.vms["min_pages"][v]) * page,
                                        int(state.vms["max_pages"][v]) * page))


def _check_start(world: World, cmd: StartVM, now: _VMNow) -> str | None:
    state = world.state
    if now.running:
        return f"{cmd.vm} is already running on {state.hosts.ids[state.vms['host'][now.v]]}"
    return _placement(world, cmd.vm, cmd.host, state.vms.specs[now.v].model_copy(
        update={"min": now.min_bytes, "max": now.max_bytes}))


def _check_stop(world: World, cmd: StopVM, now: _VMNow) -> str | None:
    return None if now.running else f"{cmd.vm} is not running"


def _check_in_precopy(world: World, cmd: CancelMigration | SwitchToPostcopy,
                      now: _VMNow) -> str | None:
    migrating = migration_phase.active_migration(world, now.v)
    if migrating is not None and migrating.status == "precopy":
        return None
    if isinstance(cmd, CancelMigration):
        return f"{cmd.vm} has no pre-copy migration to cancel (post-copy cannot go back)"
    return f"{cmd.vm} is not in a pre-copy migration"


def _check_min(world: World, cmd: SetMin, now: _VMNow) -> str | None:
    if cmd.min > now.max_bytes:
        return f"min {format_bytes(cmd.min)} exceeds max {format_bytes(now.max_bytes)}"
    if now.running and cmd.min > now.min_bytes:
        state = world.state
        return admission(world, int(state.vms["host"][now.v]), cmd.min, now.max_bytes,
                         cmd.vm, leaving=now.v, vcpus=int(state.vms["vcpus"][now.v]))
    return None


def _check_max(world: World, cmd: SetMax, now: _VMNow) -> str | None:
    if not now.min_bytes <= cmd.max <= now.memory:
        return (f"max must lie between min {format_bytes(now.min_bytes)} and the configured "
                f"{format_bytes(now.memory)}")
    return None


def _check_balloon_target(world: World, cmd: SetBalloonTarget, now: _VMNow) -> str | None:
    if cmd.target is None:
        return None
    if not world.state.vms["balloon_driver"][now.v]:
        return f"{cmd.vm} has no balloon driver (enable it, or use a swap target)"
    balloon_max = world.spec.policy.memory.balloon_max
    limit = int(balloon_max * now.memory)
    if cmd.target > limit:
        return (f"a balloon may hold at most {balloon_max:.0%} of {cmd.vm} "
                f"({format_bytes(limit)})")
    return None


def _check_workload(world: World, cmd: SetWorkload, now: _VMNow) -> str | None:
    state, page = world.state, world.state.page_size
    ws = cmd.working_set if cmd.working_set is not None else (
        int(state.vms["ws_pages"][now.v]) * page)
    if ws > now.memory:
        return f"a working set of {format_bytes(ws)} does not fit in {format_bytes(now.memory)}"
    hot = cmd.hot_set if cmd.hot_set is not None else min(
        int(state.vms["hot_pages"][now.v]) * page, ws)
    if hot > ws:
        return "the hot set must lie within the working set"
    try:
        _new_workload(world, now.v, cmd)
    except ValidationError as err:
        detail = err.errors(include_url=False)[0]
        return str(detail["msg"]).removeprefix("Value error, ")
    return None


def _check_swap_target(world: World, cmd: SetSwapTarget, now: _VMNow) -> str | None:
    room = now.memory - now.min_bytes
    if cmd.target is not None and cmd.target > room:
        return (f"{cmd.vm}'s swap file holds max - min = {format_bytes(room)}; "
                f"{format_bytes(cmd.target)} does not fit")
    return None


def _check_migrate(world: World, cmd: Migrate, now: _VMNow) -> str | None:
    state, page, v = world.state, world.state.page_size, now.v
    migrating = migration_phase.active_migration(world, v)
    if not now.running:
        return f"{cmd.vm} is not running"
    if migrating is not None:
        return f"{cmd.vm} is already migrating to {state.hosts.ids[migrating.dst]}"
    if cmd.mode == "postcopy" and (cmd.postcopy_after is not None
                                   or cmd.postcopy_after_passes is not None):
        return "postcopy_after and postcopy_after_passes apply to a precopy or hybrid start"
    h = _host(world, cmd.to)
    if h is None:
        return f"no host {cmd.to!r}"
    src = int(state.vms["host"][v])
    if h == src:
        return f"{cmd.vm} already runs on {cmd.to}"
    if not state.hosts.up[h]:
        return f"host {cmd.to} is down"
    if not world.topology.has_path(state.hosts.ids[src], cmd.to):
        return f"no network path from {state.hosts.ids[src]} to {cmd.to}"
    if state.vms["booting"][v]:
        return f"{cmd.vm} is still booting"
    # Reservation at the destination: the same admission control as a power-on.
    return admission(world, h, int(state.vms["min_pages"][v]) * page,
                     int(state.vms["max_pages"][v]) * page, cmd.vm,
                     vcpus=int(state.vms["vcpus"][v]))


def _check_place(world: World, cmd: PlaceVM) -> str | None:
    if cmd.vm.id in world.state.vms.ids:
        return f"a VM named {cmd.vm.id!r} already exists"
    return _placement(world, cmd.vm.id, cmd.vm.host, cmd.vm)


def _check_thresholds(world: World, cmd: SetThresholds) -> str | None:
    if not cmd.high > cmd.soft > cmd.hard > cmd.low:
        return "thresholds must decrease: high > soft > hard > low"
    return None


def _check_link(world: World, cmd: SetLink) -> str | None:
    if not world.topology.graph.has_edge(cmd.a, cmd.b):
        return f"no link between {cmd.a!r} and {cmd.b!r}"
    return None


def _check_host(world: World, cmd: SetHostUp) -> str | None:
    return None if _host(world, cmd.host) is not None else f"no host {cmd.host!r}"


def _check_any_host(world: World, cmd: SetSharing | SetIdleTax) -> str | None:
    """A host, or None for every host."""
    if cmd.host is not None and _host(world, cmd.host) is None:
        return f"no host {cmd.host!r}"
    return None


def _no_check(world: World, cmd: Any) -> str | None:
    return None


def check(world: World, cmd: Command) -> str | None:
    problem = budgets.command_problem(world, cmd)
    if problem is not None:
        return problem
    check_world = _WORLD_CHECKS.get(type(cmd))
    if check_world is not None:
        return check_world(world, cmd)
    # Every command left names a VM (PlaceVM, whose is a spec, is checked above).
    vm_id = getattr(cmd, "vm")  # noqa: B009 - not every Command has one
    assert isinstance(vm_id, str)
    v = _vm(world, vm_id)
    if v is None:
        return f"no VM {vm_id!r}"
    return _check_vm(world, cmd, v)


def apply(world: World, cmd: Command) -> None:
    act = _ACTIONS.get(type(cmd))
    if act is not None:
        act(world, cmd)
    else:
        message = _SETTERS[type(cmd)](world, cmd)
        world.emit("command_applied", message, vm=getattr(cmd, "vm", None),
                   host=getattr(cmd, "host", None))
    world.state.reclaim.realloc = True


def _place(world: World, cmd: PlaceVM) -> None:
    state = world.state
    v = vmlife.define_vm(state, world.spec, cmd.vm)
    _start(world, v, state.hosts.index(str(cmd.vm.host)))


def _start_vm(world: World, cmd: StartVM) -> None:
    _start(world, world.state.vms.index(cmd.vm), world.state.hosts.index(cmd.host))


def _stop_vm(world: World, cmd: StopVM) -> None:
    state = world.state
    v = state.vms.index(cmd.vm)
    host = state.hosts.ids[int(state.vms["host"][v])]
    migrating = migration_phase.active_migration(world, v)
    if migrating is not None:
        migration_phase.fail(world, migrating, "cancelled")
        if state.vms["host"][v] < 0:
            return  # a post-copy stopped half-way takes the VM with it
    vmlife.stop_vm(state, v)
    world.emit("vm_stopped", f"{cmd.vm} powered off on {host}", vm=cmd.vm, host=host)


def _migrate(world: World, cmd: Migrate) -> None:
    migration_phase.start(world, cmd)


def _migrating(world: World, vm_id: str) -> Any:
    mig = migration_phase.active_migration(world, world.state.vms.index(vm_id))
    assert mig is not None  # checked
    return mig


def _cancel(world: World, cmd: CancelMigration) -> None:
    migration_phase.fail(world, _migrating(world, cmd.vm), "cancelled")


def _switch(world: World, cmd: SwitchToPostcopy) -> None:
    migration_phase.to_postcopy(world, _migrating(world, cmd.vm), world.state.time_s)


def _set_host_up(world: World, cmd: SetHostUp) -> None:
    state = world.state
    h = state.hosts.index(cmd.host)
    state.hosts.up[h] = cmd.up
    if cmd.up:
        world.emit("host_up", f"{cmd.host} is back", host=cmd.host)
        return
    world.emit("host_down", f"{cmd.host} failed", host=cmd.host)
    for mig in [m for m in state.migrations if m.active and h in (m.src, m.dst)]:
        migration_phase.fail(world, mig, f"host {cmd.host} failed")
    for v in np.flatnonzero(state.vms["host"] == h).tolist():
        vmlife.stop_vm(state, v)
        state.vms["lost_vm"][v] = True
        world.emit("vm_lost", f"{state.vms.ids[v]} went down with {cmd.host}",
                   vm=state.vms.ids[v], host=cmd.host)


def _link(world: World, cmd: SetLink) -> str:
    topology = world.topology
    topology.set_link_state(cmd.a, cmd.b, cmd.up)
    if cmd.capacity is not None:
        topology.set_link_capacity(cmd.a, cmd.b, cmd.capacity)
    state = "up" if cmd.up else "down"
    extra = f" at {format_rate(cmd.capacity)}" if cmd.capacity is not None else ""
    return f"link {cmd.a}-{cmd.b} {state}{extra}"


def _set_vm(column: str, value: int, world: World, vm_id: str) -> None:
    world.state.vms[column][world.state.vms.index(vm_id)] = value


def _pages(world: World, n_bytes: int | None) -> int:
    return -1 if n_bytes is None else n_bytes // world.state.page_size


def _shares(world: World, cmd: SetShares) -> str:
    _set_vm("shares", cmd.shares, world, cmd.vm)
    return f"{cmd.vm} shares = {cmd.shares}"


def _min(world: World, cmd: SetMin) -> str:
    _set_vm("min_pages", _pages(world, cmd.min), world, cmd.vm)
    return f"{cmd.vm} min = {format_bytes(cmd.min)}"


def _max(world: World, cmd: SetMax) -> str:
    _set_vm("max_pages", _pages(world, cmd.max), world, cmd.vm)
    return f"{cmd.vm} max = {format_bytes(cmd.max)}"


def _balloon_target(world: World, cmd: SetBalloonTarget) -> str:
    _set_vm("balloon_forced", _pages(world, cmd.target), world, cmd.vm)
    what = "policy" if cmd.target is None else format_bytes(cmd.target)
    return f"{cmd.vm} balloon target = {what}"


def _swap_target(world: World, cmd: SetSwapTarget) -> str:
    _set_vm("swap_forced", _pages(world, cmd.target), world, cmd.vm)
    what = "policy" if cmd.target is None else format_bytes(cmd.target)
    return f"{cmd.vm} swap target = {what}"


def _balloon_driver(world: World, cmd: SetBalloonDriver) -> str:
    _set_vm("balloon_driver", int(cmd.enabled), world, cmd.vm)
    return f"{cmd.vm} balloon driver {'enabled' if cmd.enabled else 'disabled'}"


def _new_workload(world: World, v: int, cmd: SetWorkload) -> VMSpec:
    """The VM's spec with the command's workload (ValidationError if it does not fit)."""
    spec = world.state.vms.specs[v]
    change = cmd.change()
    current = spec.workload
    # Demand given to an idle workload wakes it, unless the command says what kind it is.
    demand = (change.reads_per_s, change.writes_per_s, change.file_reads_per_s)
    if (current.kind == "idle" and change.kind is None
            and any(x is not None for x in demand)):
        change = change.model_copy(update={"kind": "synthetic"})
    if (change.working_set is not None and change.hot_set is None
            and current.hot_set is not None and current.hot_set > change.working_set):
        change = change.model_copy(update={"hot_set": change.working_set})
    workload = current.with_changes(change).model_dump()
    workload["phases"] = current.phases if cmd.phases is None else cmd.phases
    workload["repeat"] = current.repeat if cmd.repeat is None else cmd.repeat
    data = spec.model_dump()
    data["workload"] = workload
    return VMSpec.model_validate(data)


def _workload(world: World, cmd: SetWorkload) -> str:
    state = world.state
    v = state.vms.index(cmd.vm)
    state.vms.specs[v] = _new_workload(world, v, cmd)
    schedule.rebuild(state)
    cols = state.vms
    if cmd.phases is not None and cols["phase_t0_s"][v] >= 0:
        cols["phase_t0_s"][v] = state.time_s  # a new schedule starts now
        cols["phase_index"][v] = -1  # applied by the schedule phase this tick
    if cols["phase_count"][v] > 0 and cols["phase_index"][v] >= 0:
        schedule.apply_row(state, np.array([v]), np.array([cols["phase_index"][v]]))
    elif cols["phase_count"][v] == 0:
        spec = state.vms.specs[v]
        layout = regions(spec, int(cols["n_pages"][v]), state.page_size)
        schedule.set_columns(state, v, workload_columns(spec.workload, layout,
                                                        state.page_size))
    changes = []
    for key, value in cmd.model_dump(exclude_none=True, exclude={"kind", "vm"}).items():
        if key in _BYTE_FIELDS and isinstance(value, int):
            changes.append(f"{key.replace('_', ' ')} {format_bytes(value)}")
        elif key == "phases":
            changes.append(f"{len(value)} phases")
        elif isinstance(value, float):
            changes.append(f"{key} {value:g}")
        else:
            changes.append(f"{key} {value}")
    return f"{cmd.vm} workload: " + (", ".join(changes) or "unchanged")


_BYTE_FIELDS = frozenset({"working_set", "hot_set", "dataset", "io_set", "offset"})


def _idle_tax(world: World, cmd: SetIdleTax) -> str:
    taxes = world.state.reclaim.hosts["idle_tax"]
    if cmd.host is None:
        taxes[:] = cmd.tax
    else:
        taxes[world.state.hosts.index(cmd.host)] = cmd.tax
    return f"idle memory tax = {cmd.tax:.0%} on {cmd.host or 'every host'}"


def _thresholds(world: World, cmd: SetThresholds) -> str:
    world.state.reclaim.thresholds = [cmd.high, cmd.soft, cmd.hard, cmd.low]
    return (f"free-memory thresholds high/soft/hard/low = {cmd.high:.1%}/{cmd.soft:.1%}/"
            f"{cmd.hard:.1%}/{cmd.low:.1%}")


def _salting(world: World, cmd: SetSalting) -> str:
    world.state.sharing.salting = cmd.level
    return f"page-sharing salting level = {cmd.level}"


def _sharing(world: World, cmd: SetSharing) -> str:
    world.state.sharing.hosts["mode"][world.state.hosts.index(cmd.host)] = (
        SHARING_MODES.index(cmd.mode))
    return f"{cmd.host} page sharing = {cmd.mode}"


_SETTERS: dict[type, Callable[[World, Any], str]] = {
    SetShares: _shares, SetMin: _min, SetMax: _max, SetBalloonTarget: _balloon_target,
    SetSwapTarget: _swap_target, SetBalloonDriver: _balloon_driver, SetIdleTax: _idle_tax,
    SetThresholds: _thresholds, SetSalting: _salting, SetSharing: _sharing,
    SetWorkload: _workload, SetLink: _link,
}


def _start(world: World, v: int, h: int) -> None:
    state = world.state
    vm_id, host_id = state.vms.ids[v], state.hosts.ids[h]
    got = vmlife.start_vm(state, world.spec.policy.memory, v, h)
    cols = state.vms
    if cols["boot_rate"][v] > 0:
        how = f"booting over {cols['boot_total'][v] / cols['boot_rate'][v]:.0f} s"
    else:
        how = f"{format_bytes(got * state.page_size)} touched at boot"
    world.emit("vm_started", f"{vm_id} powered on on {host_id} ({how})", vm=vm_id,
               host=host_id)


# Each command's check and action, looked up by its type. World-level commands are
# checked here; a VM's commands once the VM is found (_check_vm); commands with neither
# a check nor an action below are settings, applied by _SETTERS with a message.
_WORLD_CHECKS: dict[type, Callable[[World, Any], str | None]] = {
    PlaceVM: _check_place, SetSalting: _no_check, SetThresholds: _check_thresholds,
    SetLink: _check_link, SetHostUp: _check_host, SetSharing: _check_any_host,
    SetIdleTax: _check_any_host,
}
_VM_CHECKS: dict[type, Callable[[World, Any, _VMNow], str | None]] = {
    StartVM: _check_start, StopVM: _check_stop, Migrate: _check_migrate,
    CancelMigration: _check_in_precopy, SwitchToPostcopy: _check_in_precopy,
    SetMin: _check_min, SetMax: _check_max, SetBalloonTarget: _check_balloon_target,
    SetWorkload: _check_workload, SetSwapTarget: _check_swap_target,
}
_ACTIONS: dict[type, Callable[[World, Any], None]] = {
    PlaceVM: _place, StartVM: _start_vm, StopVM: _stop_vm, Migrate: _migrate,
    CancelMigration: _cancel, SwitchToPostcopy: _switch, SetHostUp: _set_host_up,
}
