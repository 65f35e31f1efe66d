"""A live migration in progress: its state machine, counters and per-round records.

Status goes reserving -> precopy -> stopcopy -> done for pre-copy, and
reserving -> [precopy, one round for hybrid] -> postcopy -> done for post-copy; any
active migration may end failed or cancelled. A few migrations run at once, so these are
plain objects; the page-level parts (the send list, what the destination holds) are numpy
arrays over the VM's pages, indexed from the VM's first page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

ACTIVE = ("precopy", "stopcopy", "postcopy")


@dataclass
class Round:
    index: int
    start_s: float
    duration_s: float = 0.0
    rate_bytes_per_s: float = 0.0  # the cap this round ran under
    pages_to_send: int = 0
    pages_sent: int = 0
    pages_skipped: int = 0  # dirtied again during the round: they go later
    pages_dirtied: int = 0  # during the round, i.e. the next round's work
    bytes_sent: int = 0


@dataclass
class Migration:
    id: int
    vm: int
    src: int
    dst: int
    mode: str
    algorithm: str
    start_s: float
    max_rate: float
    min_rate: float
    downtime_limit_s: float
    auto_converge: bool = False
    xbzrle: bool = False
    prepaging: bool = True
    pml: bool = False
    free_page_hints: bool = False
    stun: bool = False
    round_trip_s: float = 0.0002
    page_header: int = 8
    status: str = "precopy"
    end_s: float = -1.0
    downtime_s: float = 0.0
    resume_s: float = -1.0  # when the VM ran again (at the destination)
    reason: str = ""
    round_rate: float = 0.0  # the current cap (Xen: dynamic; QEMU: max bandwidth)
    flow_rate: float = 0.0  # what the network gave this tick
    bytes_sent: int = 0
    pages_sent: int = 0
    zero_pages: int = 0  # sent as a header only (QEMU "duplicate")
    normal_pages: int = 0
    dirty_sync_count: int = 0
    dirty_pages_rate: float = 0.0  # pages/s in the last completed round
    expected_downtime_s: float = 0.0
    throttle: float = 0.0  # auto-converge vCPU throttle
    converge_strikes: int = 0
    xbzrle_hits: int = 0
    xbzrle_misses: int = 0
    xbzrle_bytes: int = 0
    traps: int = 0  # dirty-logging write faults
    network_faults: int = 0  # post-copy demand fetches
    minor_faults: int = 0  # post-copy touches of pages already pushed
    pushed_pages: int = 0
    pivot: int = 0  # post-copy pre-paging: where the last fault was
    stop_pages: int = 0  # sent in the stop-and-copy phase
    stop_bytes: int = 0
    rounds: list[Round] = field(default_factory=list)
    # page arrays, indexed by page - the VM's first page
    to_send: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    cursor: int = 0
    sent_content: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))
    at_dest: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    in_cache: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    pushed: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    content_mismatches: int = -1  # checked at switch-over; -1 = not yet

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    _ARRAYS = ("to_send", "sent_content", "at_dest", "in_cache", "pushed")

    def to_plain(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        meta = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in self._ARRAYS and f.name != "rounds"}
        meta["rounds"] = [asdict(r) for r in self.rounds]
        arrays = {f"migration.{self.id}.{name}": getattr(self, name) for name in self._ARRAYS}
        return meta, arrays

    @classmethod
    def from_plain(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Migration:
        data = dict(meta)
        rounds = [Round(**r) for r in data.pop("rounds")]
        mig = cls(**data)
        mig.rounds = rounds
        for name in cls._ARRAYS:
            setattr(mig, name, arrays[f"migration.{mig.id}.{name}"])
        return mig
