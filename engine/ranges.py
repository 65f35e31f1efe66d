"""Finite, documented ranges for every number a scenario, a save or a command may hold.

`Range` is pydantic metadata: it parses the value (a size, rate or duration with a unit, or
a plain number), refuses what is not finite, not a number or out of range with a message
in the field's unit, and documents the field (`overcommit validate --ranges` prints every
field's range from the schema). engine/spec.py builds the shared types from it (Bytes,
Rate, Seconds, Fraction, Count, PerSecond, Money...), so a field added later inherits a
range; tests/engine/test_ranges.py fails for any int or float field without one.

The upper bounds are what a real data center could need and what the engine can run:
memory up to 16 PiB per host, a link up to 1 Tbit/s, a run up to a year of simulated time,
and world-wide budgets (engine/budgets.py) on pages, frames and per-tick work, since a
100 TiB VM at 4 KiB pages or a billion reads per second would not fit in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from engine.units import (
    UnitError,
    format_bytes,
    format_rate,
    format_seconds,
    parse_bytes,
    parse_rate,
    parse_seconds,
)

KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5

MAX_BYTES = 16 * PiB  # any size: host memory, a VM, swap space
MAX_RATE = 1e12 / 8  # bytes/s: 1 Tbit/s, any link, NIC, disk or migration rate
MAX_SECONDS = 366 * 86400.0  # any duration or time: a run of up to a year
MIN_TICK_S = 1e-3
MAX_TICK_S = 3600.0
MAX_TICKS = 2**31 - 1  # ticks are stored as int32 (the tick of a page's last write)
MAX_PER_S = 1e8  # events per second of one VM (page reads, writes, file reads, I/O)
MAX_COUNT = 10**9  # generic counts (pages, rounds, batch sizes)
MAX_SHARES = 10**12  # ESX shares of one VM (default 10 per MiB: a 64 TiB VM has ~7e8)
MAX_MONEY = 1e9  # a price or cost per unit (per hour, per kWh, per GB, ...)
MAX_SIGNED = 1e15  # objective bounds and published values (profit may be negative)
MAX_SEED = 2**64 - 1

Kind = Literal["size", "rate", "duration", "int", "float"]

_UNITS = {"size": "bytes", "rate": "bytes/s", "duration": "s"}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise UnitError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise UnitError(f"expected a whole number, got {_shown(value)}")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise UnitError(f"expected a whole number, got {_shown(value)}")


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise UnitError(f"expected a number, got {value!r}")
    if isinstance(value, int | float | str):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            raise UnitError(f"expected a number, got {_shown(value)}") from None
        if math.isfinite(number):
            return number
        raise UnitError(f"expected a finite number, got {_shown(value)}")
    raise UnitError(f"expected a number, got {type(value).__name__} {_shown(value)}")


_PARSERS = {"size": parse_bytes, "rate": parse_rate, "duration": parse_seconds,
            "int": _parse_int, "float": _parse_float}


@dataclass(frozen=True)
class Range:
    """A field's finite bounds (inclusive unless open) and its unit, for pydantic."""

    lo: float
    hi: float
    kind: Kind = "float"
    unit: str = ""  # for plain numbers: "pages/s", "W", "currency/h", ... ("" = none)
    lo_open: bool = False
    hi_open: bool = False

    def __post_init__(self) -> None:
        assert math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo <= self.hi

    @property
    def unit_name(self) -> str:
        return _UNITS.get(self.kind, self.unit)

    def show(self, x: float) -> str:
        if self.kind == "size":
            return format_bytes(x)
        if self.kind == "rate":
            return format_rate(x)
        if self.kind == "duration":
            return format_seconds(x)
        integral = self.kind == "int" or (float(x).is_integer() and abs(x) < 1e15)
        text = f"{int(x):,}" if integral else f"{x:.6g}"
        if not self.unit:
            return text
        return f"{text}{self.unit}" if self.unit.startswith("/") else f"{text} {self.unit}"

    def describe(self) -> str:
        lo = ("more than " if self.lo_open else "") + self.show(self.lo)
        hi = ("less than " if self.hi_open else "") + self.show(self.hi)
        return f"{lo} to {hi}"

    def parse(self, value: Any) -> Any:
        number = _PARSERS[self.kind](value)
        too_low = number <= self.lo if self.lo_open else number < self.lo
        too_high = number >= self.hi if self.hi_open else number > self.hi
        if too_low or too_high:
            what = {"size": "a size", "rate": "a rate", "duration": "a duration"}.get(
                self.kind, "a whole number" if self.kind == "int" else "a number")
            raise UnitError(f"expected {what} from {self.describe()}, got {_shown(value)}")
        return number

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))


def field_range(metadata: list[Any]) -> Range | None:
    """The Range among a field's metadata, if any."""
    return next((m for m in metadata if isinstance(m, Range)), None)
