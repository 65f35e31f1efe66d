"""`overcommit reproduce`: run the paper scenarios and compare them with the published values.

Every file in scenarios/paper/ lists, in its `[reproduce]` section, the numbers a paper
published and the tolerance a reproduction must meet. This module runs each experiment
headless, computes those metrics (one small function per experiment, registered under
the scenario's file stem) and prints one table of published vs simulated values. Where
the paper's figure is a curve, the experiment also hands it to its Runner as a chart
(app/plots.py): drawn after the table, saved next to the report.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from app import plots
from app.cli_support import SCENARIOS, check_outputs, std_console
from app.comparison import Metrics, compare, print_table
from app.plots import Chart
from app.savefile import _atomic_write
from app.summary import say
from engine import InputError, ScenarioSpec, Simulation, Snapshot, load_scenario

PAPER = SCENARIOS / "paper"
MiB = 1024**2
CHUNK = 50  # ticks per step between progress updates: smooth bar, negligible overhead
# The experiments say how long to run and when to measure in simulated seconds, not ticks:
# a scenario copied into --dir with another tick length is measured over the same time.
# A piped or logged table must not wrap its rows; a terminal keeps its own width.
PLAIN_WIDTH = 132


# -- running an experiment ----------------------------------------------------------------
class Runner:
    """Builds simulations of one scenario and steps them, reporting the ticks it spends;
    keeps the charts the experiment draws."""

    def __init__(self, path: Path, progress: Callable[[int], None], quick: bool = False
                 ) -> None:
        self.path = path
        self.progress = progress
        self.quick = quick  # --quick: an experiment may draw its curve from fewer runs
        self.stepped = 0
        self.metrics: Metrics = {}  # what the experiment computed
        self.charts: list[Chart] = []  # the curves it drew

    def load(self, *overrides: str) -> Simulation:
        return Simulation.from_spec(load_scenario(self.path, overrides))

    def step(self, sim: Simulation, ticks: int) -> None:
        for done in range(0, ticks, CHUNK):
            n = min(CHUNK, ticks - done)
            sim.step(n)
            self.stepped += n
            self.progress(n)

    def to_end(self, sim: Simulation) -> None:
        self.step(sim, duration_ticks(sim.spec, self.path) - sim.tick)

    def ticks(self, sim: Simulation, seconds: float) -> int:
        """The ticks that make `seconds` of simulated time (at least one)."""
        return max(1, round(seconds / sim.spec.scenario.tick_s))

    def step_to(self, sim: Simulation, time_s: float) -> None:
        """Steps until the simulated clock reads `time_s` (to the nearest tick)."""
        self.step(sim, round(time_s / sim.spec.scenario.tick_s) - sim.tick)

    def trace(self, sim: Simulation, ticks: int, measure: Callable[[], float]) -> list[float]:
        """Steps `ticks` one at a time: `measure()` after each (a curve over time)."""
        values = []
        for _ in range(ticks):
            self.step(sim, 1)
            values.append(measure())
        return values

    def file_reads_per_s(self, sim: Simulation, start_s: float, end_s: float
                         ) -> dict[str, float]:
        """Steps to simulated time `start_s`, then to `end_s`: each VM's file reads per
        second in between. A closed-loop benchmark's throughput, as dbench reports it."""
        self.step_to(sim, start_s)
        vms = sim.world.state.vms
        before, t0 = vms["file_reads"].astype(np.int64), sim.world.state.time_s
        self.step_to(sim, end_s)
        rates = (vms["file_reads"].astype(np.int64) - before) / (sim.world.state.time_s - t0)
        return dict(zip(vms.ids, rates.tolist(), strict=True))


@dataclass(frozen=True)
class Experiment:
    compute: Callable[[Runner], Metrics]
    # All the simulated time it steps, for the progress bar; None: the duration.
    seconds: float | None
    slow: bool = False  # several seconds or more: left out by --quick
    quick_seconds: float | None = None  # its time under --quick, when it then runs less
    extra_ticks: int = 0  # ticks it steps beyond `seconds` (a reading one tick late)

    def ticks(self, spec: ScenarioSpec, path: Path, quick: bool) -> int:
        """The progress bar's length: the ticks it steps at the scenario's tick length."""
        seconds = self.quick_seconds if quick and self.quick_seconds is not None else (
            self.seconds)
        if seconds is None:
            return duration_ticks(spec, path)
        return round(seconds / spec.scenario.tick_s) + self.extra_ticks


