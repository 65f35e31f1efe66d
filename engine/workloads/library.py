"""Named workloads: documented parameter sets for the synthetic generator.

A scenario picks one with `workload = { preset = "dbench" }` and may override any field.
Rates are page touches per second of 4 KiB pages; footprints are in bytes.

web_static  - a web server streaming static files: a modest hot set of buffers, a page
              cache of the files, heavy network; few writes.
specweb99   - SPECweb99-like: dynamic pages, logs and caches; an 18 MB writable working set
              rewritten constantly (Clark et al. measured ~210 ms of migration downtime).
quake3      - a game server: small, very hot game state (2.8 MB), light network.
spec_cint   - a CPU-bound batch job (SPEC CINT-like): sequential sweeps over its data.
oltp        - a database: random reads and writes over a large buffer pool, hot index.
dbench      - a file server benchmark: a closed loop of reads through the page cache over a
              file set larger than memory; every extra page of memory is extra hits.
mmuncher    - a memory dirtier: writes as fast as it can over its whole footprint.
windows_idle - an idle Windows desktop: background touches, and the zero-page thread
              zeroing freed memory (zero writes).
linux_idle  - an idle Linux guest: no workload.
"""

from __future__ import annotations

from typing import Any

MiB = 1024**2

PRESETS: dict[str, dict[str, Any]] = {
    "web_static": {"reads_per_s": 2000, "writes_per_s": 100, "working_set": 256 * MiB,
                   "hot_set": 32 * MiB, "hot_access": 0.85, "net": "400Mbit/s",
                   "cpu_util": 0.4},
    "specweb99": {"reads_per_s": 20000, "writes_per_s": 30000, "hot_set": 18 * MiB,
                  "hot_access": 0.97, "net": "300Mbit/s", "cpu_util": 0.8},
    "quake3": {"reads_per_s": 5000, "writes_per_s": 40000, "hot_set": int(2.8 * MiB),
               "hot_access": 0.995, "net": "10Mbit/s", "cpu_util": 0.5},
    "spec_cint": {"reads_per_s": 3000, "writes_per_s": 1500, "order": "sequential",
                  "cpu_util": 1.0},
    "oltp": {"reads_per_s": 4000, "writes_per_s": 1500, "hot_access": 0.8,
             "net": "50Mbit/s", "cpu_util": 0.6},
    "dbench": {"reads_per_s": 4000, "writes_per_s": 1000, "working_set": 32 * MiB,
               "hot_set": 8 * MiB, "file_reads_per_s": 20000, "closed_loop": True,
               "cpu_util": 0.9},
    "mmuncher": {"reads_per_s": 0, "writes_per_s": 60000, "hot_access": 0.0,
                 "cpu_util": 1.0},
    "windows_idle": {"reads_per_s": 20, "writes_per_s": 5, "zero_writes": 0.9,
                     "working_set": 64 * MiB, "cpu_util": 0.02},
    "linux_idle": {"kind": "idle"},
}


def expand(data: Any) -> Any:
    """Plain workload data with a `preset` -> the preset's fields, then the given ones."""
    if not isinstance(data, dict) or data.get("preset") is None:
        return data
    name = data["preset"]
    if name not in PRESETS:
        raise ValueError(f"unknown workload preset {name!r}; expected one of "
                         f"{', '.join(sorted(PRESETS))}")
    merged = {**PRESETS[name], **{k: v for k, v in data.items() if k != "preset"}}
    return merged
