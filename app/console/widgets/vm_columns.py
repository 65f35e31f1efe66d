"""The VM table's columns, as data: the default set and the memory (allocation and
reclamation) set that `c` switches to. Each column knows its text and its sort key."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.console.format import money, percent, rate_text, short_bytes
from app.console.widgets.service_panel import CAUSES
from engine import VMView
from engine.units import format_bytes, format_seconds


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    raw: Callable[[VMView], Any]  # what sorting compares
    text: Callable[[VMView], str]
    right: bool = False


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts vm2 before vm10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.findall(r"\d+|\D+", text))


def where(vm: VMView) -> str:
    """The host, or why there is none: queued (never started) or stopped."""
    return vm.host or vm.status


def _service(vm: VMView) -> str:
    if not vm.running:
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


ID = Column("vm", "VM", 10, lambda v: natural(v.id), lambda v: v.id)
HOST = Column("host", "Host", 7, lambda v: natural(where(v)), where)
SERVICE = Column("service", "Service", 8, lambda v: v.service_level if v.running else -1.0,
                 _service, right=True)
RESIDENT = Column("resident", "Resident", 8, lambda v: v.resident_bytes,
                  lambda v: format_bytes(v.resident_bytes), right=True)
TARGET = Column("target", "Target", 8, lambda v: v.target_bytes,
                lambda v: format_bytes(v.target_bytes), right=True)

BASIC: tuple[Column, ...] = (  # most telling first: narrow screens show the left ones
    ID, HOST, SERVICE, RESIDENT,
    Column("configured", "Memory", 8, lambda v: v.configured_bytes,
           lambda v: format_bytes(v.configured_bytes), right=True),
    TARGET,
    Column("shares", "Shares", 6, lambda v: v.shares, lambda v: str(v.shares), right=True),
    Column("workload", "Workload", 10, lambda v: natural(v.workload),
           lambda v: v.workload.split(":")[-1]),
    Column("tenant", "Tenant", 8, lambda v: natural(v.tenant), lambda v: v.tenant),
)

MEMORY: tuple[Column, ...] = (  # allocation and reclamation (ESX sections 3-6)
    ID, HOST,
    Column("resident", "Resid.", 6, lambda v: v.resident_bytes, _short("resident_bytes"),
           right=True),
    Column("target", "Target", 6, lambda v: v.target_bytes, _short("target_bytes"), right=True),
    Column("balloon", "Balloon→tgt", 11, lambda v: (v.balloon_bytes, v.balloon_target_bytes),
           _balloon, right=True),
    Column("swapped", "Swap", 5, lambda v: v.swapped_bytes, _short("swapped_bytes"),
           right=True),
    Column("faults", "Gflt/s", 6, lambda v: v.guest_faults_per_s,
           _running(lambda v: rate_text(v.guest_faults_per_s)), right=True),
    Column("swapins", "Swin/s", 6, lambda v: v.swapins_per_s,
           _running(lambda v: rate_text(v.swapins_per_s)), right=True),
    Column("active", "Act est/tru", 11, lambda v: v.active_estimate, _running(_active),
           right=True),
    Column("rho", "ρ", 6, lambda v: v.rho, _running(lambda v: f"{v.rho:.3g}"), right=True),
    Column("throughput", "Thru/s", 6, lambda v: v.throughput_per_s,
           _running(lambda v: rate_text(v.throughput_per_s)), right=True),
    Column("blocked", "Blk", 3, lambda v: v.blocked, lambda v: "BLK" if v.blocked else ""),
    SERVICE,
)



def _top_loss(vm: VMView) -> str:
    cause, seconds = max(vm.lost_s.items(), key=lambda kv: kv[1], default=("", 0.0))
    return f"{CAUSES.get(cause, cause)} {format_seconds(seconds)}" if seconds > 0 else ""


def _contracted(text: Callable[[VMView], str]) -> Callable[[VMView], str]:
    """A VM that never ran (queued) has no service to average."""
    return lambda v: "—" if v.status == "queued" else text(v)


SLA: tuple[Column, ...] = (  # service, SLA and money (MECHANISMS section 12)
    ID, HOST, SERVICE,
    Column("service_avg", "Avg", 7, lambda v: v.service_level_avg,
           _contracted(lambda v: percent(v.service_level_avg)), right=True),
    Column("availability", "Avail", 7, lambda v: v.availability,
           _contracted(lambda v: percent(v.availability)), right=True),
    Column("latency", "Latency", 8, lambda v: v.latency_s,
           _running(lambda v: format_seconds(v.latency_s)), right=True),
    Column("breaches", "Brch", 4, lambda v: v.sla_breaches, lambda v: str(v.sla_breaches),
           right=True),
    Column("revenue", "Revenue", 9, lambda v: v.revenue, lambda v: money(v.revenue),
           right=True),
    Column("penalties", "Penalty", 9, lambda v: v.penalties, lambda v: money(v.penalties),
           right=True),
    Column("lost", "Most lost to", 20, lambda v: max(v.lost_s.values(), default=0.0),
           _top_loss),
)

COLUMN_SETS: dict[str, tuple[Column, ...]] = {"basic": BASIC, "memory": MEMORY, "sla": SLA}
COLUMN_SET_TITLES = {"basic": "VMs", "memory": "VMs: allocation and reclamation",
                     "sla": "VMs: service, SLA and money"}
