"""The compiled sort (engine/sort_loop.py) gives numpy's sorted array, for the shapes the
engine sorts: hashed keys, page indices spread over a world or clustered in a few VMs,
many duplicates, negative values, every integer type, and sizes around its cut-offs."""

import numpy as np
import pytest

from engine import kernels
from engine.arrays import group_by_key, unique_sorted
from engine.sort_loop import MIN_LOOP, group_packed, sorted_ints, sorted_u64


def _arrays(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [
        rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1),
        rng.integers(0, 131_000_000, n),  # pages anywhere in a world
        (rng.integers(0, 20, n) * 6_553_600 + rng.integers(0, 131_072, n)).astype(np.int32),
        rng.integers(-5, 5, n).astype(np.int16),  # few values, negative ones
        rng.integers(-2**62, 2**62, n),
        np.repeat(rng.integers(0, 2**40, max(n // 7, 1)), 7)[:n],  # runs of equal values
        np.sort(rng.integers(0, 1 << 20, n))[::-1].copy(),  # descending
        np.full(n, 12345, np.int64),  # one value
        rng.integers(0, 255, n).astype(np.uint8),
        np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max] * (n // 4 + 1))[:n],
    ]


@pytest.mark.parametrize("n", [0, 1, 2, 33, MIN_LOOP - 1, MIN_LOOP, 70_001])
def test_the_compiled_sort_gives_numpys_order(n: int) -> None:
    assert kernels.compiled()  # numba is in the test extra
    for values in _arrays(n):
        got = sorted_ints(values)
        assert got.dtype == values.dtype
        assert np.array_equal(got, np.sort(values)), (n, values.dtype)
        assert np.array_equal(unique_sorted(values), np.unique(values))


def test_the_loop_itself_sorts_small_and_clustered_buckets() -> None:
    """Past the cut-off the loop runs: buckets of a few (insertion sort) and buckets of
    thousands (split again) both come out in order, and the input is left as it was."""
    rng = np.random.default_rng(7)
    clustered = (rng.integers(0, 3, 50_000).astype(np.uint64) << np.uint64(40)) \
        + rng.integers(0, 5_000, 50_000).astype(np.uint64)
    spread = rng.integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64)
    for values in (clustered, spread):
        before = values.copy()
        got = sorted_u64(values)
        assert np.array_equal(got, np.sort(values))
        assert np.array_equal(values, before)


def test_without_numba_numpy_sorts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernels.KERNELS_ENV, "numpy")
    values = np.random.default_rng(3).integers(-1000, 1000, MIN_LOOP * 2)
    assert np.array_equal(sorted_ints(values), np.sort(values))


def _grouped_reference(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    return order, starts, np.diff(np.append(starts, keys.size))


@pytest.mark.parametrize("mode", ["numba", "numpy"])
@pytest.mark.parametrize("n", [2, 100, MIN_LOOP + 3, 60_000])
def test_group_by_key_orders_groups_by_key_and_members_by_index(
        mode: str, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups in key order, each group's members in index order, whether the packed sort
    tells the keys apart (spread keys) or not (distinct keys sharing their high bits, so
    the walk must give up and the keys are sorted instead)."""
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    rng = np.random.default_rng(n)
    spread = rng.integers(0, 2**63, max(n // 3, 1), dtype=np.int64).astype(np.uint64)
    low_bits_only = rng.integers(0, 8, max(n // 3, 1)).astype(np.uint64)  # one high part
    for pool in (spread, low_bits_only, np.concatenate([spread, low_bits_only])):
        keys = rng.choice(pool, n)
        got = group_by_key(keys)
        for a, b in zip(got, _grouped_reference(keys), strict=True):
            assert np.array_equal(a, b)


def test_group_packed_gives_up_exactly_when_high_bits_collide() -> None:
    bits = 13
    idx = np.arange(MIN_LOOP * 2, dtype=np.uint64)
    keys = (np.uint64(5) << np.uint64(40)) + idx % np.uint64(7)  # 7 keys, one high part
    packed = np.sort(((keys >> np.uint64(bits)) << np.uint64(bits)) | idx)
    assert group_packed(packed, keys, bits) is None
    keys = (idx % np.uint64(7)) << np.uint64(50)  # 7 keys, 7 high parts
    packed = np.sort(((keys >> np.uint64(bits)) << np.uint64(bits)) | idx)
    grouped = group_packed(packed, keys, bits)
    assert grouped is not None
    order, starts = grouped
    assert starts.size == 7 and np.array_equal(keys[order], np.sort(keys))
