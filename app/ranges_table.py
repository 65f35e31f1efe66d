"""`overcommit validate --ranges`: every number a scenario or a command may hold, with its
unit and range, read from the schema itself (engine/ranges.py metadata), so the table
cannot drift from what is enforced."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from rich.console import Console

from engine.commands import Command
from engine.ranges import Range, field_range
from engine.scenario import _LIST_KEYS, ScenarioSpec

_FILE_NAMES = dict(_LIST_KEYS)  # the file's names for the lists: [[host]], [[vm]]...


def _ranges(tp: Any, where: str, metadata: list[Any],
            seen: set[type]) -> Iterator[tuple[str, Range]]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        yield from _ranges(base, where, metadata + list(extra), seen)
    elif origin in (Union, types.UnionType):
        for arg in get_args(tp):
            yield from _ranges(arg, where, metadata, seen)
    elif origin in (list, tuple, dict):
        items = [a for a in get_args(tp) if a is not Ellipsis]
        for arg in dict.fromkeys(items):
            yield from _ranges(arg, f"{where}[]", [], seen)
    elif tp in (int, float):
        found = field_range(metadata)
        if found is not None:
            yield where, found
    elif isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
        seen.add(tp)
        hints = typing.get_type_hints(tp, include_extras=True)
        # A group ([[host_group]]) repeats its base's fields: list only its own.
        inherited = {n for base in tp.__mro__[1:] if base in seen
                     for n in getattr(base, "model_fields", {})}
        for name, info in tp.model_fields.items():
            if name in inherited:
                continue
            prefix = f"{where}." if where else ""
            label = _FILE_NAMES.get(name, name) if not where else name
            yield from _ranges(hints[name], prefix + label, list(info.metadata), seen)


def rows() -> list[tuple[str, str, str, str]]:
    """(field, unit, from, to) for the scenario's fields, then each command's."""
    out: list[tuple[str, str, str, str]] = []
    for where, rng in _ranges(ScenarioSpec, "", [], set()):
        if not where.startswith("timeline[].command."):  # the commands: listed below
            out.append((where, rng.unit_name, *rng.describe().split(" to ", 1)))
    union = get_args(get_args(Command)[0])
    for model in union:
        kind = model.model_fields["kind"].default
        for where, rng in _ranges(model, "", [], set()):
            if not where.startswith("vm."):  # place_vm's VM: the [[vm]] rows above
                out.append((f"{kind}: {where}", rng.unit_name, *rng.describe().split(" to ", 1)))
    return out


def print_ranges(console: Console) -> None:
    """Plain aligned lines (a pipe or a grep gets them whole)."""
    table = [("field", "unit", "from", "to"), *rows()]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    console.print("Every number a scenario ([[vm]], [policy.memory], ...) or a command "
                  "(timeline entries, --set, the console) may hold. Sizes, rates and "
                  "durations also take units: 512MiB, 1Gbit/s, 250ms.", markup=False,
                  soft_wrap=True)
    for row in table:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        console.print(f"{line}  {row[3]}", markup=False, soft_wrap=True, highlight=False)
