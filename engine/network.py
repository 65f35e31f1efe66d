"""Service traffic over the data-center network.

Each running VM with network demand is a flow from its host to the gateway (or, without
one, to its host's switch). Rates come from max-min fairness over link capacities, so a
busy NIC limits every VM behind it. Flows change rarely, so rates are recomputed only when
the set of flows or demands changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.migration.model import POSTCOPY, PRECOPY, table_of
from engine.scenario import ScenarioSpec
from engine.topology import Topology, max_min_fair_csr
from engine.world import World

UPLINK_SUFFIX = ".uplink"


def build_topology(spec: ScenarioSpec) -> Topology:
    nodes: list[tuple[str, str]] = [(s.id, "gateway" if s.kind == "gateway" else s.kind)
                                    for s in spec.switches]
    links = [(link.a, link.b, link.capacity, link.latency) for link in spec.links]
    for host in spec.all_hosts():
        nodes.append((host.id, "host"))
        # A host without a switch still has a NIC: it ends in a node of its own.
        end = host.switch if host.switch is not None else host.id + UPLINK_SUFFIX
        if host.switch is None:
            nodes.append((end, "switch"))
        links.append((host.id, end, host.nic, host.nic_latency))
    return Topology.build(nodes, links)


def service_destination(world: World, host_id: str) -> str:
    gateways = [s.id for s in world.spec.switches if s.kind == "gateway"]
    if gateways:
        return gateways[0]
    spec = world.state.hosts.specs[world.state.hosts.index(host_id)]
    return spec.switch if spec.switch is not None else host_id + UPLINK_SUFFIX


@dataclass
class FlowSet:
    """The flows given to the network, as arrays: each flow's links one after the other
    (`lengths` of them each), its demand, and which migration rows own the last ones (the
    service flows come first, one per VM in `vms`)."""

    links: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    demands: npt.NDArray[np.float64]
    vms: npt.NDArray[np.int64]
    migration_rows: npt.NDArray[np.int64]

    def rates(self, topology: Topology, demands: npt.NDArray[np.float64] | None = None
              ) -> npt.NDArray[np.float64]:
        wanted = self.demands if demands is None else demands
        return max_min_fair_csr(self.links, self.lengths, wanted,
                                topology.effective_capacity_bytes_per_s)

    def with_flow(self, path: npt.NDArray[np.int64], demand: float) -> FlowSet:
        return FlowSet(np.concatenate([self.links, path]), np.append(self.lengths, path.size),
                       np.append(self.demands, demand), self.vms,
                       np.append(self.migration_rows, -1))


EMPTY_FLOWS = FlowSet(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                      np.zeros(0, np.int64), np.zeros(0, np.int64))


def _host_paths(world: World) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each host's path to its service destination as (links, lengths), cached until a
    link goes down or up (routes follow latency, so capacity changes keep them)."""
    topology = world.topology
    key = topology.link_up.tobytes()
    cached = world.host_paths
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    ids = world.state.hosts.ids
    paths = [topology.path(h, service_destination(world, h)) for h in ids]
    links = np.concatenate(paths) if paths else np.zeros(0, np.int64)
    lengths = np.array([p.size for p in paths], np.int64)
    world.host_paths = (key, links.astype(np.int64), lengths)
    return world.host_paths[1], world.host_paths[2]


def flow_links(host_links: npt.NDArray[np.int64], host_lengths: npt.NDArray[np.int64],
               hosts: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64],
                                                      npt.NDArray[np.int64]]:
    """The links of one flow per entry of `hosts` (each its host's path), concatenated."""
    starts = np.cumsum(host_lengths) - host_lengths
    lengths = host_lengths[hosts]
    first = np.repeat(starts[hosts] - (np.cumsum(lengths) - lengths), lengths)
    return host_links[first + np.arange(int(lengths.sum()))], lengths


