"""Memory over a long headless run: nothing may grow with run length.

    python benchmarks/soak.py [--ticks 1000000] [--every 50000] [--scenario tutorial/first-night]

Runs the scenario tick by tick (events dropped as a headless run drops them) and prints,
every `--every` ticks, the process RSS, the tick time over that window (mean, median,
p99, max) and the sizes of what could grow: the sharing tables' slots, the migrations,
the history ring. The target: RSS at the end within 10 % of RSS at tick 10,000 (the
world built and warmed up). The floor is the RSS of the interpreter with numpy and the
engine imported, before the world is built.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Simulation, load_scenario  # noqa: E402

REFERENCE_TICK = 10_000
TARGET = 0.10


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def table_slots(sim: Simulation) -> int:
    sharing = sim.world.state.sharing
    return sharing.stable.capacity + sharing.hints.capacity + sharing.unstable.capacity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--scenario", default="tutorial/first-night")
    args = parser.parse_args()
    path = Path(args.scenario)
    if not path.exists():
        path = ROOT / "scenarios" / f"{args.scenario}.toml"
    floor = rss_mib()
    sim = Simulation.from_spec(load_scenario(path))
    built = rss_mib()
    print(f"{path.name}: {args.ticks:,} ticks; RSS {floor:.0f} MiB with the engine "
          f"imported (floor), {built:.0f} MiB with the world built")
    head = (f"{'tick':>9} {'RSS MiB':>8} {'vs 10k':>7} {'mean ms':>8} {'median':>7} "
            f"{'p99':>7} {'max':>7} {'table slots':>12} {'migr.':>6} {'history':>8}")
    print(head)
    print("-" * len(head))
    times = np.zeros(args.every)
    reference = None
    marks = sorted({REFERENCE_TICK, *range(args.every, args.ticks + 1, args.every)})
    done = 0
    start = time.perf_counter()
    for mark in marks:
        n = mark - done
        window = times[:n] if n <= times.size else np.zeros(n)
        for i in range(n):
            t0 = time.perf_counter()
            sim.step(1)
            window[i] = time.perf_counter() - t0
        done = mark
        rss = rss_mib()
        if mark == REFERENCE_TICK:
            reference = rss
        rel = f"{(rss / reference - 1) * 100:+.1f}%" if reference else "-"
        history = max((len(v) for v in sim.world.history.values()), default=0)
        ms = window * 1000
        print(f"{mark:>9,} {rss:>8.0f} {rel:>7} {ms.mean():>8.3f} {np.median(ms):>7.3f} "
              f"{np.percentile(ms, 99):>7.3f} {ms.max():>7.2f} {table_slots(sim):>12,} "
              f"{len(sim.world.state.migrations):>6} {history:>8}", flush=True)
    end = rss_mib()
    wall = time.perf_counter() - start
    if reference is None:
        print(f"ran {done:,} ticks in {wall:.0f} s (fewer than {REFERENCE_TICK:,}: no verdict)")
        return 0
    growth = end / reference - 1
    verdict = "holds" if growth <= TARGET else "MISSED"
    print(f"\n{done:,} ticks in {wall:.0f} s ({done / wall:,.0f} ticks/s); RSS {reference:.0f} "
          f"MiB at tick {REFERENCE_TICK:,} -> {end:.0f} MiB at the end ({growth:+.1%}); "
          f"target within {TARGET:.0%}: {verdict}")
    return 0 if growth <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
