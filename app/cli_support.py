"""What the subcommands share: where the bundled scenarios are, how a scenario argument
is resolved, the consoles they print to, and the check that a run's outputs do not
overwrite its inputs. Its own module so that the subcommands (reproduce, serve, sweep)
need not import the command line that dispatches to them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from app.savefile import is_save_file
from engine import InputError

# Resolved from the package, not the cwd, so an editable install finds them from anywhere.
ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "tutorial" / "first-night.toml"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


def resolve(arg: str) -> Path:
    """A path as given, else a bundled scenario name such as `tutorial/first-night`."""
    path = Path(arg)
    if _exists(path):
        return path
    for candidate in (SCENARIOS / arg, SCENARIOS / f"{arg}.toml"):
        if _exists(candidate) and candidate.is_file():
            return candidate
    raise InputError(arg, "(file)", "no such file, nor a bundled scenario of that name "
                     "(see `overcommit scenarios`)")


def std_console() -> Console:
    # Built per command so it writes to whatever sys.stdout is now (pytest's capsys too).
    return Console(highlight=False)


def err_console() -> Console:
    """stderr, for what only a person watching needs (the build's progress bar)."""
    return Console(stderr=True, highlight=False)


def check_outputs(source: Path, report: str | None, save: str | None) -> None:
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
