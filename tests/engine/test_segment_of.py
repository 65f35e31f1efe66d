"""arrays.SegmentOf answers exactly what searchsorted over the segment starts answers, and
VMs.vm_of_pages keeps its table in step with the VMs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import kernels
from engine.arrays import SegmentOf
from engine.state import VMs


def _reference(starts: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(starts, x, side="right") - 1


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=25),
       first=st.integers(0, 9),
       probes=st.lists(st.integers(-20, 1200), min_size=1, max_size=60),
       dtype=st.sampled_from([np.int64, np.int32]))
def test_same_as_searchsorted(sizes: list[int], first: int, probes: list[int],
                              dtype: type) -> None:
    # Empty segments (size 0: equal starts), a first start past 0, positions before,
    # inside and past the segments, 32- and 64-bit positions.
    starts = first + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    end = first + sum(sizes)
    x = np.array(probes, dtype)
    assert np.array_equal(SegmentOf(starts, end)(x), _reference(starts, x))


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_large_segments_use_the_table_and_agree(monkeypatch: pytest.MonkeyPatch,
                                                mode: str) -> None:
    # The table's lookup as a compiled loop and as numpy passes (engine/kernels.py).
    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 5000, 300) * 64
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    end = int(sizes.sum())
    index = SegmentOf(starts, end)
    assert index.ok and index.shift >= 6  # chunks of at least the smallest segment's 64
    x = rng.integers(0, end + 100, 100_000)
    assert np.array_equal(index(x), _reference(starts, x))
    assert np.array_equal(index(np.sort(x)), _reference(starts, np.sort(x)))
    grid = x[:1000].reshape(10, 100)  # any shape, as searchsorted takes
    assert np.array_equal(index(grid), _reference(starts, grid))
    x[7] = -1  # a position before the first start: searchsorted's answer
    assert np.array_equal(index(x), _reference(starts, x))


def test_too_fine_for_a_table_falls_back() -> None:
    starts = np.arange(0, 1 << 22, dtype=np.int64)  # one-position segments over 4 M
    index = SegmentOf(starts, 1 << 22)
    assert not index.ok
    x = np.array([0, 5, (1 << 22) - 1, 1 << 23])
    assert np.array_equal(index(x), _reference(starts, x))


def test_vms_rebuild_their_table_when_vms_are_added() -> None:
    from engine.spec import SLASpec, VMSpec

    vms = VMs.empty()
    sla = SLASpec()
    vms.extend([VMSpec(id="a", memory=4096 * 8)], [0], [8], 4096, [1.0], sla)
    assert vms.vm_of_pages(np.array([0, 7, 20])).tolist() == [0, 0, 0]
    vms.extend([VMSpec(id="b", memory=4096 * 4)], [8], [4], 4096, [1.0], sla)
    assert vms.vm_of_pages(np.array([0, 7, 8, 11])).tolist() == [0, 0, 1, 1]
