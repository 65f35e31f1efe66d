"""The game clock: paused or running at a speed in ticks per wall second.

Pure bookkeeping (no Textual): the App's timer asks `due(now)` how many ticks to run and
reports what actually ran with `ran(n, now)`, which gives the measured ticks/s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SPEEDS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)
MAX_BACKLOG_S = 0.5  # ticks owed for longer than this are forgotten, not run in a burst


@dataclass
class Clock:
    paused: bool = False
    speed_index: int = 0
    _owed: float = 0.0
    _last: float | None = None
    _ran: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def speed(self) -> int:
        return SPEEDS[self.speed_index]

    def faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)

    def slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)

    def pause(self) -> None:
        self.paused = True
        self._owed, self._last = 0.0, None
        self._ran.clear()

    def resume(self) -> None:
        self.paused = False
        self._owed, self._last = 0.0, None

    def toggle(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def due(self, now: float) -> int:
        """Whole ticks owed since the last call (0 while paused)."""
        if self.paused:
            return 0
        if self._last is None:
            self._last = now
            return 0
        self._owed += (now - self._last) * self.speed
        self._last = now
        self._owed = min(self._owed, max(self.speed * MAX_BACKLOG_S, 1.0))
        n = int(self._owed)
        self._owed -= n
        return n

    def ran(self, n: int, now: float) -> None:
        self._ran.append((now, n))

    def ticks_per_s(self, now: float) -> float | None:
        """Measured rate over the last three seconds; None while paused or unknown."""
        recent = [(t, n) for t, n in self._ran if now - t <= 3.0]
        if self.paused or len(recent) < 2:
            return None
        span = recent[-1][0] - recent[0][0]
        return sum(n for _, n in recent[1:]) / span if span > 0 else None
