"""Touch bits per sampling period (engine/memory/recency.py): the true active fraction is
exact without clearing the pages at a period's end, and a period starts with its bit
clean although the byte array is never reset as a whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import Simulation, parse_scenario
from engine.memory import recency
from tests.conftest import small_spec


def test_the_true_active_fraction_counts_each_periods_distinct_touches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = small_spec()
    data["policy"]["memory"]["sample_period"] = "5s"
    sim = Simulation.from_spec(parse_scenario(data))
    state = sim.world.state
    seen: list[np.ndarray] = []
    original = recency.mark

    def spy(state_: Any, pages: np.ndarray) -> None:
        seen.append(pages.copy())
        original(state_, pages)

    monkeypatch.setattr(recency, "mark", spy)
    sim.step(1)  # tick 0 starts period 1
    vms = state.vms
    for _ in range(12):  # periods of 5 ticks; more than the eight bits wrap around
        seen.clear()
        sim.step(5)
        touched = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        per_vm = np.bincount(vms.vm_of_pages(touched), minlength=len(vms))
        assert np.array_equal(vms["active_true"] * vms["n_pages"], per_vm)
        # The period that starts now has a clean bit everywhere.
        assert not (state.pages.touched & np.uint8(state.touch_bit)).any()
    assert per_vm[:2].min() > 0


def test_a_save_from_before_the_touch_bits_keeps_the_guests_recency() -> None:
    from engine.persistence import from_plain

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(45)  # mid-way through the second 30 s period
    meta, arrays = sim.save_state()
    recent = recency.recent(sim.world.state, np.arange(len(sim.world.state.pages)))
    now = recency.touched_now(sim.world.state, np.arange(len(sim.world.state.pages)))
    bits = arrays.pop("pages.touched")
    arrays["pages.accessed"] = (bits & np.uint8(sim.world.state.touch_bit)) != 0
    arrays["pages.accessed_prev"] = (bits & np.uint8(
        sim.world.state.recent_bits ^ sim.world.state.touch_bit)) != 0
    old = from_plain(meta, arrays, "old.toml")
    everything = np.arange(len(old.state.pages))
    assert np.array_equal(recency.recent(old.state, everything), recent)
    assert np.array_equal(recency.touched_now(old.state, everything), now)


def test_counting_by_words_matches_counting_each_vms_pages() -> None:
    """The many-VM count (8-page words, a running sum, masked edge words) gives each VM's
    count of pages with the period's bit, for VMs of any size and alignment, empty ones
    included."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        sizes = rng.integers(0, 40, int(rng.integers(1, 30)))
        if trial % 5 == 0:
            sizes[:] = rng.integers(0, 3)  # runs of empty and one-page VMs
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        touched = rng.integers(0, 256, int(sizes.sum())).astype(np.uint8)
        period = int(rng.integers(0, 8))
        got = recency._count_by_words(touched, offsets, sizes.astype(np.int64), period)
        want = [np.count_nonzero(touched[o:o + s] & (1 << period))
                for o, s in zip(offsets.tolist(), sizes.tolist(), strict=True)]
        assert got.tolist() == want, trial
