"""The `overcommit` command line: play, run headless, validate and list scenarios.

Bad input (a scenario, save or command) is reported on one line with exit status 2 and no
traceback; internal bugs keep their traceback (exit 1) so they get reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.savefile import _atomic_write, is_save_file, read_save, write_save
from app.series import Stepper, add_series_options, open_series
from app.sweep import is_sweep_file, validate_sweep
from engine import Event, InputError, Simulation, load_scenario
from engine.units import format_bytes, format_rate, format_seconds

# Resolved from the package, not the cwd, so an editable install finds them from anywhere.
ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "tutorial" / "first-night.toml"

LOGGED_EVENTS = frozenset({"vm_started", "vm_stopped", "command_rejected", "host_state",
                           "memory_stall", "objective"})
LOG_LIMIT = 40
HOST_ROWS = 40  # a summary of a 100-host run stays readable; the report has every host


# -- helpers ------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(text.split())


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _money(amount: float) -> str:
    return f"-${-amount:,.4f}" if amount < 0 else f"${amount:,.4f}"


def clock(seconds: float) -> str:
    """Simulated time as H:MM:SS (tenths when a tick is shorter than a second)."""
    hours, rest = divmod(round(seconds, 1), 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:02.0f}" if float(secs).is_integer() else f"{secs:04.1f}"
    return f"{int(hours)}:{int(minutes):02d}:{secs_text}"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def resolve(arg: str) -> Path:
    """A path as given, else a bundled scenario name such as `tutorial/first-night`."""
    path = Path(arg)
    if path.exists():
        return path
    for candidate in (SCENARIOS / arg, SCENARIOS / f"{arg}.toml"):
        if candidate.is_file():
            return candidate
    raise InputError(arg, "(file)", "no such file, nor a bundled scenario of that name "
                     "(see `overcommit scenarios`)")


def _load(path: Path, seed: int | None = None, check: bool = False,
          overrides: Sequence[str] = ()) -> Simulation:
    if is_save_file(path):
        if seed is not None:
            raise InputError(str(path), "--seed", "a save continues its own random streams; "
                             "leave out --seed")
        if overrides:
            raise InputError(str(path), "--set", "a save cannot be changed; give a scenario")
        return read_save(path, check=check)
    return Simulation.from_spec(load_scenario(path, overrides), seed=seed, check=check)


def _console() -> Console:
    # Built per command so it writes to whatever sys.stdout is now (pytest's capsys too).
    return Console(highlight=False)


def _say(console: Console, text: str) -> None:
    # Plain lines: ids and field paths like vm[2].host are not markup, and long lines
    # stay whole so logs can be grepped.
    console.print(text, markup=False, soft_wrap=True)


def _write_report(path: Path, report: dict[str, Any]) -> None:
    try:
        _atomic_write(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as err:
        raise InputError(str(path), "--report", f"cannot write: {err.strerror}") from None


def _check_outputs(source: Path, report: str | None, save: str | None) -> None:
    """Refuse, before a long run, outputs that would overwrite the input or another file."""
    inputs = {source.resolve()}
    if save is not None:
        target = Path(save) if Path(save).suffix == ".toml" else Path(save).with_suffix(".toml")
        if target.resolve() in inputs:
            raise InputError(save, "--save", "would overwrite the file this run reads")
        if target.exists() and not is_save_file(target):
            raise InputError(save, "--save", "exists and is not an Overcommit save; "
                             "refusing to overwrite it")
        inputs.add(target.resolve())
    if report is not None:
        target = Path(report)
        if target.resolve() in inputs:
            raise InputError(report, "--report", "would overwrite the input or the save")
        if target.exists() and target.suffix in (".toml", ".npz"):
            raise InputError(report, "--report", "is a scenario or save file; refusing to "
                             "overwrite it with a report")


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
class EventLog:
    """Prints the events worth a line, up to a limit, and counts the rest."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.total = 0
        self.shown = 0
        self.hidden = 0

    def add(self, events: Sequence[Event]) -> None:
        self.total += len(events)
        if not self.enabled:
            return
        for event in events:
            if event.kind not in LOGGED_EVENTS:
                continue
            if self.shown >= LOG_LIMIT:
                self.hidden += 1
                continue
            self.shown += 1
            _say(self.console, f"{clock(event.time_s)}  {event.kind:<16} {event.message}")

    def close(self) -> None:
        if self.hidden:
            _say(self.console, f"... {self.hidden} more events")


def _ticks_to_run(sim: Simulation, requested: int | None, source: str) -> int:
    if requested is not None:
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