def update_service_rates(world: World) -> None:
    """Service flows (host -> gateway) and migration flows (source -> destination) share
    the links by max-min fairness; each migration's flow is capped by its current rate
    (a post-copy's by its post-copy cap, if any), and by what it can send between the
    pages it waits to read back from its source's swap. A second solve with the migrations
    uncapped gives what each could get if its cap rose within the tick (a new Xen round,
    QEMU's uncapped stop-and-copy). Flows are arrays (a VM's flow follows its host's
    path), so 100,000 VMs cost a few array passes, not a Python object each."""
    state = world.state
    vms = state.vms
    host = vms["host"]
    active = (host >= 0) & state.hosts.up[np.maximum(host, 0)] & (vms["net_bytes_per_s"] > 0)
    demand = np.where(active, vms["net_bytes_per_s"] * vms["demand_scale"], 0.0)
    table = table_of(state)
    rows = table.active_rows(PRECOPY, POSTCOPY)
    postcopy = table["status"][rows] == POSTCOPY
    # A sender that waits w seconds a byte for pages read back from its source's swap
    # (last tick's, migration/phase.py) sends at most 1 / (1 / cap + w) bytes a second
    # on average: that is what it asks of the links (below: how fast it sends between
    # reads for the average it gets).
    cap = np.where(postcopy, table["postcopy_rate"][rows], table["round_rate"][rows])
    wait = table["read_s_per_byte"][rows]
    reads = wait > 0
    with np.errstate(divide="ignore"):  # a cap of 0 asks for nothing, of inf for 1 / w
        mig_demand = np.where(reads, 1.0 / (1.0 / cap + wait), cap)
    src, dst = table["src"][rows], table["dst"][rows]
    topology = world.topology
    key = (host.tobytes() + demand.tobytes() + mig_demand.tobytes() + src.tobytes()
           + dst.tobytes() + topology.link_up.tobytes()
           + topology.link_capacity_bytes_per_s.tobytes())
    if key == world.service_flow_key:
        return
    world.service_flow_key = key
    flow_vms = np.flatnonzero(active)
    host_links, host_lengths = _host_paths(world)
    links, lengths = flow_links(host_links, host_lengths, host[flow_vms])
    ids = state.hosts.ids
    mig_paths = [topology.path(ids[a], ids[b]) for a, b in zip(src.tolist(), dst.tolist(),
                                                                strict=True)]
    demands = np.concatenate([demand[flow_vms], mig_demand])
    lengths = np.concatenate([lengths, [p.size for p in mig_paths]]).astype(np.int64)
    links = np.concatenate([links, *mig_paths]).astype(np.int64)
    # A flow with no path (a link down on the way) cannot send.
    demands[lengths == 0] = 0.0
    flows = FlowSet(links, lengths, demands, flow_vms, rows)
    world.flow_set = flows
    rates = flows.rates(topology)
    state.vm_net_bytes_per_s = np.zeros(len(vms))
    state.vm_net_bytes_per_s[flow_vms] = rates[:flow_vms.size]
    state.nic_used_bytes_per_s = np.bincount(host[flow_vms], weights=rates[:flow_vms.size],
                                             minlength=len(state.hosts)).astype(np.float64)
    if rows.size:
        mig_rates = rates[flow_vms.size:]
        uncapped = demands.copy()
        uncapped[flow_vms.size:] = np.where(lengths[flow_vms.size:] > 0, np.inf, 0.0)
        path = flows.rates(topology, uncapped)[flow_vms.size:]
        table["path_rate"][rows] = path
        # Between reads a sender goes at the rate that makes its average what it got.
        between = 1.0 / np.maximum(1.0 / np.maximum(mig_rates, 1e-9) - wait,
                                   1.0 / np.maximum(path, 1e-9))
        table["flow_rate"][rows] = np.where(reads & (mig_rates > 0), between, mig_rates)
        # Migration traffic leaves the source's NIC too.
        np.add.at(state.nic_used_bytes_per_s, src, mig_rates)
