"""Named, seeded random streams.

All randomness comes from these Generators, spawned from one SeedSequence in a fixed order.
New streams are appended to STREAM_NAMES, never inserted, so existing streams keep their
sequences when a mechanism is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STREAM_NAMES: tuple[str, ...] = (
    "content",
    "workload",
    "sharing",
    "swap",
    "sampling",
    "faults",
    "migration",
    "events",
)


class Streams:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        children = np.random.SeedSequence(seed).spawn(len(STREAM_NAMES))
        self._gens: dict[str, np.random.Generator] = {
            name: np.random.Generator(np.random.PCG64(child))
            for name, child in zip(STREAM_NAMES, children, strict=True)
        }

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._gens[name]

    def to_plain(self) -> dict[str, Any]:
        # PCG64 state holds 128-bit integers; strings keep them exact in TOML.
        out: dict[str, Any] = {"seed": self.seed}
        for name, gen in self._gens.items():
            st = gen.bit_generator.state
            out[name] = {
                "state": str(st["state"]["state"]),
                "inc": str(st["state"]["inc"]),
                "has_uint32": int(st["has_uint32"]),
                "uinteger": int(st["uinteger"]),
            }
        return out

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Streams:
        streams = cls(int(data["seed"]))
        for name, gen in streams._gens.items():
            if name not in data:
                continue  # a stream added after the save was written starts fresh
            st = data[name]
            gen.bit_generator.state = {
                "bit_generator": "PCG64",
                "state": {"state": int(st["state"]), "inc": int(st["inc"])},
                "has_uint32": int(st["has_uint32"]),
                "uinteger": int(st["uinteger"]),
            }
        return streams


_ANY_SEED = np.random.SeedSequence(0)


def uniform_ahead(rng: np.random.Generator, n: int) -> np.random.Generator | None:
    """A generator that will draw the next `n` uniform numbers of `rng` (rng.random(n)),
    with `rng` moved on past them, so they can be drawn on another thread while `rng`
    goes on: the numbers are the same either way. A PCG64 uniform takes one 64-bit output
    and advance() moves the state past any count at once. None (and `rng` untouched) when
    that does not hold: another bit generator, or half of a 64-bit output held for a
    32-bit draw, which advance() would drop."""
    bits = rng.bit_generator
    if not isinstance(bits, np.random.PCG64):
        return None
    state = bits.state
    if state["has_uint32"]:
        return None
    # Made from a SeedSequence made once (5 us, against 25 from a plain seed), then set.
    ahead = np.random.PCG64(_ANY_SEED)
    ahead.state = state
    bits.advance(n)
    return np.random.Generator(ahead)
