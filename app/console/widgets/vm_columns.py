"""The VM table's columns, as data: the basics, allocation and reclamation, and service
and SLA, switched by `c`. Each column knows its text (from a VMView row), its sort key
(from the snapshot's columns, for every VM at once) and its priority: on a narrow
terminal the columns of highest number drop out first."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from app.console.format import duration, money, percent, rate_text, short_bytes
from app.console.widgets.service_panel import CAUSES
from engine import VMView
from engine.report import VMRows
from engine.snapshot import STATUSES
from engine.state import LOSS_CAUSES
from engine.units import format_bytes

Keys = Callable[[VMRows], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    key_of: Keys  # what sorting compares, for every VM of a snapshot
    text: Callable[[VMView], str]
    right: bool = False
    priority: int = 5  # 1 stays longest on a narrow terminal


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts vm2 before vm10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.findall(r"\d+|\D+", text))


@lru_cache(maxsize=64)
def _ranks(names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    order = sorted(range(len(names)), key=lambda i: natural(names[i]))
    ranks = np.empty(len(names), np.float64)
    ranks[order] = np.arange(len(names))
    return ranks


def natural_ranks(rows: VMRows) -> npt.NDArray[np.float64]:
    """Each VM's place in the natural order of the ids (cached per set of VMs)."""
    return _ranks(rows.ids)


def _texts(text_of: Callable[[VMRows], tuple[str, ...]]) -> Keys:
    """Sort strings in natural order (a rank per VM)."""
    def key_of(rows: VMRows) -> npt.NDArray[np.float64]:
        names = text_of(rows)
        place = {name: i for i, name in enumerate(sorted(set(names), key=natural))}
        return np.array([place[n] for n in names], np.float64)
    return key_of


def _col(name: str) -> Keys:
    return lambda rows: np.asarray(rows.columns[name], np.float64)


def _where_of(rows: VMRows) -> tuple[str, ...]:
    hosts, codes = rows.columns["host_index"].tolist(), rows.columns["status_code"].tolist()
    return tuple(rows.host_ids[h] if h >= 0 else STATUSES[c] for h, c in zip(hosts, codes,
                                                                             strict=True))


def where(vm: VMView) -> str:
    """The host, or why there is none: queued (never started) or stopped."""
    return vm.host or vm.status


def _service(vm: VMView) -> str:
    if not vm.running or vm.running_s <= 0:  # it has served nothing yet
        return "—"
    flag = " !" if vm.service_level < 0.99 else ""
    return percent(vm.service_level) + flag


def _running(text: Callable[[VMView], str]) -> Callable[[VMView], str]:
    return lambda v: text(v) if v.running else "—"


def _balloon(vm: VMView) -> str:
    if not vm.balloon_driver:
        return "no driver"
    if vm.balloon_target_bytes != vm.balloon_bytes:
        return f"{short_bytes(vm.balloon_bytes)}→{short_bytes(vm.balloon_target_bytes)}"
    return short_bytes(vm.balloon_bytes)


def _short(name: str) -> Callable[[VMView], str]:
    return lambda v: short_bytes(getattr(v, name))


def _active(vm: VMView) -> str:
    return f"{vm.active_estimate * 100:.0f}/{vm.active_true * 100:.0f}%"


def _service_key(rows: VMRows) -> npt.NDArray[np.float64]:
    cols = rows.columns
    return np.where(cols["running"], cols["service_level"], -1.0)


ID = Column("vm", "VM", 10, lambda rows: natural_ranks(rows), lambda v: v.id, priority=0)
HOST = Column("host", "Host", 7, _texts(_where_of), where, priority=0)
SERVICE = Column("service", "Service", 8, _service_key, _service, right=True, priority=1)
RESIDENT = Column("resident", "Resident", 8, _col("resident_bytes"),
                  lambda v: format_bytes(v.resident_bytes), right=True, priority=2)
TARGET = Column("target", "Target", 8, _col("target_bytes"),
                lambda v: format_bytes(v.target_bytes), right=True, priority=4)

