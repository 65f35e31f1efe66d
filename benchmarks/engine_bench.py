"""Engine speed and memory, honestly: every tick of a long window timed, not a quiet sample.

    python benchmarks/engine_bench.py [--ticks 1800] [--warmup 300] [--only NAME|--all] [--long]

For each scenario, in its own subprocess (so RSS is its own):
- the build time of the world, and the warm-up rate (guests fill memory, reclamation starts);
- over a window of --ticks ticks after the warm-up: the mean tick (slow ticks included),
  the median, p99 and max, simulated seconds per wall second (from the mean), RSS at the
  start and end of the window and the peak (the world's: less the floor's own arrays);
- the floor: the same page operations as the window's ticks (reads, writes, page-cache
  reads, pages scanned for sharing, pages sent by migrations), done as bare numpy gathers
  and scatters over arrays of the world's size, measured in the same process every 100
  ticks with that tick's own counts; and the tick's ratio to it (mean and median). The
  engine cuts its big gathers across two threads (engine/parallel.py), so the floor is
  also measured cut the same way on two threads, and the ratio to that printed beside;
- the time per phase of the tick (engine/pipeline.py), mean ms and share;
- what the kernel did during the build (/proc/vmstat: huge pages faulted or refused,
  compaction and reclaim stalls), which is where a slow build's time goes;
- whether the loops of engine/kernels.py ran compiled (numba) or as numpy passes
  (OVERCOMMIT_KERNELS=numpy measures the second where numba is installed).
--long runs two simulated hours of the data center instead and prints RSS and ms/tick
every 10 simulated minutes (the memory-flat check). No assertions: people read the ratios.
Each run ends with the targets of issue 13 that its figures can judge (TARGETS,
LONG_TARGETS), each figure beside its target and "ok" or "MISSED": a run on a slower
machine may miss what a faster one meets, so quote the table with the run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "first-night": ROOT / "scenarios/tutorial/first-night.toml",
    "dc-100x1000": ROOT / "scenarios/bench/dc-100x1000.toml",
    # 100,000 VMs at 2 MiB pages: ~6 GiB and ~0.7 s a tick; only with --only or --all.
    "dc-10000x100000": ROOT / "scenarios/bench/dc-10000x100000.toml",
}
DEFAULT = ("first-night", "dc-100x1000")
FLOOR_EVERY = 100

# Issue 13's targets, per scenario: (what, the figure from a run's results, "<=" or ">=",
# the bound). The 100,000-VM world's memory target is the world's peak (the floor's own
# arrays are not the world's).
Target = tuple[str, Callable[[dict[str, Any]], float], str, float]
TARGETS: dict[str, list[Target]] = {
    "dc-100x1000": [
        ("simulated s per wall s (mean tick)", lambda r: r["sim_per_wall"], ">=", 40.0),
        ("p99 tick / median tick", lambda r: r["p99_ms"] / r["median_ms"], "<=", 3.0),
        ("mean tick / floor", lambda r: r["mean_over_floor"], "<=", 4.0),
        ("build s", lambda r: r["build_s"], "<=", 3.0),
    ],
    "dc-10000x100000": [
        ("build s", lambda r: r["build_s"], "<=", 60.0),
        ("simulated s per wall s (mean tick)", lambda r: r["sim_per_wall"], ">=", 1.0),
        ("peak RSS GiB", lambda r: r["peak_rss_gib"], "<=", 16.0),
    ],
}
# --long, per scenario: RSS from the first 10-minute mark to the last, and the run's peak.
LONG_TARGETS: dict[str, list[Target]] = {
    "dc-100x1000": [
        ("RSS growth after 10 min, %", lambda r: r["growth_pct"], "<=", 5.0),
        ("peak RSS GiB", lambda r: r["peak_rss_gib"], "<=", 5.0),
    ],
}


def judged(targets: list[Target], results: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """Each target's figure from `results`, its bound as text, and whether it is met."""
    rows = []
    for what, figure, op, bound in targets:
        value = float(figure(results))
        met = value >= bound if op == ">=" else value <= bound
        rows.append((what, value, f"{op} {bound:g}", met))
    return rows


