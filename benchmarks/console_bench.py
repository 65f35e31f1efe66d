"""Console speed: how long a live frame, a key's effect and the detail screens take, driven
by Textual's Pilot on a real world, and how long a snapshot takes to build.

    python benchmarks/console_bench.py [--world dc-100x1000] [--repeats 9] [--size 160x50]
    python benchmarks/console_bench.py   # the big world

Targets (issue 14): a detail screen opens in <= 100 ms and a key shows its effect in
<= 100 ms on the 1,000-VM world, a live frame costs <= 50 ms, and the VM table updates
only the rows that changed; a snapshot of 100,000 VMs builds in <= 100 ms; the console's
first frame on the 1,000-VM data center within 5 s.

First frames. The world is built as `overcommit play` builds it: in the console's thread
worker, behind the loading screen. Timed from the App's creation (the interpreter's start
and imports, about half a second, are not in it) to the loading screen's first frame and
to the main screen's first frame with every VM in its table; then, for comparison, a
console given a world built before (the build's time is in the world's line).

How it measures. A key is sent as the terminal would send it; the clock stops when every
widget of the screen has processed its messages and the frame is painted (no idle
sleeps, unlike Pilot.press). A live frame is what the UI thread does with a Stepped
message: record it, refresh every widget, paint; the tick and the snapshot run before, as
the engine worker runs them (their costs are listed apart). Each figure is over
`--repeats` runs: mean, median, p99 and max. The 100,000-VM world is a scenario of tiny
VMs (64 KiB, 16 pages each) whose VM table is tiled 100x from a built 1,000-VM world:
building it VM by VM would take hours (issue 13 makes the build bulk). The floor is the
bare numpy copy of the per-VM arrays a snapshot reads. Prints tables; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.keys import _get_unicode_name_from_key  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from app.console.app import OvercommitApp  # noqa: E402
from app.console.driver import EngineDriver  # noqa: E402
from app.console.live import read_live  # noqa: E402
from app.console.screens.loading import LoadingScreen  # noqa: E402
from app.console.screens.overview import OverviewScreen  # noqa: E402
from app.console.widgets.vm_table import VMTable  # noqa: E402
from engine import Simulation, load_scenario, parse_scenario  # noqa: E402
from engine.scenario import ScenarioSpec  # noqa: E402
from engine.state import VMs  # noqa: E402

WORLDS = {
    "tutorial": ROOT / "scenarios/tutorial/first-night.toml",
    "dc-100x1000": ROOT / "scenarios/bench/dc-100x1000.toml",
}
TINY = {
    "scenario": {"name": "tiny VMs", "seed": 1, "page_size": "4KiB"},
    "switch": [{"id": "tor"}, {"id": "gw", "kind": "gateway"}],
    "link": [{"a": "tor", "b": "gw", "capacity": "100Gbit/s"}],
    "policy": {"memory": {"overhead_per_vm": "4KiB"}},
    "host_group": [{"id": "h", "count": 100, "memory": "64MiB", "switch": "tor"}],
    "vm_group": [{"id": "v", "count": 1000, "memory": "64KiB", "hosts": ["*"],
                  "workload": {"reads_per_s": 5, "writes_per_s": 1}}],
}


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1e3 for s in samples)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return {"mean": statistics.fmean(ms), "median": statistics.median(ms), "p99": p99,
            "max": ms[-1]}


def row(name: str, samples: list[float], target_ms: float | None = None) -> str:
    s = stats(samples)
    mark = "" if target_ms is None else ("  ok" if s["median"] <= target_ms else "  OVER")
    target = f"<= {target_ms:g}" if target_ms is not None else ""
    return (f"{name:<34} {s['mean']:8.1f} {s['median']:8.1f} {s['p99']:8.1f} "
            f"{s['max']:8.1f}   {target:<7}{mark}")


HEADER = f"{'':<34} {'mean':>8} {'median':>8} {'p99':>8} {'max':>8}   target (ms)"


class GCPauses:
    """The garbage collector's passes while the console runs: count, total, longest."""

    def __init__(self) -> None:
        self.n = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.longest_s = [0.0, 0.0, 0.0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        g, spent = info["generation"], time.perf_counter() - self._t0
        self.n[g] += 1
        self.total_s[g] += spent
        self.longest_s[g] = max(self.longest_s[g], spent)

    def line(self) -> str:
        return "garbage collections: " + ", ".join(
            f"gen {g} x{self.n[g]} ({self.total_s[g] * 1e3:.0f} ms, longest "
            f"{self.longest_s[g] * 1e3:.1f})" for g in range(3))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- snapshots -------------------------------------------------------------------------
def tiled_world(copies: int) -> Simulation:
    """TINY's 1,000 VMs, then their table tiled `copies` times (the pages are not: the
    snapshot reads per-VM and per-host arrays only)."""
    sim = Simulation.from_spec(parse_scenario(TINY))
    sim.step(2)
    state = sim.world.state
    vms = state.vms
    arrays = {n: np.concatenate([a] * copies) for n, a in vms.arrays.items()}
    state.vms = VMs([f"v{i}" for i in range(len(vms.ids) * copies)], vms.specs * copies,
                    arrays)
    state.vm_net_bytes_per_s = np.concatenate([state.vm_net_bytes_per_s] * copies)
    return sim


def time_snapshots(sim: Simulation, repeats: int) -> tuple[list[float], list[float],
                                                           list[float]]:
    """(snapshot, snapshot + every VMView row built and freed, the numpy floor)."""
    snap, rows, floor = [], [], []
    arrays = sim.world.state.vms.arrays
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = sim.snapshot()
        snap.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in s.vms:
            pass
        # Freeing 100,000 built rows is part of building them (110 ms: timed as the next
        # snapshot's when `s = sim.snapshot()` replaced this one inside its clock).
        del s
        rows.append(time.perf_counter() - t0 + snap[-1])
        t0 = time.perf_counter()
        _ = [a.copy() for a in arrays.values()]
        floor.append(time.perf_counter() - t0)
    return snap, rows, floor


# -- the console --------------------------------------------------------------------------
async def settle(pilot: Pilot[int]) -> None:
    """Until the screen (whichever it is by then) has handled everything, then paint."""
    app = pilot.app
    calm = 0
    for _ in range(100):
        screen = app.screen
        await pilot._wait_for_screen()
        nodes = [app, *screen.walk_children(with_self=True)]
        quiet = all(node._message_queue.empty() for node in nodes)
        calm = calm + 1 if app.screen is screen and screen.is_mounted and quiet else 0
        if calm == 2:  # twice in a row: nothing was posted while we looked
            break
    app.screen._on_timer_update()


def key_event(name: str) -> events.Key:
    """The Key event a terminal sends for `name` (as Pilot.press builds it)."""
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(name))
    except KeyError:
        char = name if len(name) == 1 else None
    return events.Key(name, char)


