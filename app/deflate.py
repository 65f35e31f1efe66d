"""Deflate on every core, as pigz does: one zip member's data is cut into the pieces it is
written in, each piece compressed on its own by a pool of threads (zlib lets go of the GIL
while it works), and the pieces joined in order into one valid raw deflate stream.

Each piece but the last ends with a sync flush: its deflate blocks end on a byte boundary
and none is marked final, so the next piece's blocks may follow it directly; the stream
ends with an empty final block. A piece starts without the previous piece's 32 KiB window,
which costs a few bytes in 16 MiB (the size numpy writes an array in). The bytes depend
only on the data and on where the pieces are cut, never on the threads' timing.

Saves of the data center spend most of their time here: 17 of 21 s on one core
(benchmarks/save_bench.py).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty block with fixed Huffman codes


def _piece(data: bytes | memoryview, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


class ParallelDeflate:
    """A compressor with zlib's compressobj interface (compress, flush) for zip members:
    each compress() hands its piece to `pool` and returns what the oldest pieces came to
    once more than the pool can work on are waiting; flush() returns the rest and ends
    the stream. A piece of the caller's data is copied (the caller may reuse its buffer)."""

    def __init__(self, pool: ThreadPoolExecutor, level: int, in_flight: int) -> None:
        self._pool = pool
        self._level = level
        self._in_flight = max(1, in_flight)
        self._pending: deque[Future[bytes]] = deque()

    def compress(self, data: Any) -> bytes:
        self._pending.append(self._pool.submit(_piece, bytes(data), self._level))
        done = []
        while len(self._pending) > self._in_flight:
            done.append(self._pending.popleft().result())
        return b"".join(done)

    def flush(self, mode: int = zlib.Z_FINISH) -> bytes:
        done = [future.result() for future in self._pending]
        self._pending.clear()
        return b"".join(done) + _FINAL_EMPTY_BLOCK


def parallel_member(member: Any, make: Callable[[], ParallelDeflate]) -> bool:
    """Give an open zip member (zipfile.ZipFile.open(name, "w") with ZIP_DEFLATED) a
    ParallelDeflate, before anything is written to it. zipfile keeps its compressor in
    `_compressor` (CPython 3.11-3.14), and computes the CRC and sizes itself around it.
    False, and zipfile's own compressor stays, where that attribute is not there."""
    if getattr(member, "_compressor", None) is None or member._file_size:
        return False
    member._compressor = make()
    return True
