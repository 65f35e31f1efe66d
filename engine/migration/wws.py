"""The writable working set (Clark et al., section 3): how many distinct pages a VM writes
within windows of growing length. The hottest pages, written in even the shortest
window, can only move in the stop-and-copy; the curve tells how a pre-copy will go."""

from __future__ import annotations

import numpy as np

from engine.state import State

WINDOWS_S = (1, 2, 5, 10, 30, 60, 120, 300, 600)


def wws_pages(state: State, v: int) -> dict[str, int]:
    """Distinct pages written in the last w seconds, for each window w in WINDOWS_S."""
    off = int(state.vms["page_offset"][v])
    written = state.pages.written_before[off:off + int(state.vms["n_pages"][v])]
    written = written[written > 0] - 1  # the tick of each page's last write
    now = state.tick  # ticks written so far are 0..tick-1
    out = {}
    for w in WINDOWS_S:
        ticks = max(1, int(round(w / state.tick_s)))
        out[f"{w}s"] = int(np.count_nonzero(written >= now - ticks))
    return out
