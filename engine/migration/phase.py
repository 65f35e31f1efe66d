"""The migration phase: start, progress, switch-over and failure of live migrations.

Runs after the network phase, so each migration knows the rate its flow got this tick.
Guard clauses first (hosts down, no path), then the stages in order.
"""

from __future__ import annotations

import numpy as np

from engine.commands import Migrate
from engine.memory import migration_hooks
from engine.migration import postcopy
from engine.migration.model import Migration
from engine.migration.precopy import (
    _record_sent,
    end_round,
    page_costs,
    send_for,
    start_round,
    vm_slice,
)
from engine.migration.switch import commit, go_remote
from engine.state import Loc
from engine.units import format_seconds
from engine.vmlife import stop_vm
from engine.world import World


def active_migration(world: World, v: int) -> Migration | None:
    return next((m for m in world.state.migrations if m.vm == v and m.active), None)


def start(world: World, cmd: Migrate) -> Migration:
    state, policy = world.state, world.spec.policy.migration
    v = state.vms.index(cmd.vm)
    n = int(state.vms["n_pages"][v])
    xen = cmd.algorithm == "xen"
    max_rate = cmd.max_rate or (policy.xen_max_rate if xen else policy.qemu_max_bandwidth)
    min_rate = cmd.min_rate or (policy.xen_min_rate if xen else max_rate)
    mig = Migration(
        id=len(state.migrations), vm=v, src=int(state.vms["host"][v]),
        dst=state.hosts.index(cmd.to), mode=cmd.mode, algorithm=cmd.algorithm,
        start_s=state.time_s, max_rate=max_rate, min_rate=min(min_rate, max_rate),
        downtime_limit_s=cmd.downtime_limit or policy.qemu_downtime_limit,
        auto_converge=cmd.auto_converge, xbzrle=cmd.xbzrle, prepaging=cmd.prepaging,
        pml=cmd.pml, free_page_hints=cmd.free_page_hints, stun=cmd.stun,
        round_trip_s=policy.round_trip,
        page_header=policy.page_header, round_rate=min_rate if xen else max_rate,
        sent_content=np.zeros(n, np.uint64), at_dest=np.zeros(n, np.bool_),
        in_cache=np.zeros(n, np.bool_), pushed=np.zeros(n, np.bool_))
    state.migrations.append(mig)
    migration_hooks.migration_started(state, v, mig.dst,
                                      world.spec.policy.memory.overhead_frames)
    sl = vm_slice(state, mig)
    state.pages.dirty[sl] = False
    state.vms["precopying"][v] = cmd.mode != "postcopy"
    world.emit("migration_started", f"{cmd.vm} migrating {state.hosts.ids[mig.src]} -> "
               f"{cmd.to} ({cmd.mode}, {cmd.algorithm})", vm=cmd.vm, host=cmd.to)
    if cmd.mode == "postcopy":
        to_postcopy(world, mig, state.time_s)
    else:
        start_round(world, mig, state.time_s, np.arange(sl.start, sl.stop, dtype=np.int64))
    return mig


def _pause(world: World, mig: Migration, seconds: float) -> None:
    vms = world.state.vms
    vms["lost_downtime_s_tick"][mig.vm] += seconds
    vms["downtime_s"][mig.vm] += seconds


def _stop_rate(world: World, mig: Migration) -> float:
    """Stop-and-copy rate: Xen's max rate; QEMU's whatever the path gives an uncapped flow."""
    if mig.algorithm == "xen":
        return min(mig.max_rate, _path_rate(world, mig))
    return _path_rate(world, mig)


def _path_rate(world: World, mig: Migration) -> float:
    flows, demands, owners = world.flow_set
    key = ("migration", mig.id)
    ids = world.state.hosts.ids
    if key in owners:
        i = owners.index(key)
        flows, uncapped = list(flows), np.array(demands, np.float64)
        uncapped[i] = np.inf
    else:  # started this tick: not in the network's flow set yet
        i = len(flows)
        flows = [*flows, (ids[mig.src], ids[mig.dst])]
        uncapped = np.append(np.asarray(demands if demands is not None else [], np.float64),
                             np.inf)
    return float(world.topology.rates(flows, uncapped)[i])


