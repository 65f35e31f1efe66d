"""What a digest, a save and a load cost on the 1,000-VM data center: time and peak memory.

    python benchmarks/save_bench.py [--ticks 200] [--levels 1,6] [--keep]

Builds scenarios/bench/dc-100x1000.toml, runs it (sharing under way), then times
Simulation.digest(), and for each deflate level app/savefile.py write_save (a save to a
temporary folder, removed after unless --keep) and read_save of that save, one after the
other. `--levels` sets app/savefile.py's DEFLATE_LEVEL for each save (ignored, with a note,
by a savefile.py without it). Each one's peak is measured alone: the kernel's resident
high-water mark (VmHWM) is reset before it (/proc/self/clear_refs), so "peak above" is what
it added on top of what the process held when it started. The loaded world's digest is
compared with the saved one's; a load refused is reported
(its row shows nan). No assertions.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import savefile  # noqa: E402
from engine import InputError, Simulation  # noqa: E402
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


def _measured(label: str, fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """fn's result, seconds and peak bytes above the resident size it started from."""
    gc.collect()
    _reset_peak()
    before = _status("VmRSS")
    t0 = time.perf_counter()
    result = fn()
    took = time.perf_counter() - t0
    peak = _status("VmHWM")
    print(f"{label:<12} {took:8.2f} s   rss before {before / MIB:8.0f} MiB   peak "
          f"{peak / MIB:8.0f} MiB   peak above {(peak - before) / MIB:7.0f} MiB", flush=True)
    return result, took, peak - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--levels", default="1,6",
                        help="deflate levels of the page arrays, one save each")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim = Simulation.from_spec(load_scenario(SCENARIO))
    sim.step(args.ticks)
    state = sim.world.state
    print(f"built and ran {args.ticks} ticks in {time.perf_counter() - t0:.1f} s; "
          f"{state.frames.refcount.size:,} frames, {len(state.sharing.frame_keys):,} keyed; "
          f"peak so far {_status('VmHWM') / MIB:.0f} MiB", flush=True)
    digest, _, _ = _measured("digest", sim.digest)
    levels: list[int | None] = [int(x) for x in args.levels.split(",") if x.strip()]
    if not hasattr(savefile, "DEFLATE_LEVEL"):
        print("this savefile.py has no DEFLATE_LEVEL: one save at its own compression")
        levels = [None]
    rows = []
    for level in levels:
        if level is not None:
            savefile.DEFLATE_LEVEL = level  # type: ignore[attr-defined]
        folder = Path(tempfile.mkdtemp(prefix="save_bench."))
        tag = "own" if level is None else str(level)
        _, save_s, save_peak = _measured(f"save {tag}",
                                         lambda f=folder: savefile.write_save(f / "b.toml", sim))
        size = sum(p.stat().st_size for p in folder.iterdir())
        try:
            loaded, load_s, load_peak = _measured(
                f"load {tag}", lambda f=folder: savefile.read_save(f / "b.toml"))
        except InputError as err:  # reported, so the save's numbers still print
            print(f"load {tag}: refused: {err}", flush=True)
            loaded, load_s, load_peak = None, float("nan"), 0
        same = loaded is not None and loaded.digest() == digest
        del loaded
        rows.append((tag, save_s, save_peak, size, load_s, load_peak, same))
        print(f"save {tag}: {size / MIB:.0f} MiB on disk in {folder}; loaded digest "
              f"{'equals' if same else 'is not'} the world's", flush=True)
        if not args.keep:
            shutil.rmtree(folder)
    print(f"\ndigest {digest[:16]}…; world {sum(a.nbytes for a in _arrays(sim)) / MIB:.0f} "
          "MiB of arrays")
    print("| level | save s | save peak above MiB | file MiB | load s | load peak above MiB "
          "| same digest |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for tag, save_s, save_peak, size, load_s, load_peak, same in rows:
        print(f"| {tag} | {save_s:.1f} | {save_peak / MIB:.0f} | {size / MIB:.0f} | "
              f"{load_s:.1f} | {load_peak / MIB:.0f} | {'yes' if same else 'NO'} |")
    print(f"ru_maxrss over the run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MiB")


def _arrays(sim: Simulation) -> list[Any]:
    from engine import persistence

    return list(persistence.to_plain(sim.world)[1].values())


if __name__ == "__main__":
    main()
