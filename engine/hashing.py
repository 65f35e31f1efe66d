"""Stable 64-bit hashing for names and content keys (never Python's salted hash())."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


def name_key(kind: str, name: str) -> np.uint64:
    digest = hashlib.blake2b(f"{kind}:{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


# SplitMix64's finaliser constants: splitmix64 below, and the compiled loops that hash
# inline (memory/ksm_front.py, ksm_pass.py, esx_pass.py, content.py).
SPLITMIX_ADD = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX_M2 = np.uint64(0x94D049BB133111EB)
SPLITMIX_S1, SPLITMIX_S2, SPLITMIX_S3 = np.uint64(30), np.uint64(27), np.uint64(31)


def splitmix64(x: U64) -> U64:
    """The SplitMix64 finaliser, vectorised (uint64 arithmetic wraps by design)."""
    # In place on one result and one scratch array: the hash runs on every scanned page
    # each tick, and a fresh temporary per step costs as much as the arithmetic.
    with np.errstate(over="ignore"):
        z = x + SPLITMIX_ADD
        if not isinstance(z, np.ndarray):  # a scalar
            z = (z ^ (z >> SPLITMIX_S1)) * SPLITMIX_M1
            z = (z ^ (z >> SPLITMIX_S2)) * SPLITMIX_M2
            return z ^ (z >> SPLITMIX_S3)
        t = z >> SPLITMIX_S1
        z ^= t
        z *= SPLITMIX_M1
        np.right_shift(z, SPLITMIX_S2, out=t)
        z ^= t
        z *= SPLITMIX_M2
        np.right_shift(z, SPLITMIX_S3, out=t)
        z ^= t
        return z
