"""Human units in files and commands -> the engine's bytes, bytes/s and seconds.

Binary prefixes (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (kB, MB, GB, TB) are
powers of 1000, as storage and network vendors use them. Rates in bits (bit/s, Kbit/s,
Mbit/s, Gbit/s, also bps/Mbps/Gbps) are converted to bytes per second.
"""

from __future__ import annotations

import math
import re
from typing import Any

_SIZE_FACTORS: dict[str, int] = {
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
}

_BIT_FACTORS: dict[str, int] = {
    "bit": 1,
    "kbit": 1000,
    "mbit": 1000**2,
    "gbit": 1000**3,
    "tbit": 1000**4,
}

_BPS_ALIASES: dict[str, str] = {"bps": "bit", "kbps": "kbit", "mbps": "mbit", "gbps": "gbit",
                                 "tbps": "tbit"}

_TIME_FACTORS: dict[str, float] = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}

_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-zµ/]*)\s*$")


class UnitError(ValueError):
    """A value whose unit is missing, unknown or of the wrong kind."""


def _split(text: str, kind: str, example: str) -> tuple[float, str]:
    match = _NUMBER_UNIT.match(text)
    if match is None:
        raise UnitError(f"expected a {kind} like {example!r}, got {_shown(text)}")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise UnitError(f"expected a finite {kind}, got {_shown(text)}")
    return number, match.group(2)


def _shown(value: Any) -> str:
    # Error messages quote the input: short, and with control characters escaped (repr).
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, kind: str, example: str) -> float | int | None:
    """A bare number as given (None for a string, which carries a unit). Anything else
    (a bool, list, table, date, None) is an error, never a crash."""
    if isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(f"expected a {kind} like {example!r} or a number, got "
                        f"{type(value).__name__} {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"expected a finite {kind}, got {value!r}")
    if value < 0:
        raise UnitError(f"expected a non-negative {kind}, got {_shown(value)}")
    return value


def _finite(result: float, kind: str, value: Any) -> float:
    if not math.isfinite(result):
        raise UnitError(f"expected a finite {kind}, got {_shown(value)}")
    return result


def _as_float(number: float | int, kind: str) -> float:
    try:
        return float(number)  # an int too big for a float overflows
    except OverflowError:
        raise UnitError(f"expected a finite {kind}, got {_shown(number)}") from None


def parse_bytes(value: Any) -> int:
    """'512MiB' -> 536870912. A bare number is already bytes."""
    number = _number(value, "size", "512MiB")
    if number is not None:
        return int(number)
    amount, unit = _split(value, "size", "512MiB")
    factor = _SIZE_FACTORS.get(unit.lower() if unit else "b")
    if factor is None:
        raise UnitError("expected a size unit (B, KiB, MiB, GiB, TiB, PiB, kB, MB, GB, TB, "
                        f"PB), got {_shown(value)}")
    return int(round(_finite(amount * factor, "size", value)))


def parse_rate(value: Any) -> float:
    """'1Gbit/s' -> 125e6 bytes/s, '100MB/s' -> 1e8 bytes/s. A bare number is bytes/s."""
    number = _number(value, "rate", "1Gbit/s")
    if number is not None:
        return _as_float(number, "rate")
    amount, unit = _split(value, "rate", "1Gbit/s")
    unit_l = unit.lower()
    if unit_l in _BPS_ALIASES:
        return _finite(amount * _BIT_FACTORS[_BPS_ALIASES[unit_l]] / 8.0, "rate", value)
    if not unit_l.endswith("/s"):
        raise UnitError(f"expected a rate with '/s' (e.g. '1Gbit/s', '100MB/s'), got "
                        f"{_shown(value)}")
    base = unit_l[:-2]
    if base in _BIT_FACTORS:
        return _finite(amount * _BIT_FACTORS[base] / 8.0, "rate", value)
    if base in _SIZE_FACTORS:
        return _finite(amount * _SIZE_FACTORS[base], "rate", value)
    raise UnitError(f"expected a rate unit like Mbit/s, Gbit/s, MB/s or MiB/s, got "
                    f"{_shown(value)}")


def parse_seconds(value: Any) -> float:
    """'250ms' -> 0.25, '30s' -> 30.0, '2h' -> 7200.0. A bare number is seconds."""
    number = _number(value, "duration", "30s")
    if number is not None:
        return _as_float(number, "duration")
    amount, unit = _split(value, "duration", "30s")
    factor = _TIME_FACTORS.get(unit.lower() if unit else "s")
    if factor is None:
        raise UnitError(f"expected a time unit (us, ms, s, min, h, d), got {_shown(value)}")
    return _finite(amount * factor, "duration", value)


def format_bytes(n_bytes: float) -> str:
    """Largest binary unit that keeps the number >= 1, with up to 3 significant decimals."""
    magnitude = abs(n_bytes)
    for unit, factor in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2),
                         ("KiB", 1024)):
        if magnitude >= factor:
            return f"{n_bytes / factor:.4g}{unit}"
    return f"{int(n_bytes)}B"


def format_rate(bytes_per_s: float) -> str:
    bits = bytes_per_s * 8.0
    for unit, factor in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("Kbit/s", 1e3)):
        if abs(bits) >= factor:
            return f"{bits / factor:.4g}{unit}"
    return f"{bits:.4g}bit/s"


def format_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.4g}h"
    if seconds >= 60:
        return f"{seconds / 60:.4g}min"
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.4g}s"
    return f"{seconds * 1000:.4g}ms"
