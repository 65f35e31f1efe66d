"""memory/counts.py: the per-VM counters moved by a compiled loop or numpy passes alike, and
the VMs of ascending pages found either way."""

import numpy as np
import pytest

from engine import kernels
from engine.state import VMs


def _reference(starts: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(starts, x, side="right") - 1


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_vm_of_sorted_gives_vm_of_pages_few_pages_or_many(monkeypatch: pytest.MonkeyPatch,
                                                          mode: str) -> None:
    # Below SMALL_PER_VM pages a VM it looks each page up, above it searches per VM:
    # the same VMs either way, empty VMs and pages before the first included.
    from engine.memory import counts
    from engine.spec import SLASpec, VMSpec

    monkeypatch.setenv(kernels.KERNELS_ENV, mode)
    vms = VMs.empty()
    sizes = [8, 0, 5, 0, 0, 12, 3]
    offsets = 2 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    vms.extend([VMSpec(id=f"v{i}", memory=4096 * max(n, 1)) for i, n in enumerate(sizes)],
               offsets.tolist(), sizes, 4096, [1.0] * len(sizes), SLASpec())
    rng = np.random.default_rng(2)
    for n in (0, 3, counts.SMALL_PER_VM * len(sizes) - 1, counts.SMALL_PER_VM * len(sizes) * 3):
        pages = np.sort(rng.integers(0, 2 + sum(sizes), n))
        assert np.array_equal(counts.vm_of_sorted(vms, pages), vms.vm_of_pages(pages))
        assert np.array_equal(vms.vm_of_pages(pages), _reference(offsets, pages))


def test_count_moves_compiled_counts_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Moves of random VMs from random old values to one new one: the same counters from
    # the compiled loop (fewer moves than counters) and from the numpy passes.
    from types import SimpleNamespace

    from engine.memory import counts

    rng = np.random.default_rng(6)
    tables = []
    for mode in ("numba", "numpy"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        table = np.full((50, 9), 1000, np.int64)
        state = SimpleNamespace(vms=_Columns(table))
        for n in (0, 7, 120, 449):
            counts.count_moves(state, rng.integers(0, 50, n), rng.integers(0, 9, n),
                               int(rng.integers(0, 9)), "loc_count", 9)
        tables.append(table)
        rng = np.random.default_rng(6)
    assert np.array_equal(*tables) and (tables[0] != 1000).any()
    for mode in ("numba", "numpy"):  # a page outside every VM is an error either way
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        with pytest.raises(ValueError):
            counts.count_moves(state, np.array([3, -1]), np.array([0, 0]), 1, "loc_count", 9)


class _Columns:
    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.shape[0]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.table
