"""app/deflate.py: pieces compressed apart on a pool of threads join into one deflate
stream, and a save's sidecar written that way is a zip numpy and zipfile read back."""

from __future__ import annotations

import io
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app import savefile
from app.deflate import ParallelDeflate, parallel_member


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.binary(max_size=3000), max_size=12),
       repeat=st.integers(1, 40), level=st.sampled_from([1, 6, 9]),
       in_flight=st.integers(1, 4))
def test_pieces_join_into_one_stream_of_all_the_data(pieces: list[bytes], repeat: int,
                                                     level: int, in_flight: int) -> None:
    """Whatever the pieces (none, empty ones, repetitive ones that deflate well) and
    however many wait at once, the stream inflates to all the data, in order."""
    pieces = [p * repeat for p in pieces]
    with ThreadPoolExecutor(2) as pool:
        packer = ParallelDeflate(pool, level, in_flight)
        stream = b"".join(packer.compress(p) for p in pieces) + packer.flush()
    unpacker = zlib.decompressobj(-15)
    assert unpacker.decompress(stream) == b"".join(pieces)
    assert unpacker.eof and unpacker.unused_data == b""  # ends with its final block


def test_the_stream_does_not_depend_on_the_threads() -> None:
    rng = np.random.default_rng(5)
    pieces = [rng.integers(0, 4, 50_000, np.uint8).tobytes() for _ in range(9)]
    streams = set()
    for workers, in_flight in ((1, 1), (2, 4), (4, 2)):
        with ThreadPoolExecutor(workers) as pool:
            packer = ParallelDeflate(pool, 1, in_flight)
            streams.add(b"".join(packer.compress(p) for p in pieces) + packer.flush())
    assert len(streams) == 1


def test_a_sidecar_of_many_pieces_reads_back(monkeypatch) -> None:
    """An array of several of numpy's 16 MiB write chunks, and small ones: np.load gets
    them back, zipfile's CRC check passes, and the members were deflated in parallel."""
    used = []

    def spy(member, make):
        used.append(parallel_member(member, make))
        return used[-1]

    monkeypatch.setattr(savefile, "parallel_member", spy)
    rng = np.random.default_rng(2)
    arrays = {"big": rng.integers(0, 1000, 5 * 1024**2, np.int64),  # 40 MiB: 3 chunks
              "small": np.arange(7, dtype=np.uint32), "empty": np.zeros(0, np.float64)}
    out = io.BytesIO()
    savefile._write_arrays(out, arrays)
    assert used == [True, True, True]
    out.seek(0)
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
    out.seek(0)
    with np.load(out) as npz:
        for name, arr in arrays.items():
            assert np.array_equal(npz[name], arr) and npz[name].dtype == arr.dtype


def test_zipfile_still_keeps_its_compressor_where_we_replace_it() -> None:
    """parallel_member relies on zipfile's private `_compressor`: should a Python change
    it, saves would still be right but compressed on one core; this says so."""
    with zipfile.ZipFile(io.BytesIO(), "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open("a", "w") as member:
        assert parallel_member(member, lambda: ParallelDeflate(None, 1, 1))  # type: ignore[arg-type]
