"""`overcommit sweep SWEEP.toml`: a grid of scenario variants x seeds, run on Dask.

A sweep file names a scenario, a grid of `--set` overrides, seeds, ticks and the report
fields to collect (app/sweep_run.py). Runs execute on Dask distributed: a LocalCluster
with one worker process per core unless `--scheduler` names an existing cluster (`--workers
0` runs them here, one after another, without Dask). Each finished run is appended to
OUT/runs.csv at once, so an interrupted sweep loses nothing and `--resume` runs only what
is missing or failed. At the end: runs.csv rewritten in run order (and runs.parquet with
pyarrow), the summary over seeds (app/sweep_summary.py) printed, written and plotted.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.sweep_run import parse_metric, run_point
from app.sweep_table import Results, Value, cell
from engine import InputError, parse_scenario
from engine.scenario import apply_overrides, format_loc

SUFFIX = ".sweep.toml"
DASK_HINT = "pip install 'overcommit[cluster]' (or --workers 0 to run them in this process)"


class SweepSpec(BaseModel):
    """The [sweep] table of a sweep file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scenario: str  # relative to the sweep file, or a bundled name
    name: str = ""
    description: str = ""
    seeds: list[int] | int = Field(default=1, description="seeds, or how many from 1")
    ticks: int | None = Field(default=None, ge=1)  # default: the scenario's duration
    set: list[str] = Field(default_factory=list)  # overrides for every run
    grid: dict[str, list[Value]] = Field(default_factory=dict)
    metrics: dict[str, str] | list[str]
    series: str | None = None  # collect each run's time series at this interval
    series_format: Literal["csv", "parquet"] = "csv"
    plot_x: str | None = None  # the grid key on the plots' x axis (default: the first)

    @field_validator("grid")
    @classmethod
    def _values(cls, grid: dict[str, list[Value]]) -> dict[str, list[Value]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"{key}: expected a non-empty list of values")
            if len(set(map(cell, values))) != len(values):
                raise ValueError(f"{key}: a value is listed twice")
        return grid

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int] | int) -> list[int] | int:
        if isinstance(seeds, int) and seeds < 1 or isinstance(seeds, list) and (
                not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
            raise ValueError("expected a count >= 1 or a list of distinct seeds >= 0")
        return seeds


@dataclass(frozen=True)
class Point:
    index: int
    params: dict[str, Value]
    seed: int

    def key(self) -> tuple[str, ...]:
        return (*map(cell, self.params.values()), str(self.seed))

    def label(self) -> str:
        return ", ".join([f"{k}={cell(v)}" for k, v in self.params.items()] +
                         [f"seed={self.seed}"])


@dataclass(frozen=True)
class Sweep:
    path: Path
    spec: SweepSpec
    scenario: Path
    data: dict[str, Any]  # the scenario file's TOML, sent to the workers
    metrics: dict[str, str]
    points: tuple[Point, ...]

    @property
    def name(self) -> str:
        return self.spec.name or self.path.name.removesuffix(SUFFIX).removesuffix(".toml")

    def columns(self) -> list[str]:
        series = ["series"] if self.spec.series else []
        return ["run", *self.spec.grid, "seed", "status", "error", *self.metrics, "ticks",
                "wall_s", *series]

    def manifest(self) -> dict[str, Any]:
        """What makes two runs of a point the same run (grid and seeds may grow)."""
        return {"scenario": str(self.scenario.resolve()), "set": self.spec.set,
                "ticks": self.spec.ticks, "metrics": self.metrics, "series": self.spec.series,
                "series_format": self.spec.series_format}

    def task(self, point: Point) -> dict[str, Any]:
        from app.series import parse_every

        sets = [*self.spec.set, *(f"{k}={toml_value(v)}" for k, v in point.params.items())]
        every = parse_every(self.spec.series, str(self.path)) if self.spec.series else None
        return {"index": point.index, "source": str(self.scenario), "data": self.data,
                "sets": sets, "seed": point.seed, "ticks": self.spec.ticks,
                "metrics": self.metrics, "series_every_s": every,
                "series_parquet": self.spec.series_format == "parquet"}


def toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def is_sweep_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def load_sweep(path: Path) -> Sweep:
    """A sweep file, checked: its fields, scenario, metric paths and plot axis."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(str(path), "(file)", f"cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(path), "(syntax)", f"not valid TOML: {err}") from None
    if set(doc) != {"sweep"}:
        raise InputError(str(path), "(top level)", "expected only a [sweep] table "
                         f"(with grid and metrics), got {', '.join(sorted(doc)) or 'nothing'}")
    try:
        spec = SweepSpec.model_validate(doc["sweep"])
    except ValidationError as err:
        detail = err.errors(include_url=False)[0]
        msg = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        raise InputError(str(path), "sweep." + format_loc(detail["loc"]), msg) from None
    scenario = _scenario_path(path, spec.scenario)
    try:
        data = tomllib.loads(scenario.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InputError(str(scenario), "(file)", f"cannot read it as TOML: {err}") from None
    metrics = spec.metrics if isinstance(spec.metrics, dict) else {m: m for m in spec.metrics}
    if not metrics:
        raise InputError(str(path), "sweep.metrics", "expected at least one report path")
    for name, text in metrics.items():
        parse_metric(text, str(path), f"sweep.metrics.{name}")
    clash = set(metrics) & {"run", "seed", "status", "error", "ticks", "wall_s", "series",
                            *spec.grid}
    if clash:
        raise InputError(str(path), "sweep.metrics", f"{sorted(clash)[0]!r} is already a "
                         "column of the table; name the metric otherwise")
    if spec.plot_x is not None and spec.plot_x not in spec.grid:
        raise InputError(str(path), "sweep.plot_x", f"expected one of the grid's keys "
                         f"({', '.join(spec.grid) or 'none'}), got {spec.plot_x!r}")
    if spec.series is not None:
        from app.series import parse_every

        parse_every(spec.series, str(path))
    seeds = spec.seeds if isinstance(spec.seeds, list) else list(range(1, spec.seeds + 1))
    combos = list(product(*spec.grid.values())) if spec.grid else [()]
    points = tuple(Point(i * len(seeds) + j, dict(zip(spec.grid, combo, strict=True)), seed)
                   for i, combo in enumerate(combos) for j, seed in enumerate(seeds))
    return Sweep(path, spec, scenario, data, metrics, points)


def validate_sweep(path: Path) -> str:
    """`overcommit validate` of a sweep file: the file and every point's scenario (parsed
    with its overrides, not built). Returns what it holds; raises the first InputError."""
    sweep = load_sweep(path)
    for point in {p.key()[:-1]: p for p in sweep.points}.values():
        task = sweep.task(point)
        source = f"{sweep.scenario} ({point.label().rsplit(', seed=', 1)[0] or 'as is'})"
        parse_scenario(apply_overrides(copy.deepcopy(sweep.data), task["sets"], source), source)
    combos = len(sweep.points) // len({p.seed for p in sweep.points})
    return f"sweep of {len(sweep.points)} runs: {combos} points x " \
           f"{len(sweep.points) // combos} seeds of {sweep.scenario.name}"


def _scenario_path(path: Path, name: str) -> Path:
    beside = path.parent / name
    if beside.is_file():
        return beside
    from app.cli_support import resolve

    try:
        return resolve(name)
    except InputError:
        raise InputError(str(path), "sweep.scenario", f"no scenario {name!r} beside the sweep "
                         "file nor among the bundled ones") from None


# -- running -------------------------------------------------------------------------------
class MissingDask(Exception):
    pass


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a new LocalCluster (closed after)."""
    if workers == 0 and scheduler is None:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MissingDask() from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as err:
            raise InputError(scheduler, "--scheduler", f"cannot connect: {err}") from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask sets MALLOC_TRIM_THRESHOLD_ for its workers, which also pins glibc's mmap
    # threshold: every large numpy temporary of a tick is then mapped and faulted in anew,
    # and runs took twice as long. The engine's memory is steady: keep glibc's default.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def results(tasks: list[dict[str, Any]], client: Any) -> Iterator[dict[str, Any]]:
    """Each task's result as it finishes: on the cluster, or here one by one."""
    if client is None:
        for task in tasks:
            yield run_point(task)
        return
    from dask.distributed import as_completed

    futures = {client.submit(run_point, task, pure=False): task for task in tasks}
    for future in as_completed(futures):
        if future.status == "finished":
            yield future.result()
            continue
        err = future.exception()  # the worker died (out of memory?) or was lost
        task = futures[future]
        yield {"index": task["index"], "status": "failed", "metrics": {}, "ticks": task["ticks"],
               "error": f"{type(err).__name__}: {err}", "wall_s": 0.0, "series": None}
        future.release()