def duration_ticks(spec: ScenarioSpec, path: Path) -> int:
    meta = spec.scenario
    if meta.duration is None:
        raise InputError(str(path), "scenario.duration", "a paper experiment runs for its "
                         "duration; give one")
    return round(meta.duration / meta.tick_s)


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(stem: str, seconds: float | None = None, slow: bool = False,
               quick_seconds: float | None = None, extra_ticks: int = 0
               ) -> Callable[[Callable[[Runner], Metrics]], Callable[[Runner], Metrics]]:
    def register(compute: Callable[[Runner], Metrics]) -> Callable[[Runner], Metrics]:
        EXPERIMENTS[stem] = Experiment(compute, seconds, slow, quick_seconds, extra_ticks)
        return compute
    return register


# -- the experiments ----------------------------------------------------------------------
def _sharing(snap: Snapshot, host_id: str) -> tuple[float, float]:
    """Shared and reclaimed fractions of the configured memory of a host's VMs (Fig. 4, 5)."""
    host = snap.host(host_id)
    total = sum(vm.configured_bytes for vm in snap.vms if vm.host == host_id)
    return host.guest_shared_bytes / total, host.shared_saved_bytes / total


FIG4_S = 1800.0  # the paper's 30 minutes
# Each count costs about the same (~1.5 s: per-tick work, not pages, dominates), so the
# curve takes six runs and --quick only the two the metrics need.
FIG4_COUNTS = (1, 2, 4, 6, 8, 10)
FIG4_QUICK_COUNTS = (1, 10)


@experiment("esx-fig4-sharing", seconds=len(FIG4_COUNTS) * FIG4_S,
            quick_seconds=len(FIG4_QUICK_COUNTS) * FIG4_S)
def esx_fig4_sharing(run: Runner) -> Metrics:
    snaps: dict[int, Snapshot] = {}
    for count in FIG4_QUICK_COUNTS if run.quick else FIG4_COUNTS:
        sim = run.load(f"vm_group[0].count={count}")
        run.step_to(sim, FIG4_S)
        snaps[count] = sim.snapshot()
    run.charts.append(plots.sharing_chart(snaps, "esx"))
    shared, reclaimed = _sharing(snaps[10], "esx")
    host = snaps[1].host("esx")
    # Every zero page but the one they all map to is a page saved.
    zero_saved = max(host.zero_shared_bytes - sim.spec.scenario.page_size, 0)
    return {"shared_fraction_10vm": shared, "reclaimed_fraction_10vm": reclaimed,
            "reclaimed_mb_1vm": host.shared_saved_bytes / MiB,
            "zero_share_of_reclaimed_1vm": zero_saved / max(host.shared_saved_bytes, 1)}


@experiment("esx-fig5-deployments", slow=True)
def esx_fig5_deployments(run: Runner) -> Metrics:
    sim = run.load()
    run.to_end(sim)  # 3 h at 10 s ticks: long enough for the scan to cover memory
    snap = sim.snapshot()
    metrics: Metrics = {}
    for host in snap.hosts:
        shared, reclaimed = _sharing(snap, host.id)
        metrics[f"shared_fraction_{host.id}"] = shared
        metrics[f"reclaimed_fraction_{host.id}"] = reclaimed
    return metrics


@experiment("esx-fig7-idle-tax", slow=True)
def esx_fig7_idle_tax(run: Runner) -> Metrics:
    sim = run.load()
    # Minutes 20-30 (tax 0, settled) against minutes 50-60 (tax 75 % since minute 30).
    tax0 = run.file_reads_per_s(sim, 20 * 60, 30 * 60)["vm2-dbench"]
    snap = sim.snapshot()
    tax75 = run.file_reads_per_s(sim, 50 * 60, 60 * 60)["vm2-dbench"]
    return {"vm1_mb_tax0": snap.vm("vm1-idle").resident_bytes / MiB,
            "vm2_mb_tax0": snap.vm("vm2-dbench").resident_bytes / MiB,
            "throughput_gain": tax75 / tax0 - 1}


@experiment("esx-fig2-balloon", slow=True)
def esx_fig2_balloon(run: Runner) -> Metrics:
    sim = run.load()
    # The second half (minutes 10-20): the balloons have inflated and the page caches
    # have filled.
    reads = run.file_reads_per_s(sim, 600, 1200)
    return {f"throughput_loss_{x}": 1 - reads[f"bal{x}"] / reads[f"cfg{x}"]
            for x in (128, 160, 192, 224)}


FIG6_PERIODS = 80  # 40 minutes of 30 s sampling periods (the scenario's sample_period)
FIG6_PERIOD_S = 30.0


