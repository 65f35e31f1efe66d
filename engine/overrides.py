"""`--set KEY=VALUE`: change a scenario's data before it is validated.

Keys use the file's names (`host_group[0].count`, `policy.memory.idle_tax`,
`vm[0].content.resident`); values are TOML (`"4GiB"`, `0.75`, a bare word is a string).
Any field of the schema may be set, present in the file or not: missing tables on the way
are created (`vm[0].content.resident=0.5` when vm 0 has no content table). A list entry
must exist (`vm[5]` of a file with two VMs is an error), and a name that is no field of
the schema is refused here, naming the fields that are.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from engine.errors import InputError

MAX_OVERRIDES = 1000


def apply_overrides(data: dict[str, Any], assignments: Sequence[str], source: str,
                    root: type[BaseModel] | None = None,
                    file_names: dict[str, str] | None = None) -> dict[str, Any]:
    """Set each KEY=VALUE in `data` (the file's layout); `root` is the schema's model and
    `file_names` maps the file's keys to its fields (`host` -> `hosts`)."""
    if len(assignments) > MAX_OVERRIDES:
        raise InputError(source, "--set", f"at most {MAX_OVERRIDES} assignments")
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep:
            raise InputError(source, text, "expected KEY=VALUE, e.g. host_group[0].count=6")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            value = raw.strip()  # a bare word: take it as a string
        parts = [p for p in key.strip().replace("]", "").replace("[", ".").split(".") if p]
        if not parts:
            raise InputError(source, key or "--set", "expected KEY=VALUE, e.g. scenario.seed=3")
        _assign(data, parts, value, key.strip(), source, root, file_names or {})
    return data


def _assign(data: dict[str, Any], parts: list[str], value: Any, key: str, source: str,
            root: type[BaseModel] | None, file_names: dict[str, str]) -> None:
    node: Any = data
    schema: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.isdigit():
            index = int(part)
            if not isinstance(node, list):
                raise InputError(source, key, f"{'.'.join(parts[:i]) or 'it'} is not a list")
            if index >= len(node):
                raise InputError(source, key, f"no entry [{index}]: the list has {len(node)}")
            schema = _item_type(schema)
            if last:
                node[index] = value
                return
            node = node[index]
            continue
        if not isinstance(node, dict):
            raise InputError(source, key, f"{'.'.join(parts[:i]) or 'it'} is not a table")
        field = file_names.get(part, part) if schema is root else part
        schema = _field_type(schema, field, node, part, key, source)
        if last:
            node[part] = value
            return
        if part not in node:
            if _is_list(schema):
                raise InputError(source, key, f"no {part} entries in the file to set")
            node[part] = {}  # a table the file leaves at its default
        node = node[part]


def _unwrap(tp: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X (the first non-None member)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp  # a real union (the command union): resolved by its tag
            tp = members[0]
        else:
            return tp


def _is_list(tp: Any) -> bool:
    return get_origin(_unwrap(tp)) in (list, tuple)


def _item_type(tp: Any) -> Any:
    tp = _unwrap(tp)
    args = get_args(tp)
    return args[0] if get_origin(tp) in (list, tuple) and args else None


def _field_type(schema: Any, field: str, node: dict[str, Any], part: str, key: str,
                source: str) -> Any:
    """The type of `field` in the model `schema` (None when it cannot be known)."""
    model = _unwrap(schema)
    if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    if "command" in model.model_fields and "at" in model.model_fields and field != "at":
        # A timeline entry: the file writes the command's fields beside `at`.
        model = _command_model(node.get("kind"))
        if model is None:
            return None
    if field not in model.model_fields:
        known = ", ".join(sorted(model.model_fields))
        raise InputError(source, key, f"no field {part!r} here; expected one of: {known}")
    hints = typing.get_type_hints(model, include_extras=True)
    return hints.get(field)


def _command_model(kind: Any) -> type[BaseModel] | None:
    if not isinstance(kind, str):
        return None
    for member in get_args(_command_union()):
        if isinstance(member, type) and issubclass(member, BaseModel):
            default = member.model_fields.get("kind")
            if default is not None and default.default == kind:
                return member
    return None


def _command_union() -> Any:
    from engine.commands import Command

    return get_args(Command)[0]  # Annotated[A | B | ..., Field(discriminator="kind")]
