"""Deterministic guest content ids.

OS-image and application pages are hashes of (name, page number): two VMs booted from the
same image hold bit-identical pages without sharing any state. Unique content comes from a
counter in the state, so it never collides with anything.
"""

from __future__ import annotations

import numpy as np

from engine.hashing import name_key, splitmix64
from engine.state import U64, UNIQUE_CONTENT_BASE, State

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


def unique_content(state: State, n: int) -> U64:
    start = state.next_unique_content
    state.next_unique_content += n
    return np.uint64(start) + np.arange(n, dtype=np.uint64)
