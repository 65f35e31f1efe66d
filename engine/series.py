"""One sample of the world's time series: per-host, per-VM and world columns as arrays.

A pure reader for `overcommit run --series` (the app writes the file, app/series.py).
Every column is gathered with numpy from the per-host and per-VM arrays, never from the
per-page ones nor through per-VM Python objects, so a sample of the 1,000-VM data center
costs about a millisecond. Units are in the column names; COLUMNS documents each one.

Memory by state adds up twice over: for a host, private + shared + compression_cache +
free = memory (frames); for a VM, private + shared + balloon + swapped + compressed +
untouched + remote = configured (guest pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.memory.overhead import per_host
from engine.state import Loc
from engine.state_tables import MEM_STATE_NAMES
from engine.world import World

Array = npt.NDArray[Any]

# Every column of a sample, in file order, with its meaning. Which rows carry it:
# "h" hosts, "v" VMs, "w" the one world row per sample.
COLUMNS: dict[str, tuple[str, str]] = {
    "time_s": ("hvw", "simulated time of the sample"),
    "tick": ("hvw", "tick number"),
    "kind": ("hvw", "host, vm or world"),
    "id": ("hvw", "host or VM id; empty for the world row"),
    "host": ("v", "the VM's host; empty when it is not running"),
    "state": ("hv", "host: free-memory state (high, soft, hard, low; down when failed); "
                    "VM: queued, running, stopped or lost"),
    "memory_bytes": ("hw", "host RAM (world: all hosts)"),
    "configured_bytes": ("vw", "VM memory as configured (world: all VMs)"),
    "private_bytes": ("hv", "host: frames mapped by one guest page; VM: its pages in them"),
    "shared_bytes": ("hv", "host: copy-on-write frames; VM: its pages mapped to them"),
    "compression_cache_bytes": ("h", "frames of the compression cache (two compressed "
                                     "pages each at most); during a post-copy migration "
                                     "also the frames its source still holds"),
    "overhead_bytes": ("hv", "frames of the VMM's per-VM overhead (host: with those reserved "
                             "for VMs migrating in)"),
    "free_bytes": ("hw", "free frames"),
    "balloon_bytes": ("hv", "guest pages held by the balloon (host: of its VMs)"),
    "swapped_bytes": ("hv", "guest pages in the hypervisor's swap"),
    "compressed_bytes": ("hv", "guest pages in the compression cache"),
    "untouched_bytes": ("v", "guest pages never touched (no frame)"),
    "remote_bytes": ("v", "post-copy: guest pages still at the migration source"),
    "shared_saved_bytes": ("h", "guest shared pages minus shared frames: what sharing saves"),
    "target_bytes": ("hv", "allocation target (host: sum over its VMs)"),
    "balloon_target_bytes": ("v", "what the balloon driver is asked to hold"),
    "swap_target_bytes": ("v", "what the swap daemon is asked to swap out"),
    "active_estimate_bytes": ("hv", "sampled estimate of active memory"),
    "active_true_bytes": ("hv", "true active memory of the last sampling period"),
    "n_vms": ("h", "VMs running on the host"),
    "service_level": ("hv", "share of this tick's demand served (host: mean of its VMs)"),
    "service_level_avg": ("v", "share of all demand served since it started"),
    "latency_s": ("v", "mean latency of an operation this tick"),
    "nic_used_bytes_per_s": ("h", "NIC traffic, service and migration"),
    "nic_capacity_bytes_per_s": ("h", "NIC capacity"),
    "net_bytes_per_s": ("v", "the VM's service traffic"),
    "swapins_pages_per_s": ("hv", "hypervisor swap-ins this tick"),
    "swapouts_pages_per_s": ("h", "hypervisor swap-outs this tick"),
    "migration_out_bytes_per_s": ("h", "rate of migrations leaving the host"),
    "migration_in_bytes_per_s": ("h", "rate of migrations arriving"),
    "migration_status": ("v", "precopy, stopcopy or postcopy while migrating, else empty"),
    "migration_round": ("v", "pre-copy rounds so far (0 when not migrating)"),
    "migration_sent_bytes": ("v", "bytes sent by its migration so far"),
    "migration_remaining_bytes": ("v", "bytes its migration still has to send"),
    "migration_rate_bytes_per_s": ("v", "what the network gives its migration"),
    "running_vms": ("w", "VMs running"),
    "migrations_active": ("w", "migrations in progress"),
    "revenue": ("vw", "money earned so far, currency units"),
    "penalties": ("vw", "SLA credits paid so far"),
    "costs": ("w", "power, capital and network costs so far"),
    "profit": ("w", "revenue - costs - penalties"),
    "sla_breaches": ("v", "SLA windows breached so far"),
}
STRING_COLUMNS = frozenset({"kind", "id", "host", "state", "migration_status"})
VM_STATUSES = ("queued", "running", "stopped", "lost")


@dataclass(frozen=True)
class Sample:
    """Columns by kind of row; host and VM columns are arrays of one value per row."""

    time_s: float
    tick: int
    hosts: dict[str, Array]
    vms: dict[str, Array]
    world: dict[str, Any]


def _per_host(host: Array, running: Array, values: Array, n_hosts: int) -> Array:
    """Sums over each host's running VMs (exact: page counts stay far below 2**53)."""
    return np.bincount(host[running], weights=values[running], minlength=n_hosts)


