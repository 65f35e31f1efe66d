"""What a digest and a save cost on the 1,000-VM data center: time and peak memory.

    python benchmarks/save_bench.py [--ticks 200] [--keep]

Builds scenarios/bench/dc-100x1000.toml, runs it (sharing under way), then times
Simulation.digest() and app/savefile.py write_save (a save to a temporary folder, removed
after unless --keep) one after the other. Each one's peak is measured alone: the kernel's
resident high-water mark (VmHWM) is reset before it (/proc/self/clear_refs), so "peak
above" is what it added on top of the world it started from. No assertions.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.savefile import write_save  # noqa: E402
from engine import Simulation  # noqa: E402
from engine.scenario import load_scenario  # noqa: E402

SCENARIO = ROOT / "scenarios/bench/dc-100x1000.toml"
MIB = 1024**2


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _measured(label: str, fn: object) -> None:
    _reset_peak()
    before = _status("VmRSS")
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - t0
    peak = _status("VmHWM")
    print(f"{label:<10} {took:8.2f} s   rss before {before / MIB:8.0f} MiB   peak "
          f"{peak / MIB:8.0f} MiB   peak above {(peak - before) / MIB:7.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim = Simulation.from_spec(load_scenario(SCENARIO))
    sim.step(args.ticks)
    state = sim.world.state
    print(f"built and ran {args.ticks} ticks in {time.perf_counter() - t0:.1f} s; "
          f"{state.frames.refcount.size:,} frames, {len(state.sharing.frame_keys):,} keyed; "
          f"peak so far {_status('VmHWM') / MIB:.0f} MiB", flush=True)
    digests: list[str] = []
    _measured("digest", lambda: digests.append(sim.digest()))
    folder = Path(tempfile.mkdtemp(prefix="save_bench."))
    _measured("save", lambda: write_save(folder / "bench.toml", sim))
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"digest {digests[0][:16]}…; save {size / MIB:.0f} MiB on disk in {folder}")
    if not args.keep:
        shutil.rmtree(folder)
    print(f"ru_maxrss over the run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MiB")


if __name__ == "__main__":
    main()
