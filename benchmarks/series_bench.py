"""What `--series` costs: the 1,000-VM data center run with and without recording.

    python benchmarks/series_bench.py [--ticks 300] [--repeats 3]

After a warm-up (guests fill memory, reclamation starts), the same stretch of ticks runs
from a saved copy of the world several times, alternating: bare, with a CSV series, with
a Parquet series (default interval 10 s = every 10th tick of this 1 s-tick scenario), with
a CSV series from the numpy writer used without pyarrow, and with the samples gathered but
not written (the reader alone). Each recorder clocks its own sampling and writing inside
the run; "recording" is that time against the engine's in the same run, which holds on a
loaded machine where the A/B wall times (also printed) do not. No assertions. The target
(issue 15): at most 5 % of the run's time at the default interval.
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app.series as series_module  # noqa: E402
from app.series import Recorder, TableWriter  # noqa: E402
from engine import Simulation  # noqa: E402

SCENARIO = ROOT / "scenarios/bench/dc-100x1000.toml"
EVERY_S = 10.0
have_pyarrow = series_module._have_pyarrow


class _Gather:
    """A TableWriter stand-in that keeps nothing: the reader's cost alone."""

    rows = 0

    def add(self, sample: object) -> None:
        pass

    def close(self) -> None:
        pass


class _Timed(Recorder):
    """A Recorder that clocks its own work: the samples and the file writing, apart from
    the engine's ticks, inside the same run (robust on a loaded machine, unlike A/B)."""

    recording_s = 0.0

    def _take(self) -> None:
        t0 = time.perf_counter()
        super()._take()
        self.recording_s += time.perf_counter() - t0

    def finish(self) -> int:
        before, t0 = self.recording_s, time.perf_counter()
        rows = super().finish()  # may take a last sample: counted once, here
        self.recording_s = before + time.perf_counter() - t0
        return rows


def timed(blob: object, ticks: int, mode: str) -> tuple[float, int, float]:
    meta, arrays = blob  # type: ignore[misc]
    # from_state adopts the arrays: each run gets its own copy of the warmed-up world.
    sim = Simulation.from_state((copy.deepcopy(meta), {k: v.copy() for k, v in arrays.items()}))
    out = io.BytesIO()
    t0 = time.perf_counter()
    if mode == "bare":
        sim.step(ticks)
        return time.perf_counter() - t0, 0, 0.0
    # csv-numpy: the writer used where pyarrow is not installed.
    series_module._have_pyarrow = (lambda: False) if mode == "csv-numpy" else have_pyarrow
    table = _Gather() if mode == "gather" else TableWriter(out, parquet=mode == "parquet")
    rec = _Timed(sim, table, EVERY_S)  # type: ignore[arg-type]
    rec.step(ticks)
    rec.finish()
    return time.perf_counter() - t0, out.tell(), rec.recording_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim = Simulation.from_file(SCENARIO)
    sim.step(args.warmup)
    blob = sim.save_state()
    print(f"built and warmed up ({args.warmup} ticks) in {time.perf_counter() - t0:.0f} s; "
          f"{len(sim.world.state.vms)} VMs, {len(sim.world.state.hosts)} hosts")
    sample_t = []
    for _ in range(20):
        s0 = time.perf_counter()
        sim.series_sample()
        sample_t.append(time.perf_counter() - s0)
    del sim
    modes = ("bare", "csv", "csv-numpy", "parquet", "gather")
    walls: dict[str, list[float]] = {m: [] for m in modes}
    shares: dict[str, list[float]] = {m: [] for m in modes}
    per_sample: dict[str, list[float]] = {m: [] for m in modes}
    sizes: dict[str, int] = {}
    samples = args.ticks // int(EVERY_S) + 1
    for r in range(args.repeats):
        for mode in modes:
            wall, size, recording = timed(blob, args.ticks, mode)
            walls[mode].append(wall)
            shares[mode].append(recording / (wall - recording))
            per_sample[mode].append(recording / samples)
            sizes[mode] = size
            print(f"  repeat {r + 1}: {mode:<8} {wall:7.2f} s, recording {recording:6.3f} s",
                  flush=True)
    bare = statistics.median(walls["bare"])
    print(f"\n{args.ticks} ticks of {SCENARIO.name} after the warm-up, a sample every "
          f"{EVERY_S:.0f} s ({samples} samples of {1101:,} rows)")
    print("recording = time in sampling and writing, against the engine's time in the same "
          "run;\nA/B = wall time against the bare runs (noisy on a shared machine)")
    print(f"{'mode':<9} {'wall med':>9} {'min':>7} {'recording':>10} {'max':>7} "
          f"{'per sample':>11} {'A/B':>7} {'file':>8}")
    for mode in modes:
        med = statistics.median(walls[mode])
        size = f"{sizes[mode] / 1e6:.1f} MB" if sizes[mode] else "-"
        if mode == "bare":
            print(f"{mode:<9} {med:8.2f}s {min(walls[mode]):6.2f}s {'-':>10} {'-':>7} "
                  f"{'-':>11} {'-':>7} {size:>8}")
            continue
        print(f"{mode:<9} {med:8.2f}s {min(walls[mode]):6.2f}s "
              f"{statistics.median(shares[mode]):10.2%} {max(shares[mode]):7.2%} "
              f"{statistics.median(per_sample[mode]) * 1e3:8.2f} ms "
              f"{(med - bare) / bare:+7.1%} {size:>8}")
    print(f"one sample (the reader alone, median of 20): "
          f"{statistics.median(sample_t) * 1e3:.2f} ms, max {max(sample_t) * 1e3:.2f} ms")
    print(f"bare tick: {bare / args.ticks * 1e3:.1f} ms; the 5 % budget at 10 s is "
          f"{bare / args.ticks * 10 * 0.05 * 1e3:.1f} ms per sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
