"""Game objectives: a metric must reach a bound by a deadline.

Each objective is judged once, at the end of the tick that reaches its deadline; until
then it shows its progress. The verdict is kept, so later ticks cannot change it.
"""

from __future__ import annotations

from typing import Any

from engine.spec import ObjectiveSpec
from engine.world import World


def metric_value(world: World, obj: ObjectiveSpec) -> float:
    state, metric = world.state, obj.metric
    vms = state.vms
    if obj.vm is not None:
        if obj.vm not in vms.ids:
            # A customer the timeline has not placed yet: nothing served, lost or paid.
            return 1.0 if metric == "service_level" else 0.0
        # One VM's own counter; the spec allows only metrics that have one.
        v = vms.index(obj.vm)
        if metric == "service_level":
            running_s = float(vms["running_s"][v])
            return float(vms["served_s"][v]) / running_s if running_s > 0 else 1.0
        column = {"sla_breaches": "sla_breaches", "downtime_s": "downtime_s",
                  "swapins": "swapins", "revenue": "revenue", "penalties": "penalties"}[metric]
        return float(vms[column][v])
    if metric == "profit":
        return state.money.profit
    if metric == "revenue":
        return state.money.revenue
    if metric == "penalties":
        return state.money.penalties
    if metric == "running_vms":
        return float((vms["host"] >= 0).sum())
    if metric == "stalled_fraction":
        ops = int(vms["ops_tick"].sum())
        return int(vms["stalled_ops_tick"].sum()) / ops if ops else 0.0
    if metric == "service_level":
        # Demand served over all contracted time: a VM running longer weighs more.
        running_s = float(vms["running_s"].sum())
        return float(vms["served_s"].sum()) / running_s if running_s > 0 else 1.0
    if metric == "sla_breaches":
        return float(vms["sla_breaches"].sum())
    if metric == "downtime_s":
        return float(vms["downtime_s"].sum())
    if metric == "swapins":
        return float(vms["swapins"].sum())
    if metric == "lost_vms":
        return float(vms["lost_vm"].sum())
    if metric == "vms_on_host":
        assert obj.host is not None
        return float((vms["host"] == state.hosts.index(obj.host)).sum())
    raise ValueError(f"unknown metric {metric!r}")


def _met(obj: ObjectiveSpec, value: float) -> bool:
    if obj.at_least is not None:
        return value >= obj.at_least
    assert obj.at_most is not None
    return value <= obj.at_most


def judge_objectives(world: World) -> None:
    end_of_tick = world.state.time_s + world.state.tick_s + 1e-9
    for i, obj in enumerate(world.spec.objectives):
        if i not in world.objective_verdicts and end_of_tick >= obj.by:
            value = metric_value(world, obj)
            world.objective_verdicts[i] = (value, _met(obj, value))
            world.emit("objective", f"objective {'met' if _met(obj, value) else 'failed'}: "
                       f"{describe(obj)} (got {value:.4g})")


def describe(obj: ObjectiveSpec) -> str:
    if obj.description:
        return obj.description
    bound = f">= {obj.at_least:g}" if obj.at_least is not None else f"<= {obj.at_most:g}"
    scope = f" of {obj.vm}" if obj.vm else f" on {obj.host}" if obj.host else ""
    return f"{obj.metric}{scope} {bound} by {obj.by:g}s"


def evaluate_objectives(world: World) -> list[dict[str, Any]]:
    out = []
    for i, obj in enumerate(world.spec.objectives):
        verdict = world.objective_verdicts.get(i)
        value = verdict[0] if verdict else metric_value(world, obj)
        status = "pending" if verdict is None else ("met" if verdict[1] else "failed")
        out.append({"description": describe(obj), "metric": obj.metric,
                    "vm": obj.vm, "host": obj.host, "at_least": obj.at_least,
                    "at_most": obj.at_most, "by_s": obj.by,
                    "value": value, "status": status})
    return out