@experiment("esx-fig6-sampling", seconds=FIG6_PERIOD_S * FIG6_PERIODS, extra_ticks=1)
def esx_fig6_sampling(run: Runner) -> Metrics:
    sim = run.load()
    vms = sim.world.state.vms
    estimate, truth, minutes = [], [], []
    # Period p is ticks (p - 1) n + 1 ... p n, closed by the sampling at tick p n
    # (engine/memory/recency.py): tick 0 first, then n ticks a period, each read as it ends.
    period = run.ticks(sim, sim.spec.policy.memory.sample_period)
    run.step(sim, 1)
    for _ in range(FIG6_PERIODS):
        run.step(sim, period)
        estimate.append(float(vms["active_estimate"][0]))
        truth.append(float(vms["active_true"][0]))
        minutes.append(sim.world.state.time_s / 60)
    run.charts.append(plots.sampling_chart(minutes, estimate, truth,
                                           sim.snapshot().vms[0].configured_bytes))
    up, down = 20, 50  # the first full period after the steps at 10 and 25 minutes
    # Periods counted as the paper does ("within one or two periods"): reaching it in that
    # first full period is 1. The engine test's `rise <= 1` counts from 0, the same claim.
    rise = next((i for i in range(up, down) if estimate[i] >= 0.9 * truth[i]), down)
    decay = next((i for i in range(down, FIG6_PERIODS) if estimate[i] <= truth[i] + 0.1),
                 FIG6_PERIODS)
    return {"periods_to_rise": rise - up + 1, "periods_to_decay": decay - down + 1}


def _migration(report: dict[str, Any], vm: str | None = None) -> dict[str, Any]:
    """The (first) migration of `vm`, or the first migration, in `sim.report()`."""
    return next(m for m in report["migrations"] if vm is None or m["vm"] == vm)


def _clark_metrics(run: Runner, sim: Simulation, *names: str) -> Metrics:
    """The named ones of Clark et al.'s migration metrics, in the units they published;
    draws the migration's rounds, rate and the VM's writable working set."""
    state, report = sim.world.state, sim.report()
    run.charts += plots.migration_charts(sim.spec.scenario.name, report, state.page_size,
                                         state.time_s)
    m = _migration(report)
    every = {"downtime_ms": m["downtime_s"] * 1000, "total_time_s": m["total_time_s"],
             "transferred_mb": m["transferred_bytes"] / 1e6}
    return {name: every[name] for name in names}


@experiment("clark-specweb99")
def clark_specweb99(run: Runner) -> Metrics:
    sim = run.load()
    run.to_end(sim)
    return _clark_metrics(run, sim, "downtime_ms", "total_time_s", "transferred_mb")


@experiment("clark-quake3")
def clark_quake3(run: Runner) -> Metrics:
    sim = run.load()
    run.to_end(sim)
    return _clark_metrics(run, sim, "downtime_ms")


@experiment("clark-webserver")
def clark_webserver(run: Runner) -> Metrics:
    sim = run.load()

    def mbit() -> float:
        return sim.snapshot().vm("apache").net_bytes_per_s * 8 / 1e6

    # Every tick, for Clark's Fig. 8: throughput before, during and after the migration.
    throughput = run.trace(sim, duration_ticks(sim.spec, run.path), mbit)
    run.charts.append(plots.throughput_chart(throughput, sim.spec.scenario.tick_s,
                                             _migration(sim.report())))

    def at(time_s: float) -> float:  # the throughput in the tick that ends at time_s
        return throughput[run.ticks(sim, time_s) - 1]

    return {"throughput_before_mbit": at(15.0),  # the migration starts at 20 s
            "throughput_first_round_mbit": at(30.0),  # 10 s into the first round
            **_clark_metrics(run, sim, "downtime_ms")}


@experiment("postcopy-vs-precopy")
def postcopy_vs_precopy(run: Runner) -> Metrics:
    sim = run.load()
    run.to_end(sim)
    report = sim.report()
    run.charts += plots.postcopy_charts(report, sim.world.state.page_size,
                                        sim.world.state.time_s)
    post = _migration(report, "post")
    pages = sim.snapshot().vm("post").configured_bytes // sim.world.state.page_size
    faults = post["minor_faults"] + post["network_faults"]
    return {"postcopy_pages_per_page": post["pages_sent"] / pages,
            "prepaging_minor_share": post["minor_faults"] / faults if faults else 0.0}


# -- the command --------------------------------------------------------------------------
def _scenarios(folder: Path, only: str | None) -> list[tuple[Path, ScenarioSpec]]:
    if not folder.is_dir():
        raise InputError(str(folder), "--dir", "not a folder of scenarios")
    paths = sorted(p for p in folder.glob("*.toml") if only is None or only in p.stem)
    if not paths:
        what = f"whose name contains {only!r}" if only else "at all"
        raise InputError(str(folder), "--only", f"no scenario {what}; expected one of "
                         f"{', '.join(p.stem for p in sorted(folder.glob('*.toml')))}")
    # Every file is validated before the first run: bad input fails in a second, not after
    # minutes of simulation.
    return [(p, load_scenario(p)) for p in paths]


@dataclass(frozen=True)
class Job:
    stem: str
    path: Path
    experiment: Experiment
    ticks: int  # the bar's length
    quick: bool


