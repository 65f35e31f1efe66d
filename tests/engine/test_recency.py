"""Touch codes per sampling period (engine/memory/recency.py): the true active fraction is
exact without clearing the pages at a period's end, a period starts with no page holding
its code although the byte array is never reset as a whole, and codes that come round
again are never mistaken for new touches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import Simulation, kernels, parse_scenario
from engine.memory import recency, touch_loop
from engine.savemodel import FRAME_KEY_FRAMES, FRAME_KEY_KEYS
from tests.conftest import before_schema_5, small_spec


def test_the_true_active_fraction_counts_each_periods_distinct_touches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = small_spec()
    data["policy"]["memory"]["sample_period"] = "5s"
    sim = Simulation.from_spec(parse_scenario(data))
    state = sim.world.state
    seen: list[np.ndarray] = []
    original = recency.mark
    original_front = touch_loop.front

    def spy(state_: Any, pages: np.ndarray) -> None:
        seen.append(pages.copy())
        original(state_, pages)

    def front_spy(pages: np.ndarray, *args: Any) -> Any:
        # The compiled loop marks the touches that do not fault itself.
        out = original_front(pages, *args)
        served = np.ones(pages.size, np.bool_)
        served[out[1]] = False
        seen.append(pages[served])
        return out

    monkeypatch.setattr(recency, "mark", spy)
    monkeypatch.setattr(touch_loop, "front", front_spy)
    sim.step(1)  # tick 0 starts period 1
    vms = state.vms
    for _ in range(12):  # periods of 5 ticks; more than the eight bits wrap around
        seen.clear()
        sim.step(5)
        touched = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        per_vm = np.bincount(vms.vm_of_pages(touched), minlength=len(vms))
        assert np.array_equal(vms["active_true"] * vms["n_pages"], per_vm)
        # No page holds the code of the period that starts now.
        assert not (state.pages.touched == state.touch_code).any()
    assert per_vm[:2].min() > 0


def _old_saves(sim: Simulation) -> tuple[dict[str, Any], dict[str, np.ndarray],
                                         dict[str, np.ndarray]]:
    """The world saved as schema 1 wrote it (one bit per period) and as the saves before
    the bits (accessed flags); both held a key per frame (0 = not shared)."""
    meta, arrays = sim.save_state()
    arrays = before_schema_5(arrays)
    state = sim.world.state
    arrays["sharing.frame_key"] = np.zeros(state.frames.refcount.size, np.uint64)
    arrays["sharing.frame_key"][arrays.pop(FRAME_KEY_FRAMES)] = arrays.pop(FRAME_KEY_KEYS)
    period = recency.period_of(state.tick, 30)
    codes = arrays.pop("pages.touched")
    now, before = codes == state.touch_code, codes == state.previous_code
    assert now.any() and before.any()
    bits = dict(arrays)
    bits["pages.touched"] = (now * np.uint8(1 << period % 8)
                             | before * np.uint8(1 << (period - 1) % 8)).astype(np.uint8)
    flags = dict(arrays)
    flags["pages.accessed"], flags["pages.accessed_prev"] = now, before
    return {**meta, "schema_version": 1}, bits, flags


def test_older_saves_keep_the_guests_recency() -> None:
    from engine.persistence import from_plain

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(45)  # mid-way through the second 30 s period
    everything = np.arange(len(sim.world.state.pages))
    recent = recency.recent(sim.world.state, everything)
    now = recency.touched_now(sim.world.state, everything)
    meta, bits, flags = _old_saves(sim)
    for arrays in (bits, flags):
        old = from_plain(meta, arrays, "old.toml")
        assert np.array_equal(recency.recent(old.state, everything), recent)
        assert np.array_equal(recency.touched_now(old.state, everything), now)
        assert np.array_equal(old.state.pages.touched, sim.world.state.pages.touched)


def test_a_code_that_comes_round_again_is_not_a_new_touch() -> None:
    """Codes repeat every N_CODES periods: the sweep resets a page's code long before,
    so a page touched once is not "touched now" when its period's code comes back."""
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    state = sim.world.state
    state.pages.touched[:] = 0
    recency.set_period(state, 1)
    once = np.arange(10, 20)
    recency.mark(state, once)
    everything = np.arange(len(state.pages))
    for period in range(2, 2 + 2 * recency.N_CODES):
        recency.set_period(state, period)
        # One slice a period, as the sampling phase sweeps with periods of one tick.
        recency.sweep_slice(state, (period - 2) % recency.SWEEP_PERIODS,
                            recency.SWEEP_PERIODS)
        if period == 2:  # the period before is still recent
            assert recency.recent(state, once).all()
        assert not recency.touched_now(state, everything).any(), period
        if period > 2:
            assert not recency.recent(state, everything).any(), period


def test_counting_by_words_matches_counting_each_vms_pages() -> None:
    """The many-VM count (8-page words, a running sum, masked edge words) gives each VM's
    count of pages holding the period's code, for VMs of any size and alignment, empty
    ones included."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        sizes = rng.integers(0, 40, int(rng.integers(1, 30)))
        if trial % 5 == 0:
            sizes[:] = rng.integers(0, 3)  # runs of empty and one-page VMs
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        touched = rng.integers(0, 256, int(sizes.sum())).astype(np.uint8)
        c = np.uint8(rng.integers(0, 3))  # few codes: many pages hold each
        touched %= np.uint8(3)
        chunk = int(rng.choice([8, 16, 24, 1 << 22]))  # chunk edges anywhere in a VM
        got = recency._count_by_words(touched, offsets, sizes.astype(np.int64), c, chunk)
        want = [np.count_nonzero(touched[o:o + s] == c)
                for o, s in zip(offsets.tolist(), sizes.tolist(), strict=True)]
        assert got.tolist() == want, trial


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_a_sweep_resets_only_the_stale_codes_of_its_slice(monkeypatch: pytest.MonkeyPatch,
                                                          mode: str) -> None:
    # Every code in every slice: the sweep of slice 1 of 4 zeroes the codes of neither
    # this period nor the last there, and leaves the other slices be.
    if mode == "numba" and not kernels.available():
        pytest.skip("numba not installed")
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    state = sim.world.state
    recency.set_period(state, 300)  # codes 46 (now) and 45 (the period before)
    n = len(state.pages)
    before = (np.arange(n) % 256).astype(np.uint8)
    state.pages.touched[:] = before
    recency.sweep_slice(state, 1, 4)
    size = -(-n // 4)
    inside = (np.arange(n) >= size) & (np.arange(n) < 2 * size)
    kept = np.isin(before, [0, state.touch_code, state.previous_code]) | ~inside
    np.testing.assert_array_equal(state.pages.touched, np.where(kept, before, 0))
    assert state.touch_code == 46 and not kept.all()
