"""One run of a sweep, as a Dask worker executes it, and the metric paths it collects.

`run_point` gets everything it needs in its task (the scenario's TOML data, the `--set`
overrides, seed, ticks, metrics), so a worker on another machine needs Overcommit
installed but no shared file system; a time series comes back as the file's bytes. It
never raises: a failure is returned with its message, so one bad point cannot stop a sweep.
"""

from __future__ import annotations

import copy
import math
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import InputError, Simulation, parse_scenario
from engine.scenario import apply_overrides

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": sum, "mean": lambda xs: sum(xs) / len(xs), "min": min, "max": max, "count": len}
_CALL = re.compile(r"^(\w+)\((.*)\)$")
_PART = re.compile(r"^([A-Za-z_][\w]*)(?:\[([^\]]+)\])?$")


class MetricError(Exception):
    """A metric path that the report does not have."""


@dataclass(frozen=True)
class Metric:
    """`economy.profit`, `hosts[0].free_bytes`, `vms[web0].service_level`, or an aggregate
    over every element of a list: `mean(vms[*].service_level_avg)`."""

    text: str
    aggregate: str | None
    parts: tuple[tuple[str, str | None], ...]


def parse_metric(text: str, source: str = "<sweep>", field: str = "metrics") -> Metric:
    body, aggregate = text.strip(), None
    call = _CALL.match(body)
    if call:
        aggregate, body = call.group(1), call.group(2).strip()
        if aggregate not in AGGREGATES:
            raise InputError(source, field, f"{text!r}: expected one of "
                             f"{', '.join(AGGREGATES)} around a [*] path, got {aggregate}()")
    parts = []
    for piece in body.split("."):
        m = _PART.match(piece)
        if not m:
            raise InputError(source, field, f"{text!r}: expected a report path such as "
                             "economy.profit or mean(vms[*].service_level_avg)")
        parts.append((m.group(1), m.group(2)))
    stars = sum(index == "*" for _, index in parts)
    if aggregate and stars != 1:
        raise InputError(source, field, f"{text!r}: {aggregate}() needs exactly one [*]")
    if not aggregate and stars:
        raise InputError(source, field, f"{text!r}: a [*] path needs sum(), mean(), min(), "
                         "max() or count() around it")
    return Metric(text, aggregate, tuple(parts))


def _pick(node: Any, name: str, index: str | None, where: str) -> Any:
    if not isinstance(node, dict) or name not in node:
        have = ", ".join(sorted(node)[:12]) if isinstance(node, dict) else type(node).__name__
        raise MetricError(f"no {name!r} in {where or 'the report'} (has {have})")
    node = node[name]
    if index is None or index == "*":
        return node
    if not isinstance(node, list):
        raise MetricError(f"{name} is not a list")
    if index.lstrip("-").isdigit():
        try:
            return node[int(index)]
        except IndexError:
            raise MetricError(f"{name}[{index}]: the list has {len(node)} entries") from None
    for item in node:  # an id: vms[web0]
        if isinstance(item, dict) and item.get("id", item.get("vm")) == index:
            return item
    raise MetricError(f"{name}[{index}]: no entry with that id")


def _number(value: Any, text: str) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    raise MetricError(f"{text} is {type(value).__name__}, not a number")


def evaluate(metric: Metric, report: dict[str, Any]) -> float:
    """The metric's value in a report (`sim.report()`); MetricError says what is missing."""
    nodes, where, spread = [report], "", False
    for name, index in metric.parts:
        picked = []
        for node in nodes:
            value = _pick(node, name, index, where)
            if index == "*":
                if not isinstance(value, list):
                    raise MetricError(f"{name} is not a list")
                picked.extend(value)
                spread = True
            else:
                picked.append(value)
        nodes, where = picked, f"{where}.{name}" if where else name
    values = [_number(v, metric.text) for v in nodes]
    if metric.aggregate is None:
        assert not spread and len(values) == 1
        return values[0]
    if not values and metric.aggregate not in ("sum", "count"):
        return math.nan  # the mean of no VMs is not 0
    return float(AGGREGATES[metric.aggregate](values))


def build(task: dict[str, Any]) -> tuple[Simulation, int]:
    """The task's simulation and how many ticks to run (the scenario's duration when the
    sweep gives no ticks)."""
    source = task["source"]
    data = apply_overrides(copy.deepcopy(task["data"]), task["sets"], source)
    spec = parse_scenario(data, source)
    sim = Simulation.from_spec(spec, seed=task["seed"])
    ticks = task["ticks"]
    if ticks is None:
        meta = spec.scenario
        if meta.duration is None:
            raise InputError(source, "scenario.duration", "the scenario has no duration; "
                             "give the sweep's ticks")
        ticks = round(meta.duration / meta.tick_s)
    return sim, int(ticks)


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Runs one point of a sweep; never raises (the error is in the result)."""
    start = time.perf_counter()
    out: dict[str, Any] = {"index": task["index"], "status": "ok", "error": "",
                           "metrics": {}, "ticks": task["ticks"], "series": None}
    try:
        sim, ticks = build(task)
        out["ticks"] = ticks
        if task.get("series_every_s"):
            from app.series import series_bytes

            out["series"] = series_bytes(sim, ticks, task["series_every_s"],
                                         task["series_parquet"])
        else:
            sim.step(ticks)
        report = sim.report()
        for name, text in task["metrics"].items():
            out["metrics"][name] = evaluate(parse_metric(text), report)
    except InputError as err:
        out.update(status="failed", error=" ".join(str(err).split()))
    except MetricError as err:
        out.update(status="failed", error=f"metric: {err}")
    except Exception as err:  # a bug: keep where it happened, on one line
        where = traceback.extract_tb(err.__traceback__)[-1]
        out.update(status="failed", error=f"{type(err).__name__}: {err} "
                   f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
    out["wall_s"] = time.perf_counter() - start
    return out
