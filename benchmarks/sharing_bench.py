"""The sharing phase alone on the benchmark data center, in the windows that differ.

    python benchmarks/sharing_bench.py [--scenario PATH] [--windows 100:260,300:400,560:660]

KSM does different work by full scan: in the first every page is new (volatile), in the
second fresh pairs merge (the most merges), from the third on the trees are steady. At
5,000 pages/s a 1,310,720-page KSM host of dc-100x1000 wraps every ~262 s, so the default
windows are one of each. Per window: ESX and KSM ms a tick (mean: ESX's on the tick's
thread, its decisions being made on the helper beside KSM), the tick's other
phases, and RSS at the window's start and end. Each tick runs every phase in order, as
engine/pipeline.py does; only the sharing phase's two scanners are timed apart. No
assertions: people read the numbers (time it on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1024**3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios/bench/dc-100x1000.toml"))
    parser.add_argument("--windows", default="100:260,300:400,560:660")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from engine import Simulation
    from engine.memory import phase
    from engine.pipeline import TICK_PHASES

    spent = {"esx": 0.0, "ksm": 0.0}

    # ESX decides on the helper thread while KSM runs (memory/sharing.py start_esx): its
    # time here is the caller's, in starting it and in ending it (the wait for the
    # decisions and their remaps), apart from KSM's, which ends it before its writes.
    def start_esx(world: Any) -> Callable[[], None]:
        t0 = time.perf_counter()
        finish = start(world)
        spent["esx"] += time.perf_counter() - t0

        def timed_finish() -> None:
            t1 = time.perf_counter()
            finish()
            spent["esx"] += time.perf_counter() - t1
            if in_ksm:
                spent["ksm"] -= time.perf_counter() - t1
        return timed_finish

    in_ksm = False

    def run_ksm(world: Any, before_writes: Callable[[], None]) -> None:
        nonlocal in_ksm
        t0 = time.perf_counter()
        in_ksm = True
        try:
            ksm(world, before_writes)
        finally:
            in_ksm = False
        spent["ksm"] += time.perf_counter() - t0

    start, ksm = phase.start_esx, phase.run_ksm
    phase.start_esx = start_esx  # run_sharing looks them up here
    phase.run_ksm = run_ksm
    t0 = time.perf_counter()
    sim = Simulation.from_file(args.scenario)
    print(f"built in {time.perf_counter() - t0:.1f} s, RSS {rss_gib():.2f} GiB")
    print(f"{'ticks':>10}{'esx ms':>8}{'ksm ms':>8}{'sharing':>9}{'other':>8}"
          f"{'RSS start':>10}{'RSS end':>9}")
    world = sim.world
    for window in args.windows.split(","):
        lo, hi = (int(x) for x in window.split(":"))
        sim.step(max(lo - world.state.tick, 0))
        spent.update(esx=0.0, ksm=0.0)
        walls = np.zeros(hi - lo)
        sharing = 0.0
        rss0 = rss_gib()
        for i in range(hi - lo):
            world.events = []
            t = time.perf_counter()
            for name, run in TICK_PHASES:
                p0 = time.perf_counter()
                run(world)
                if name == "sharing":
                    sharing += time.perf_counter() - p0
            world.state.tick += 1
            walls[i] = time.perf_counter() - t
        n = hi - lo
        print(f"{window:>10}{spent['esx'] / n * 1e3:>8.2f}{spent['ksm'] / n * 1e3:>8.2f}"
              f"{sharing / n * 1e3:>9.2f}{(walls.sum() - sharing) / n * 1e3:>8.2f}"
              f"{rss0:>10.2f}{rss_gib():>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
