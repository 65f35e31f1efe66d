"""Stable 64-bit hashing for names and content keys (never Python's salted hash())."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


def name_key(kind: str, name: str) -> np.uint64:
    digest = hashlib.blake2b(f"{kind}:{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def splitmix64(x: U64) -> U64:
    """The SplitMix64 finaliser, vectorised (uint64 arithmetic wraps by design)."""
    # In place on one result and one scratch array: the hash runs on every scanned page
    # each tick, and a fresh temporary per step costs as much as the arithmetic.
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        if not isinstance(z, np.ndarray):  # a scalar
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))
        t = z >> np.uint64(30)
        z ^= t
        z *= np.uint64(0xBF58476D1CE4E5B9)
        np.right_shift(z, np.uint64(27), out=t)
        z ^= t
        z *= np.uint64(0x94D049BB133111EB)
        np.right_shift(z, np.uint64(31), out=t)
        z ^= t
        return z