def _run_all(console: Console, jobs: list[Job]) -> dict[str, Runner]:
    runs: dict[str, Runner] = {}
    if not console.is_terminal:
        for job in jobs:
            say(console, f"{job.stem}: running {job.ticks:,} ticks")
            runs[job.stem] = _run_one(console, job, lambda n: None)
        return runs
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    width = max(len(job.stem) for job in jobs) if jobs else 0
    with Progress(TextColumn(f"{{task.description:<{width}}}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("ticks"), console=console,
                  transient=True) as bar:
        for job in jobs:
            task = bar.add_task(job.stem, total=job.ticks)
            runs[job.stem] = _run_one(console, job, partial(bar.advance, task))
            bar.remove_task(task)
    return runs


def _run_one(console: Console, job: Job, progress: Callable[[int], None]) -> Runner:
    """The experiment's run: its metrics and the charts it drew."""
    start = time.perf_counter()
    run = Runner(job.path, progress, job.quick)
    run.metrics = job.experiment.compute(run)
    say(console, f"{job.stem}: {run.stepped:,} ticks in {time.perf_counter() - start:.1f}s")
    return run


def cmd_reproduce(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if args.report:
        check_outputs(folder, args.report, None)
    console = std_console()
    if not console.is_terminal:
        console.width = max(console.width, PLAIN_WIDTH)
    compared, jobs, skipped = [], [], []
    for path, spec in _scenarios(folder, args.only):
        exp = EXPERIMENTS.get(path.stem)
        if spec.reproduce is None:
            skipped.append(f"{path.stem} (no [reproduce] section)")
        elif args.quick and exp is not None and exp.slow:
            skipped.append(f"{path.stem} (--quick)")
        else:
            # Without a registered computation its values show as "not computed" and fail.
            compared.append((path.stem, spec))
            if exp is not None:
                jobs.append(Job(path.stem, path, exp, exp.ticks(spec, path, args.quick),
                                args.quick))
    runs = _run_all(console, jobs)
    charts = {stem: run.charts for stem, run in runs.items() if run.charts}
    rows = [row for stem, spec in compared
            for row in compare(stem, spec, runs[stem].metrics if stem in runs else {})]
    # The report first: a failure while printing must not cost the results.
    figures: dict[str, list[str]] = {}
    if args.report:
        figures = plots.save_figures(console, Path(args.report), charts)
        # Each row names its experiment's figure files (next to the report).
        text = json.dumps([{**row.as_json(), "figures": figures.get(row.experiment, [])}
                           for row in rows], indent=2) + "\n"
        try:
            _atomic_write(Path(args.report), text.encode())
        except OSError as err:
            raise InputError(args.report, "--report", f"cannot write: {err.strerror}") from None
    if rows:
        print_table(console, rows)
    if args.plots or (args.plots is None and console.is_terminal):
        plots.draw(console, charts)
    failed = sum(not row.holds for row in rows)
    say(console, f"{len(rows) - failed} of {len(rows)} published values hold"
                  + (f"; {failed} fail" if failed else ""))
    if skipped:
        say(console, f"skipped: {', '.join(skipped)}")
    if args.report:
        say(console, f"report: {args.report}")
    if figures:
        say(console, "figures: " + ", ".join(str(Path(args.report).with_name(name))
                                              for names in figures.values() for name in names))
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    """Registers `overcommit reproduce` on the CLI's subcommands."""
    parser = sub.add_parser(
        "reproduce", help="run the paper experiments and compare with the published values",
        description="Run every scenario in scenarios/paper/, compute the metrics its "
                    "[reproduce] section lists and print published vs simulated values. "
                    "Exit status 0 when every published value holds, 1 when one fails.")
    parser.add_argument("--only", metavar="NAME",
                        help="only the scenarios whose file name contains NAME (e.g. fig6)")
    parser.add_argument("--report", metavar="FILE",
                        help="also write the table as JSON, one object per row, and the "
                             "figures next to it (out/r.json: out/r-esx-fig6-sampling.svg...; "
                             "text files without pip install 'overcommit[plots]')")
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None,
                        help="draw the curves (Fig. 4, Fig. 6, the migrations' rounds and "
                             "working sets) after the table: --plots always, --no-plots "
                             "never; default: when the output is a terminal")
    parser.add_argument("--quick", action="store_true",
                        help="leave out the slowest experiments (" + ", ".join(
                            sorted(stem for stem, exp in EXPERIMENTS.items() if exp.slow))
                        + ") and draw Fig. 4 from 1 and 10 VMs only")
    parser.add_argument("--dir", default=str(PAPER), metavar="DIR",
                        help="the folder of scenarios to run (default: the bundled "
                             "scenarios/paper); a file's name picks its experiment")
    parser.set_defaults(func=cmd_reproduce)