def _stop_and_copy(world: World, mig: Migration, at_s: float, late: np.ndarray) -> None:
    state, policy = world.state, world.spec.policy.migration
    p = state.pages
    sl = vm_slice(state, mig)
    pending = np.union1d(mig.to_send[mig.cursor:], np.flatnonzero(p.dirty[sl]) + sl.start)
    pending = pending[p.location[pending] != Loc.BALLOONED]
    costs = page_costs(world, mig, pending)
    rate = max(_stop_rate(world, mig), 1.0)
    total = float(costs.sum()) + policy.cpu_state
    downtime = total / rate + policy.activation
    mig.status = "stopcopy"
    state.vms["precopying"][mig.vm] = False
    mig.stop_pages = int(pending.size)
    mig.stop_bytes = int(total)
    _record_sent(world, mig, pending, costs)
    mig.bytes_sent += policy.cpu_state
    commit(state, mig, sl, late)
    p.dirty[sl] = False
    _pause(world, mig, downtime)
    mig.downtime_s = downtime
    mig.end_s = mig.resume_s = at_s + downtime
    mig.status = "done"
    state.vms["throttle"][mig.vm] = 0.0
    vm = state.vms.ids[mig.vm]
    world.emit("migration_finished", f"{vm} now runs on {state.hosts.ids[mig.dst]}: "
               f"{len(mig.rounds)} rounds, {mig.bytes_sent / 1024**2:.0f} MiB sent, "
               f"{format_seconds(mig.end_s - mig.start_s)} in all, downtime "
               f"{format_seconds(downtime)}", vm=vm, host=state.hosts.ids[mig.dst])


def _close_round(mig: Migration, at_s: float) -> None:
    """A round cut short (switch to post-copy, cancel, failure) still took its time."""
    if mig.rounds and mig.rounds[-1].duration_s == 0.0:
        mig.rounds[-1].duration_s = max(at_s - mig.rounds[-1].start_s, 0.0)


def to_postcopy(world: World, mig: Migration, at_s: float) -> None:
    state, policy = world.state, world.spec.policy.migration
    _close_round(mig, at_s)
    # The CPU state is one small message, sent at whatever the path gives.
    rate = max(_path_rate(world, mig), mig.flow_rate, 1.0)
    if mig.flow_rate <= 0:
        # A post-copy started by a command has no flow yet: until the network phase sets
        # it, demand faults fetch at what the path gives (not at 1 byte/s).
        mig.flow_rate = min(rate, mig.max_rate)
    downtime = policy.cpu_state / rate + policy.activation
    state.vms["precopying"][mig.vm] = False
    go_remote(state, mig, vm_slice(state, mig))
    mig.bytes_sent += policy.cpu_state
    mig.status = "postcopy"
    mig.downtime_s = downtime
    mig.resume_s = at_s + downtime
    mig.round_rate = mig.max_rate
    _pause(world, mig, downtime)
    vm = state.vms.ids[mig.vm]
    world.emit("migration_switched", f"{vm} resumed on {state.hosts.ids[mig.dst]} after "
               f"{format_seconds(downtime)}; its memory follows (post-copy)", vm=vm)


def fail(world: World, mig: Migration, reason: str) -> None:
    """Pre-copy: the VM stays at the source. Post-copy: no complete copy anywhere."""
    state = world.state
    vm = state.vms.ids[mig.vm]
    mig.end_s = state.time_s
    mig.reason = reason
    _close_round(mig, state.time_s)
    if mig.status == "postcopy":
        sl = vm_slice(state, mig)
        p = state.pages
        frameless = (p.location[sl] == Loc.REMOTE) & (p.frame[sl] < 0)
        state.reclaim.hosts["swapped_pages"][mig.src] -= int(frameless.sum())
        stop_vm(state, mig.vm)
        state.vms["lost_vm"][mig.vm] = True
        mig.status = "failed"
        world.emit("vm_lost", f"{vm} lost: {reason} during post-copy", vm=vm)
        return
    migration_hooks.migration_abandoned(state, mig.vm)
    state.pages.dirty[vm_slice(state, mig)] = False
    state.vms["throttle"][mig.vm] = 0.0
    state.vms["precopying"][mig.vm] = False
    mig.status = "failed" if reason != "cancelled" else "cancelled"
    world.emit("migration_failed" if reason != "cancelled" else "migration_cancelled",
               f"migration of {vm} stopped ({reason}); it keeps running on "
               f"{state.hosts.ids[mig.src]}", vm=vm)


def _broken(world: World, mig: Migration) -> str | None:
    hosts = world.state.hosts
    if not hosts.up[mig.src]:
        return f"source {hosts.ids[mig.src]} failed"
    if not hosts.up[mig.dst]:
        return f"destination {hosts.ids[mig.dst]} failed"
    if not world.topology.has_path(hosts.ids[mig.src], hosts.ids[mig.dst]):
        return "the network path between them is down"
    return None