async def key(pilot: Pilot[int], name: str, char: str | None = None) -> float:
    app = pilot.app
    t0 = time.perf_counter()
    event = key_event(name)
    event.set_sender(app)
    app.post_message(event)  # as the driver delivers it, minus the thread hop
    await settle(pilot)
    return time.perf_counter() - t0


KEYS: list[tuple[str, list[tuple[str, str | None]], list[tuple[str, str | None]]]] = [
    # (name, keys timed, keys to undo untimed)
    ("step (. : a tick + frame)", [("full_stop", ".")], []),
    ("cursor down", [("down", None)], []),
    ("page down", [("pagedown", None)], [("home", None)]),
    ("sort by next column (o)", [("o", "o")], []),
    ("reverse sort (O)", [("O", "O")], []),
    ("column set (c)", [("c", "c")], []),
    ("filter: type one letter", [("w", "w")], [("backspace", None)]),
    ("VM detail (enter)", [("enter", None)], [("escape", None)]),
    ("back from VM detail (esc)", [("escape", None)], [("enter", None)]),
    ("SLA screen (e)", [("e", "e")], [("escape", None)]),
    ("help (?)", [("question_mark", "?")], [("escape", None)]),
    ("place dialog (p)", [("p", "p")], [("escape", None)]),
    ("migrate dialog (g)", [("g", "g")], [("escape", None)]),
    ("shares dialog (s)", [("s", "s")], [("escape", None)]),
    ("side pane (v)", [("v", "v")], [("v", "v")]),
]
# Untimed keys before a row's repeats and after them: the filter row types into the
# filter field (a letter on the table is an action's key: `w` opens the swap dialog).
AROUND: dict[str, tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]] = {
    "filter: type one letter": ([("slash", "/")], [("escape", None)]),
    # Each escape leaves an open VM detail; the rows after start from the main screen.
    "back from VM detail (esc)": ([("enter", None)], [("escape", None)]),
}
DETAIL_TARGET = {"VM detail (enter)", "SLA screen (e)", "host detail (enter)"}


