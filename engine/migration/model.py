"""Live migrations as data: one row per migration in a table of numpy columns.

Status goes precopy -> stopcopy -> done for pre-copy, and [precopy ->] postcopy -> done
for post-copy and hybrid; any active migration may end failed or cancelled. The phase
advances every active migration of a tick together over these columns (rates, cursors,
round starts, counters); page-level data (what the destination holds, the send list of
the current pass, the XBZRLE cache) lives in arenas (arena.py) while a migration runs.
`Migration` is a read-mostly view of one row for the rest of the engine, the report and
tests (`sim.world.state.migrations[0].status`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from engine.migration.arena import Arena

STATUSES = ("precopy", "stopcopy", "postcopy", "done", "failed", "cancelled")
PRECOPY, STOPCOPY, POSTCOPY, DONE, FAILED, CANCELLED = range(6)
ACTIVE = ("precopy", "stopcopy", "postcopy")
MODES = ("precopy", "postcopy", "hybrid")
ALGORITHMS = ("xen", "qemu")
XEN, QEMU = 0, 1
MAX_ROUNDS_KEPT = 256  # per migration; a migration that never converges keeps its last ones

F, N, B = np.float64, np.int64, np.bool_  # float, integer, flag columns
INF = float("inf")
COLUMNS: dict[str, tuple[Any, Any]] = {
    # what, where, how (set at the start)
    "vm": (N, -1), "src": (N, -1), "dst": (N, -1), "mode": (N, 0), "algorithm": (N, 0),
    "start_s": (F, 0.0), "max_rate": (F, 0.0), "min_rate": (F, 0.0),
    "downtime_limit_s": (F, 0.3), "activation_s": (F, 0.0), "postcopy_rate": (F, INF),
    "postcopy_after_s": (F, INF), "postcopy_after_passes": (N, 0),
    "auto_converge": (B, False), "xbzrle": (B, False), "prepaging": (B, True),
    "pml": (B, False), "free_page_hints": (B, False), "stun": (B, False),
    "changed_fraction": (F, 0.05),
    # state and results
    "status": (N, PRECOPY), "end_s": (F, -1.0), "downtime_s": (F, 0.0), "resume_s": (F, -1.0),
    "round_rate": (F, 0.0),  # the current cap (Xen: dynamic; QEMU: max bandwidth)
    "flow_rate": (F, 0.0),  # what the network gave this tick at that cap
    "path_rate": (F, 0.0),  # what it would give uncapped (stop-and-copy, new rounds)
    "postcopy_requested": (B, False),
    "bytes_sent": (N, 0), "pages_sent": (N, 0), "zero_pages": (N, 0), "normal_pages": (N, 0),
    "dirty_sync_count": (N, 0), "passes": (N, 0), "dirty_pages_rate": (F, 0.0),
    "expected_downtime_s": (F, 0.0), "throttle": (F, 0.0), "converge_strikes": (N, 0),
    "xbzrle_hits": (N, 0), "xbzrle_misses": (N, 0), "xbzrle_bytes": (N, 0),
    "xbzrle_overflow": (N, 0), "traps": (N, 0), "network_faults": (N, 0),
    "minor_faults": (N, 0), "pushed_pages": (N, 0), "stall_s": (F, 0.0),
    "stop_pages": (N, 0), "stop_bytes": (N, 0), "content_mismatches": (N, -1),
    "swap_read_pages": (N, 0), "swap_read_s": (F, 0.0),  # read back from the source's swap
    "read_s_per_byte": (F, 0.0),  # last tick: seconds waited for those reads per byte sent
    # the current pass: a send list (an arena region), how far it got, Xen's peeked batch
    "page_base": (N, -1), "list_base": (N, -1), "list_len": (N, 0), "cursor": (N, 0),
    "batch_end": (N, 0), "wrap_at": (N, 0), "pass_full": (B, False), "cache_base": (N, -1),
    "cache_slots": (N, 0),
    "dirty_base": (N, -1), "dirty_len": (N, 0),  # pages dirtied since the last sync
    "carry_bytes": (F, 0.0),  # bytes of the next page already on the wire
    "last_sync_s": (F, 0.0),
    # the current round (closed into a Round at each dirty-log sync)
    "round_open": (B, False), "round_index": (N, 0), "round_start_s": (F, 0.0),
    "round_cap": (F, 0.0), "prev_round_sent": (N, -1),
    "round_to_send": (N, 0), "round_sent": (N, 0), "round_skipped": (N, 0),
    "round_bytes": (N, 0),
    # QEMU: bandwidth window and auto-converge period
    "window_start_s": (F, 0.0), "window_bytes": (F, 0.0), "bandwidth": (F, 0.0),
    "period_start_s": (F, 0.0), "period_dirty": (N, 0), "period_bytes": (N, 0),
    # post-copy: the push (pre-paging pivot and bubble edges, or push-only position)
    "pivot": (N, 0), "edge_lo": (N, 0), "edge_hi": (N, -1), "push_pos": (N, 0),
    "fresh": (B, False),  # started by a command this tick: its first pass is set up next
    "vm_free_s": (F, 0.0),  # until when the vCPU waits (a fault crossing the tick's end)
    "push_from_s": (F, 0.0),  # the push may start (after the CPU state went across)
}
# Columns a save from before them lacks (their fill stands for "not counted").
NEWER_COLUMNS = frozenset({"swap_read_pages", "swap_read_s", "read_s_per_byte"})
CODED = {"status": STATUSES, "mode": MODES, "algorithm": ALGORITHMS}


@dataclass
class Round:
    index: int
    start_s: float
    duration_s: float = 0.0
    rate_bytes_per_s: float = 0.0  # the cap this round ran under
    pages_to_send: int = 0
    pages_sent: int = 0
    pages_skipped: int = 0  # dirtied again during the round: they go later (Xen)
    pages_dirtied: int = 0  # during the round, i.e. the next round's work
    bytes_sent: int = 0


class Migration:
    """One row of the table, read through attributes (`mig.status`, `mig.bytes_sent`)."""

    __slots__ = ("_table", "id")

    def __init__(self, table: MigrationTable, row: int) -> None:
        self._table = table
        self.id = row

    def __getattr__(self, name: str) -> Any:
        if name not in COLUMNS:
            raise AttributeError(name)
        value = self._table[name][self.id].item()
        return CODED[name][value] if name in CODED else value

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def reason(self) -> str:
        return self._table.reasons[self.id]

    @property
    def rounds(self) -> list[Round]:
        return self._table.round_list(self.id)

    def __repr__(self) -> str:
        return f"Migration(id={self.id}, vm={self.vm}, status={self.status!r})"


class MigrationTable:
    """Every migration ever started (rows are only appended) and their page arenas."""

    def __init__(self) -> None:
        self.n = 0
        self._cols = {name: np.full(16, fill, dtype) for name, (dtype, fill) in COLUMNS.items()}
        self.rounds: list[list[Round]] = []
        self.reasons: list[str] = []
        # Per page of the VM: content as sent, whether the destination has it, pushed.
        self.pages = Arena({"sent": (np.uint64, 0), "at_dest": (np.bool_, False),
                            "pushed": (np.bool_, False),
                            # post-copy: its read-ahead cluster is back from the source's
                            # swap (in the source's swap cache: read without the latency)
                            "swap_read": (np.bool_, False)})
        self.lists = Arena({"entry": (np.int32, -1)})  # the pass's pages in send order
        self.cache = Arena({"page": (np.int32, -1), "age": (np.int64, 0)})  # XBZRLE
        # The pages each pre-copy's dirty log gained since its last sync, in the order
        # they were dirtied: a sync costs what was dirtied, not the VM's size. Held as
        # page + 1, so that the fill is 0 and a region of a VM's size costs no memory
        # until written (saves hold the page, -1 where never written).
        self.dirty = Arena({"page": (np.int32, 0)}, sparse=True)

    @overload
    def __getitem__(self, key: str) -> npt.NDArray[Any]: ...

    @overload
    def __getitem__(self, key: int) -> Migration: ...

    def __getitem__(self, key: str | int) -> npt.NDArray[Any] | Migration:
        if isinstance(key, str):
            return self._cols[key][:self.n]
        row = key + self.n if key < 0 else key
        if not 0 <= row < self.n:
            raise IndexError(key)
        return Migration(self, row)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        return (Migration(self, i) for i in range(self.n))

    def __bool__(self) -> bool:
        return self.n > 0

    def add(self, **values: Any) -> int:
        if self.n == self._cols["vm"].size:
            for name, arr in self._cols.items():
                bigger = np.full(2 * arr.size, COLUMNS[name][1], arr.dtype)
                bigger[:self.n] = arr
                self._cols[name] = bigger
        row = self.n
        self.n += 1
        for name, value in values.items():
            self._cols[name][row] = value
        self.rounds.append([])
        self.reasons.append("")
        return row

    def active_rows(self, *statuses: int) -> npt.NDArray[np.int64]:
        status = self._cols["status"][:self.n]
        if not statuses:
            return np.flatnonzero(status <= POSTCOPY).astype(np.int64)
        mask = status == statuses[0]
        for s in statuses[1:]:
            mask |= status == s
        return np.flatnonzero(mask).astype(np.int64)

    def row_of_vm(self, v: int) -> int | None:
        """The VM's active migration, if any."""
        rows = np.flatnonzero((self["vm"] == v) & (self["status"] <= POSTCOPY))
        return int(rows[0]) if rows.size else None

    def round_list(self, row: int) -> list[Round]:
        """The closed rounds and, while a pass runs, the open one."""
        closed = list(self.rounds[row])
        if self._cols["round_open"][row]:
            closed.append(self._open_round(row))
        return closed

    def _open_round(self, row: int) -> Round:
        c = self._cols
        return Round(
            index=int(c["round_index"][row]), start_s=float(c["round_start_s"][row]),
            rate_bytes_per_s=float(c["round_cap"][row]),
            pages_to_send=int(c["round_to_send"][row]), pages_sent=int(c["round_sent"][row]),
            pages_skipped=int(c["round_skipped"][row]), bytes_sent=int(c["round_bytes"][row]))

    def close_round(self, row: int, at_s: float, dirtied: int) -> None:
        """End the open round at `at_s` (a sync, a switch, a failure)."""
        if not self._cols["round_open"][row]:
            return
        self._cols["round_open"][row] = False
        open_round = self._open_round(row)
        open_round.duration_s = max(at_s - open_round.start_s, 0.0)
        open_round.pages_dirtied = dirtied
        kept = self.rounds[row]
        kept.append(open_round)
        if len(kept) > MAX_ROUNDS_KEPT:
            del kept[0]

    def open_round(self, rows: npt.NDArray[np.int64], at_s: npt.NDArray[np.float64]) -> None:
        c = self._cols
        c["round_open"][rows] = True
        c["round_index"][rows] += 1
        c["round_start_s"][rows] = at_s
        c["round_cap"][rows] = c["round_rate"][rows]
        c["round_to_send"][rows] = c["list_len"][rows] - c["cursor"][rows]
        for name in ("round_sent", "round_skipped", "round_bytes"):
            c[name][rows] = 0

    # -- saves --------------------------------------------------------------------------
    def to_plain(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        meta = {"n": self.n, "reasons": list(self.reasons),
                "rounds": [[asdict(r) for r in rounds] for rounds in self.rounds],
                "live": [self.pages.live, self.lists.live, self.cache.live, self.dirty.live]}
        arrays = {f"migrations.{name}": self[name].copy() for name in COLUMNS}
        arrays.update(self.pages.to_plain("migrations.pages"))
        arrays.update(self.lists.to_plain("migrations.lists"))
        arrays.update(self.cache.to_plain("migrations.cache"))
        arrays.update(self.dirty.to_plain("migrations.dirty"))
        arrays["migrations.dirty.page"] -= 1
        return meta, arrays

    @classmethod
    def from_plain(cls, meta: dict[str, Any],
                   arrays: dict[str, npt.NDArray[Any]]) -> MigrationTable:
        table = cls()
        n = int(meta["n"])
        for name, (dtype, fill) in COLUMNS.items():
            col = np.full(max(16, n), fill, dtype)
            if name in NEWER_COLUMNS and f"migrations.{name}" not in arrays:
                table._cols[name] = col  # a save from before the column: none counted
                continue
            col[:n] = arrays[f"migrations.{name}"]
            table._cols[name] = col
        table.n = n
        table.reasons = [str(r) for r in meta["reasons"]]
        table.rounds = [[Round(**r) for r in rounds] for rounds in meta["rounds"]]
        live = [int(x) for x in meta["live"]]
        table.pages.load(arrays, "migrations.pages", live[0])
        table.lists.load(arrays, "migrations.lists", live[1])
        table.cache.load(arrays, "migrations.cache", live[2])
        table.dirty.load(arrays, "migrations.dirty", live[3])
        table.dirty["page"][:] += 1
        return table


def table_of(state: Any) -> MigrationTable:
    """The state's migration table (a fresh state holds an empty list until the first)."""
    if not isinstance(state.migrations, MigrationTable):
        state.migrations = MigrationTable()
    table: MigrationTable = state.migrations
    return table


def from_old_saves(saved: list[dict[str, Any]]) -> MigrationTable:
    """Migrations of a save written before the table (one object per migration): the
    ended ones come back with their counters; one still running cannot be resumed."""
    table = MigrationTable()
    for m in saved:
        if m["status"] in ACTIVE:
            raise ValueError("saved during a live migration by an older Overcommit; load it "
                             "with that version and let the migration finish first")
        values = {k: v for k, v in m.items() if k in COLUMNS and k not in CODED}
        values.update({k: CODED[k].index(m[k]) for k in CODED})
        row = table.add(**values)
        table.reasons[row] = str(m.get("reason", ""))
        table.rounds[row] = [Round(**r) for r in m.get("rounds", [])]
        table["round_index"][row] = len(table.rounds[row])
    return table