def _charge_traps(world: World, mig: Migration, first_writes: int) -> None:
    """First writes of a page in a round trap (write protection), or fill a PML buffer."""
    policy = world.spec.policy.migration
    mig.traps += first_writes
    cost = policy.trap_cost * (first_writes / policy.pml_batch if mig.pml else first_writes)
    world.state.vms["lost_dirty_log_s_tick"][mig.vm] += cost


SUBSTEP_S = 0.005  # write replay granularity while a round may end inside a tick
COARSE_STEP_S = 0.05  # and while it cannot


class _Replay:
    """This tick's writes of one VM, applied to the dirty log in time order.

    The workload phase wrote the whole tick at once; each write that made a page dirty is
    given a uniform random time within the tick and re-applied when the migration's clock
    passes it.
    """

    def __init__(self, world: World, mig: Migration) -> None:
        state = world.state
        self.dirty_log = state.pages.dirty
        sl = vm_slice(state, mig)
        logged = [(pg, was) for pg, was in state.write_log if pg.size]
        pages = np.concatenate([pg for pg, _ in logged]) if logged else np.zeros(0, np.int64)
        was = np.concatenate([w for _, w in logged]) if logged else np.zeros(0, np.bool_)
        mine = (pages >= sl.start) & (pages < sl.stop)
        pages, was = pages[mine], was[mine]
        self.dirty_log[pages[~was]] = False  # not dirty yet: written during the tick
        # Every write is replayed, also those to pages already dirty: a round ending
        # inside the tick clears the log, and their later writes must dirty them again.
        times = world.streams["migration"].random(pages.size)
        order = np.argsort(times, kind="stable")
        self.pages, self.times = pages[order], times[order]
        self.next = 0
        # Pages dirtied for the first time in the round this tick: each took one trap.
        self.first_writes = int(np.unique(pages[~was]).size)

    def until(self, fraction: float) -> None:
        """Apply the writes made before `fraction` of the tick."""
        end = int(np.searchsorted(self.times, fraction, side="right"))
        if end > self.next:
            self.dirty_log[self.pages[self.next:end]] = True
            self.next = end


def _precopy_tick(world: World, mig: Migration, now: float, tick_s: float) -> None:
    state = world.state
    replay = _Replay(world, mig)
    _charge_traps(world, mig, replay.first_writes)
    state.vms["throttle"][mig.vm] = mig.throttle
    # A round that starts inside the tick runs at its own cap at once, within what the
    # path gives (this tick's other flows are fixed).
    path = _path_rate(world, mig)
    t = 0.0
    for _ in range(100_000):
        if mig.status != "precopy" or t >= tick_s - 1e-12:
            break
        rate = min(mig.round_rate, path)
        left_in_round = (mig.to_send.size - mig.cursor) * state.page_size
        # Fine steps where the round may end soon; coarser ones while it certainly goes
        # on, which only delays when a write starts to be skipped. Both are fixed times,
        # so the replay is the same whatever the tick length.
        ends_soon = rate > 0 and left_in_round / rate <= tick_s - t
        step = min(SUBSTEP_S if ends_soon else COARSE_STEP_S, tick_s - t)
        replay.until((t + step) / tick_s)
        t += send_for(world, mig, rate, step)
        if mig.cursor < mig.to_send.size:
            continue
        stop = end_round(world, mig, now + t, final=mig.mode == "hybrid")
        if mig.mode == "hybrid":
            replay.until(1.0)
            to_postcopy(world, mig, now + t)
        elif stop:
            # Writes the workload made after this moment happen at the destination after
            # it resumes: they are not copied, nor checked.
            _stop_and_copy(world, mig, now + t, late=replay.pages[replay.next:])
    replay.until(1.0)


def run_migrations(world: World) -> None:
    state = world.state
    tick_s = state.tick_s
    now = state.time_s
    for mig in state.migrations:
        if mig.status == "done" and mig.mode != "precopy" and mig.pushed.any():
            postcopy.count_minor_faults(world, mig)  # first touches of pushed pages
    for mig in [m for m in state.migrations if m.active]:
        reason = _broken(world, mig)
        if reason is not None:
            fail(world, mig, reason)
            continue
        if mig.status == "precopy":
            _precopy_tick(world, mig, now, tick_s)
        elif mig.status == "postcopy":
            postcopy.count_minor_faults(world, mig)
            postcopy.push(world, mig, tick_s)
            if postcopy.remaining(world, mig) == 0:
                mig.status = "done"
                mig.end_s = now + tick_s
                vm = state.vms.ids[mig.vm]
                world.emit("migration_finished", f"{vm}'s memory is all on "
                           f"{state.hosts.ids[mig.dst]}: {mig.network_faults} network "
                           f"faults, {mig.pushed_pages} pages pushed", vm=vm)