async def main_screen_up(pilot: Pilot[int]) -> None:
    """Until the main screen shows every VM (its first frame with the world in it)."""
    app = pilot.app
    n_vms = None
    while True:
        screen = app.screen
        if isinstance(screen, OverviewScreen) and screen.is_mounted:
            n_vms = n_vms or len(app.snapshot.vms)
            if screen.query_one(VMTable).row_count == n_vms:
                break
        await asyncio.sleep(0.002)
    await settle(pilot)


async def first_frames(spec: ScenarioSpec, size: tuple[int, int],
                       out: list[str]) -> tuple[Simulation, float]:
    """`overcommit play` on a scenario: the time from the console's start to its first
    frame (the loading screen) and to the main screen's first frame, the world built in
    the console's worker meanwhile. Returns the world and its build time."""
    built: dict[str, Any] = {}

    def build(progress: Any) -> Simulation:
        t0 = time.perf_counter()
        sim = Simulation.from_spec(spec, progress=progress)
        built["s"] = time.perf_counter() - t0
        return sim

    t0 = time.perf_counter()
    app = OvercommitApp(paused=True, briefing=False, build=build, title=spec.scenario.name)
    async with app.run_test(size=size) as pilot:
        while not (isinstance(app.screen, LoadingScreen) and app.screen.is_mounted):
            await asyncio.sleep(0.002)
        await settle(pilot)
        loading_s = time.perf_counter() - t0
        await main_screen_up(pilot)
        main_s = time.perf_counter() - t0
        sim = app.driver.sim
    out.append(row("first frame: the loading screen", [loading_s], 100))
    out.append(row("first frame: main screen (play)", [main_s], 5000))
    return sim, built["s"]