def run_sweep(sweep: Sweep, out: Path, console: Console, resume: bool = False,
              scheduler: str | None = None, workers: int = 0) -> Results:
    """Runs the sweep's missing points (on Dask unless `workers` is 0 and there is no
    scheduler); returns the table, old rows and new."""
    table = Results(sweep, out, resume)
    todo = [p for p in sweep.points if not table.done(p)]
    skipped = len(sweep.points) - len(todo)
    if skipped:
        console.print(f"--resume: {skipped} of {len(sweep.points)} runs already in {table.csv}",
                      markup=False, soft_wrap=True)
    if todo:  # nothing to run: no cluster to start
        with dask_client(scheduler, workers) as client:
            _run_points(sweep, table, todo, client, console)
    return table


def _run_points(sweep: Sweep, table: Results, todo: list[Point], client: Any,
                console: Console) -> None:
    by_index = {p.index: p for p in todo}
    tasks = [sweep.task(p) for p in todo]
    with _progress(console, len(tasks)) as advance:
        for result in results(tasks, client):
            point = by_index[result["index"]]
            row = table.add(point, result)
            advance(point, row)


@contextmanager
def _progress(console: Console, total: int) -> Iterator[Any]:
    failed = 0

    def line(point: Point, row: dict[str, str]) -> None:
        nonlocal failed
        if row["status"] != "ok":
            failed += 1
            console.print(Text.assemble(("failed ", "red"), f"run {point.index} "
                                        f"({point.label()}): {row['error']}"), soft_wrap=True)
        elif not console.is_terminal:
            console.print(f"ok     run {point.index} ({point.label()}) in {row['wall_s']} s",
                          markup=False, soft_wrap=True)

    if not console.is_terminal or total == 0:
        yield line
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("runs", total=total, failed=0)

        def advance(point: Point, row: dict[str, str]) -> None:
            line(point, row)
            bar.update(task, advance=1, failed=failed)

        yield advance


