"""Every number of the scenario schema, the save and every command has a finite range.

The walk is by introspection, so a field added later (a new policy option, a command
argument) without a range fails here, before a user finds 1e400 crashing the engine.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from engine.commands import Command, SetShares, SetThresholds, SetWorkload, parse_command
from engine.ranges import Range, field_range
from engine.savemodel import SaveMeta
from engine.scenario import ScenarioSpec
from engine.spec import HostSpec, VMSpec


def _bounded(metadata: list[Any]) -> bool:
    if field_range(metadata) is not None:
        return True
    lows = [m for m in metadata if isinstance(m, annotated_types.Ge | annotated_types.Gt)]
    highs = [m for m in metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)]
    finite = all(math.isfinite(float(getattr(m, name))) for m in lows + highs
                 for name in ("ge", "gt", "le", "lt") if hasattr(m, name))
    return bool(lows and highs and finite)


def _numbers_without_range(tp: Any, where: str, metadata: list[Any],
                           seen: set[type], out: list[str]) -> None:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        _numbers_without_range(base, where, metadata + list(extra), seen, out)
    elif origin in (Union, types.UnionType):
        for arg in get_args(tp):
            _numbers_without_range(arg, where, metadata, seen, out)
    elif origin is Literal or tp in (bool, str, type(None)):
        return
    elif origin in (list, tuple, dict, set, frozenset):
        for arg in get_args(tp):
            if arg is not Ellipsis:
                _numbers_without_range(arg, f"{where}[]", [], seen, out)
    elif tp in (int, float):
        if not _bounded(metadata):
            out.append(where)
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return
        seen.add(tp)
        hints = typing.get_type_hints(tp, include_extras=True)
        for name, info in tp.model_fields.items():
            _numbers_without_range(hints[name], f"{tp.__name__}.{name}",
                                   list(info.metadata), seen, out)
    elif tp is Any:
        out.append(f"{where} (Any)")


@pytest.mark.parametrize("root", [ScenarioSpec, Command, SaveMeta],
                         ids=["scenario", "commands", "save"])
def test_every_number_has_a_finite_range(root: Any) -> None:
    missing: list[str] = []
    _numbers_without_range(root, getattr(root, "__name__", "Command"), [], set(), missing)
    assert missing == [], f"numeric fields without a finite range: {missing}"


def test_the_walk_finds_an_unbounded_field() -> None:
    class Loose(BaseModel):
        bounded: Annotated[float, Range(0, 1)] = 0.0
        loose: float = 0.0
        nested: list[Annotated[int, Range(0, 9, "int")] | None] = []

    missing: list[str] = []
    _numbers_without_range(Loose, "Loose", [], set(), missing)
    assert missing == ["Loose.loose"]


@pytest.mark.parametrize("data", [
    {"kind": "set_shares", "vm": "a", "shares": "99999999999999999999999999"},
    {"kind": "set_shares", "vm": "a", "shares": 1e23},
    {"kind": "set_min", "vm": "a", "min": "1e400"},
    {"kind": "set_max", "vm": "a", "max": "1e400MiB"},
    {"kind": "set_workload", "vm": "a", "reads_per_s": "inf"},
    {"kind": "set_workload", "vm": "a", "reads_per_s": 1e30},
    {"kind": "set_workload", "vm": "a", "working_set": [1, 2]},
    {"kind": "set_balloon_target", "vm": "a", "target": {"x": 1}},
    {"kind": "set_link", "a": "x", "b": "y", "capacity": "nan"},
    {"kind": "set_link", "a": "x", "b": "y", "capacity": 0},
    {"kind": "migrate", "vm": "a", "to": "h2", "max_rate": "2Tbit/s"},
    {"kind": "set_thresholds", "high": 0.01, "soft": 0.02, "hard": 0.03, "low": 0.04},
    {"kind": "set_shares", "vm": "a", "shares": True},
])
def test_commands_refuse_non_finite_and_huge_values(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_command(data)


def test_range_messages_speak_the_fields_unit() -> None:
    with pytest.raises(ValidationError) as err:
        SetWorkload(vm="a", reads_per_s=1e9)  # type: ignore[arg-type]
    assert "from 0/s to 100,000,000/s" in str(err.value)
    with pytest.raises(ValidationError) as err:
        HostSpec(id="h", memory="2B")  # type: ignore[arg-type]
    assert "a size from 1MiB to 16PiB" in str(err.value)
    # Typed text still works where the console passes strings.
    assert SetShares(vm="a", shares=" 2000 ").shares == 2000  # type: ignore[arg-type]
    assert SetThresholds(high=0.5, soft=0.4, hard=0.3, low=0.2).low == 0.2
    assert VMSpec(id="v", memory="1GiB", shares=7.0).shares == 7  # type: ignore[arg-type]
