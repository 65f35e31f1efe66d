"""Human units in files and commands -> the engine's bytes, bytes/s and seconds.

Binary prefixes (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (kB, MB, GB, TB) are
powers of 1000, as storage and network vendors use them. Rates in bits (bit/s, Kbit/s,
Mbit/s, Gbit/s, also bps/Mbps/Gbps) are converted to bytes per second.
"""

from __future__ import annotations

import re

_SIZE_FACTORS: dict[str, int] = {
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}

_BIT_FACTORS: dict[str, int] = {
    "bit": 1,
    "kbit": 1000,
    "mbit": 1000**2,
    "gbit": 1000**3,
    "tbit": 1000**4,
}

_BPS_ALIASES: dict[str, str] = {"bps": "bit", "kbps": "kbit", "mbps": "mbit", "gbps": "gbit"}

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
        raise UnitError(f"expected a {kind} like {example!r}, got {text!r}")
    return float(match.group(1)), match.group(2)


def parse_bytes(value: str | int | float) -> int:
    """'512MiB' -> 536870912. A bare number is already bytes."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size like '512MiB', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UnitError(f"expected a non-negative size, got {value!r}")
        return int(value)
    number, unit = _split(value, "size", "512MiB")
    factor = _SIZE_FACTORS.get(unit.lower() if unit else "b")
    if factor is None:
        raise UnitError(
            f"expected a size unit (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), got {value!r}")
    return int(round(number * factor))


def parse_rate(value: str | int | float) -> float:
    """'1Gbit/s' -> 125e6 bytes/s, '100MB/s' -> 1e8 bytes/s. A bare number is bytes/s."""
    if isinstance(value, bool):
        raise UnitError(f"expected a rate like '1Gbit/s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UnitError(f"expected a non-negative rate, got {value!r}")
        return float(value)
    number, unit = _split(value, "rate", "1Gbit/s")
    unit_l = unit.lower()
    if unit_l in _BPS_ALIASES:
        return number * _BIT_FACTORS[_BPS_ALIASES[unit_l]] / 8.0
    if not unit_l.endswith("/s"):
        raise UnitError(f"expected a rate with '/s' (e.g. '1Gbit/s', '100MB/s'), got {value!r}")
    base = unit_l[:-2]
    if base in _BIT_FACTORS:
        return number * _BIT_FACTORS[base] / 8.0
    if base in _SIZE_FACTORS:
        return number * _SIZE_FACTORS[base]
    raise UnitError(f"expected a rate unit like Mbit/s, Gbit/s, MB/s or MiB/s, got {value!r}")


def parse_seconds(value: str | int | float) -> float:
    """'250ms' -> 0.25, '30s' -> 30.0, '2h' -> 7200.0. A bare number is seconds."""
    if isinstance(value, bool):
        raise UnitError(f"expected a duration like '30s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UnitError(f"expected a non-negative duration, got {value!r}")
        return float(value)
    number, unit = _split(value, "duration", "30s")
    factor = _TIME_FACTORS.get(unit.lower() if unit else "s")
    if factor is None:
        raise UnitError(f"expected a time unit (us, ms, s, min, h, d), got {value!r}")
    return number * factor


def format_bytes(n_bytes: float) -> str:
    """Largest binary unit that keeps the number >= 1, with up to 3 significant decimals."""
    magnitude = abs(n_bytes)
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if magnitude >= factor:
            return f"{n_bytes / factor:.4g}{unit}"
    return f"{int(n_bytes)}B"


def format_rate(bytes_per_s: float) -> str:
    bits = bytes_per_s * 8.0
    for unit, factor in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("Kbit/s", 1e3)):
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
