"""Allocation targets (ESX sections 5-6): the exact fill level against a bisection on the
same sums, the bounds it must respect, and the idle tax's effect on two VMs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Simulation
from engine.memory.allocation import available_pages, compute_targets, fill_level
from tests.conftest import ROOT


def bisection_level(host: np.ndarray, per_x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    avail: np.ndarray, steps: int = 200) -> np.ndarray:
    """The same x by bisection on log x (what the engine did before the exact solve)."""
    n = avail.size

    def total(x: np.ndarray) -> np.ndarray:
        return np.bincount(host, weights=np.clip(per_x * x[host], lo, hi), minlength=n)

    log_lo, log_hi = np.full(n, -80.0), np.full(n, 80.0)
    for _ in range(steps):
        mid = (log_lo + log_hi) / 2
        fits = total(np.exp(mid)) <= avail
        log_lo = np.where(fits, mid, log_lo)
        log_hi = np.where(fits, log_hi, mid)
    return np.exp(log_lo)


def _world(rng: np.random.Generator, n_hosts: int, n_vms: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    host = rng.integers(0, n_hosts, n_vms)
    per_x = np.exp(rng.uniform(-3, 3, n_vms))
    lo = np.floor(rng.uniform(0, 200, n_vms)) * (rng.random(n_vms) < 0.7)
    hi = lo + np.floor(rng.uniform(0, 2000, n_vms))
    need_lo = np.bincount(host, weights=lo, minlength=n_hosts)
    need_hi = np.bincount(host, weights=hi, minlength=n_hosts)
    # From short of the lo's to more than the hi's: every case of a host.
    avail = need_lo + rng.uniform(-0.2, 1.2, n_hosts) * (need_hi - need_lo)
    return host, per_x, lo, hi, np.maximum(avail, 0.0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_hosts=st.integers(1, 12),
       n_vms=st.integers(1, 60))
def test_fill_level_gives_the_bisections_allocation(seed: int, n_hosts: int,
                                                     n_vms: int) -> None:
    host, per_x, lo, hi, avail = _world(np.random.default_rng(seed), n_hosts, n_vms)
    x = fill_level(host, per_x, lo, hi, avail)
    ref = bisection_level(host, per_x, lo, hi, avail)
    alloc = np.clip(per_x * x[host], lo, hi)
    ref_alloc = np.clip(per_x * ref[host], lo, hi)
    # The same allocation, to rounding: a bend or a flat stretch may leave x itself free.
    np.testing.assert_allclose(alloc, ref_alloc, rtol=1e-9, atol=1e-6)
    total = np.bincount(host, weights=alloc, minlength=n_hosts)
    lo_sum = np.bincount(host, weights=lo, minlength=n_hosts)
    hi_sum = np.bincount(host, weights=hi, minlength=n_hosts)
    has_vms = np.bincount(host, minlength=n_hosts) > 0
    short = has_vms & (lo_sum > avail)
    plenty = has_vms & (hi_sum <= avail)
    between = has_vms & ~short & ~plenty
    # Short of even the lo's: every VM at its lo; room for every hi: every VM at its hi;
    # between: exactly what the host can give.
    assert (x[short] == 0).all()
    assert np.isinf(x[plenty]).all()
    np.testing.assert_allclose(total[between], avail[between], rtol=1e-12, atol=1e-6)


@pytest.mark.parametrize("n_hosts", [65_536, 70_000])
def test_fill_level_orders_the_bends_of_hosts_numbered_past_two_bytes(n_hosts: int) -> None:
    # The bends are sorted by host as two-byte integers up to 65,536 hosts, wider past
    # that: hosts k and k + 65,536 (past two bytes, the same two low bytes) and the
    # highest-numbered one each get the bisection's level.
    rng = np.random.default_rng(3)
    host, per_x, lo, hi, avail = _world(rng, 8, 400)
    wide = n_hosts > 65_536
    host = np.where(host < 4, host, np.where(host < 7, host - 4 + (65_536 if wide else 65_532),
                                             n_hosts - 1))
    need_lo = np.bincount(host, weights=lo, minlength=n_hosts)
    need_hi = np.bincount(host, weights=hi, minlength=n_hosts)
    avail = np.maximum(need_lo + 0.5 * (need_hi - need_lo), 0.0)
    x = fill_level(host, per_x, lo, hi, avail)
    ref = bisection_level(host, per_x, lo, hi, avail)
    np.testing.assert_allclose(np.clip(per_x * x[host], lo, hi),
                               np.clip(per_x * ref[host], lo, hi), rtol=1e-9, atol=1e-6)


def test_fill_level_finds_the_segment_past_many_bends() -> None:
    """One host of 5,000 VMs whose bends interleave: the answer lies far along them."""
    rng = np.random.default_rng(7)
    host, per_x, lo, hi, _ = _world(rng, 1, 5000)
    for share in (0.0, 0.01, 0.5, 0.99, 1.0):
        avail = np.array([lo.sum() + share * (hi.sum() - lo.sum())])
        x = fill_level(host, per_x, lo, hi, avail)
        total = np.clip(per_x * x[0], lo, hi).sum()
        assert total == np.float64(avail[0]) or abs(total - avail[0]) <= 1e-9 * avail[0]
        if 0.0 < share < 1.0:
            # The largest such x: a hair more and the host is over.
            assert np.clip(per_x * x[0] * (1 + 1e-9), lo, hi).sum() > avail[0]


def test_the_idle_tax_charges_an_idle_page_k_times_an_active_one() -> None:
    """Equal shares, one VM idle, one active, tax 75% (k = 4): unclipped, the active VM
    gets four times the idle one's pages, and together exactly what the host gives."""
    tau = 0.75
    k = 1 / (1 - tau)
    cost = np.array([0.0 + k * 1.0, 1.0])  # f = 0 (idle), f = 1 (active)
    per_x = 1000.0 / cost
    host = np.zeros(2, np.int64)
    x = fill_level(host, per_x, np.zeros(2), np.full(2, 1e6), np.array([5000.0]))
    alloc = per_x * x[0]
    np.testing.assert_allclose(alloc, [1000.0, 4000.0])


def test_targets_of_a_world_add_up_to_what_its_host_gives() -> None:
    """ESX Fig. 7's host: two VMs of equal shares that do not both fit. With no tax their
    targets are equal; with a 75 % tax they go by their idle-taxed cost; both times they add up
    to what the host gives, less at most a page each (targets are whole pages)."""
    sim = Simulation.from_file(ROOT / "scenarios" / "paper" / "esx-fig7-idle-tax.toml")
    sim.step(120)
    world = sim.world
    vms = world.state.vms
    for tax in (0.0, 0.75):
        world.state.reclaim.hosts["idle_tax"][:] = tax
        targets = compute_targets(world)
        avail = float(available_pages(world)[0])
        assert (targets < vms["max_pages"]).all()
        assert avail - 2 < targets.sum() <= avail
        idle, busy = targets
        if tax == 0.0:
            assert abs(int(idle) - int(busy)) <= 1
        else:
            # Pages in inverse proportion to their cost f + k (1 - f), k = 1 / (1 - tax).
            f = vms["active_estimate"]
            cost = f + (1 - f) / (1 - tax)
            assert busy > idle
            assert busy / idle == pytest.approx(cost[0] / cost[1], rel=1e-4)
