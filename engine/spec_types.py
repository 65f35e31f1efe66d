"""The value types of the scenario schema (sizes, rates, durations, fractions, names,
player-facing text, each with its checked range) and the frozen base model. Apart from
engine/spec.py so that the workload image library can use them without importing the
schema that validates VMs against it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.ranges import (
    MAX_BYTES,
    MAX_COUNT,
    MAX_MONEY,
    MAX_PER_S,
    MAX_RATE,
    MAX_SECONDS,
    MAX_SHARES,
    MAX_SIGNED,
    Range,
)
from engine.text import printable

Bytes = Annotated[int, Range(0, MAX_BYTES, "size")]
Rate = Annotated[float, Range(0, MAX_RATE, "rate")]
PositiveRate = Annotated[float, Range(0, MAX_RATE, "rate", lo_open=True)]
Seconds = Annotated[float, Range(0, MAX_SECONDS, "duration")]
PositiveSeconds = Annotated[float, Range(0, MAX_SECONDS, "duration", lo_open=True)]
Fraction = Annotated[float, Range(0.0, 1.0)]
Count = Annotated[int, Range(0, MAX_COUNT, "int")]
PerSecond = Annotated[float, Range(0, MAX_PER_S, unit="/s")]  # page touches, I/Os
Price = Annotated[float, Range(0, MAX_MONEY, unit="currency")]
Signed = Annotated[float, Range(-MAX_SIGNED, MAX_SIGNED)]
Shares = Annotated[int, Range(0, MAX_SHARES, "int")]
Watts = Annotated[float, Range(0, 1e6, unit="W")]
IDENT_MAX = 64  # characters of an id
Ident = Annotated[str, Field(min_length=1, max_length=IDENT_MAX, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Free text shown to players: one line (names) or several (briefings), never escapes.
Line = Annotated[str, Field(max_length=500), AfterValidator(printable)]
Paragraphs = Annotated[str, Field(max_length=20_000),
                       AfterValidator(lambda text: printable(text, keep_newlines=True))]
MAX_PHASES = 64
Region = Literal["heap", "memory", "os", "app"]  # where a working set lies (WorkloadSpec)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
