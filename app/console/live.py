"""What the console reads from the engine beyond the Snapshot, taken under the driver's
lock with each snapshot: live migrations (the engine's report of each, QEMU-style
counters and per-round records), the writable working set of the VMs they move, the
parts of the costs, and the network's links. Plain frozen data, safe on the UI thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import Simulation
from engine.migration.report import migration_report
from engine.migration.wws import wws_pages

RECENT_S = 300.0  # a finished migration stays on screen this long (simulated seconds)
ACTIVE = ("precopy", "stopcopy", "postcopy")


@dataclass(frozen=True)
class Money:
    """The parts of the costs (Snapshot has the totals) and this tick's rates."""

    power: float = 0.0
    capital: float = 0.0
    network: float = 0.0
    revenue_tick: float = 0.0
    costs_tick: float = 0.0
    penalties_tick: float = 0.0


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    up: bool
    capacity_bytes_per_s: float
    kinds: tuple[str, str]  # host, switch, gateway, storage

    @property
    def name(self) -> str:
        return f"{self.a}–{self.b}"


@dataclass(frozen=True)
class LiveData:
    # migration_report() of each active migration and of those ended within RECENT_S,
    # oldest first
    migrations: tuple[dict[str, Any], ...] = ()
    wws: dict[str, dict[str, int]] = field(default_factory=dict)  # VM -> window -> pages
    money: Money = Money()
    links: tuple[Link, ...] = ()

    def active(self) -> list[dict[str, Any]]:
        return [m for m in self.migrations if m["status"] in ACTIVE]

    def migrating(self) -> set[str]:
        """VMs with a migration in progress."""
        return {m["vm"] for m in self.active()}

    def precopying(self) -> set[str]:
        """VMs whose pre-copy may still be cancelled or switched to post-copy."""
        return {m["vm"] for m in self.migrations if m["status"] == "precopy"}

    def latest(self, vm: str) -> dict[str, Any] | None:
        """The VM's migration in progress, else its most recent one still shown."""
        mine = [m for m in self.migrations if m["vm"] == vm]
        active = [m for m in mine if m["status"] in ACTIVE]
        shown = active or mine
        return shown[-1] if shown else None


def read_live(sim: Simulation) -> LiveData:
    """Call under the driver's lock: it reads the simulation's state directly."""
    world = sim.world
    state = world.state
    now = state.time_s
    shown = [m for m in state.migrations
             if m.status in ACTIVE or (m.end_s >= 0 and now - m.end_s <= RECENT_S)]
    reports = tuple(migration_report(world, m) for m in shown)
    wws = {state.vms.ids[m.vm]: wws_pages(state, m.vm) for m in shown}
    money = state.money
    topology = world.topology
    graph = topology.graph
    links = tuple(
        Link(a, b, bool(topology.link_up[topology.link_index(a, b)]),
             float(data["capacity_bytes_per_s"]),
             (graph.nodes[a].get("kind", ""), graph.nodes[b].get("kind", "")))
        for a, b, data in graph.edges(data=True))
    return LiveData(reports, wws,
                    Money(money.power_cost, money.capital_cost, money.network_cost,
                          money.revenue_tick, money.costs_tick, money.penalties_tick),
                    links)


def vm_wws(sim: Simulation, vm: str) -> dict[str, int]:
    """One VM's writable working set (call under the driver's lock)."""
    state = sim.world.state
    return wws_pages(state, state.vms.index(vm))
