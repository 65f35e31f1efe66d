"""Post-copy (Hines & Gopalan, VEE'09): switch first, then move the memory.

The VM stops at the source only long enough to send its CPU state and resumes at the
destination at once. Every touch of a page still at the source is a network fault (a
round trip plus the page's transfer) that stalls the vCPU; meanwhile the source pushes
the rest, each page exactly once. With pre-paging ("bubbling") the push starts around
the latest fault and grows outward from it, so the pages a workload will touch next are
usually there first: those touches become minor faults instead of network faults.
"""

from __future__ import annotations

import numpy as np

from engine.migration.model import Migration
from engine.migration.precopy import vm_slice
from engine.migration.switch import pull
from engine.state import I64, Loc, State
from engine.world import World


def demand_faults(state: State, mig: Migration, pages: I64) -> None:
    """Workload touches of REMOTE pages, called from the touch path before it maps them."""
    arrived = pull(state, mig, pages)
    if arrived.size == 0:
        return
    mig.network_faults += arrived.size
    mig.pages_sent += arrived.size
    bytes_ = arrived.size * (state.page_size + mig.page_header)
    mig.bytes_sent += bytes_
    rate = max(mig.flow_rate, 1.0)
    stall = arrived.size * mig.round_trip_s + bytes_ / rate
    state.vms["lost_postcopy_s_tick"][mig.vm] += stall
    mig.pivot = int(arrived[-1])


def push(world: World, mig: Migration, seconds: float) -> None:
    state, p = world.state, world.state.pages
    policy = world.spec.policy.migration
    sl = vm_slice(state, mig)
    remote = np.flatnonzero(p.location[sl] == Loc.REMOTE) + sl.start
    if remote.size == 0:
        return
    n = int(max(mig.flow_rate, 0.0) * seconds / (state.page_size + policy.page_header))
    if n <= 0:
        return
    if mig.prepaging:
        distance = np.abs(remote - mig.pivot)
        order = np.argsort(distance, kind="stable")[:n]
        chosen = np.sort(remote[order])
    else:
        chosen = remote[:n]
    arrived = pull(state, mig, chosen)
    off = sl.start
    mig.pushed[arrived - off] = True
    p.accessed[arrived] = False  # so the first touch at the destination shows as minor
    mig.pushed_pages += arrived.size
    mig.pages_sent += arrived.size
    mig.bytes_sent += arrived.size * (state.page_size + policy.page_header)


def count_minor_faults(world: World, mig: Migration) -> None:
    p = world.state.pages
    sl = vm_slice(world.state, mig)
    waiting = np.flatnonzero(mig.pushed) + sl.start
    touched = waiting[p.accessed[waiting]]
    mig.minor_faults += touched.size
    mig.pushed[touched - sl.start] = False


def remaining(world: World, mig: Migration) -> int:
    sl = vm_slice(world.state, mig)
    return int(np.count_nonzero(world.state.pages.location[sl] == Loc.REMOTE))
