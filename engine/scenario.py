"""Scenario files: TOML -> a frozen, cross-checked ScenarioSpec.

Errors carry the file, the field path as written in the file (`vm[2].memory`, counted from
0) and what was expected, so the CLI can print them on one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from engine import overrides
from engine.commands import TimelineEntry
from engine.crosscheck import check_scenario
from engine.errors import InputError
from engine.inputfile import check_depth, read_toml
from engine.spec import (
    HostGroupSpec,
    HostSpec,
    LinkSpec,
    ObjectiveSpec,
    PolicySpec,
    ReproduceSpec,
    ScenarioMeta,
    SwitchSpec,
    VMGroupSpec,
    VMSpec,
)
from engine.spec_types import (
    Frozen,
)

# Keys of the TOML file, in the singular form the file uses: [[host]], [[vm]], ...
_LIST_KEYS = {"hosts": "host", "host_groups": "host_group", "vms": "vm", "vm_groups": "vm_group",
              "switches": "switch", "links": "link", "timeline": "timeline",
              "objectives": "objective"}


MAX_ENTRIES = 100_000  # of each list: hosts, VMs, links, timeline entries...


class ScenarioSpec(Frozen):
    """A whole scenario. Its timeline is kept in time order: entries listed out of order
    in the file are applied in time order (a stable sort; `timeline_file_index` says
    where each entry stood in the file, and `validate` notes the reordering)."""

    scenario: ScenarioMeta
    switches: list[SwitchSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    links: list[LinkSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    hosts: list[HostSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    host_groups: list[HostGroupSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    vms: list[VMSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    vm_groups: list[VMGroupSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    policy: PolicySpec = PolicySpec()
    timeline: list[TimelineEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    objectives: list[ObjectiveSpec] = Field(default_factory=list, max_length=MAX_ENTRIES)
    reproduce: ReproduceSpec | None = None
    _timeline_order: list[int] = PrivateAttr(default_factory=list)
    # The groups expanded, once (a frozen spec's never change): 100,000 VMs are a second's
    # work, asked for by the build, the checks and the saves.
    _all_hosts: list[HostSpec] | None = PrivateAttr(default=None)
    _all_vms: list[VMSpec] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _timeline_in_time_order(self) -> ScenarioSpec:
        order = sorted(range(len(self.timeline)), key=lambda i: self.timeline[i].at)
        if order != sorted(order):
            # Frozen model: the sorted list replaces the file's order once, here.
            object.__setattr__(self, "timeline", [self.timeline[i] for i in order])
        self._timeline_order = order
        return self

    def timeline_file_index(self) -> list[int]:
        """For each timeline entry (in time order), its index in the file."""
        return self._timeline_order or list(range(len(self.timeline)))

    def timeline_reordered(self) -> list[int]:
        """File indices of the entries that do not apply at their place in the file."""
        return sorted(i for k, i in enumerate(self.timeline_file_index()) if i != k)

    @model_validator(mode="before")
    @classmethod
    def _from_file_layout(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for plural, singular in _LIST_KEYS.items():
            if singular in data and singular != plural:
                data[plural] = data.pop(singular)
        timeline = data.get("timeline")
        if isinstance(timeline, list):
            data["timeline"] = [_timeline_entry(e) for e in timeline]
        return data

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> ScenarioSpec:
        """A copy, its groups expanded anew (the update may change them)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._all_hosts = copy._all_vms = None
        return copy

    def all_hosts(self) -> list[HostSpec]:
        """Hosts with groups expanded, in file order (groups after single hosts)."""
        if self._all_hosts is None:
            hosts = list(self.hosts)
            for group in self.host_groups:
                fields = group.model_dump(exclude={"count", "switches", "id"})
                per = -(-group.count // max(len(group.switches), 1))
                hosts += _members(HostSpec, fields, group.id, [
                    {"switch": group.switches[i // per] if group.switches else group.switch}
                    for i in range(group.count)])
            self._all_hosts = hosts
        return list(self._all_hosts)

    def all_vms(self) -> list[VMSpec]:
        """VMs with groups expanded, in file order (groups after single VMs)."""
        if self._all_vms is None:
            vms = list(self.vms)
            every_host = [h.id for h in self.all_hosts()]
            for group in self.vm_groups:
                fields = group.model_dump(exclude={"count", "hosts", "id", "host"})
                # "*" spreads the group over every host, however many the file (or --set)
                # has.
                targets = every_host if group.hosts == ["*"] else group.hosts
                vms += _members(VMSpec, fields, group.id, [
                    {"host": targets[i % len(targets)] if targets else group.host}
                    for i in range(group.count)])
            self._all_vms = vms
        return list(self._all_vms)


M = TypeVar("M", HostSpec, VMSpec)


def _members(model: type[M], fields: dict[str, Any], group_id: str,
             places: list[dict[str, Any]]) -> list[M]:
    """A group's members, `group_id` + index, member i placed by `places[i]` (the fields
    saying where it goes). The first is validated in full; the others are copies of it
    with their own id and place, as no check of a member reads either beyond its type,
    which the group's own validation vouches for (every member id fits, spec.py
    member_ids_fit; places are ids from the group or the hosts). 100,000 VMs: 1 s, not 5 s
    of validating each."""
    if not places:
        return []
    first = model(**{**fields, "id": f"{group_id}0", **places[0]})
    members = [first]
    for i in range(1, len(places)):
        members.append(first.model_copy(update={"id": f"{group_id}{i}", **places[i]}))
    return members


def _timeline_entry(entry: Any) -> Any:
    # The file writes `at` beside the command's own fields; the model nests them.
    if isinstance(entry, dict) and "command" not in entry:
        rest = {k: v for k, v in entry.items() if k != "at"}
        return {"at": entry.get("at"), "command": rest}
    return entry


def format_loc(loc: Sequence[int | str]) -> str:
    """('vms', 2, 'memory') -> 'vm[2].memory'; drops pydantic's union tags."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if part == "command" and i > 0 and parts[i - 1] != "command":
            continue
        if i > 0 and parts[i - 1] == "command":
            continue  # discriminator tag such as 'stop_vm'
        if part.startswith("function-") or part.startswith("tagged-union"):
            continue
        name = _LIST_KEYS.get(part, part) if i == 0 else part
        out += ("." if out else "") + name
    return out or "(top level)"


def first_error(err: ValidationError) -> tuple[str, str]:
    detail = err.errors(include_url=False)[0]
    msg = str(detail["msg"]).removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling)"
    elif detail["type"] == "missing":
        msg = "required field is missing"
    return format_loc(detail["loc"]), msg


def parse_scenario(data: Any, source: str = "<scenario>") -> ScenarioSpec:
    if not isinstance(data, dict):
        raise InputError(source, "(top level)", "expected a table of scenario sections")
    check_depth(data, source)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as err:
        path, msg = first_error(err)
        raise InputError(source, path, msg) from None
    except RecursionError:
        raise InputError(source, "(syntax)", "nested too deeply") from None
    check_scenario(spec, source)
    return spec


def apply_overrides(data: dict[str, Any], assignments: Sequence[str],
                    source: str) -> dict[str, Any]:
    """`host_group[0].count=6`, `vm[0].content.resident=0.5`: set any field of the schema
    in the file's data before it is validated (engine/overrides.py)."""
    names = {singular: plural for plural, singular in _LIST_KEYS.items()}
    return overrides.apply_overrides(data, assignments, source, ScenarioSpec, names)


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> ScenarioSpec:
    data = read_toml(path)
    return parse_scenario(apply_overrides(data, overrides, str(path)), str(path))
