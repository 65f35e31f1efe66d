"""Revenue and costs per tick.

Revenue: every running VM bills its price per hour, scaled by the fraction of its page
touches that were served (a VM stalled on memory is not doing paid work). Costs: each host
draws idle + (peak - idle) x CPU utilisation watts at the policy's price per kWh, plus its
capital cost per hour. Penalties come from SLA contracts (none defined yet, so zero).
"""

from __future__ import annotations

import numpy as np

from engine.world import World


def bill(world: World) -> None:
    state = world.state
    vms, hosts = state.vms, state.hosts
    hours = state.tick_s / 3600.0
    running = vms["host"] >= 0
    ops = vms["ops_tick"]
    served = np.where(ops > 0, 1.0 - vms["stalled_ops_tick"] / np.maximum(ops, 1), 1.0)
    revenue = float((vms["price_per_hour"] * served)[running].sum() * hours)

    cpu_demand = np.where(running, vms["vcpus"] * vms["cpu_util"] * served, 0.0)
    host_of = np.maximum(vms["host"], 0)
    demand_per_host = np.bincount(host_of, weights=cpu_demand, minlength=len(hosts))
    util = np.minimum(demand_per_host / hosts.cpus, 1.0)
    power_w = np.where(hosts.up, hosts.idle_w + (hosts.peak_w - hosts.idle_w) * util, 0.0)
    kwh_price = world.spec.policy.economy.price_per_kwh
    costs = float((power_w / 1000.0 * kwh_price + hosts.capital_per_hour).sum() * hours)

    money = state.money
    money.revenue_tick, money.costs_tick, money.penalties_tick = revenue, costs, 0.0
    money.revenue += revenue
    money.costs += costs
