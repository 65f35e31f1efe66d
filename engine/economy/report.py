"""Money as JSON-ready data: totals, the cost breakdown, hosts and tenants."""

from __future__ import annotations

from typing import Any

from engine.world import World


def economy_report(world: World) -> dict[str, Any]:
    """Money in total and broken down by kind of cost, by host and by tenant."""
    state = world.state
    money, vms, hosts = state.money, state.vms, state.hosts
    tenants: dict[str, dict[str, float]] = {}
    for v, spec in enumerate(vms.specs):
        t = tenants.setdefault(spec.tenant, {"revenue": 0.0, "penalties": 0.0})
        t["revenue"] += float(vms["revenue"][v])
        t["penalties"] += float(vms["penalties"][v])
    hours = state.time_s / 3600.0
    return {
        "revenue": money.revenue,
        "costs": money.costs,
        "penalties": money.penalties,
        "profit": money.profit,
        "profit_per_hour": money.profit / hours if hours else 0.0,
        "costs_breakdown": {"power": money.power_cost, "capital": money.capital_cost,
                            "network": money.network_cost},
        "hosts": [{"id": h, "capital": float(hosts.capital_per_hour[i]) * hours}
                  for i, h in enumerate(hosts.ids)],
        "tenants": [{"tenant": name, **values, "profit_share": values["revenue"]
                     - values["penalties"]} for name, values in sorted(tenants.items())],
    }
