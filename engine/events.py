"""Events a tick produces: what the console's log and scripts see happen."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    tick: int
    time_s: float
    kind: str  # e.g. command_applied, command_rejected, vm_started, vm_stopped, memory_stall
    message: str
    vm: str | None = None
    host: str | None = None

    def to_plain(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}
