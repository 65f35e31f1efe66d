"""Page metadata packing: is one word per page faster on the touch path than the separate
per-page arrays the engine keeps (issue 13, item 2)?

The touch path of a tick on the 1,000-VM data center (131 M pages of 4 KiB) reads the
location and guest kind of ~380 k read and ~97 k written pages, sets their sampling bits,
and for the writes also the dirty flag, content and written_at. Done here with bare numpy
over arrays of that size, three ways:
(a) location, guest kind and touch bits as three byte arrays (the engine before issue 13):
    three gathers a touch, and a store of the touch bits;
(b) the same and the dirty flag in one 32-bit word a page: one gather and one store
    (the dirty log, set by pre-copying VMs only, is left out of (a) and (c));
(c) the engine now: location and guest kind in one 2-byte word (one gather), the touch
    byte a period code stored without a read (engine/memory/recency.py).
Content and written_at stay apart in all three. Printed: mean, median, p99 and max over
the repetitions, and the bytes per page of the hot fields. (b) also costs full passes
over 4 bytes a page for the per-period clear and count of the touch bits, which (c)
avoids: it was slower in the engine as a whole.

    python benchmarks/packing_bench.py [--pages N] [--reps R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np


def _stats(times: list[float]) -> str:
    a = np.array(times) * 1e3
    return (f"{a.mean():7.2f} {np.median(a):7.2f} {np.percentile(a, 99):7.2f} "
            f"{a.max():7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=131_072_000)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--reads", type=int, default=380_000)
    ap.add_argument("--writes", type=int, default=97_000)
    args = ap.parse_args()
    n = args.pages
    rng = np.random.default_rng(1)
    location = np.ones(n, np.uint8)
    kind = np.ones(n, np.uint8)
    touched = np.full(n, 2, np.uint8)  # written once, so no timed tick pays page faults
    packed = np.ones(n, np.uint32)  # bits 0-3 location, 4-7 kind, 8-15 touched, 16 dirty
    record = np.ones(n, np.uint16)  # location | kind << 8
    code = np.full(n, 2, np.uint8)
    content = np.ones(n, np.uint64)
    written_at = np.zeros(n, np.int32)

    def separate(reads: np.ndarray, writes: np.ndarray) -> None:
        np.take(location, reads)
        np.take(location, writes)
        np.take(kind, reads)
        np.take(kind, writes)
        touched[reads] |= 1
        touched[writes] |= 1
        content[writes] = 5
        written_at[writes] = 7

    def one_word(reads: np.ndarray, writes: np.ndarray) -> None:
        r = np.take(packed, reads)
        w = np.take(packed, writes)
        _ = (r & 0xF, (r >> 4) & 0xF, w & 0xF, (w >> 4) & 0xF)
        packed[reads] = r | np.uint32(1 << 8)
        packed[writes] = w | np.uint32((1 << 8) | (1 << 16))
        content[writes] = 5
        written_at[writes] = 7

    def engine_now(reads: np.ndarray, writes: np.ndarray) -> None:
        r = np.take(record, reads)
        w = np.take(record, writes)
        _ = (r.astype(np.uint8), r >> 8, w.astype(np.uint8), w >> 8)
        code[reads] = 3
        code[writes] = 3
        content[writes] = 5
        written_at[writes] = 7

    layouts: list[tuple[str, Callable[[np.ndarray, np.ndarray], None], int]] = [
        ("(a) separate bytes", separate, 3), ("(b) one 32-bit word", one_word, 4),
        ("(c) 2-byte word + code", engine_now, 3)]
    times: dict[str, list[float]] = {name: [] for name, _, _ in layouts}
    for rep in range(args.reps + 1):  # interleaved, so drift hits both alike
        reads = np.sort(rng.integers(0, n, args.reads))
        writes = np.sort(rng.integers(0, n, args.writes))
        for name, fn, _ in layouts:
            t = time.perf_counter()
            fn(reads, writes)
            if rep:  # the first is a warm-up
                times[name].append(time.perf_counter() - t)
    print(f"{n:,} pages; {args.reads:,} reads and {args.writes:,} writes a tick; "
          f"{args.reps} ticks; ms a tick")
    print(f"{'layout':26s} {'hot B/page':>10s}    mean  median     p99     max")
    for name, _, hot in layouts:
        print(f"{name:26s} {hot:10d} {_stats(times[name])}")
    base = np.median(times[layouts[0][0]])
    for name, _, _ in layouts[1:]:
        print(f"speed-up of {name} over (a) (median): {base / np.median(times[name]):.2f}x")


if __name__ == "__main__":
    main()
