"""Commands as the console's dialogs build them (typed strings, numbers, junk) handed to
`Simulation.submit`, the preview path: each must be rejected with a reason, or accepted
and then run three ticks under the invariant check. A raised exception is a traceback;
an out-of-range value accepted is a silent accept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.fuzz.runner import ACCEPT, EITHER, REFUSE, Case
from tests.fuzz.scenarios import NUMBER_VALUES, small

# Each command kind with valid arguments; every numeric argument is then fuzzed.
VALID: list[dict[str, Any]] = [
    {"kind": "set_shares", "vm": "a", "shares": "2000"},
    {"kind": "set_min", "vm": "a", "min": "4MiB"},
    {"kind": "set_max", "vm": "a", "max": "6MiB"},
    {"kind": "set_balloon_target", "vm": "a", "target": "4MiB"},
    {"kind": "set_swap_target", "vm": "a", "target": "4MiB"},
    {"kind": "set_idle_tax", "host": "h1", "tax": "0.3"},
    {"kind": "set_thresholds", "high": 0.1, "soft": 0.05, "hard": 0.02, "low": 0.01},
    {"kind": "set_workload", "vm": "a", "reads_per_s": "5000", "writes_per_s": 10,
     "working_set": "6MiB", "hot_set": "1MiB", "file_reads_per_s": 0},
    {"kind": "migrate", "vm": "b", "to": "h2", "max_rate": "100Mbit/s",
     "min_rate": "10Mbit/s", "downtime_limit": "300ms"},
    {"kind": "set_link", "a": "tor", "b": "gw", "up": True, "capacity": "100Mbit/s"},
    {"kind": "place_vm", "vm": {"id": "new", "host": "h2", "memory": "8MiB",
                                "workload": {"reads_per_s": 100}}},
]


def _submit(command: dict[str, Any]) -> Callable[[], int]:
    def run() -> int:
        from engine import Simulation, parse_scenario

        sim = Simulation.from_spec(parse_scenario(small()), check=True)
        verdict = sim.submit(command)
        if not verdict.ok:
            print(f"error: rejected: {verdict.reason}".replace("\n", " "),
                  file=__import__("sys").stderr)
            return 2
        sim.step(3)
        return 0
    return run


def _numbers(command: dict[str, Any]) -> Iterator[tuple[str, tuple[str, ...]]]:
    for key, value in command.items():
        if key in ("kind", "vm", "host", "to", "a", "b", "up"):
            if isinstance(value, dict):
                for sub, inner in value.items():
                    if isinstance(inner, dict):
                        for k in inner:
                            yield f"{key}.{sub}.{k}", (key, sub, k)
                    elif sub not in ("id", "host"):
                        yield f"{key}.{sub}", (key, sub)
            continue
        yield key, (key,)


def api_cases() -> Iterator[Case]:
    for command in VALID:
        kind = command["kind"]
        yield Case(f"{kind} valid", "console command", ACCEPT,
                   lambda folder, c=command: _submit(c))
        for label, path in _numbers(command):
            for value_label, bad, expect in NUMBER_VALUES:
                mutated: dict[str, Any] = __import__("copy").deepcopy(command)
                node: Any = mutated
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = bad
                yield Case(f"{kind} {label} = {value_label}", "console command",
                           EITHER if expect == EITHER else REFUSE,
                           lambda folder, c=mutated: _submit(c))


def all_cases(cache: Path) -> list[Case]:
    return list(api_cases())
