"""The tick: one ordered list of phases, each a function over the world.

Order matters and is part of the contract:
1. commands   - scheduled timeline entries due now, then operator commands, in order
   boot       - overhead frames first; booting VMs write their next boot pages (stalls)
   schedule   - workload phases that start now replace the VMs' workload columns
2. workload   - every running (booted) VM touches pages, a closed-loop one at the pace its
                waits allow: first touch, COW break, swap-in, balloon pop, guest page-in,
                page-cache reads; stalls (a VM in post-copy only records its touches: the
                migration phase runs them)
3. sampling   - active-memory estimates (invalidate 100 random pages per period)
4. allocation - targets from shares, min, max and the idle tax (every balance period)
5. reclaim    - how hard to reclaim: the state free memory is in at its lowest in the tick
                with the balloons inflating beside the touches, poll by poll; balloon
                targets, swap goals (with room for the touches waiting for frames)
6. balloon    - drivers inflate or deflate toward their targets (a tick longer than their
                one-second poll inflates only to the poll after the host is back in high)
7. swap       - the swap daemon swaps toward its goals (share before swap)
   retouch    - swap victims the guest touches again before the tick ends fault back
                in, and the daemon evicts others in their place (event times, as if the
                daemon had run beside the guests all tick)
8. waiting    - touches that stalled for want of a frame take the frames freed since, as
                guests waiting on a daemon that runs beside them would
   states     - host states settle on free memory at the end of the tick (so a longer tick
                blocks no one longer); blocking in the low state
9. sharing    - page-sharing scanners (ESX random scan with hints, or KSM trees)
10. io        - device I/O: bounce copies through 32-bit DMA, remapping into low memory
11. network   - max-min fair rates of service and migration traffic over the topology
12. migration - every pre-copy advanced together (rounds, syncs, stop-and-copy), post-copy
                VMs' touches and faults in time with the push, switch-over, failures;
                pages the source swapped out read back from its disk before they go
13. service   - lost service by cause, service level and latency, availability
14. economy   - revenue for served work, host power, capital and network costs, SLA
                penalties at the end of each window
15. metrics   - history for sparklines, objectives judged
16. upkeep    - simulator housekeeping, no effect on results: every 600 ticks the memory
                behind the free-frame stacks' empty slots goes back to the OS
Later mechanisms insert their phases at the place the design gives them.
"""

from __future__ import annotations

from collections.abc import Callable

from engine import control
from engine.commands import describe_command
from engine.economy.billing import bill
from engine.memory.allocation import run_allocation
from engine.memory.balloon import run_balloon
from engine.memory.boot import run_boot
from engine.memory.phase import run_sharing
from engine.memory.reclaim import run_reclaim_policy, settle_states
from engine.memory.remap import run_io
from engine.memory.sampling import run_sampling
from engine.memory.stack_memory import run_upkeep
from engine.memory.swap import run_swap
from engine.migration.phase import run_migrations
from engine.network import update_service_rates
from engine.objectives import judge_objectives
from engine.service import run_service
from engine.workloads.phase import run_workloads, serve_waiting
from engine.workloads.retouch import retouch_evicted
from engine.workloads.schedule import run_schedule
from engine.world import World

Phase = Callable[[World], None]


def apply_commands(world: World) -> None:
    now = world.state.time_s + 1e-9
    timeline = world.spec.timeline
    due = []
    while world.timeline_next < len(timeline) and timeline[world.timeline_next].at <= now:
        due.append(timeline[world.timeline_next].command)
        world.timeline_next += 1
    for cmd, source in [(c, "timeline") for c in due] + [(c, "operator") for c in world.pending]:
        reason = control.check(world, cmd)
        vm = getattr(cmd, "vm", None)
        vm_id = vm if isinstance(vm, str) else getattr(vm, "id", None)
        if reason is not None:
            world.emit("command_rejected", f"{source} {cmd.kind} rejected: {reason}",
                       vm=vm_id, host=getattr(cmd, "host", None))
            continue
        if source == "timeline":
            world.emit("timeline", f"scheduled: {describe_command(cmd)}", vm=vm_id,
                       host=getattr(cmd, "host", None))
        control.apply(world, cmd)
    world.pending.clear()


def record_metrics(world: World) -> None:
    state = world.state
    ops = int(state.vms["ops_tick"].sum())
    stalled = int(state.vms["stalled_ops_tick"].sum())
    world.record("profit", state.money.profit)
    world.record("profit_tick", state.money.revenue_tick - state.money.costs_tick
                 - state.money.penalties_tick)
    world.record("free_bytes", float(state.hosts.free_count.sum() * state.page_size))
    world.record("stalled_fraction", stalled / ops if ops else 0.0)
    judge_objectives(world)


TICK_PHASES: tuple[tuple[str, Phase], ...] = (
    ("commands", apply_commands),
    ("boot", run_boot),
    ("schedule", run_schedule),
    ("workload", run_workloads),
    ("sampling", run_sampling),
    ("allocation", run_allocation),
    ("reclaim", run_reclaim_policy),
    ("balloon", run_balloon),
    ("swap", run_swap),
    ("retouch", retouch_evicted),
    ("waiting", serve_waiting),
    ("states", settle_states),
    ("sharing", run_sharing),
    ("io", run_io),
    ("network", update_service_rates),
    ("migration", run_migrations),
    ("service", run_service),
    ("economy", bill),
    ("metrics", record_metrics),
    ("upkeep", run_upkeep),
)