async def console_bench(sim: Simulation, size: tuple[int, int], repeats: int,
                        out: list[str]) -> None:
    t0 = time.perf_counter()
    app = OvercommitApp(sim, paused=True, briefing=False)
    async with app.run_test(size=size) as pilot:
        await main_screen_up(pilot)
        out.append(row("first frame: main, world built before", [time.perf_counter() - t0]))
        table = app.screen.query_one(VMTable)
        # Live frames: the engine ticks and snapshots as its worker would, then the UI.
        ticks, snaps, frames, rows_updated = [], [], [], []
        calls = {"n": 0}
        real_update = table.update_cell

        def counting_update(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            real_update(*args, **kwargs)

        table.update_cell = counting_update  # type: ignore[method-assign]
        for _ in range(repeats):
            t0 = time.perf_counter()
            evs = sim.step(1)
            ticks.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            message = EngineDriver.Stepped(app.driver.generation, sim.snapshot(), evs,
                                           read_live(sim))
            snaps.append(time.perf_counter() - t0)
            calls["n"] = 0
            t0 = time.perf_counter()
            app._absorb(message)
            app.refresh_views()
            await settle(pilot)
            frames.append(time.perf_counter() - t0)
            rows_updated.append(calls["n"])
        table.update_cell = real_update  # type: ignore[method-assign]
        out.append(row("engine tick (worker)", ticks))
        out.append(row("snapshot + live data (worker)", snaps))
        out.append(row("live frame (UI: absorb, refresh, paint)", frames, 50))
        n_vms = len(app.snapshot.vms)
        out.append(f"{'VM table cells updated per frame':<34} {statistics.fmean(rows_updated):8.1f}"
                   f" (of {n_vms} VMs x {len(table.columns)} columns; only rows on screen "
                   "that changed)")
        # Keys.
        for name, timed, undo in KEYS:
            before, after = AROUND.get(name, ([], []))
            for k, char in before:
                await key(pilot, k, char)
            samples = []
            for _ in range(repeats):
                elapsed = 0.0
                for k, char in timed:
                    elapsed += await key(pilot, k, char)
                samples.append(elapsed)
                for k, char in undo:
                    await key(pilot, k, char)
            for k, char in after:
                await key(pilot, k, char)
            target = 100.0
            out.append(row(name, samples, target))
        # Host detail: from the host list.
        samples = []
        for _ in range(repeats):
            hosts = app.screen.query_one("#hosts")
            hosts.focus()
            await settle(pilot)
            samples.append(await key(pilot, "enter"))
            await key(pilot, "escape")
        out.append(row("host detail (enter)", samples, 100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", choices=[*sorted(WORLDS), "tiny-1000"],
                        default="dc-100x1000",
                        help="tiny-1000: 100 hosts and 1,000 VMs of 64 KiB (the big world's "
                             "console load, built in a second)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", default="160x50", help="terminal size, COLSxROWS")
    parser.add_argument("--warmup", type=int, default=60, help="ticks before measuring")
    parser.add_argument("--skip-100k", action="store_true")
    args = parser.parse_args(argv)
    cols, rows_ = (int(x) for x in args.size.split("x"))

    out: list[str] = []
    if not args.skip_100k:
        sim = tiled_world(100)
        snap, rows, floor = time_snapshots(sim, args.repeats)
        out += [f"Snapshot of {len(sim.world.state.vms):,} tiny VMs "
                f"({len(sim.world.state.hosts)} hosts)", HEADER,
                row("snapshot (column-wise)", snap, 100),
                row("... and every VMView row built, freed", rows),
                row("floor: copy the per-VM arrays", floor), ""]
        del sim

    spec = parse_scenario(TINY) if args.world == "tiny-1000" else \
        load_scenario(WORLDS[args.world])
    first: list[str] = []
    sim, build_s = asyncio.run(first_frames(spec, (cols, rows_), first))
    t0 = time.perf_counter()
    sim.step(args.warmup)
    warm_s = time.perf_counter() - t0
    snap, rows, floor = time_snapshots(sim, args.repeats)
    state = sim.world.state
    out += [f"World {args.world}: {len(state.hosts)} hosts, {len(state.vms):,} VMs; built in "
            f"{build_s:.1f} s, {args.warmup} warm-up ticks in {warm_s:.1f} s; "
            f"terminal {cols}x{rows_}", HEADER, *first,
            row("snapshot (column-wise)", snap),
            row("... and every VMView row built, freed", rows),
            row("floor: copy the per-VM arrays", floor)]
    rss_start = rss_mib()
    pauses = GCPauses()
    gc.callbacks.append(pauses)
    asyncio.run(console_bench(sim, (cols, rows_), args.repeats, out))
    gc.callbacks.remove(pauses)
    out.append(pauses.line())
    out.append(f"peak RSS {rss_start:,.0f} MiB before the console, {rss_mib():,.0f} MiB after")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