def print_failures(console: Console, table: Results) -> int:
    failed = [r for r in table.ordered() if r["status"] != "ok"]
    if failed:
        grid = list(table.sweep.spec.grid)
        view = Table(*grid, "seed", "error", title=f"{len(failed)} failed runs")
        for row in failed:
            view.add_row(*(Text(row[k]) for k in grid), row["seed"], Text(row["error"]))
        console.print(view)
    return len(failed)


# -- the command ---------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from app.cli_support import resolve, std_console
    from app.sweep_summary import report_summary

    path = resolve(args.file)
    sweep = load_sweep(path)
    out = Path(args.out) if args.out else Path("sweeps") / sweep.name.replace(" ", "-")
    console = std_console()
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    if workers < 0:
        raise InputError(str(workers), "--workers", "expected 0 or more worker processes")
    where = args.scheduler or ("this process" if workers == 0 else
                               f"a local Dask cluster of {workers} worker processes")
    seeds = len({p.seed for p in sweep.points})
    console.print(f"{sweep.name}: {len(sweep.points)} runs ({len(sweep.points) // seeds} "
                  f"points x {seeds} seeds) on {where}", markup=False)
    try:
        table = run_sweep(sweep, out, console, args.resume, args.scheduler, workers)
    except MissingDask:
        console.print(f"error: running a sweep on Dask needs it: {DASK_HINT}", markup=False)
        return 1
    except KeyboardInterrupt:
        console.print(f"interrupted; finished runs are in {out / 'runs.csv'}; --resume "
                      "continues", markup=False)
        return 130
    parquet = table.finish()
    failed = print_failures(console, table)
    report_summary(console, sweep, table.ordered(), out, plot=not args.no_plot)
    written = ", ".join(str(p) for p in (table.csv, parquet) if p is not None)
    console.print(f"runs: {written}", markup=False)
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    """Registers `overcommit sweep` on the CLI's subcommands."""
    parser = sub.add_parser(
        "sweep", help="run a grid of scenario variants x seeds on Dask",
        description="Run every point of a sweep file (a scenario, a grid of --set overrides, "
                    "seeds, ticks and the report fields to collect) on a local Dask cluster "
                    "or an existing one; write one row per run and summarise over seeds. "
                    "Exit status 1 when a run failed.")
    parser.add_argument("file", metavar="SWEEP.toml")
    parser.add_argument("--out", metavar="DIR",
                        help="where the tables and plots go (default: sweeps/NAME)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in DIR/runs.csv; run the missing and "
                             "failed ones")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: one per core; 0 runs the "
                             "sweep in this process without Dask)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="an existing Dask scheduler, e.g. tcp://HOST:8786 "
                             "(dask-jobqueue, dask-kubernetes)")
    parser.add_argument("--no-plot", action="store_true", help="no SVG of the summary")
    parser.set_defaults(func=cmd_sweep)
