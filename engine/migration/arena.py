"""Regions of parallel numpy arrays, one region per owner, for per-migration page data.

Every active migration needs arrays over its VM's pages (what the destination holds, the
send list of its pass, an XBZRLE cache). Keeping them in one arena per kind, instead of
one numpy array per migration, lets the migrations of a tick be advanced together with
flat index arrays (base of the owner's region + index within it), and frees the memory
when a migration ends, so nothing grows with the length of a run. Regions are bump
allocated; dead space is reclaimed by compaction once it outweighs the live regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine.arrays import ranges, sparse_zeros

I64 = npt.NDArray[np.int64]


class Arena:
    """Parallel arrays of given dtypes and fill values; owners hold (base, size).
    `sparse`: regions are mostly left unwritten (see sparse_zeros)."""

    def __init__(self, fields: dict[str, tuple[Any, Any]], sparse: bool = False) -> None:
        self.fields = fields
        self.sparse = sparse
        self.arrays: dict[str, npt.NDArray[Any]] = {
            name: np.zeros(0, dtype) for name, (dtype, _) in fields.items()}
        self.used = 0  # bump pointer: everything past it is free
        self.live = 0  # elements in live regions

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.arrays[name]

    def alloc(self, bases: I64, sizes: I64, new_sizes: I64) -> tuple[I64, I64]:
        """Allocate a region of each `new_sizes` (in order) after compacting if the dead
        space is large. `bases`/`sizes` are every live region (base -1 = none); returns
        their possibly moved bases and the new regions' bases."""
        need = int(new_sizes.sum())
        if self.used - self.live > self.live + (1 << 16):
            bases = self._compact(bases, sizes)
        if self.used + need > self.capacity:
            self._grow(self.used + need)
        starts = self.used + np.cumsum(new_sizes) - new_sizes
        for name, (_, fill) in self.fields.items():
            # Past the bump pointer nothing was ever handed out: fields that fill with 0
            # are as _grow made them, zero (the OS maps the pages when first written).
            if fill != 0:
                self.arrays[name][self.used:self.used + need] = fill
        self.used += need
        self.live += need
        return bases, starts.astype(np.int64)

    def free(self, size: int) -> None:
        self.live -= size

    @property
    def capacity(self) -> int:
        first = next(iter(self.arrays.values()))
        return int(first.size)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self.capacity, 1024)
        for name, arr in self.arrays.items():
            fill = self.fields[name][1]
            bigger = (np.empty(cap, arr.dtype) if fill != 0 else sparse_zeros(cap, arr.dtype)
                      if self.sparse else np.zeros(cap, arr.dtype))
            bigger[:self.used] = arr[:self.used]
            self.arrays[name] = bigger

    def _compact(self, bases: I64, sizes: I64) -> I64:
        live = bases >= 0
        moved = bases.copy()
        keep = ranges(bases[live], sizes[live])
        for name, arr in self.arrays.items():
            self.arrays[name] = arr[keep]
        moved[live] = np.cumsum(sizes[live]) - sizes[live]
        self.used = self.live = int(keep.size)
        return moved

    def to_plain(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}.{name}": arr[:self.used].copy() for name, arr in self.arrays.items()}

    def load(self, arrays: dict[str, npt.NDArray[Any]], prefix: str, live: int) -> None:
        """The fields from a save's arrays; a field newer than the save (absent) holds its
        fill value."""
        size = next(arrays[f"{prefix}.{name}"].size for name in self.fields
                    if f"{prefix}.{name}" in arrays)
        for name, (dtype, fill) in self.fields.items():
            key = f"{prefix}.{name}"
            self.arrays[name] = (np.asarray(arrays[key], dtype).copy() if key in arrays
                                 else np.full(size, fill, dtype))
        self.used = size
        self.live = live
