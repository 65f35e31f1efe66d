"""Placing absent keys in a linear-probing table (hashtable._place): the compiled loop
(hash_probes.place) leaves the table as the numpy rounds do and reports the same slots
and held values, for one run over the whole table or a run per region, through both the
one-probe rounds and the window rounds, with keys that collide, runs that wrap, and
deleted slots to reuse."""

import numpy as np
import pytest

from engine import hashtable, kernels


def _case(seed: int, n_keys: int, capacity: int, load: float, regions: int,
          dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray, object, object]:
    rng = np.random.default_rng(seed)
    table = np.zeros(capacity, dtype)
    taken = rng.random(capacity) < load
    table[taken] = rng.integers(3, 2**31, int(taken.sum())).astype(dtype)
    table[rng.random(capacity) < 0.05] = 1  # deleted
    keys = (np.arange(n_keys, dtype=np.int64) + 2**31 + 7).astype(dtype)  # absent, distinct
    if regions == 1:
        probe = rng.integers(0, capacity, n_keys)
        return table, keys, probe, 0, capacity - 1
    size = capacity // regions
    region = rng.integers(0, regions, n_keys)
    lo = region * size
    probe = lo + rng.integers(0, size, n_keys)
    return table, keys, probe, lo, np.full(n_keys, size - 1, np.int64)


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
@pytest.mark.parametrize(("n_keys", "capacity", "load", "regions"), [
    (3_000, 8_192, 0.3, 1),      # one-probe rounds, then windows for the last few
    (5_000, 8_192, 0.35, 1),     # fills past half: long runs, many window rounds
    (200, 1_024, 0.7, 1),        # windows only, runs that wrap round the table
    (4_000, 16_384, 0.4, 16),    # a run per region
    (1, 64, 0.9, 1),
    (0, 64, 0.5, 1),
])
def test_the_compiled_placement_gives_the_numpy_rounds_layout(
        dtype: type, n_keys: int, capacity: int, load: float, regions: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernels.compiled()
    for seed in range(3):
        table, keys, probe, lo, mask = _case(seed, n_keys, capacity, load, regions, dtype)
        mine = table.copy()
        slot, held = hashtable._place(mine, keys, probe.copy(), lo, mask, dtype(0), dtype(1))
        monkeypatch.setenv(kernels.KERNELS_ENV, "numpy")
        ref = table.copy()
        ref_slot, ref_held = hashtable._place(ref, keys, probe.copy(), lo, mask, dtype(0),
                                              dtype(1))
        monkeypatch.delenv(kernels.KERNELS_ENV)
        assert np.array_equal(mine, ref)
        assert np.array_equal(slot, ref_slot)
        assert np.array_equal(held, ref_held)
        assert np.array_equal(mine[slot], keys)
