"""What a player types into a dialog, parsed through the engine's units and refused before
it becomes a command unless it is a finite number within what the command can carry.

Each parser returns the value and an echo of what it understood ("= 512 B — did you mean
512MiB?"), or raises InputProblem with a one-line reason. Whatever the engine's parsers
raise on odd text (UnitError, ValueError, OverflowError for `1e400`) becomes an
InputProblem too, so no keystroke can reach a tick as a value the engine cannot hold.
The bounds are the console's own; the scenario schema documents the engine's ranges.
"""

from __future__ import annotations

import math
import re

from engine.units import format_bytes, format_rate, parse_bytes, parse_rate, parse_seconds

MAX_SHARES = 10**9  # ESX gives 10 per MiB: a million times a 100 GiB VM's
MAX_OPS_PER_S = 1e7  # page touches per second of one VM
MAX_BYTES = 2**50  # 1 PiB: no VM is bigger
MAX_RATE_BYTES_PER_S = 1.25e11  # 1 Tbit/s
MAX_DOWNTIME_S = 3600.0
PROBLEMS = (ValueError, ArithmeticError, TypeError)  # what a parser may raise on odd text


class InputProblem(ValueError):
    """Typed text that cannot make a command: the message says why, in one line."""


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise InputProblem(f"{what}: expected a finite number, got {value}")
    return value


def parse_count(text: str, what: str, low: int = 0, high: int = MAX_SHARES) -> int:
    """A whole number such as 10240 (or 10,240) between low and high."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not re.fullmatch(r"\d+", cleaned):
        raise InputProblem(f"{what}: expected a whole number such as 10240, got {text!r}")
    value = int(cleaned)
    if not low <= value <= high:
        raise InputProblem(f"{what}: expected {low:,} to {high:,}, got {value:,}")
    return value


def parse_number(text: str, what: str, low: float = 0.0, high: float = MAX_OPS_PER_S) -> float:
    """A finite decimal number between low and high (no inf, no nan)."""
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        raise InputProblem(f"{what}: expected a number such as 1200, got {text!r}") from None
    _finite(value, what)
    if not low <= value <= high:
        raise InputProblem(f"{what}: expected {low:g} to {high:g}, got {value:g}")
    return value


def parse_size(text: str, what: str, high: int = MAX_BYTES) -> tuple[int, str]:
    """A size such as 512MiB, and its echo; a bare number is bytes, and the echo says so."""
    try:
        value = parse_bytes(text.strip())
    except PROBLEMS:
        raise InputProblem(f"{what}: expected a size such as 512MiB or 1GiB, "
                           f"got {text.strip()!r}") from None
    if value > high:
        raise InputProblem(f"{what}: at most {format_bytes(high)}, got {format_bytes(value)}")
    echo = f"= {format_bytes(value)}"
    bare = text.strip()
    if re.fullmatch(r"[0-9.eE+]+", bare):
        echo = f"= {value:,} B — did you mean {bare} MiB?"
    return value, echo


def parse_rate_text(text: str, what: str, high: float = MAX_RATE_BYTES_PER_S
                    ) -> tuple[float, str]:
    try:
        value = _finite(parse_rate(text.strip()), what)
    except InputProblem:
        raise
    except PROBLEMS:
        raise InputProblem(f"{what}: expected a rate such as 500Mbit/s or 1Gbit/s, "
                           f"got {text.strip()!r}") from None
    if not 0 < value <= high:
        raise InputProblem(f"{what}: expected above 0 and at most {format_rate(high)}")
    return value, f"= {format_rate(value)}"


def parse_duration(text: str, what: str, high: float = MAX_DOWNTIME_S) -> tuple[float, str]:
    try:
        value = _finite(parse_seconds(text.strip()), what)
    except InputProblem:
        raise
    except PROBLEMS:
        raise InputProblem(f"{what}: expected a duration such as 300ms or 2s, "
                           f"got {text.strip()!r}") from None
    if not 0 < value <= high:
        raise InputProblem(f"{what}: expected above 0 and at most {high:g} s")
    return value, f"= {value * 1000:g} ms" if value < 1 else f"= {value:g} s"


def parse_percent(text: str, what: str = "rate") -> tuple[float, str]:
    """'75%', '0.75' or '75' -> 0.75: with % it is a percentage, always; a bare number
    above 1 is read as a percentage too, and the echo says which reading was taken."""
    stripped = text.strip()
    body = stripped.removesuffix("%").strip()
    value = parse_number(body, what, 0.0, 1e6) if body else math.nan
    if math.isnan(value):
        raise InputProblem(f"{what}: expected a rate such as 75% or 0.75")
    if stripped.endswith("%"):
        return value / 100, f"= {value:g} %"
    if value > 1:
        return value / 100, f"= {value:g} % (a number above 1 is read as a percentage)"
    return value, f"= {value * 100:g} %"
