"""The `overcommit` command line: play, run headless, validate and list scenarios.

Bad input (a scenario, save or command) is reported on one line with exit status 2 and no
traceback; internal bugs keep their traceback (exit 1) so they get reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.campaign_cli import add_parser as add_campaign
from app.cli_support import (  # noqa: F401  (ROOT, SCENARIOS: part of this module's API)
    DEFAULT_SCENARIO,
    ROOT,
    SCENARIOS,
    check_outputs,
    err_console,
    resolve,
    std_console,
)
from app.reproduce import add_parser as add_reproduce
from app.savefile import _atomic_write, is_save_file, read_save, write_save
from app.series import Stepper, add_series_options, open_series
from app.serve import add_parser as add_serve
from app.summary import (  # noqa: F401  (EventLog, clock, LOG_LIMIT: part of this module's API)
    LOG_LIMIT,
    EventLog,
    clock,
    objectives_failed,
    print_migrations,
    print_summary,
    say,
)
from app.sweep import add_parser as add_sweep
from app.sweep import is_sweep_file, validate_sweep
from engine import InputError, Simulation, kernels, load_scenario, parallel
from engine.ranges import MAX_SEED, MAX_TICKS
from engine.text import one_line
from engine.units import format_seconds

BuildProgress = Callable[[int, int], None]  # (VMs powered on, of) as the world builds

# Exit statuses (README "Exit codes"): 1 is Python's own, for a bug, with its traceback.
EXIT_OK, EXIT_BAD_INPUT, EXIT_OBJECTIVES_FAILED = 0, 2, 3


# -- helpers ------------------------------------------------------------------------------
def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _bounded(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected an integer from 0 to {limit:,}, got "
                                             f"{one_line(text)[:40]}")
        return value
    return parse


def _load(path: Path, seed: int | None = None, check: bool = False,
          overrides: Sequence[str] = (), progress: BuildProgress | None = None) -> Simulation:
    if is_save_file(path):
        if seed is not None:
            raise InputError(str(path), "--seed", "a save continues its own random streams; "
                             "leave out --seed")
        if overrides:
            raise InputError(str(path), "--set", "a save cannot be changed; give a scenario")
        return read_save(path, check=check)
    return Simulation.from_spec(load_scenario(path, overrides), seed=seed, check=check,
                                progress=progress)


def _load_with_bar(source: Path, args: argparse.Namespace) -> Simulation:
    """Build the world; on a terminal, with a bar on stderr following the VMs powered on
    (a big data center takes seconds). Not on a terminal: nothing extra is printed."""
    err = err_console()
    if not err.is_terminal:
        return _load(source, seed=args.seed, check=args.check, overrides=args.set)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    # markup=False: a file name is not rich markup.
    with Progress(TextColumn("building {task.description}", markup=False), BarColumn(),
                  MofNCompleteColumn(), TextColumn("VMs powered on"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        # No total until the engine gives one: a save (no VMs to power on) pulses.
        task = bar.add_task(source.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return _load(source, seed=args.seed, check=args.check, overrides=args.set,
                     progress=progress)


def _write_report(path: Path, report: dict[str, Any]) -> None:
    try:
        _atomic_write(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as err:
        raise InputError(str(path), "--report", f"cannot write: {err.strerror}") from None


# -- play ---------------------------------------------------------------------------------
def cmd_play(args: argparse.Namespace) -> int:
    path = resolve(args.file) if args.file else DEFAULT_SCENARIO
    if not path.is_file():
        raise InputError(str(path), "(file)", "no such file")
    if not is_save_file(path):
        load_scenario(path)  # report a bad file here, before the console takes the screen
    try:
        from app.tui import run_console
    except ImportError as err:
        print(f"overcommit: the interactive console is not available yet ({err}); "
              "try `overcommit run SCENARIO`", file=sys.stderr)
        return 1
    return int(run_console(path))


# -- run ----------------------------------------------------------------------------------
def _ticks_to_run(sim: Simulation, requested: int | None, source: str) -> int:
    if requested is not None:
        if sim.tick + requested > MAX_TICKS:
            raise InputError(source, "--ticks", f"the run would end past tick {MAX_TICKS:,} "
                             f"(it is at tick {sim.tick:,})")
        return requested
    meta = sim.spec.scenario
    if meta.duration is None:
        raise InputError(source, "scenario.duration", "the scenario has no duration; "
                         "give --ticks N")
    remaining = round(meta.duration / meta.tick_s) - sim.tick
    if remaining <= 0:
        raise InputError(source, "scenario.duration", f"already at its duration "
                         f"({format_seconds(meta.duration)}); give --ticks N to go on")
    return remaining


def _advance(sim: Simulation, ticks: int, log: EventLog,
             progress: Callable[[int], None], step: Stepper | None = None) -> float:
    """Step in chunks so the bar moves; returns wall seconds spent in the engine."""
    done, chunk, wall = 0, 1, 0.0
    while done < ticks:
        n = min(chunk, ticks - done)
        start = time.perf_counter()
        events = (step or sim.step)(n)
        spent = time.perf_counter() - start
        wall += spent
        done += n
        log.add(events)
        progress(n)
        # Grow chunks while ticks are cheap: fewer redraws, yet a slow tick still shows.
        if spent < 0.1:
            chunk = min(chunk * 2, 100)
    return wall


def _run_with_bar(console: Console, sim: Simulation, ticks: int, log: EventLog,
                  step: Stepper | None = None) -> float:
    if not console.is_terminal:
        return _advance(sim, ticks, log, lambda n: None, step)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(sim.spec.scenario.name, total=ticks)
        return _advance(sim, ticks, log, lambda n: bar.advance(task, n), step)


def cmd_run(args: argparse.Namespace) -> int:
    if (args.scenario is None) == (args.load is None):
        args.parser.error("give either a SCENARIO (or save) or --load SAVE")
    source = resolve(args.load or args.scenario)
    if args.load is not None and not is_save_file(source):
        raise InputError(str(source), "overcommit_save", "not an Overcommit save file")
    check_outputs(source, args.report, args.save)
    console = std_console()
    sim = _load_with_bar(source, args)
    ticks = _ticks_to_run(sim, args.ticks, str(source))
    log = EventLog(console, enabled=not args.quiet)
    series = open_series(args, sim, source)
    try:
        wall = _run_with_bar(console, sim, ticks, log, series.step if series else None)
    except KeyboardInterrupt:
        # The world may be mid-tick: neither summarise nor save it.
        if series:
            series.discard()
        print(f"interrupted at tick {sim.tick}; no report or save written", file=sys.stderr)
        return 130
    log.close()
    series_rows = series.close() if series else 0
    # Outputs first: a failure while printing must not cost the results.
    if args.report:
        _write_report(Path(args.report), sim.report())
    if args.save:
        try:
            saved = write_save(args.save, sim)
        except OSError as err:
            raise InputError(args.save, "--save", f"cannot write: {err.strerror}") from None
    print_summary(console, sim, ticks, wall, log.total)
    print_migrations(console, sim.migrations())
    if args.report:
        say(console, f"report: {args.report}")
    if args.save:
        say(console, f"saved: {saved} (tick {sim.tick})")
    if series:
        say(console, f"series: {args.series} ({series_rows:,} rows)")
    return EXIT_OBJECTIVES_FAILED if objectives_failed(sim) else EXIT_OK


# -- validate, scenarios ------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    if args.ranges:
        from app.ranges_table import print_ranges

        print_ranges(std_console())
        return EXIT_OK
    if not args.files:
        args.parser.error("give one or more FILEs, or --ranges")
    failed = 0
    for arg in args.files:
        notes: list[str] = []
        try:
            path = resolve(arg)
            if is_sweep_file(path):
                what = validate_sweep(path)
            elif is_save_file(path):
                snap = read_save(path).snapshot()
                what = (f"{_n(len(snap.hosts), 'host')}, {_n(len(snap.vms), 'VM')}, "
                        f"save at tick {snap.tick}")
            else:
                spec = load_scenario(path)
                what = f"{_n(len(spec.all_hosts()), 'host')}, {_n(len(spec.all_vms()), 'VM')}"
                moved = spec.timeline_reordered()
                if moved:
                    notes.append("timeline entries " + ", ".join(map(str, moved)) + " are "
                                 "listed out of time order; they apply in time order")
        except InputError as err:
            failed += 1
            print(f"error: {one_line(str(err))}", file=sys.stderr)
            continue
        print(f"OK  {one_line(arg)}  ({what})")
        for note in notes:
            print(f"    note: {note}")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    console = std_console()
    files = sorted(p for p in SCENARIOS.rglob("*.toml") if not is_sweep_file(p)) \
        if SCENARIOS.is_dir() else []
    if not files:
        say(console, f"no bundled scenarios under {SCENARIOS}")
        return 0
    say(console, f"Scenarios in {SCENARIOS}:")
    table = Table("scenario", "name", "description")
    for path in files:
        rel = path.relative_to(SCENARIOS).as_posix()
        # Text, not str: names and descriptions are free text, not rich markup.
        try:
            meta = load_scenario(path).scenario
            table.add_row(Text(rel), Text(meta.name), Text(meta.description))
        except InputError as err:
            problem = one_line(f"{err.path}: {err.expected}")
            table.add_row(Text(rel), Text("?"), Text.assemble(("invalid: ", "red"), problem))
    console.print(table)
    say(console, "Give a path or a name without .toml, e.g. "
                  "`overcommit play tutorial/first-night`.")
    return 0


# -- parser -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line reported on one line like any bad input."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"error: {self.prog}: {one_line(message)} (see {self.prog} --help)",
              file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="overcommit",
        description="A data-center memory and live-migration simulator. Without a "
                    "command, plays the tutorial scenario in the terminal console.",
        epilog="SCENARIO may be a path or a bundled name from `overcommit scenarios` "
               "(e.g. tutorial/first-night). Exit status: 0 success, 1 internal error (with "
               "a traceback), 2 bad input, 3 an objective failed.")
    parser.set_defaults(func=cmd_play, file=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    play = sub.add_parser("play", help="play a scenario or a save in the terminal console")
    play.add_argument("file", nargs="?", metavar="SCENARIO|SAVE",
                      help="default: tutorial/first-night")
    play.set_defaults(func=cmd_play)

    run = sub.add_parser("run", help="run headless and print a summary",
                         description="Run a scenario (or continue a save) without the "
                                     "console, then print a summary table.")
    run.add_argument("scenario", nargs="?", metavar="SCENARIO|SAVE")
    run.add_argument("--load", metavar="SAVE", help="continue a save written by --save")
    run.add_argument("--ticks", type=_bounded(MAX_TICKS), metavar="N",
                     help="ticks to run (default: up to the scenario's duration)")
    run.add_argument("--seed", type=_bounded(MAX_SEED), metavar="S",
                     help="override the scenario's seed (not with a save)")
    run.add_argument("--report", metavar="FILE", help="write the JSON report here")
    run.add_argument("--save", metavar="FILE", help="save the end state (TOML + .npz)")
    run.add_argument("--check", action="store_true",
                     help="verify the engine's invariants after every tick (slower)")
    run.add_argument("--quiet", action="store_true", help="no event log")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="change a scenario value before loading, e.g. "
                          "vm_group[0].count=4 or policy.memory.idle_tax=0 (repeatable)")
    add_series_options(run)
    run.set_defaults(func=cmd_run, parser=run)

    validate = sub.add_parser("validate", help="check scenario and save files")
    validate.add_argument("files", nargs="*", metavar="FILE")
    validate.add_argument("--ranges", action="store_true",
                          help="print the range and unit of every number a scenario or "
                               "command may hold")
    validate.set_defaults(func=cmd_validate, parser=validate)

    scenarios = sub.add_parser("scenarios", help="list the bundled scenarios")
    scenarios.set_defaults(func=cmd_scenarios)
    add_reproduce(sub)
    add_campaign(sub)
    add_sweep(sub)
    add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parallel.threads_setting()  # a bad OVERCOMMIT_THREADS is refused before any work
        kernels.kernels_setting()  # and so is a bad OVERCOMMIT_KERNELS
        return int(args.func(args))
    except InputError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