def _host_columns(world: World, vm: dict[str, Array], mig_out: Array,
                  mig_in: Array) -> dict[str, Array]:
    state = world.state
    hosts, page = state.hosts, state.page_size
    n = len(hosts)
    host_of = state.vms["host"]
    running = host_of >= 0

    def total(name: str) -> Array:
        return _per_host(host_of, running, vm[name].astype(np.float64), n).astype(np.int64)

    memory = hosts.n_frames * page
    free = hosts.free_count * page
    private = total("private_bytes")
    shared = state.sharing.hosts["shared_frames"] * page
    overhead = per_host(state) * page
    n_vms = np.bincount(host_of[running], minlength=n)
    service = _per_host(host_of, running, vm["service_level"], n)
    states = np.asarray(MEM_STATE_NAMES, dtype=object)[state.reclaim.hosts["mem_state"]]
    reclaim = state.reclaim.hosts
    return {
        "id": np.asarray(hosts.ids, dtype=object),
        "state": np.where(hosts.up, states, "down"),
        "memory_bytes": memory,
        "private_bytes": private,
        "shared_bytes": shared,
        "overhead_bytes": overhead,
        "compression_cache_bytes": memory - free - private - shared - overhead,
        "free_bytes": free,
        "balloon_bytes": total("balloon_bytes"),
        "swapped_bytes": total("swapped_bytes"),
        "compressed_bytes": total("compressed_bytes"),
        "shared_saved_bytes": total("shared_bytes") - shared,
        "target_bytes": total("target_bytes"),
        "active_estimate_bytes": total("active_estimate_bytes"),
        "active_true_bytes": total("active_true_bytes"),
        "n_vms": n_vms,
        "service_level": np.where(n_vms > 0, service / np.maximum(n_vms, 1), np.nan),
        "nic_used_bytes_per_s": state.nic_used_bytes_per_s.astype(np.float64),
        "nic_capacity_bytes_per_s": np.asarray([s.nic for s in hosts.specs], np.float64),
        "swapins_pages_per_s": reclaim["swapin_tick"] / state.tick_s,
        "swapouts_pages_per_s": reclaim["swapout_tick"] / state.tick_s,
        "migration_out_bytes_per_s": mig_out,
        "migration_in_bytes_per_s": mig_in,
    }