def print_summary(console: Console, sim: Simulation, ticks: int, wall_s: float,
                  n_events: int) -> None:
    snap = sim.snapshot()
    _say(console, f"{snap.scenario}: tick {snap.tick}")
    table = Table()
    for name in ("host", "state", "memory", "free", "VMs", "overcommit", "NIC use"):
        table.add_column(name, justify="left" if name in ("host", "state") else "right")
    for h in snap.hosts[:HOST_ROWS] if len(snap.hosts) > HOST_ROWS + 10 else snap.hosts:
        free = _share(h.free_bytes, h.memory_bytes)
        nic = _share(h.nic_used_bytes_per_s, h.nic_capacity_bytes_per_s)
        table.add_row(h.id, h.state if h.up else "down", format_bytes(h.memory_bytes),
                      f"{format_bytes(h.free_bytes)} ({free})", str(h.n_vms),
                      f"{h.overcommit_ratio:.2f}x",
                      f"{format_rate(h.nic_used_bytes_per_s)} ({nic})")
    if len(snap.hosts) > HOST_ROWS + 10:
        table.caption = f"{len(snap.hosts) - HOST_ROWS} more hosts; --report FILE has them all"
    console.print(table)
    rate = f"{ticks / wall_s:,.1f}" if wall_s > 0 else "-"
    lines = [
        f"sim time {clock(snap.time_s)}: {ticks} ticks in {wall_s:.2f}s "
        f"({rate} ticks/s), {n_events} events",
        f"revenue {_money(snap.revenue)}  costs {_money(snap.costs)}  "
        f"penalties {_money(snap.penalties)}  profit {_money(snap.profit)}",
    ]
    for obj in snap.objectives:
        lines.append(f"objective {obj['status']:<7} {obj['description']} "
                     f"(now {obj['value']:.4g})")
    for line in lines:
        _say(console, line)


def cmd_run(args: argparse.Namespace) -> int:
    if (args.scenario is None) == (args.load is None):
        args.parser.error("give either a SCENARIO (or save) or --load SAVE")
    source = resolve(args.load or args.scenario)
    if args.load is not None and not is_save_file(source):
        raise InputError(str(source), "overcommit_save", "not an Overcommit save file")
    _check_outputs(source, args.report, args.save)
    console = _console()
    if console.is_terminal:
        # Building a big data center takes seconds; say so instead of looking hung.
        with console.status(f"loading {source}"):
            sim = _load(source, seed=args.seed, check=args.check, overrides=args.set)
    else:
        sim = _load(source, seed=args.seed, check=args.check, overrides=args.set)
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
    if args.report:
        _say(console, f"report: {args.report}")
    if args.save:
        _say(console, f"saved: {saved} (tick {sim.tick})")
    if series:
        _say(console, f"series: {args.series} ({series_rows:,} rows)")
    return 0


# -- validate, scenarios ------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for arg in args.files:
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
        except InputError as err:
            failed += 1
            print(f"error: {_one_line(str(err))}", file=sys.stderr)
            continue
        print(f"OK  {arg}  ({what})")
    return 2 if failed else 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    console = _console()
    files = sorted(p for p in SCENARIOS.rglob("*.toml") if not is_sweep_file(p)) \
        if SCENARIOS.is_dir() else []
    if not files:
        _say(console, f"no bundled scenarios under {SCENARIOS}")
        return 0
    _say(console, f"Scenarios in {SCENARIOS}:")
    table = Table("scenario", "name", "description")
    for path in files:
        rel = path.relative_to(SCENARIOS).as_posix()
        # Text, not str: names and descriptions are free text, not rich markup.
        try:
            meta = load_scenario(path).scenario
            table.add_row(Text(rel), Text(meta.name), Text(meta.description))
        except InputError as err:
            problem = _one_line(f"{err.path}: {err.expected}")
            table.add_row(Text(rel), Text("?"), Text.assemble(("invalid: ", "red"), problem))
    console.print(table)
    _say(console, "Give a path or a name without .toml, e.g. "
                  "`overcommit play tutorial/first-night`.")
    return 0


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overcommit",
        description="A data-center memory and live-migration simulator. Without a "
                    "command, plays the tutorial scenario in the terminal console.",
        epilog="SCENARIO may be a path or a bundled name from `overcommit scenarios` "
               "(e.g. tutorial/first-night). Bad input exits with status 2.")
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
    run.add_argument("--ticks", type=_count, metavar="N",
                     help="ticks to run (default: up to the scenario's duration)")
    run.add_argument("--seed", type=_count, metavar="S",
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
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=cmd_validate)

    scenarios = sub.add_parser("scenarios", help="list the bundled scenarios")
    scenarios.set_defaults(func=cmd_scenarios)
    from app.campaign import add_parser as add_campaign
    from app.reproduce import add_parser  # not at the top: app.reproduce imports this module
    add_parser(sub)
    add_campaign(sub)
    from app.serve import add_parser as add_serve
    from app.sweep import add_parser as add_sweep

    add_sweep(sub)
    add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as err:
        print(f"error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