BASIC: tuple[Column, ...] = (  # most telling first: narrow screens show the left ones
    ID, HOST, SERVICE, RESIDENT,
    Column("configured", "Memory", 8, _col("configured_bytes"),
           lambda v: format_bytes(v.configured_bytes), right=True, priority=3),
    TARGET,
    Column("shares", "Shares", 6, _col("shares"), lambda v: str(v.shares), right=True,
           priority=5),
    Column("workload", "Workload", 10, _texts(lambda rows: tuple(
        (s.app or s.workload.kind) for s in rows.specs)),
           lambda v: v.workload.split(":")[-1], priority=6),
    Column("tenant", "Tenant", 8, _texts(lambda rows: tuple(s.tenant for s in rows.specs)),
           lambda v: v.tenant, priority=7),
)

MEMORY: tuple[Column, ...] = (  # allocation and reclamation (ESX sections 3-6)
    ID, HOST,
    Column("resident", "Resid.", 6, _col("resident_bytes"), _short("resident_bytes"),
           right=True, priority=2),
    Column("target", "Target", 6, _col("target_bytes"), _short("target_bytes"), right=True,
           priority=2),
    Column("balloon", "Balloon→tgt", 11, _col("balloon_bytes"), _balloon, right=True,
           priority=3),
    Column("swapped", "Swap", 5, _col("swapped_bytes"), _short("swapped_bytes"),
           right=True, priority=3),
    Column("faults", "Gflt/s", 6, _col("guest_faults_per_s"),
           _running(lambda v: rate_text(v.guest_faults_per_s)), right=True, priority=5),
    Column("swapins", "Swin/s", 6, _col("swapins_per_s"),
           _running(lambda v: rate_text(v.swapins_per_s)), right=True, priority=4),
    Column("active", "Act est/tru", 11, _col("active_estimate"), _running(_active),
           right=True, priority=6),
    Column("rho", "ρ", 6, _col("rho"), _running(lambda v: f"{v.rho:.3g}"), right=True,
           priority=6),
    Column("throughput", "Thru/s", 6, _col("throughput_per_s"),
           _running(lambda v: rate_text(v.throughput_per_s)), right=True, priority=7),
    Column("blocked", "Blk", 3, _col("blocked"), lambda v: "BLK" if v.blocked else "",
           priority=4),
    SERVICE,
)


def _top_loss(vm: VMView) -> str:
    cause, seconds = max(vm.lost_s.items(), key=lambda kv: kv[1], default=("", 0.0))
    return f"{CAUSES.get(cause, cause)} {duration(seconds)}" if seconds > 0 else ""


def _contracted(text: Callable[[VMView], str]) -> Callable[[VMView], str]:
    """A VM that never ran (queued) has no service to average."""
    return lambda v: "—" if v.status == "queued" else text(v)


def _most_lost(rows: VMRows) -> npt.NDArray[np.float64]:
    return np.max([rows.columns[f"lost_{c}_s"] for c in LOSS_CAUSES], axis=0)


def _contracted_key(name: str) -> Keys:
    return lambda rows: np.where(rows.columns["status_code"] == 0, -1.0,
                                 rows.columns[name])


SLA: tuple[Column, ...] = (  # service, SLA and money (MECHANISMS section 12)
    ID, HOST, SERVICE,
    Column("service_avg", "Avg", 7, _contracted_key("service_level_avg"),
           _contracted(lambda v: percent(v.service_level_avg)), right=True, priority=2),
    Column("availability", "Avail", 7, _contracted_key("availability"),
           _contracted(lambda v: percent(v.availability)), right=True, priority=3),
    Column("latency", "Latency", 8, _col("latency_s"),
           _running(lambda v: duration(v.latency_s)), right=True, priority=5),
    Column("breaches", "Brch", 4, _col("sla_breaches"), lambda v: str(v.sla_breaches),
           right=True, priority=2),
    Column("revenue", "Revenue", 9, _col("revenue"), lambda v: money(v.revenue),
           right=True, priority=4),
    Column("penalties", "Penalty", 9, _col("penalties"), lambda v: money(v.penalties),
           right=True, priority=4),
    Column("lost", "Most lost to", 20, _most_lost, _top_loss, priority=6),
)

COLUMN_SETS: dict[str, tuple[Column, ...]] = {"basic": BASIC, "memory": MEMORY, "sla": SLA}
COLUMN_SET_TITLES = {"basic": "VMs", "memory": "VMs: allocation and reclamation",
                     "sla": "VMs: service, SLA and money"}
