"""The overcommit sweep: the same 48 tenants packed at ratios 1.0 ... 2.4 for a day.

    python benchmarks/sweep.py [--hours 24] [--hosts 12,10,8,7,6,5]

Prints one row per packing: revenue, costs, SLA penalties, profit, mean service level,
and what the memory mechanisms were doing at the end. It takes a few minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Simulation, load_scenario  # noqa: E402

SWEEP = ROOT / "scenarios/economy/overcommit-sweep.toml"
GIB = 1024.0**3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--hosts", default="12,10,8,7,6,5")
    args = parser.parse_args()
    print(f"{'hosts':>5} {'ratio':>6} {'revenue':>8} {'costs':>7} {'penalty':>8} "
          f"{'profit':>7} {'service':>8} {'balloon':>8} {'swapped':>8} {'saved':>7} {'wall':>6}")
    for n in [int(x) for x in args.hosts.split(",")]:
        spec = load_scenario(SWEEP, [f"host_group[0].count={n}"])
        t0 = time.perf_counter()
        sim = Simulation.from_spec(spec)
        sim.step(int(args.hours * 3600 / spec.scenario.tick_s))
        snap = sim.snapshot()
        econ = sim.report()["economy"]
        service = sum(v.service_level_avg for v in snap.vms) / len(snap.vms)
        configured = sum(v.configured_bytes for v in snap.vms)
        memory = sum(h.memory_bytes for h in snap.hosts)
        print(f"{n:>5} {configured / memory:>6.2f} {econ['revenue']:>8.2f} {econ['costs']:>7.2f}"
              f" {econ['penalties']:>8.2f} {econ['profit']:>7.2f} {service:>8.3f}"
              f" {sum(h.balloon_bytes for h in snap.hosts) / GIB:>7.1f}G"
              f" {sum(h.swapped_bytes for h in snap.hosts) / GIB:>7.1f}G"
              f" {sum(h.shared_saved_bytes for h in snap.hosts) / GIB:>6.1f}G"
              f" {time.perf_counter() - t0:>5.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