def _vm_columns(world: World) -> dict[str, Array]:
    state = world.state
    vms, page = state.vms, state.page_size
    lc = vms["loc_count"]
    host_of = vms["host"]
    running = host_of >= 0
    configured = vms["n_pages"] * page
    status = np.where(running, 1, np.where(vms["lost_vm"], 3, np.where(vms["started"], 2, 0)))
    host_ids = np.asarray([*state.hosts.ids, ""], dtype=object)
    balloon_target = np.where(vms["balloon_forced"] >= 0, vms["balloon_forced"],
                              vms["balloon_target"])
    swap_target = np.where(vms["swap_forced"] >= 0, vms["swap_forced"],
                           lc[:, Loc.SWAPPED] + vms["swap_goal"])
    ran = vms["running_s"] > 0
    return {
        "id": np.asarray(vms.ids, dtype=object),
        "host": host_ids[np.where(running, host_of, -1)],
        "state": np.asarray(VM_STATUSES, dtype=object)[status],
        "configured_bytes": configured,
        "private_bytes": lc[:, Loc.PRIVATE] * page,
        "shared_bytes": lc[:, Loc.SHARED] * page,
        "balloon_bytes": lc[:, Loc.BALLOONED] * page,
        "swapped_bytes": lc[:, Loc.SWAPPED] * page,
        "compressed_bytes": lc[:, Loc.COMPRESSED] * page,
        "untouched_bytes": lc[:, Loc.UNTOUCHED] * page,
        "remote_bytes": lc[:, Loc.REMOTE] * page,
        "overhead_bytes": vms["overhead_held"] * page,
        "target_bytes": np.where(running, vms["target_pages"] * page, 0),
        "balloon_target_bytes": balloon_target * page,
        "swap_target_bytes": np.where(running, swap_target * page, 0),
        "active_estimate_bytes": np.where(
            running, np.rint(vms["active_estimate"] * configured), 0).astype(np.int64),
        "active_true_bytes": np.where(
            running, np.rint(vms["active_true"] * configured), 0).astype(np.int64),
        "service_level": np.where(running, vms["service_tick"], 0.0),
        "service_level_avg": np.where(ran, vms["served_s"] / np.where(ran, vms["running_s"], 1.0),
                                      0.0),
        "latency_s": vms["latency_s"].copy(),
        "net_bytes_per_s": state.vm_net_bytes_per_s.astype(np.float64),
        "swapins_pages_per_s": vms["swapins_tick"] / state.tick_s,
        "revenue": vms["revenue"].copy(),
        "penalties": vms["penalties"].copy(),
        "sla_breaches": vms["sla_breaches"].copy(),
    }


def _migration_columns(world: World, vm: dict[str, Array]) -> tuple[Array, Array, int]:
    """Adds the per-VM migration columns; returns the host rates out and in. The loop is
    over migrations in progress, a handful even in a busy data center."""
    state = world.state
    n_vms, n_hosts, page = len(state.vms), len(state.hosts), state.page_size
    status = np.full(n_vms, "", dtype=object)
    rounds = np.zeros(n_vms, np.int64)
    sent = np.zeros(n_vms, np.int64)
    remaining = np.zeros(n_vms, np.int64)
    rate = np.zeros(n_vms, np.float64)
    rate_out = np.zeros(n_hosts, np.float64)
    rate_in = np.zeros(n_hosts, np.float64)
    active = [m for m in state.migrations if m.active]
    for m in active:
        status[m.vm] = m.status
        rounds[m.vm] = len(m.rounds)
        sent[m.vm] = m.bytes_sent
        if m.status == "postcopy":
            remaining[m.vm] = int(state.vms["loc_count"][m.vm, Loc.REMOTE]) * page
        elif m.status == "precopy":
            remaining[m.vm] = (m.to_send.size - m.cursor) * page
        rate[m.vm] = m.flow_rate
        rate_out[m.src] += m.flow_rate
        rate_in[m.dst] += m.flow_rate
    vm.update({"migration_status": status, "migration_round": rounds,
               "migration_sent_bytes": sent, "migration_remaining_bytes": remaining,
               "migration_rate_bytes_per_s": rate})
    return rate_out, rate_in, len(active)


def sample(world: World) -> Sample:
    """The world now, as columns (see COLUMNS)."""
    state = world.state
    vm = _vm_columns(world)
    mig_out, mig_in, n_active = _migration_columns(world, vm)
    host = _host_columns(world, vm, mig_out, mig_in)
    money = state.money
    world_row = {
        "id": "",
        "memory_bytes": int(host["memory_bytes"].sum()),
        "configured_bytes": int(vm["configured_bytes"].sum()),
        "free_bytes": int(host["free_bytes"].sum()),
        "running_vms": int((state.vms["host"] >= 0).sum()),
        "migrations_active": n_active,
        "revenue": money.revenue,
        "penalties": money.penalties,
        "costs": money.costs,
        "profit": money.profit,
    }
    return Sample(state.time_s, state.tick, host, vm, world_row)
