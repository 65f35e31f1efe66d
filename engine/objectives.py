"""Game objectives: a metric must reach a bound by a deadline.

Each objective is judged once, at the end of the tick that reaches its deadline; until
then it shows its progress. The verdict is kept, so later ticks cannot change it.
"""

from __future__ import annotations

from typing import Any

from engine.spec import ObjectiveSpec
from engine.world import World


def metric_value(world: World, metric: str) -> float:
    state = world.state
    if metric == "profit":
        return state.money.profit
    if metric == "revenue":
        return state.money.revenue
    if metric == "running_vms":
        return float((state.vms["host"] >= 0).sum())
    if metric == "stalled_fraction":
        ops = int(state.vms["ops_tick"].sum())
        return int(state.vms["stalled_ops_tick"].sum()) / ops if ops else 0.0
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
            value = metric_value(world, obj.metric)
            world.objective_verdicts[i] = (value, _met(obj, value))
            world.emit("objective", f"objective {'met' if _met(obj, value) else 'failed'}: "
                       f"{describe(obj)} (got {value:.4g})")


def describe(obj: ObjectiveSpec) -> str:
    if obj.description:
        return obj.description
    bound = f">= {obj.at_least:g}" if obj.at_least is not None else f"<= {obj.at_most:g}"
    return f"{obj.metric} {bound} by {obj.by:g}s"


def evaluate_objectives(world: World) -> list[dict[str, Any]]:
    out = []
    for i, obj in enumerate(world.spec.objectives):
        verdict = world.objective_verdicts.get(i)
        value = verdict[0] if verdict else metric_value(world, obj.metric)
        status = "pending" if verdict is None else ("met" if verdict[1] else "failed")
        out.append({"description": describe(obj), "metric": obj.metric,
                    "at_least": obj.at_least, "at_most": obj.at_most, "by_s": obj.by,
                    "value": value, "status": status})
    return out
