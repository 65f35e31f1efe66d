"""The garbage collector's policy for a process that plays one big world for a long time.

A world lives as long as it is played: its scenario, tables and arrays' owners, and the
compiled loops' objects (some 140 k tracked objects on the 1,000-VM data center). The
collector's full passes walk every tracked object; one comes every ten ticks or so, and
there it took 20-30 ms a pass, 10 % of the data center's tick time over a run (measured
in engine_bench's window: 56.1 ms a tick against 50.2 ms frozen). Freezing what is alive
once the world is built moves it out of the collector's way: later passes walk only what
was made since. The console and the engine benchmark settle this way once the world is
built, `overcommit run` after its first tick (which loads the compiled loops it uses) on
worlds of a million pages or more.
"""

from __future__ import annotations

import gc


def settle_garbage() -> None:
    """Collect, then freeze what is left (the world and what serves it). Called again
    when the world is replaced, so the last one's objects are freed, not kept frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
