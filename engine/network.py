"""Service traffic over the data-center network.

Each running VM with network demand is a flow from its host to the gateway (or, without
one, to its host's switch). Rates come from max-min fairness over link capacities, so a
busy NIC limits every VM behind it. Flows change rarely, so rates are recomputed only when
the set of flows or demands changes.
"""

from __future__ import annotations

import numpy as np

from engine.migration.model import POSTCOPY, PRECOPY, table_of
from engine.scenario import ScenarioSpec
from engine.topology import Topology
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


def update_service_rates(world: World) -> None:
    """Service flows (host -> gateway) and migration flows (source -> destination) share
    the links by max-min fairness; each migration's flow is capped by its current rate
    (a post-copy's by its post-copy cap, if any). A second solve with the migrations
    uncapped gives what each could get if its cap rose within the tick (a new Xen round,
    QEMU's uncapped stop-and-copy)."""
    state = world.state
    vms = state.vms
    host = vms["host"]
    active = (host >= 0) & state.hosts.up[np.maximum(host, 0)] & (vms["net_bytes_per_s"] > 0)
    demand = np.where(active, vms["net_bytes_per_s"] * vms["demand_scale"], 0.0)
    table = table_of(state)
    rows = table.active_rows(PRECOPY, POSTCOPY)
    postcopy = table["status"][rows] == POSTCOPY
    mig_demand = np.where(postcopy, table["postcopy_rate"][rows], table["round_rate"][rows])
    src, dst = table["src"][rows], table["dst"][rows]
    key = (host.tobytes() + demand.tobytes() + mig_demand.tobytes() + src.tobytes()
           + dst.tobytes() + world.topology.link_up.tobytes()
           + world.topology.link_capacity_bytes_per_s.tobytes())
    if key == world.service_flow_key:
        return
    world.service_flow_key = key
    flow_vms = np.flatnonzero(active)
    ids = state.hosts.ids
    flows = [(ids[int(host[v])], service_destination(world, ids[int(host[v])]))
             for v in flow_vms]
    flows += [(ids[a], ids[b]) for a, b in zip(src.tolist(), dst.tolist(), strict=True)]
    owners: list[tuple[str, int]] = [("vm", int(v)) for v in flow_vms]
    owners += [("migration", int(r)) for r in rows]
    demands = np.concatenate([demand[flow_vms], mig_demand])
    rates = world.topology.rates(flows, demands) if flows else np.zeros(0)
    world.flow_set = (flows, demands, owners)
    state.vm_net_bytes_per_s = np.zeros(len(vms))
    state.vm_net_bytes_per_s[flow_vms] = rates[:flow_vms.size]
    state.nic_used_bytes_per_s = np.bincount(host[flow_vms], weights=rates[:flow_vms.size],
                                             minlength=len(state.hosts)).astype(np.float64)
    if rows.size:
        mig_rates = rates[flow_vms.size:]
        table["flow_rate"][rows] = mig_rates
        uncapped = demands.copy()
        uncapped[flow_vms.size:] = np.inf
        table["path_rate"][rows] = world.topology.rates(flows, uncapped)[flow_vms.size:]
        # Migration traffic leaves the source's NIC too.
        np.add.at(state.nic_used_bytes_per_s, src, mig_rates)
