"""Engine speed and memory: ticks per second and peak RSS per scenario, and for the big data
center the ratio of tick time to a bare-numpy floor doing the same page reads and writes.

    python benchmarks/engine_bench.py [--ticks 60] [--warmup 300] [--only NAME]

"warm t/s" is the rate over the warm-up, while guests fill memory and reclamation
(balloons, swapping) kicks in; "ticks/s" the steady rate after it.

Each scenario runs in its own subprocess so peak RSS is its own. Prints a table; no
assertions (targets are judged by people reading the ratios).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "first-night": ROOT / "scenarios/tutorial/first-night.toml",
    "dc-100x1000": ROOT / "scenarios/bench/dc-100x1000.toml",
}


def floor_ms(n_pages: int, reads: int, writes: int, repeats: int = 5) -> float:
    """The same number of page reads and writes as one tick, as bare fancy indexing:
    draw the page indices, gather page state for the reads, scatter new content for the
    writes. Nothing simulated can be cheaper than this."""
    rng = np.random.default_rng(0)
    location = np.zeros(n_pages, np.uint8)
    content = np.zeros(n_pages, np.uint64)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        idx = rng.integers(0, n_pages, reads + writes)
        _ = location[idx[:reads]]
        content[idx[reads:]] = np.arange(writes, dtype=np.uint64)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def measure(path: Path, ticks: int, warmup: int, with_floor: bool) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from engine import Simulation

    t0 = time.perf_counter()
    sim = Simulation.from_file(path)
    build_s = time.perf_counter() - t0
    # The warm-up is where guests fill their memory and reclamation kicks in.
    t0 = time.perf_counter()
    sim.step(warmup)
    warmup_tps = warmup / (time.perf_counter() - t0)
    vms = sim.world.state.vms
    reads0, writes0 = int(vms["reads"].sum()), int(vms["writes"].sum())
    stalls0 = int(vms["stalled_ops"].sum())
    t0 = time.perf_counter()
    sim.step(ticks)
    tick_s = (time.perf_counter() - t0) / ticks
    reads = (int(vms["reads"].sum()) - reads0) // ticks
    writes = (int(vms["writes"].sum()) - writes0) // ticks
    stalls = (int(vms["stalled_ops"].sum()) - stalls0) // ticks
    out = {
        "build_s": build_s,
        "warmup_ticks_per_s": warmup_tps,
        "tick_ms": tick_s * 1e3,
        "ticks_per_s": 1.0 / tick_s,
        "ops_per_tick": reads + writes + stalls,
        "pages": len(sim.world.state.pages),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    if with_floor:
        out["floor_ms"] = floor_ms(out["pages"], reads + stalls, writes)
        out["ratio"] = out["tick_ms"] / out["floor_ms"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(SCENARIOS[args.child], args.ticks, args.warmup,
                         with_floor=args.child == "dc-100x1000")
        print(json.dumps(result))
        return 0
    rows = []
    for name in [args.only] if args.only else SCENARIOS:
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--ticks",
                               str(args.ticks), "--warmup", str(args.warmup)],
                              capture_output=True, text=True, check=True)
        rows.append((name, json.loads(proc.stdout.strip().splitlines()[-1])))
    header = (f"{'scenario':<14}{'pages':>12}{'build s':>9}{'warm t/s':>9}{'ticks/s':>9}"
              f"{'ms/tick':>9}"
              f"{'ops/tick':>10}{'peak RSS':>10}{'floor ms':>10}{'tick/floor':>11}")
    print(header)
    print("-" * len(header))
    for name, r in rows:
        floor = f"{r['floor_ms']:>10.2f}{r['ratio']:>10.2f}x" if "floor_ms" in r else ""
        print(f"{name:<14}{r['pages']:>12,}{r['build_s']:>9.2f}{r['warmup_ticks_per_s']:>9.1f}"
              f"{r['ticks_per_s']:>9.1f}"
              f"{r['tick_ms']:>9.2f}{r['ops_per_tick']:>10,}{r['peak_rss_gib']:>8.2f}GiB{floor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
