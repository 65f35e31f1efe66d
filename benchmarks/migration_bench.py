"""Migration speed: 100 concurrent migrations in the 100x1000 data center, and one 1 GiB
migration end to end.

    python benchmarks/migration_bench.py [--warmup 150] [--max-ticks 600]

Prints simulated seconds per wall second while the 100 migrations run, and the wall time
to simulate a 1 GiB VM's migration from start to activation. No assertions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Simulation, parse_scenario  # noqa: E402

ONE_GIB = {
    "scenario": {"name": "one 1 GiB migration", "seed": 1},
    "switch": [{"id": "sw"}],
    "host": [{"id": "src", "memory": "4GiB", "switch": "sw", "nic": "1Gbit/s"},
             {"id": "dst", "memory": "4GiB", "switch": "sw", "nic": "1Gbit/s"}],
    "vm": [{"id": "big", "host": "src", "memory": "1GiB",
            "content": {"resident": 1.0},
            "workload": {"reads_per_s": 5000, "writes_per_s": 2000, "hot_set": "16MiB",
                         "hot_access": 0.9}}],
}


def hundred(warmup: int, max_ticks: int) -> tuple[float, int, int, float]:
    sim = Simulation.from_file(ROOT / "scenarios/bench/dc-100x1000.toml")
    sim.step(warmup)
    vms = sim.world.state.vms
    hosts = sim.world.state.hosts.ids
    started = 0
    for h in range(len(hosts)):
        on_host = [v for v in range(len(vms)) if vms["host"][v] == h]
        if on_host:
            verdict = sim.submit({"kind": "migrate", "vm": vms.ids[on_host[0]],
                                  "to": hosts[(h + 1) % len(hosts)]})
            started += verdict.ok
    t0 = time.perf_counter()
    ticks = 0
    while ticks < max_ticks:
        sim.step(1)
        ticks += 1
        if not any(m.active for m in sim.world.state.migrations):
            break
    wall = time.perf_counter() - t0
    done = sum(m.status == "done" for m in sim.world.state.migrations)
    return ticks * sim.world.state.tick_s / wall, started, done, wall


def one_gib() -> tuple[float, float, float]:
    sim = Simulation.from_spec(parse_scenario(ONE_GIB))
    sim.step(5)
    assert sim.submit({"kind": "migrate", "vm": "big", "to": "dst"}).ok
    t0 = time.perf_counter()
    while any(m.active for m in sim.world.state.migrations) or not sim.world.state.migrations:
        sim.step(1)
    wall = time.perf_counter() - t0
    m = sim.report()["migrations"][0]
    return wall, m["total_time_s"], m["downtime_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--max-ticks", type=int, default=600)
    args = parser.parse_args()
    rate, started, done, wall = hundred(args.warmup, args.max_ticks)
    print(f"100x1000: {started} concurrent migrations, {done} done; "
          f"{rate:.2f} simulated s per wall s ({wall:.1f} s wall)")
    wall, total, downtime = one_gib()
    print(f"1 GiB VM: migration of {total:.1f} simulated s (downtime {downtime * 1000:.0f} ms) "
          f"simulated in {wall:.2f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
