"""The tutorial (scenarios/tutorial/first-night.toml) teaches: it is won only by turning
page sharing on before placing the waiting customer, and by migrating an idle VM off h1
before the database's report; every shortcut loses a named objective.

Measured at the file's seed (the comments give the values, so the thresholds can be seen
to sit between winning and losing play): objectives are 0 web3 placed by 0:15 (seven VMs
running), 1 no SLA breach all night, 2 a profit of $5.00 by dawn.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import Simulation
from tests.conftest import TUTORIAL

Move = tuple[float, dict[str, Any]]

SHARING: Move = (0, {"kind": "set_sharing", "host": "h2", "mode": "esx"})


def _place(at: float, host: str = "h2") -> Move:
    return at, {"kind": "start_vm", "vm": "web3", "host": host}


def _migrate(at: float, vm: str = "desk1") -> Move:
    return at, {"kind": "migrate", "vm": vm, "to": "h2"}


# Sharing on at once, web3 on h2 once the scanner has merged web2's pages (0:08), desk1 to
# h2 once batch1 is gone (0:31). running 7, breaches 0, profit 5.78.
SOLUTION: list[Move] = [SHARING, _place(480), _migrate(1860)]

LOSING: dict[str, tuple[list[Move], int]] = {
    # web3 never placed: running 6 (< 7), and web1 breaches in db1's report.
    "nothing": ([], 0),
    # Placed without sharing: h2 swaps and blocks, 4 breaches.
    "place without sharing": ([_place(600), _migrate(1860)], 1),
    # Sharing and web3 right, but nobody leaves h1: web1 breaches twice in the report.
    "no migration": ([SHARING, _place(600)], 1),
}


def doomed(sim: Simulation, index: int) -> bool:
    """The objective failed, or can no longer be met (a cumulative count over its bound)."""
    obj = sim.snapshot().objectives[index]
    return obj["status"] == "failed" or (
        obj["status"] == "pending" and obj["metric"] == "sla_breaches"
        and obj["value"] > obj["at_most"])


def play(moves: list[Move], until_doomed: int | None = None) -> Simulation:
    """Run the tutorial headless, submitting each move at its time: to its end, or until
    objective `until_doomed` can no longer be met (checked each simulated minute)."""
    sim = Simulation.from_file(TUTORIAL)
    meta = sim.spec.scenario
    assert meta.duration is not None
    pending = sorted(moves, key=lambda m: m[0])
    minute = round(60 / meta.tick_s)
    for i in range(round(meta.duration / meta.tick_s)):
        while pending and pending[0][0] <= sim.time_s + 1e-9:
            at, command = pending.pop(0)
            verdict = sim.submit(command)
            assert verdict.ok, f"at {at}s: {command} rejected: {verdict.reason}"
        sim.step(1)
        if until_doomed is not None and i % minute == 0 and doomed(sim, until_doomed):
            break
    return sim


def _summary(sim: Simulation) -> str:
    return "; ".join(f"{o['description']}: {o['value']:.4g} {o['status']}"
                     for o in sim.snapshot().objectives)


def test_the_tutorial_is_won_with_sharing_and_a_migration() -> None:
    sim = play(SOLUTION)
    objectives = sim.snapshot().objectives
    assert [o["status"] for o in objectives] == ["met"] * 3, _summary(sim)
    assert objectives[2]["value"] >= 5.0  # a night worth dollars, not cents


@pytest.mark.parametrize("line", sorted(LOSING))
def test_every_shortcut_loses(line: str) -> None:
    moves, failing = LOSING[line]
    sim = play(moves, until_doomed=failing)
    assert doomed(sim, failing), _summary(sim)
