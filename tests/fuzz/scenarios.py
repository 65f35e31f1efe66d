"""Malformed scenarios and command lines: every leaf of a small scenario given wrong
types, non-finite and extreme values; keys missing and unknown; references dangling;
cross-field nonsense (reservations, thresholds, budgets); raw files that are not UTF-8
TOML, nested too deeply, too big, or not files at all; and bad command lines."""

from __future__ import annotations

import copy
import datetime
import os
import random
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tomli_w

from tests.fuzz.runner import ACCEPT, EITHER, REFUSE, Case

TINY = """
[scenario]
name = "fuzz"
description = "Two small hosts, three VMs, a migration and a load spike."
seed = 3
tick_s = "1s"
duration = "30s"

[policy.memory]
idle_tax = 0.5
thresholds = [0.06, 0.04, 0.02, 0.01]

[policy.sharing]
mode = "esx"
pages_per_s_per_vm = 200

[policy.economy]
revenue_per_gib_hour = 0.5

[[switch]]
id = "tor"

[[switch]]
id = "gw"
kind = "gateway"

[[link]]
a = "tor"
b = "gw"
capacity = "1Gbit/s"
latency = "100us"

[[host]]
id = "h1"
memory = "96MiB"
low_memory = "16MiB"
switch = "tor"
swap_disk = "100MB/s"

[[host]]
id = "h2"
memory = "96MiB"
switch = "tor"

[[vm]]
id = "a"
host = "h1"
memory = "32MiB"
min = "8MiB"
shares = 500
content = { zero = 0.3, os = 0.3, app = 0.0, private = 0.4, resident = 0.5 }
workload = { reads_per_s = 400, writes_per_s = 100, working_set = "16MiB", net = "10Mbit/s" }

[[vm]]
id = "b"
host = "h1"
memory = "32MiB"
workload = { preset = "linux_idle" }

[[vm]]
id = "c"
host = "h2"
memory = "24MiB"
max = "20MiB"
sla = { window = "10s", availability = 0.99 }

[[timeline]]
at = "2s"
kind = "migrate"
vm = "a"
to = "h2"

[[timeline]]
at = "1s"
kind = "set_workload"
vm = "c"
reads_per_s = 2000

[[objective]]
metric = "running_vms"
at_least = 3
by = "3s"
"""

NUMBER_VALUES: list[tuple[str, Any, str]] = [
    ("a list", [1, 2], REFUSE),
    ("a table", {"x": 1}, REFUSE),
    ("a date", datetime.datetime(2024, 1, 1, 12, 0), REFUSE),
    ("true", True, REFUSE),
    ("inf", float("inf"), REFUSE),
    ("-inf", float("-inf"), REFUSE),
    ("nan", float("nan"), REFUSE),
    ("'1e400'", "1e400", REFUSE),
    ("1e308", 1e308, REFUSE),
    ("'1e400MiB'", "1e400MiB", REFUSE),
    ("2^63-1", 2**63 - 1, REFUSE),
    ("-1", -1, EITHER),
    ("0", 0, EITHER),
    ("'garbage'", "12 parsecs", REFUSE),
    ("''", "", REFUSE),
]
STRING_VALUES: list[tuple[str, Any, str]] = [
    ("a list", ["x"], REFUSE),
    ("a number", 5, REFUSE),
    ("''", "", EITHER),
    ("escapes", "\x1b[2J\x1b]0;pwned\x07x", EITHER),
    ("1000 chars", "x" * 1000, EITHER),
    ("a dangling name", "nowhere9", EITHER),
]


def base() -> dict[str, Any]:
    return tomllib.loads(TINY)


def small() -> dict[str, Any]:
    # The fuzz scenario at a quarter of its size: saves of a few hundred kB, fast kills.
    data = tomllib.loads(TINY)
    data["policy"]["memory"]["overhead_per_vm"] = "1MiB"
    for host in data["host"]:
        host["memory"] = "24MiB"
        host.pop("low_memory", None)
    for vm, size in zip(data["vm"], ("8MiB", "8MiB", "6MiB"), strict=True):
        vm["memory"] = size
        vm.pop("min", None)
        vm.pop("max", None)
    data["vm"][0]["workload"]["working_set"] = "4MiB"
    # Slow enough that its migration (at 2 s) is still under way when a save is taken.
    data["policy"]["migration"] = {"xen_min_rate": "2Mbit/s", "xen_max_rate": "4Mbit/s"}
    return data


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


