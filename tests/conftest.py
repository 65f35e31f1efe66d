from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import Simulation, load_scenario, parse_scenario
from engine.savemodel import FREE_STACK_DELTA

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "scenarios" / "tutorial" / "first-night.toml"


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A tiny two-host world (16 MiB hosts, 4 KiB pages) for fast mechanism tests."""
    data: dict[str, Any] = {
        "scenario": {"name": "small", "seed": 3, "tick_s": 1.0},
        "switch": [{"id": "tor"}, {"id": "gw", "kind": "gateway"}],
        "link": [{"a": "tor", "b": "gw", "capacity": "10Gbit/s"}],
        # Per-VM overhead scaled down with these tiny VMs (the default is 32 MB per VM).
        "policy": {"memory": {"overhead_per_vm": "64KiB"}},
        "host": [
            {"id": "h1", "memory": "16MiB", "low_memory": "4MiB", "switch": "tor"},
            {"id": "h2", "memory": "16MiB", "low_memory": "4MiB", "switch": "tor"},
        ],
        "vm": [
            {"id": "a", "host": "h1", "memory": "8MiB", "app": "web",
             "workload": {"reads_per_s": 300, "writes_per_s": 100}},
            {"id": "b", "host": "h1", "memory": "8MiB", "app": "web",
             "workload": {"reads_per_s": 300, "writes_per_s": 100, "order": "sequential"}},
            {"id": "c", "host": "h2", "memory": "4MiB", "workload": {"kind": "idle"}},
            {"id": "q", "memory": "4MiB"},
        ],
    }
    data.update(overrides)
    return data


def alike_ksm_sim(ticks: int, **vm: Any) -> Simulation:
    """KSM merging four alike VMs on two hosts (shared frames in each host's range), run
    `ticks` ticks with every invariant checked; `vm`: fields every VM also gets."""
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": 2000, "ksm_sleep": "1s",
                                 "share_force_salting": 0}
    same = {"memory": "4MiB", "app": "web",
            "content": {"zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 1.0},
            **vm}
    data["vm"] = [{"id": v, "host": host, **same}
                  for v, host in (("a", "h1"), ("b", "h1"), ("c", "h2"), ("d", "h2"))]
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(ticks)
    return sim


def paper_vms_at(name: str, tick: float, seconds: float) -> Any:
    """A paper scenario's VMs (scenarios/paper/NAME.toml) after its first `seconds` at
    `tick` s ticks."""
    spec = load_scenario(ROOT / "scenarios" / "paper" / f"{name}.toml",
                         [f"scenario.tick_s={tick}s"])
    sim = Simulation.from_spec(spec)
    sim.step(round(seconds / tick))
    return sim.world.state.vms


@pytest.fixture
def small_sim() -> Simulation:
    return Simulation.from_spec(parse_scenario(small_spec()), check=True)


def before_schema_5(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A save's arrays as schemas 4 and older held them: each page's last write tick (-1
    never), and the free stacks' frames themselves (schema 5 holds offsets)."""
    old = dict(arrays)
    old["pages.written_at"] = old.pop("pages.written_before") - np.int32(1)
    delta = old.pop(FREE_STACK_DELTA)
    old["frames.free_stack"] = delta + np.arange(delta.size, dtype=np.int32)
    return old


def assert_resumes_alike(loaded: Any, sim: Simulation, ticks: int) -> None:
    """A world loaded from a save of `sim` (converted or not) and `sim`'s own save run on
    for `ticks` ticks, every invariant checked, to the same digest."""
    resumed = Simulation(loaded, check=True)
    straight = Simulation.from_state(sim.save_state(), check=True)
    resumed.step(ticks)
    straight.step(ticks)
    assert resumed.digest() == straight.digest()
