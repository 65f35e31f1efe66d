"""Everything a running simulation owns, in one place the tick phases work on."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.commands import Command
from engine.events import Event
from engine.rng import Streams
from engine.scenario import ScenarioSpec
from engine.state import State
from engine.topology import Topology

HISTORY_TICKS = 600


@dataclass
class World:
    spec: ScenarioSpec
    state: State
    streams: Streams
    topology: Topology
    pending: list[Command] = field(default_factory=list)
    timeline_next: int = 0  # index of the first timeline entry not yet applied
    events: list[Event] = field(default_factory=list)  # this tick's
    history: dict[str, deque[float]] = field(default_factory=dict)
    service_flow_key: bytes = b""
    # The last flow set given to the network: (src, dst) pairs, demands, owners.
    flow_set: Any = None  # engine.network.FlowSet: the flows last given to the network
    # Each host's path to its service destination, cached by link states (engine/network)
    host_paths: Any = None
    # Each VM's SLA window in ticks, with the VM specs and tick it was computed for
    # (engine/economy/billing.py): a pass over every spec's contract costs more than a tick's bill.
    sla_window_ticks: Any = None
    objective_verdicts: dict[int, tuple[float, bool]] = field(default_factory=dict)
    # Within a tick: each host's free frames as its touches began, until the reclaim phase
    # (engine/workloads/phase.py, memory/states.py pressure_states).
    free_before_touches: Any = None
    # Within a tick: the host states reclamation works in, from the reclaim phase until
    # they settle after the swap phase (engine/memory/reclaim.py).
    reclaim_states: Any = None
    # Within a tick: touches that stalled for want of a frame, until reclamation has run,
    # and which VMs stalled the tick before (engine/workloads/phase.py serve_waiting).
    waiting_touches: Any = None
    # Within a tick: the pages the swap daemon evicted and their VMs, until the rest of the
    # tick's touches have been played against them (engine/workloads/retouch.py).
    evicted: Any = None

    def emit(self, kind: str, message: str, vm: str | None = None,
             host: str | None = None) -> None:
        self.events.append(Event(self.state.tick, self.state.time_s, kind, message, vm, host))

    def record(self, name: str, value: float) -> None:
        series = self.history.get(name)
        if series is None:
            series = self.history[name] = deque(maxlen=HISTORY_TICKS)
        series.append(value)