def _label(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _scenario_case(name: str, category: str, expect: str, data: dict[str, Any],
                   argv: list[str] | None = None,
                   check_after: Callable[[Path], str | None] | None = None) -> Case:
    text = tomli_w.dumps(data)

    def build(folder: Path) -> list[str]:
        path = folder / "s.toml"
        path.write_text(text, encoding="utf-8")
        return [a.replace("{s}", str(path)).replace("{d}", str(folder))
                for a in (argv or ["run", "{s}", "--ticks", "3", "--check", "--quiet"])]

    return Case(name, category, expect, build, check_after)


def _raw_case(name: str, category: str, expect: str, content: bytes | None,
              argv: list[str] | None = None, special: str = "") -> Case:
    def build(folder: Path) -> list[str]:
        path = folder / "s.toml"
        if special == "fifo":
            os.mkfifo(path)
        elif special == "dir":
            path.mkdir()
        elif special == "devzero":
            path = Path("/dev/zero")
        elif content is not None:
            path.write_bytes(content)
        return [a.replace("{s}", str(path)) for a in (argv or ["validate", "{s}"])]

    return Case(name, category, expect, build)


def value_cases() -> Iterator[Case]:
    """Every leaf of TINY given every wrong value of its type."""
    data = base()
    for path, value in _leaves(data):
        if isinstance(value, bool):
            continue
        numeric = isinstance(value, int | float) or (
            isinstance(value, str) and value[:1].isdigit())
        values = NUMBER_VALUES if numeric else STRING_VALUES
        category = "scenario: wrong number" if numeric else "scenario: wrong text"
        for label, bad, expect in values:
            if path[-1] in ("name", "description") and label == "escapes":
                expect = ACCEPT  # free text: shown without its escapes
            if path[-1] == "seed" and label == "2^63-1":
                expect = ACCEPT  # seeds go up to 2^64 - 1
            mutated = copy.deepcopy(data)
            _set(mutated, path, bad)
            yield _scenario_case(f"{_label(path)} = {label}", category, expect, mutated)
        mutated = copy.deepcopy(data)
        _delete(mutated, path)
        yield _scenario_case(f"{_label(path)} missing", "scenario: missing key", EITHER,
                             mutated)
    for where in ((), ("vm", 0), ("policy", "memory"), ("vm", 0, "workload"), ("host", 1),
                  ("timeline", 0), ("objective", 0)):
        mutated = copy.deepcopy(data)
        node: Any = mutated
        for part in where:
            node = node[part]
        node["colour"] = "red"
        yield _scenario_case(f"unknown key in {_label(where) or 'the top level'}",
                             "scenario: unknown key", REFUSE, mutated)


def _edit(**changes: Any) -> dict[str, Any]:
    data = base()
    for dotted, value in changes.items():
        path = tuple(int(p) if p.isdigit() else p for p in dotted.split("__"))
        if value is _DELETE:
            _delete(data, path)
        else:
            _set(data, path, value)
    return data


_DELETE = object()


def semantic_cases() -> Iterator[Case]:
    """Inputs of the right types that make no sense together (the issue's list)."""
    R, A = REFUSE, ACCEPT
    cat = "scenario: cross-field"
    ref = "scenario: dangling reference"
    table: list[tuple[str, str, str, dict[str, Any]]] = [
        ("valid as shipped", "scenario: valid", A, _edit()),
        ("host of 2 bytes", cat, R, _edit(host__0__memory=2)),
        ("host of 0 bytes", cat, R, _edit(host__0__memory=0)),
        ("swap disk of 0 B/s", cat, R, _edit(host__0__swap_disk="0MB/s")),
        ("NaN price", cat, R, _edit(policy__economy__revenue_per_gib_hour=float("nan"))),
        ("infinite link capacity", cat, R, _edit(link__0__capacity=float("inf"))),
        ("infinite link latency", cat, R, _edit(link__0__latency=float("inf"))),
        ("NaN objective bound", cat, R, _edit(objective__0__at_least=float("nan"))),
        ("SLA window of 0", cat, R, _edit(vm__2__sla__window=0)),
        ("balance period of 0", cat, R, _edit(policy__memory__balance_period=0)),
        ("sample period of 0", cat, R, _edit(policy__memory__sample_period=0)),
        ("idle tax of 1", cat, R, _edit(policy__memory__idle_tax=1)),
        ("thresholds that rise", cat, R, _edit(policy__memory__thresholds=[0.01, 0.02, 0.03,
                                                                         0.04])),
        ("three thresholds", cat, R, _edit(policy__memory__thresholds=[0.06, 0.04, 0.02])),
        ("reservations beyond the host", cat, R, _edit(vm__0__min="32MiB",
                                                       vm__1__min="32MiB",
                                                       host__0__memory="48MiB")),
        ("more swap than the host has", cat, R, _edit(host__0__swap_space="1MiB")),
        ("min above memory", cat, R, _edit(vm__0__min="64MiB")),
        ("working set above memory", cat, R, _edit(vm__0__workload__working_set="1GiB")),
        ("page size of 1 TiB", cat, R, _edit(scenario__page_size="1TiB")),
        ("page size of 3 KiB", cat, R, _edit(scenario__page_size="3KiB")),
        ("page size above host memory", cat, R, _edit(scenario__page_size="64MiB")),
        ("a 100 TiB VM", cat, R, _edit(vm__0__memory="100TiB", host__0__memory="200TiB",
                                       host__0__swap_space="200TiB")),
        ("a billion reads per second", cat, R, _edit(vm__0__workload__reads_per_s=1e9)),
        ("reads 1e30 per second", cat, R, _edit(vm__0__workload__reads_per_s=1e30)),
        ("shares of 2^70", cat, R, _edit(vm__0__shares=str(2**70))),
        ("shares of 1e23", cat, R, _edit(vm__0__shares=1e23)),
        ("tick of 0", cat, R, _edit(scenario__tick_s=0)),
        ("tick of 1e-300 s", cat, R, _edit(scenario__tick_s=1e-300)),
        ("duration of 1e308 s", cat, R, _edit(scenario__duration=1e308)),
        ("KSM sleep of 0", cat, R, _edit(policy__sharing__mode="ksm",
                                         policy__sharing__ksm_sleep=0)),
        ("scan of 1e9 pages/s", cat, R, _edit(policy__sharing__pages_per_s_per_vm=1e9)),
        ("timeline at 1e400 s", cat, R, _edit(timeline__0__at="1e400s")),
        ("timeline out of order", "scenario: valid", A, _edit(timeline__0__at="5s")),
        ("name with escapes", "scenario: valid", A, _edit(scenario__name="\x1b[2Jboom")),
        ("description with escapes", "scenario: valid", A,
         _edit(scenario__description="ok\x1b]0;title\x07\x9b31m")),
        ("unknown preset", cat, R, _edit(vm__1__workload__preset="nope")),
        ("preset as a list", cat, R, _edit(vm__1__workload__preset=["x"])),
        ("VM on a missing host", ref, R, _edit(vm__0__host="h9")),
        ("link to nowhere", ref, R, _edit(link__0__b="nowhere")),
        ("self-loop link", ref, R, _edit(link__0__b="tor")),
        ("duplicate host id", ref, R, _edit(host__1__id="h1")),
        ("duplicate VM id", ref, R, _edit(vm__1__id="a")),
        ("host on a missing switch", ref, R, _edit(host__0__switch="s9")),
        ("timeline VM missing", ref, R, _edit(timeline__0__vm="zz")),
        ("timeline host missing", ref, R, _edit(timeline__0__to="h9")),
        ("objective VM missing", ref, R, _edit(objective__0__metric="service_level",
                                               objective__0__vm="zz")),
        ("no hosts", ref, R, _edit(host=_DELETE, vm=_DELETE, timeline=_DELETE)),
    ]
    for name, category, expect, data in table:
        yield _scenario_case(name, category, expect, data)
    # Links and timeline entries the table cannot express as one edit.
    data = base()
    data["link"].append({"a": "gw", "b": "tor", "capacity": "1Gbit/s"})
    yield _scenario_case("duplicate link", ref, R, data)
    data = base()
    data["link"].append({"a": "h1", "b": "tor", "capacity": "1Gbit/s"})
    yield _scenario_case("a link doubling a host's NIC", ref, R, data)
    data = base()
    data["timeline"].append({"at": "3s", "kind": "set_link", "a": "tor", "b": "h9"})
    yield _scenario_case("timeline link missing", ref, R, data)
    data = base()
    data["timeline"].append({"at": "3s", "kind": "set_sharing", "host": "h9", "mode": "off"})
    yield _scenario_case("timeline set_sharing on a missing host", ref, R, data)
    data = base()
    data["timeline"].append({"at": "3s", "kind": "place_vm",
                             "vm": {"id": "a", "host": "h2", "memory": "8MiB"}})
    yield _scenario_case("timeline places a duplicate VM id", ref, R, data)
    data = base()
    data["timeline"].append({"at": "3s", "kind": "set_thresholds", "high": 0.01,
                             "soft": 0.02, "hard": 0.03, "low": 0.04})
    yield _scenario_case("timeline thresholds that rise", cat, R, data)
    data = base()
    data["timeline"].append({"at": "3s", "kind": "set_shares", "vm": "a", "shares": 1e23})
    yield _scenario_case("timeline shares 1e23", cat, R, data)
    data = base()
    del data["scenario"]["duration"]
    yield _scenario_case("no duration and no --ticks", "command line", R, data,
                         ["run", "{s}"])
    data = base()
    data["scenario"]["duration"] = "366d"
    data["scenario"]["tick_s"] = "1ms"
    yield _scenario_case("a year of 1 ms ticks", cat, R, data, ["run", "{s}"])


def raw_cases() -> Iterator[Case]:
    cat = "file: not a scenario"
    text = TINY.encode()
    yield _raw_case("binary garbage", cat, REFUSE, bytes(random.Random(1).randbytes(4000)))
    yield _raw_case("UTF-16", cat, REFUSE, TINY.encode("utf-16"))
    yield _raw_case("UTF-8 with a BOM", "scenario: valid", ACCEPT, b"\xef\xbb\xbf" + text)
    yield _raw_case("Latin-1 bytes in a string", cat, REFUSE,
                    text.replace(b'name = "fuzz"', b'name = "f\xfczz"'))
    yield _raw_case("NUL byte", cat, REFUSE, text.replace(b"[scenario]", b"[scen\x00ario]"))
    yield _raw_case("deeply nested arrays", cat, REFUSE,
                    text + b"\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n")
    yield _raw_case("deeply nested inline tables", cat, REFUSE,
                    text + b"\nx = " + b"{a = " * 400 + b"1" + b"}" * 400 + b"\n")
    yield _raw_case("nested 40 deep", cat, REFUSE,
                    text + b"\nx = " + b"[" * 40 + b"]" * 40 + b"\n")
    yield _raw_case("20 MB file", cat, REFUSE, text + b"#" * (20 * 1024**2) + b"\n")
    yield _raw_case("empty file", cat, REFUSE, b"")
    yield _raw_case("syntax error", cat, REFUSE, text.replace(b"[scenario]", b"[scenario"))
    yield _raw_case("a FIFO", cat, REFUSE, None, special="fifo")
    yield _raw_case("a directory", cat, REFUSE, None, special="dir")
    yield _raw_case("/dev/zero", cat, REFUSE, None, special="devzero")
    yield _raw_case("run a FIFO", cat, REFUSE, None, ["run", "{s}", "--ticks", "1"], "fifo")
    yield _raw_case("play /dev/zero", cat, REFUSE, None, ["play", "{s}"], "devzero")


def command_line_cases() -> Iterator[Case]:
    R, A, E = REFUSE, ACCEPT, EITHER
    cat = "command line"
    data = base()
    argvs: list[tuple[str, str, list[str]]] = [
        ("--ticks -1", R, ["run", "{s}", "--ticks", "-1"]),
        ("--ticks abc", R, ["run", "{s}", "--ticks", "abc"]),
        ("--ticks 1e9", R, ["run", "{s}", "--ticks", "1e9"]),
        ("--ticks 2^40", R, ["run", "{s}", "--ticks", str(2**40)]),
        ("--seed -1", R, ["run", "{s}", "--ticks", "1", "--seed", "-1"]),
        ("--seed 2^70", R, ["run", "{s}", "--ticks", "1", "--seed", str(2**70)]),
        ("--seed 2^64-1", A, ["run", "{s}", "--ticks", "1", "--seed", str(2**64 - 1)]),
        ("--set without =", R, ["run", "{s}", "--ticks", "1", "--set", "scenario.seed"]),
        ("--set unknown key", R, ["run", "{s}", "--ticks", "1", "--set", "vm[0].colour=1"]),
        ("--set past the end", R, ["run", "{s}", "--ticks", "1", "--set", "vm[9].memory=1"]),
        ("--set through a number", R, ["run", "{s}", "--ticks", "1", "--set",
                                       "vm[0].memory.x=1"]),
        ("--set shares 1e23", R, ["run", "{s}", "--ticks", "1", "--set", "vm[0].shares=1e23"]),
        ("--set a table it lacks", A, ["run", "{s}", "--ticks", "1", "--set",
                                       "vm[1].content.resident=0.2"]),
        ("--set a field it lacks", A, ["run", "{s}", "--ticks", "1", "--set",
                                       "policy.migration.xen_max_rounds=5"]),
        ("--set an empty key", R, ["run", "{s}", "--ticks", "1", "--set", "=3"]),
        ("--set a deep value", R, ["run", "{s}", "--ticks", "1", "--set",
                                   "scenario.seed=" + "[" * 3000 + "]" * 3000]),
        ("--set timeline field", A, ["run", "{s}", "--ticks", "1", "--set",
                                     "timeline[0].max_rate=100Mbit/s"]),
        ("--report into a directory", R, ["run", "{s}", "--ticks", "1", "--report", "{d}"]),
        ("--report over the scenario", R, ["run", "{s}", "--ticks", "1", "--report", "{s}"]),
        ("--save into a missing folder", E, ["run", "{s}", "--ticks", "1", "--save",
                                             "{d}/no/such/x.toml"]),
        ("--save over the scenario", R, ["run", "{s}", "--ticks", "1", "--save", "{s}"]),
        ("--load a scenario", R, ["run", "--load", "{s}", "--ticks", "1"]),
        ("--load and a SCENARIO", R, ["run", "{s}", "--load", "{s}"]),
        ("a missing file", R, ["run", "{d}/nope.toml", "--ticks", "1"]),
        ("a NUL in the name", R, ["run", "x\x00y", "--ticks", "1"]),
        ("a 5000-char name", R, ["run", "y" * 5000, "--ticks", "1"]),
        ("an escape in the name", R, ["validate", "\x1b[2J.toml"]),
        ("an unknown command", R, ["frobnicate"]),
        ("validate nothing", R, ["validate"]),
        ("--ranges", A, ["validate", "--ranges"]),
    ]
    for name, expect, argv in argvs:
        yield _scenario_case(name, cat, expect, data, argv)

    def unrelated_npz_untouched(folder: Path) -> str | None:
        npz = folder / "out.arrays.npz"
        if npz.read_bytes() != b"not mine":
            return "silent overwrite: --save replaced an unrelated out.arrays.npz"
        return None

    def build_overwrite(folder: Path) -> list[str]:
        (folder / "out.arrays.npz").write_bytes(b"not mine")
        (folder / "s.toml").write_text(TINY)
        return ["run", str(folder / "s.toml"), "--ticks", "1", "--save", str(folder / "out")]

    yield Case("--save beside an unrelated .arrays.npz", cat, ACCEPT, build_overwrite,
               unrelated_npz_untouched)

    def build_not_ours(folder: Path) -> list[str]:
        (folder / "notes.toml").write_text("title = 'my notes'\n")
        (folder / "s.toml").write_text(TINY)
        return ["run", str(folder / "s.toml"), "--ticks", "1", "--save",
                str(folder / "notes.toml")]

    def notes_untouched(folder: Path) -> str | None:
        text = (folder / "notes.toml").read_text()
        return None if text == "title = 'my notes'\n" else "silent overwrite: notes.toml"

    yield Case("--save over a TOML it did not write", cat, REFUSE, build_not_ours,
               notes_untouched)


def all_cases() -> list[Case]:
    return [*semantic_cases(), *raw_cases(), *command_line_cases(), *value_cases()]
