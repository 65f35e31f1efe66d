"""Service traffic over the data-center network.

Each running VM with network demand is a flow from its host to the gateway (or, without
one, to its host's switch). Rates come from max-min fairness over link capacities, so a
busy NIC limits every VM behind it. Flows change rarely, so rates are recomputed only when
the set of flows or demands changes.
"""

from __future__ import annotations

import numpy as np

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
    the links by max-min fairness; each migration's flow is capped by its current rate."""
    state = world.state
    vms = state.vms
    host = vms["host"]
    active = (host >= 0) & state.hosts.up[np.maximum(host, 0)] & (vms["net_bytes_per_s"] > 0)
    demand = np.where(active, vms["net_bytes_per_s"] * vms["demand_scale"], 0.0)
    migrations = [m for m in state.migrations if m.active and m.status != "stopcopy"]
    mig_demand = np.array([m.round_rate for m in migrations], np.float64)
    key = (host.tobytes() + demand.tobytes() + mig_demand.tobytes()
           + np.array([(m.src, m.dst) for m in migrations], np.int64).tobytes()
           + world.topology.link_up.tobytes()
           + world.topology.link_capacity_bytes_per_s.tobytes())
    if key == world.service_flow_key:
        return
    world.service_flow_key = key
    flow_vms = np.flatnonzero(active)
    ids = state.hosts.ids
    flows = [(ids[int(host[v])], service_destination(world, ids[int(host[v])]))
             for v in flow_vms]
    flows += [(ids[m.src], ids[m.dst]) for m in migrations]
    owners: list[tuple[str, int]] = [("vm", int(v)) for v in flow_vms]
    owners += [("migration", m.id) for m in migrations]
    demands = np.concatenate([demand[flow_vms], mig_demand])
    rates = world.topology.rates(flows, demands) if flows else np.zeros(0)
    world.flow_set = (flows, demands, owners)
    state.vm_net_bytes_per_s = np.zeros(len(vms))
    state.vm_net_bytes_per_s[flow_vms] = rates[:flow_vms.size]
    state.nic_used_bytes_per_s = np.bincount(host[flow_vms], weights=rates[:flow_vms.size],
                                             minlength=len(state.hosts)).astype(np.float64)
    for m, rate in zip(migrations, rates[flow_vms.size:], strict=True):
        m.flow_rate = float(rate)
        # Migration traffic leaves the source's NIC too.
        state.nic_used_bytes_per_s[m.src] += float(rate)
