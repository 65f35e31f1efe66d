"""Free-memory states of a host: high, soft, hard, low (ESX section 6.3).

The state is read from the free fraction against the policy thresholds; reclamation
mechanisms consult it to pick balloon vs swap. A change of state is an event.
"""

from __future__ import annotations

import numpy as np

from engine.world import World

STATE_NAMES = ("high", "soft", "hard", "low")
HIGH, SOFT, HARD, LOW = range(4)
# Free fraction at or above which a host is in high / soft / hard; below the last: low.
THRESHOLDS = (0.06, 0.04, 0.01)


def classify(free_fraction: np.ndarray) -> np.ndarray:
    high, soft, hard = THRESHOLDS
    return np.select([free_fraction >= high, free_fraction >= soft, free_fraction >= hard],
                     [HIGH, SOFT, HARD], LOW).astype(np.int8)


def update_host_states(world: World) -> None:
    hosts = world.state.hosts
    new = classify(hosts.free_count / np.maximum(hosts.n_frames, 1))
    old = world.host_state
    if old is not None and old.shape == new.shape:
        for h in np.flatnonzero(old != new).tolist():
            world.emit("host_state", f"{hosts.ids[h]} memory state "
                       f"{STATE_NAMES[old[h]]} -> {STATE_NAMES[new[h]]}", host=hosts.ids[h])
    world.host_state = new
