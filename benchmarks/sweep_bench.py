"""The overcommit sweep on a Dask LocalCluster against one process: wall time, speed-up.

    python benchmarks/sweep_bench.py [--workers 2] [--hours 24] [--order cluster,serial]

Runs scenarios/economy/overcommit-sweep.sweep.toml (6 packings x 3 seeds x one simulated
day) twice: one run after another in this process (app.sweep_run.run_point, no Dask), and
on a LocalCluster of --workers processes through the same code as `overcommit sweep`.
Prints the machine's load before and after each (the machine may be shared), the wall
times, the speed-up and whether both gave the same numbers; with --out, the tables and the
plot of `overcommit sweep --out DIR` too.
No assertions: the numbers are for people to read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from app.sweep import Results, dask_client, load_sweep, results  # noqa: E402
from app.sweep_run import run_point  # noqa: E402
from app.sweep_summary import report_summary  # noqa: E402

SWEEP = ROOT / "scenarios/economy/overcommit-sweep.sweep.toml"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--order", default="cluster,serial",
                        help="which runs first (the second may see a warmer page cache)")
    parser.add_argument("--out", metavar="DIR",
                        help="also write runs.csv, summary.csv and summary.svg there")
    args = parser.parse_args()
    sweep = load_sweep(SWEEP)
    tasks = [sweep.task(p) for p in sweep.points]
    ticks = None
    if args.hours != 24.0:
        tick_s = 60.0  # the scenario's tick
        ticks = round(args.hours * 3600 / tick_s)
        for t in tasks:
            t["ticks"] = ticks
    print(f"{sweep.name}: {len(tasks)} runs of {ticks or 'the scenario duration (1,440)'} "
          f"ticks; {os.cpu_count()} cores")
    walls: dict[str, float] = {}
    found: dict[str, dict[int, dict[str, float]]] = {}
    first: list[dict[str, Any]] = []
    for mode in args.order.split(","):
        print(f"{mode}: before, {load()}", flush=True)
        t0 = time.perf_counter()
        if mode == "serial":
            done = [run_point(t) for t in tasks]
            startup = 0.0
        else:
            with dask_client(None, args.workers) as client:
                startup = time.perf_counter() - t0
                done = list(results(tasks, client))
        walls[mode] = time.perf_counter() - t0
        found[mode] = {r["index"]: r["metrics"] for r in done}
        if args.out and not first:  # what `overcommit sweep --out DIR` writes, at once
            table = Results(sweep, Path(args.out), resume=False)
            points = {p.index: p for p in sweep.points}
            for r in sorted(done, key=lambda r: r["index"]):
                table.add(points[r["index"]], r)
            table.finish()
            report_summary(Console(width=200), sweep, table.ordered(), Path(args.out))
        first = first or done
        failed = [r for r in done if r["status"] != "ok"]
        print(f"{mode}: {walls[mode]:.0f} s wall (cluster start {startup:.1f} s), "
              f"{sum(r['wall_s'] for r in done):.0f} s in runs, {len(failed)} failed; "
              f"after, {load()}", flush=True)
        for r in failed:
            print(f"  run {r['index']}: {r['error']}")
    if len(walls) == 2:
        same = found["serial"] == found["cluster"]
        print(f"\n{'':<28}{'wall s':>8}")
        print(f"{'one process':<28}{walls['serial']:8.0f}")
        print(f"{f'LocalCluster, {args.workers} workers':<28}{walls['cluster']:8.0f}")
        print(f"speed-up {walls['serial'] / walls['cluster']:.2f}x on {args.workers} workers; "
              f"identical results: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
