"""The balloon drivers' polls within one tick, as the reclamation's pressure counts on them.

ESX's driver polls its target once a second and inflates at its rate until the next poll;
the rate doubles after a poll in which the guest gave pages without paging (its free and
page-cache pages) and halves after one that made it page. A tick of several seconds holds
several polls: judging how low free memory gets in it (states.py lowest_free), the
balloons' pages are counted poll by poll to the end of the tick, the rate adapting after
each, rather than the first poll's worth (too little for a guest with memory to spare:
five 1 s ticks give 1 + 2 + 4 + 8 + 16 times its rate) or the rate times the tick (too
much for a guest that pages: five 1 s ticks give less than twice its rate).

Vectorised over VMs; a Python step per poll in the tick (a handful).
"""

from __future__ import annotations

import numpy as np

from engine.memory.guest import PICK_PROBES
from engine.pagescale import per_simulated_page
from engine.spec import MemoryPolicy
from engine.state import BALLOON_POLL_S, F64, State


def rate_bounds(state: State, policy: MemoryPolicy) -> tuple[float, float]:
    """The driver's rate limits, given in 4 KiB pages/s, in simulated pages/s."""
    return (per_simulated_page(policy.balloon_min_rate, state.page_size),
            per_simulated_page(policy.balloon_max_rate, state.page_size))


def n_polls(seconds: float) -> int:
    """The polls a stretch of `seconds` holds (one at least; a last partial one counts)."""
    return max(1, int(np.ceil(seconds / BALLOON_POLL_S - 1e-9)))


def poll_length(seconds: F64, k: int) -> F64:
    """Each driver's time in its k-th poll of a stretch of `seconds` (0 past its end)."""
    length: F64 = np.clip(seconds - k * BALLOON_POLL_S, 0.0, BALLOON_POLL_S)
    return length


def adapt(rate: F64, length: F64, took: np.ndarray, paged: np.ndarray) -> F64:
    """The rate after a poll of `length` seconds: halved if the guest paged, doubled if it
    gave pages without paging, as often as the poll holds seconds."""
    factor = 2.0 ** np.minimum(length / BALLOON_POLL_S, 1000.0)
    adapted: F64 = np.where(paged, rate / factor, np.where(took, rate * factor, rate))
    return adapted


def schedule(rate: F64, want: F64, cheap: F64, pages: F64, seconds: F64,
             bounds: tuple[float, float]) -> F64:
    """The pages each driver is expected to take poll by poll over `seconds` (per VM), at
    `rate`, up to `want`: (polls, VMs). The guest gives its `cheap` pages (free, page
    cache) before it pages, as the balloon's pick finds them: among PICK_PROBES random
    pages of its `pages` for each page taken (memory/guest.py), so a guest with few cheap
    pages among many pages from the first poll on, and its driver's rate halves."""
    seconds = np.asarray(seconds, np.float64)
    polls = n_polls(float(seconds.max(initial=0.0)))
    takes = np.zeros((polls, rate.size))
    left, cheap_left, r = np.asarray(want, np.float64), np.asarray(cheap, np.float64), rate
    pages = np.maximum(np.asarray(pages, np.float64), 1.0)
    for k in range(polls):
        length = poll_length(seconds, k)
        take = np.minimum(left, r * length)
        takes[k] = take
        left = left - take
        found = np.minimum(cheap_left, PICK_PROBES * take * cheap_left / pages)
        paged = take > found
        cheap_left = cheap_left - np.minimum(take, found)
        pages = np.maximum(pages - take, 1.0)
        r = np.clip(adapt(r, length, take > 0, paged), *bounds)
    return takes