def _print_targets(title: str, rows: list[tuple[str, float, str, bool]]) -> None:
    print(f"\n{title}: targets (issue 13)")
    for what, value, bound, met in rows:
        print(f"  {what:<36}{value:>9.2f}  {bound:<7}{'ok' if met else 'MISSED':>7}")


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1024**3


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class Floor:
    """Bare numpy doing a tick's page operations over arrays as big as the world's."""

    def __init__(self, n_pages: int) -> None:
        self.rng = np.random.default_rng(0)
        # Written once through, so the timing holds no first-touch page faults.
        self.location = np.ones(n_pages, np.uint8)
        self.content = np.ones(n_pages, np.uint64)
        self.n = n_pages
        self.gib = (self.location.nbytes + self.content.nbytes) / 2**30
        self.ms(1000, 1000)

    def ms(self, reads: int, writes: int) -> float:
        t0 = time.perf_counter()
        idx = self.rng.integers(0, self.n, reads + writes)
        _ = self.location[idx[:reads]]
        self.content[idx[reads:]] = np.arange(writes, dtype=np.uint64)
        return (time.perf_counter() - t0) * 1e3

    def ms_two_threads(self, reads: int, writes: int) -> float:
        """The same work cut in two halves on two threads, as the engine cuts its big
        gathers and scatters (engine/parallel.py): the floor for an engine on two cores."""
        t0 = time.perf_counter()
        idx = self.rng.integers(0, self.n, reads + writes)
        values = np.arange(writes, dtype=np.uint64)

        def half(lo_r: int, hi_r: int, lo_w: int, hi_w: int) -> None:
            _ = self.location[idx[lo_r:hi_r]]
            self.content[idx[reads + lo_w:reads + hi_w]] = values[lo_w:hi_w]

        later = _pool().submit(half, 0, reads // 2, 0, writes // 2)
        half(reads // 2, reads, writes // 2, writes)
        later.result()
        return (time.perf_counter() - t0) * 1e3


_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(1))
    return _POOL[0]


def _counts(sim: Any) -> tuple[int, int]:
    """Cumulative (page reads, page writes) the engine has done: guest reads, page-cache
    reads and pages scanned for sharing read a page; guest writes and pages sent by
    migrations (their content is copied) write one."""
    state = sim.world.state
    vms = state.vms
    reads = (int(vms["reads"].sum()) + int(vms["stalled_ops"].sum())
             + int(vms["file_reads"].sum()) + int(state.sharing.hosts["hashed"].sum()))
    sent = int(state.migrations["pages_sent"].sum()) if len(state.migrations) else 0
    return reads, int(vms["writes"].sum()) + sent


def _step_timed(sim: Any, phases: dict[str, float]) -> float:
    """One tick, as Simulation.step does it, with each phase timed."""
    from engine import kernels
    from engine.pipeline import TICK_PHASES

    world = sim.world
    t0 = time.perf_counter()
    world.events = []
    with kernels.settled():
        for name, phase in TICK_PHASES:
            p0 = time.perf_counter()
            phase(world)
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - p0
    world.state.tick += 1
    return time.perf_counter() - t0


def _mincore() -> Any:
    sys.path.insert(0, str(ROOT))
    from engine import libc

    return libc.function("mincore", ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


_MINCORE = _mincore()


def mapped_bytes(a: np.ndarray) -> int:
    """Bytes of the pages of `a` in memory (mincore): what writing it has mapped so far.
    An array the engine holds as zeros the OS maps lazily (a write tick, a free stack)
    is only partly mapped by a build. Where mincore is missing: all of it if any element
    is nonzero, else none."""
    if _MINCORE is None or a.nbytes == 0:
        return a.nbytes if a.any() else 0
    page = mmap.PAGESIZE
    start = a.ctypes.data // page * page
    length = a.ctypes.data + a.nbytes - start
    vec = np.zeros((length + page - 1) // page, np.uint8)
    if _MINCORE(start, length, vec.ctypes.data) != 0:
        return a.nbytes if a.any() else 0
    return int(np.count_nonzero(vec & 1)) * page


def built_sizes(state: Any) -> list[int]:
    """Bytes of each page and frame array the build mapped (before anything reads them:
    reading lazily mapped zeros maps them too). A strided field counts through its
    record: the page records once."""
    pages = state.pages
    arrays = [pages.meta, *(a for a in pages.arrays().values() if a.base is not pages.meta),
              *state.frames.arrays().values()]
    return [n for n in map(mapped_bytes, arrays) if n]


_KERNEL_COUNTERS = ("thp_fault_alloc", "thp_fault_fallback", "compact_stall",
                    "allocstall_normal", "allocstall_movable")


def kernel_counters() -> dict[str, int]:
    """Linux's memory counters a slow build shows in (huge pages faulted or refused, direct
    compaction and reclaim stalls); empty where /proc/vmstat is missing."""
    try:
        with open("/proc/vmstat") as f:
            pairs = (line.split() for line in f)
            return {k: int(v) for k, v in pairs if k in _KERNEL_COUNTERS}
    except OSError:
        return {}


def build_floor(sizes: list[int], kept: list[Any], two_threads: bool = False
                ) -> tuple[float, float]:
    """(seconds, GiB): mapping and writing once, with bare numpy, fresh arrays of the sizes
    of the world's page and frame arrays that the build wrote - what any build of this
    world must at least do (the kernel's first touch of every page of them included).
    `two_threads`: each array written in two halves at once, as the engine writes them.
    In small pages, as the engine builds a big world (engine/hugepages.py): on this
    machine the cheaper way. The arrays go into `kept`, so that a second floor cannot
    reuse their memory (memory just freed is mapped in far faster than memory the
    machine has had free a while)."""
    from engine import hugepages

    t0 = time.perf_counter()
    for nbytes in sizes:
        with hugepages.small_pages(True):
            a = np.empty(nbytes, np.uint8)
        if two_threads:
            later = _pool().submit(a[: nbytes // 2].fill, 1)
            a[nbytes // 2:].fill(1)
            later.result()
        else:
            a.fill(1)
        kept.append(a)
    return time.perf_counter() - t0, sum(sizes) / 2**30


def measure(path: Path, ticks: int, warmup: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from engine import Simulation, kernels, parallel

    rss0 = rss_gib()
    kernel0 = kernel_counters()
    t0 = time.perf_counter()
    sim = Simulation.from_file(path)
    build_s = time.perf_counter() - t0
    kernel = {k: v - kernel0[k] for k, v in kernel_counters().items()}
    built = built_sizes(sim.world.state)
    tick_s = sim.world.state.tick_s
    t0 = time.perf_counter()
    sim.step(warmup)
    warm_wall = time.perf_counter() - t0
    floor = Floor(len(sim.world.state.pages))
    phases: dict[str, float] = {}
    walls = np.zeros(ticks)
    floors: list[tuple[float, float]] = []  # (floor ms on one thread, on two)
    # The floor's own arrays (written through, so resident) are not the world's memory.
    rss_start = rss_gib() - floor.gib
    r0, w0 = _counts(sim)
    for i in range(ticks):
        before = _counts(sim) if i % FLOOR_EVERY == 0 else None
        walls[i] = _step_timed(sim, phases)
        if before is not None:
            after = _counts(sim)
            reads, writes = after[0] - before[0], after[1] - before[1]
            floors.append((floor.ms(reads, writes), floor.ms_two_threads(reads, writes)))
    rss_end = rss_gib() - floor.gib
    peak = peak_rss_gib() - floor.gib
    kept: list[Any] = []
    build_floor_s, array_gib = build_floor(built, kept)
    build_floor2_s, _ = build_floor(built, kept, two_threads=True)
    del kept
    r1, w1 = _counts(sim)
    ms = walls * 1e3
    floor_ms = float(np.mean([f for f, _ in floors]))
    floor2_ms = float(np.mean([f for _, f in floors]))
    return {
        "pages": len(sim.world.state.pages),
        "build_s": build_s,
        "build_floor_s": build_floor_s,
        "build_floor2_s": build_floor2_s,
        "threads": parallel.threads(),
        "walks": "compiled (numba)" if kernels.compiled() else "numpy passes",
        "build_kernel": kernel,
        "array_gib": array_gib,
        "warm_sim_per_wall": warmup * tick_s / warm_wall,
        "mean_ms": float(ms.mean()),
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "sim_per_wall": tick_s / (ms.mean() / 1e3),
        "reads_per_tick": (r1 - r0) / ticks,
        "writes_per_tick": (w1 - w0) / ticks,
        "floor_ms": floor_ms,
        "mean_over_floor": float(ms.mean()) / floor_ms,
        "median_over_floor": float(np.median(ms)) / floor_ms,
        "floor2_ms": floor2_ms,
        "rss_before_build_gib": rss0,
        "rss_start_gib": rss_start,
        "rss_end_gib": rss_end,
        "peak_rss_gib": peak,
        "phases_ms": {k: v / ticks * 1e3 for k, v in phases.items()},
    }


def long_run(path: Path, hours: float) -> None:
    sys.path.insert(0, str(ROOT))
    from engine import Simulation

    t0 = time.perf_counter()
    sim = Simulation.from_file(path)
    print(f"built in {time.perf_counter() - t0:.1f} s, RSS {rss_gib():.2f} GiB", flush=True)
    tick_s = sim.world.state.tick_s
    every = max(1, round(600 / tick_s))
    print(f"{'sim time':>9}{'RSS GiB':>9}{'ms/tick':>9}{'max ms':>9}{'migrations':>11}")
    marks: list[float] = []  # RSS at each 10-minute mark
    for k in range(int(hours * 3600 / tick_s / every)):
        walls = []
        for _ in range(every):
            t = time.perf_counter()
            sim.step(1)
            walls.append(time.perf_counter() - t)
        marks.append(rss_gib())
        print(f"{(k + 1) * 10:>6} min{marks[-1]:>9.2f}{np.mean(walls) * 1e3:>9.1f}"
              f"{max(walls) * 1e3:>9.0f}{len(sim.world.state.migrations):>11}", flush=True)
    print(f"peak RSS {peak_rss_gib():.2f} GiB")
    if len(marks) >= 2 and path.stem in LONG_TARGETS:
        _print_targets(f"{path.stem}, {hours:g} simulated hours", judged(LONG_TARGETS[path.stem], {
            "growth_pct": (marks[-1] / marks[0] - 1) * 100, "peak_rss_gib": peak_rss_gib()}))


def _print(rows: list[tuple[str, dict[str, Any]]], window: int) -> None:
    print(f"window: {window} ticks after the warm-up; ms per tick")
    head = (f"{'scenario':<13}{'pages':>12}{'build s':>8}{'warm x':>8}{'mean':>8}{'median':>8}"
            f"{'p99':>8}{'max':>8}{'sim/wall':>9}{'RSS start':>10}{'RSS end':>9}{'peak':>7}"
            f"{'floor':>7}{'mean/fl':>8}{'med/fl':>7}")
    print(head)
    print("-" * len(head))
    for name, r in rows:
        print(f"{name:<13}{r['pages']:>12,}{r['build_s']:>8.2f}{r['warm_sim_per_wall']:>8.1f}"
              f"{r['mean_ms']:>8.2f}{r['median_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['max_ms']:>8.1f}"
              f"{r['sim_per_wall']:>9.1f}{r['rss_start_gib']:>10.2f}{r['rss_end_gib']:>9.2f}"
              f"{r['peak_rss_gib']:>7.2f}{r['floor_ms']:>7.2f}{r['mean_over_floor']:>7.1f}x"
              f"{r['median_over_floor']:>6.1f}x")
    for name, r in rows:
        print(f"\n{name}: the engine cuts its big gathers and first writes across "
              f"{r['threads']} thread(s) (engine/parallel.py). On two threads the tick's "
              f"floor is {r['floor2_ms']:.2f} ms: mean/floor {r['mean_ms'] / r['floor2_ms']:.1f}x, "
              f"median/floor {r['median_ms'] / r['floor2_ms']:.1f}x")
        print(f"{name}: the loops of engine/kernels.py ran as {r['walks']}")
    for name, r in rows:
        print(f"\n{name}: built in {r['build_s']:.2f} s; the floor (mapping and writing its "
              f"{r['array_gib']:.2f} GiB of page and frame arrays once, bare numpy) "
              f"{r['build_floor_s']:.2f} s: {r['build_s'] / r['build_floor_s']:.1f}x; "
              f"on two threads {r['build_floor2_s']:.2f} s: "
              f"{r['build_s'] / r['build_floor2_s']:.1f}x")
        if r["build_kernel"]:
            print("  the kernel during the build: " + ", ".join(
                f"{k} {v:,}" for k, v in r["build_kernel"].items()))
    for name, r in rows:
        total = sum(r["phases_ms"].values())
        print(f"\n{name}: {r['reads_per_tick']:,.0f} page reads and {r['writes_per_tick']:,.0f} "
              "page writes a tick; time by phase (mean ms a tick, share):")
        for phase, v in sorted(r["phases_ms"].items(), key=lambda kv: -kv[1]):
            print(f"  {phase:<11}{v:>8.2f}{v / total:>7.0%}")
    for name, r in rows:
        if name in TARGETS:
            _print_targets(name, judged(TARGETS[name], r))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1800)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--all", action="store_true", help="the 100,000-VM world too")
    parser.add_argument("--long", action="store_true",
                        help="two simulated hours of the data center, RSS every 10 min")
    parser.add_argument("--hours", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.long:
        long_run(SCENARIOS[args.only or "dc-100x1000"], args.hours)
        return 0
    if args.child:
        print(json.dumps(measure(SCENARIOS[args.child], args.ticks, args.warmup)))
        return 0
    rows = []
    for name in [args.only] if args.only else SCENARIOS if args.all else DEFAULT:
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--ticks",
                               str(args.ticks), "--warmup", str(args.warmup)],
                              capture_output=True, text=True, check=True)
        rows.append((name, json.loads(proc.stdout.strip().splitlines()[-1])))
    _print(rows, args.ticks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
