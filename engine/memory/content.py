"""Deterministic guest content ids.

OS-image and application pages are hashes of (name, page number): two VMs booted from the
same image hold bit-identical pages without sharing any state. Unique content comes from a
counter in the state, so it never collides with anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import kernels
from engine.hashing import (
    SPLITMIX_ADD,
    SPLITMIX_M1,
    SPLITMIX_M2,
    SPLITMIX_S1,
    SPLITMIX_S2,
    SPLITMIX_S3,
    name_key,
    splitmix64,
)
from engine.kernels import Kernel
from engine.state import F64, I64, U64, UNIQUE_CONTENT_BASE, State

_HASH_MASK = np.uint64(UNIQUE_CONTENT_BASE - 1)


def image_content(kind: str, name: str, n: int) -> U64:
    """Content ids of pages 0..n-1 of an OS image or application; never 0, never unique."""
    ids = splitmix64(np.arange(n, dtype=np.uint64) ^ name_key(kind, name)) & _HASH_MASK
    ids[ids == 0] = np.uint64(1)
    return ids


def dataset_content(blocks: U64, dataset_key: U64) -> U64:
    """Content ids of blocks of a VM's dataset (what its page cache reads); like image
    pages, never 0 and never in the unique range (a block may not alias a page written
    with unique content)."""
    ids = splitmix64(blocks ^ dataset_key) & _HASH_MASK
    ids[ids == 0] = np.uint64(1)
    return ids


def read_blocks_content(u: F64, vm: I64, dataset_pages: I64, dataset_key: U64) -> U64:
    """dataset_content of the blocks floor(u * dataset_pages[vm]) of each read's VM: the
    blocks a tick's page-cache misses read, u uniform in [0, 1). In one compiled loop
    where numpy made a dozen passes (0.3-0.4 ms for the data center's 40,000 misses)."""
    if kernels.compiled():
        out = np.empty(u.size, np.uint64)
        _READ_BLOCKS(u, np.asarray(vm, np.int64), dataset_pages, dataset_key, out)
        return out
    block = (u * dataset_pages[vm]).astype(np.uint64)
    return dataset_content(block, dataset_key[vm])


def _read_blocks_loop(u: F64, vm: I64, dataset_pages: I64, dataset_key: U64,
                      out: U64) -> None:
    mask = np.uint64(UNIQUE_CONTENT_BASE - 1)
    for i in range(u.size):
        v = vm[i]
        z = np.uint64(u[i] * np.float64(dataset_pages[v])) ^ dataset_key[v]
        z = z + SPLITMIX_ADD  # splitmix64 (engine/hashing.py), inline
        z = (z ^ (z >> SPLITMIX_S1)) * SPLITMIX_M1
        z = (z ^ (z >> SPLITMIX_S2)) * SPLITMIX_M2
        z = (z ^ (z >> SPLITMIX_S3)) & mask
        out[i] = z if z != 0 else np.uint64(1)


def _read_blocks_samples() -> list[tuple[Any, ...]]:
    return [(np.zeros(0), np.zeros(0, np.int64), np.zeros(1, np.int64),
             np.zeros(1, np.uint64), np.zeros(0, np.uint64))]


_READ_BLOCKS = Kernel(_read_blocks_loop, _read_blocks_samples)


def unique_content(state: State, n: int) -> U64:
    start = state.next_unique_content
    state.next_unique_content += n
    return np.uint64(start) + np.arange(n, dtype=np.uint64)
