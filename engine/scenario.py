"""Scenario files: TOML -> a frozen, cross-checked ScenarioSpec.

Errors carry the file, the field path as written in the file (`vm[2].memory`, counted from
0) and what was expected, so the CLI can print them on one line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from engine.commands import PlaceVM, TimelineEntry
from engine.errors import InputError
from engine.spec import (
    Frozen,
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

# Keys of the TOML file, in the singular form the file uses: [[host]], [[vm]], ...
_LIST_KEYS = {"hosts": "host", "host_groups": "host_group", "vms": "vm", "vm_groups": "vm_group",
              "switches": "switch", "links": "link", "timeline": "timeline",
              "objectives": "objective"}


class ScenarioSpec(Frozen):
    scenario: ScenarioMeta
    switches: list[SwitchSpec] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list)
    hosts: list[HostSpec] = Field(default_factory=list)
    host_groups: list[HostGroupSpec] = Field(default_factory=list)
    vms: list[VMSpec] = Field(default_factory=list)
    vm_groups: list[VMGroupSpec] = Field(default_factory=list)
    policy: PolicySpec = PolicySpec()
    timeline: list[TimelineEntry] = Field(default_factory=list)
    objectives: list[ObjectiveSpec] = Field(default_factory=list)
    reproduce: ReproduceSpec | None = None

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

    def all_hosts(self) -> list[HostSpec]:
        """Hosts with groups expanded, in file order (groups after single hosts)."""
        hosts = list(self.hosts)
        for group in self.host_groups:
            fields = group.model_dump(exclude={"count", "switches", "id"})
            for i in range(group.count):
                switch = group.switch
                if group.switches:
                    per = -(-group.count // len(group.switches))
                    switch = group.switches[i // per]
                hosts.append(HostSpec(**{**fields, "id": f"{group.id}{i}", "switch": switch}))
        return hosts

    def all_vms(self) -> list[VMSpec]:
        vms = list(self.vms)
        every_host = [h.id for h in self.all_hosts()]
        for group in self.vm_groups:
            fields = group.model_dump(exclude={"count", "hosts", "id", "host"})
            # "*" spreads the group over every host, however many the file (or --set) has.
            targets = every_host if group.hosts == ["*"] else group.hosts
            for i in range(group.count):
                host = targets[i % len(targets)] if targets else group.host
                vms.append(VMSpec(**{**fields, "id": f"{group.id}{i}", "host": host}))
        return vms


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


def _first_error(err: ValidationError) -> tuple[str, str]:
    detail = err.errors(include_url=False)[0]
    msg = str(detail["msg"]).removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling)"
    elif detail["type"] == "missing":
        msg = "required field is missing"
    return format_loc(detail["loc"]), msg


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> ScenarioSpec:
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as err:
        path, msg = _first_error(err)
        raise InputError(source, path, msg) from None
    _check_references(spec, source)
    return spec


def apply_overrides(data: dict[str, Any], assignments: Sequence[str],
                    source: str) -> dict[str, Any]:
    """`host_group[0].count=6`, `scenario.seed=3`: set values in the file's data before
    it is validated. Keys use the file's names; values are TOML (`"4GiB"`, `0.75`)."""
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep:
            raise InputError(source, text, "expected KEY=VALUE, e.g. host_group[0].count=6")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word: take it as a string
        parts = [p for p in key.strip().replace("]", "").replace("[", ".").split(".") if p]
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            index: str | int = int(part) if part.isdigit() else part
            try:
                if last:
                    node[index] = value
                else:
                    node = node[index]
            except (KeyError, IndexError, TypeError):
                raise InputError(source, key, "no such field or list entry to set") from None
    return data


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> ScenarioSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(str(path), "(file)", f"cannot read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(path), "(syntax)", f"not valid TOML: {err}") from None
    return parse_scenario(apply_overrides(data, overrides, str(path)), str(path))


def _check_references(spec: ScenarioSpec, source: str) -> None:
    """Cross-field checks that a single model cannot make."""
    nodes: dict[str, str] = {}
    for i, sw in enumerate(spec.switches):
        if sw.id in nodes:
            raise InputError(source, f"switch[{i}].id", f"duplicate node id {sw.id!r}")
        nodes[sw.id] = sw.kind
    hosts = spec.all_hosts()
    host_ids: set[str] = set()
    for i, host in enumerate(hosts):
        where = f"host[{i}]" if i < len(spec.hosts) else "host_group"
        if host.id in nodes:
            raise InputError(source, f"{where}.id", f"duplicate node id {host.id!r}")
        if host.switch is not None and host.switch not in nodes:
            raise InputError(source, f"{where}.switch",
                             f"expected one of the switches ({_names(nodes)}), got {host.switch!r}")
        nodes[host.id] = "host"
        host_ids.add(host.id)
    for i, link in enumerate(spec.links):
        for end in ("a", "b"):
            node = getattr(link, end)
            if node not in nodes:
                raise InputError(source, f"link[{i}].{end}",
                                 f"expected a switch or host id ({_names(nodes)}), got {node!r}")
        if link.capacity <= 0:
            raise InputError(source, f"link[{i}].capacity", "expected a positive rate")
    vm_ids: set[str] = set()
    for i, vm in enumerate(spec.all_vms()):
        where = f"vm[{i}]" if i < len(spec.vms) else "vm_group"
        if vm.id in vm_ids:
            raise InputError(source, f"{where}.id", f"duplicate VM id {vm.id!r}")
        vm_ids.add(vm.id)
        if vm.host is not None and vm.host not in host_ids:
            raise InputError(source, f"{where}.host",
                             f"expected one of the hosts ({_names(host_ids)}), got {vm.host!r}")
    for i, group in enumerate(spec.vm_groups):
        for h in group.hosts:
            if h not in host_ids and group.hosts != ["*"]:
                raise InputError(source, f"vm_group[{i}].hosts",
                                 f"expected host ids ({_names(host_ids)}), got {h!r}")
    for i, entry in enumerate(spec.timeline):
        cmd = entry.command
        target = cmd.vm.host if isinstance(cmd, PlaceVM) else getattr(cmd, "host", None)
        if (isinstance(cmd, PlaceVM) or target is not None) and target not in host_ids:
            raise InputError(source, f"timeline[{i}].host",
                             f"expected one of the hosts ({_names(host_ids)}), got {target!r}")
        if isinstance(cmd, PlaceVM):
            vm_ids.add(cmd.vm.id)
            continue
        vm_name = getattr(cmd, "vm", None)
        if isinstance(vm_name, str) and vm_name not in vm_ids:
            raise InputError(source, f"timeline[{i}].vm",
                             f"expected a VM defined earlier ({_names(vm_ids)}), got {vm_name!r}")
    for i, obj in enumerate(spec.objectives):
        if obj.vm is not None and obj.vm not in vm_ids:
            raise InputError(source, f"objective[{i}].vm",
                             f"expected one of the VMs ({_names(vm_ids)}), got {obj.vm!r}")
        if obj.host is not None and obj.host not in host_ids:
            raise InputError(source, f"objective[{i}].host",
                             f"expected one of the hosts ({_names(host_ids)}), got {obj.host!r}")
    if not hosts:
        raise InputError(source, "host", "expected at least one [[host]] or [[host_group]]")


def _names(ids: set[str] | dict[str, str]) -> str:
    ordered = sorted(ids)
    shown = ", ".join(ordered[:6])
    return shown + (f", ... {len(ordered) - 6} more" if len(ordered) > 6 else "")
