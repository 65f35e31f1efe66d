"""Big random gathers, constant scatters and a new world's first writes on two cores.

A tick is mostly random reads into page arrays of several GiB: each read is a cache miss,
and one core keeps only so many misses in flight. numpy releases the GIL inside a gather
(np.take) and a scatter, so the same gather cut in two and run on two threads waits on
twice as many misses at once (measured on the benchmark VM: 400 k reads from a 1 GiB
array, 2.5 ms on one thread, 1.4 ms on two). Handing a half to the other thread costs
20-100 us, so only batches of at least MIN_SPLIT elements are cut. Most of that is the
helper waking up: a caller done with its own part before the helper has taken up its
part runs that too (Future.cancel succeeds only then), instead of waiting for the helper
to start it (a `spread` of trivial pieces: 65 us a call before, 10-45 after).

The compiled loops of engine/kernels.py that read at random are cut the same way: in
halves (`pair`: ksmd's walk and the page-cache and balloon picks by hosts or VMs, its
first step and the hash-table lookups by halves of their pages or keys), or in pieces the
two threads take in turn, each as it is free (`spread`: the touches, ksmd's pass by
hosts, the page-cache walks by VMs, ESX's first loop, the sample count by VMs), where the
cost of an item differs along the batch.

`by_parity` cuts a loop's items by their hosts' parity, each thread serving the hosts of
one parity in the items' order (the touches' faults: a host's free stacks give the same
frames to the same pages whichever thread serves them).

`beside` starts work on the helper that the caller's next steps neither read nor write
(the content of a tick's writes, while the touches' marks and kinds go on), and waits for
it when they are done.

The results do not depend on the threads: a gather's halves fill disjoint parts of one
output; a scatter is cut only where every element gets the same value (any order of the
writes leaves the same array); a loop's halves or pieces write disjoint entries.
OVERCOMMIT_THREADS=1 runs everything on the calling thread.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engine.errors import InputError

T = TypeVar("T")

MIN_SPLIT = 100_000  # elements below which a batch stays on the calling thread
THREADS_ENV = "OVERCOMMIT_THREADS"
MAX_THREADS_SETTING = 64
_HELPER_NAME = "overcommit-tick"

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def threads_setting() -> int | None:
    """OVERCOMMIT_THREADS as a count (None when unset or empty); InputError when it is not
    a whole number from 1 to MAX_THREADS_SETTING (the CLI checks it before anything runs)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_THREADS_SETTING:
        raise InputError(f"environment variable {THREADS_ENV}", repr(raw),
                         f"expected a whole number from 1 to {MAX_THREADS_SETTING}")
    return int(raw)


def threads() -> int:
    """Threads a batch may use: 2 on a machine with two cores or more, unless
    OVERCOMMIT_THREADS says otherwise (1 turns the splitting off; more than 2 is 2)."""
    try:
        wanted = threads_setting()
    except InputError:  # refused at the CLI; a library caller gets the machine's count
        wanted = None
    n = wanted if wanted is not None else _CPUS
    return 2 if n >= 2 else 1


_CPUS = os.cpu_count() or 1  # asked once: the call costs tens of microseconds


def _other() -> ThreadPoolExecutor:
    """The one helper thread (made anew in a forked child, which does not inherit it).
    Worlds stepped on several threads at once (the console's forks) share it: their
    halves queue for it, each caller waiting only on its own."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(1, thread_name_prefix=_HELPER_NAME)
        _pool_pid = os.getpid()
        atexit.register(_pool.shutdown, wait=False)
    return _pool


def _may_split() -> bool:
    """Two threads allowed, and not asked from the helper itself (a half that cut its own
    work would wait on the helper it is running on)."""
    return threads() > 1 and not threading.current_thread().name.startswith(_HELPER_NAME)


def beside(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
    """Start fn(*args) on the helper thread while the caller goes on; returns the call
    that waits for it (or runs it, if the helper has not taken it up; calls after the
    first do nothing). fn must write memory the caller neither reads nor writes until it
    has waited."""
    if not _may_split():
        fn(*args)
        return lambda: None
    later: Future[None] = _other().submit(fn, *args)
    waited = False

    def wait() -> None:
        nonlocal waited
        if not waited:  # a second call must not run fn again (a cancelled Future stays so)
            waited = True
            _done(later, fn, *args)

    return wait


def _done(later: Future[T], fn: Callable[..., T], *args: Any) -> T:
    """The result of the part handed to the helper (`later`, which runs fn(*args)): waited
    for, or, when the helper has not taken it up yet, run here. A helper thread woken
    from sleep starts some 50 us later on a VM; the caller, done with its own part,
    would only wait that long before the helper even began the same work."""
    if later.cancel():
        return fn(*args)
    return later.result()


def _split(n: int) -> int:
    """Where a batch of n is cut, or 0 when it is not."""
    return cut_point(n, MIN_SPLIT)


def take(a: npt.NDArray[Any], idx: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """np.take(a, idx) for a one-dimensional `a` (idx of any shape)."""
    h = _split(idx.size)
    if not h:
        return np.take(a, idx)
    flat = idx.reshape(-1)
    out = np.empty(flat.size, a.dtype)
    later: Future[Any] = _other().submit(_take, a, flat[h:], out[h:])
    np.take(a, flat[:h], out=out[:h])
    _done(later, _take, a, flat[h:], out[h:])
    return out.reshape(idx.shape)


def _take(a: npt.NDArray[Any], idx: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
    np.take(a, idx, out=out)


def _fill(a: npt.NDArray[Any], idx: npt.NDArray[Any], value: Any) -> None:
    a[idx] = value


def fill(a: npt.NDArray[Any], idx: npt.NDArray[Any], value: Any) -> None:
    """a[idx] = value for a one-dimensional `a`, one value for all (so duplicates in idx
    are harmless)."""
    h = _split(idx.size)
    if not h:
        a[idx] = value
        return
    flat = idx.reshape(-1)
    later = _other().submit(_fill, a, flat[h:], value)
    a[flat[:h]] = value
    _done(later, _fill, a, flat[h:], value)


# Building a world writes GiB of fresh memory, and its time goes to the page faults that
# map it in (the kernel zeroes each page; on a VM, the hypervisor may have to back it
# first). Faults of different pages are taken side by side on two cores, so the big
# arrays are written in two halves at once. Below this many bytes it is not worth it.
MIN_SPLIT_BYTES = 8 << 20


def halves(fn: Callable[[int, int], None], n: int, nbytes: int) -> None:
    """fn(0, h) and fn(h, n): the two halves of work over n rows, the first on the helper
    thread when the work writes at least MIN_SPLIT_BYTES. fn must write disjoint parts
    of its outputs for disjoint ranges (then the result cannot depend on the threads)."""
    if n < 2 or nbytes < MIN_SPLIT_BYTES or not _may_split():
        fn(0, n)
        return
    h = n // 2
    later = _other().submit(fn, 0, h)
    fn(h, n)
    _done(later, fn, 0, h)


def cut_point(n: int, min_split: int) -> int:
    """Where work over n items is cut in two for two threads, or 0 when it stays on the
    calling thread (fewer than `min_split`, one thread allowed, or asked from the
    helper)."""
    return n // 2 if n >= min_split and _may_split() else 0


def pair(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """(first(), second()), second run on the helper thread at the same time. It pays only
    when both let go of the GIL for most of their time (compiled loops, big gathers), and
    is correct only when they write disjoint memory and read nothing the other writes."""
    later: Future[Any] = _other().submit(second)
    try:
        a = first()
    except BaseException:
        if not later.cancel():
            later.exception()  # the other half ends before the error goes on
        raise
    return a, _done(later, second)


def by_parity(fn: Callable[[int, int], T], n: int, min_split: int) -> list[T]:
    """[fn(0, 1)], or [fn(0, 2), fn(1, 2)] with the second on the helper thread where
    cut_point would cut n items: work that fn(part, parts) does for the items of the hosts
    h with h % parts == part (a compiled loop passing over all n, serving its own). Hosts
    never share a frame, a stack or a VM, so loops that keep each host's items in order
    give the same result whichever thread serves a host."""
    if not cut_point(n, min_split):
        return [fn(0, 1)]
    return list(pair(lambda: fn(0, 2), lambda: fn(1, 2)))


def full(n: int, value: Any, dtype: Any) -> npt.NDArray[Any]:
    """np.full(n, value, dtype), its memory written (and so mapped in) by two threads."""
    out = np.empty(n, dtype)

    def part(lo: int, hi: int) -> None:
        out[lo:hi] = value

    halves(part, n, out.nbytes)
    return out


PIECES = 8  # pieces `even` and `weighed` cut a batch into for `spread`


def even(n: int, min_split: int, pieces: int = PIECES) -> list[int]:
    """Bounds [0, ..., n] of `pieces` equal pieces of n items, or [0, n] where `cut_point`
    would not cut them."""
    if not cut_point(n, min_split):
        return [0, n]
    return [n * j // pieces for j in range(pieces + 1)]


def weighed(ends: npt.NDArray[Any], min_split: int, pieces: int = PIECES) -> list[int]:
    """Bounds [0, ..., n] of up to `pieces` pieces of n items whose costs add up to
    `ends` (ascending: ends[i] is the cost of items 0..i), each piece about an equal share
    of the cost; [0, n] where `cut_point` would not cut the total cost."""
    n = len(ends)
    total = int(ends[-1]) if n else 0
    if n < 2 or not cut_point(total, min_split):
        return [0, n]
    at = np.searchsorted(ends, total * np.arange(1, pieces) // pieces, side="right")
    return [0, *sorted({int(a) for a in at if 0 < a < n}), n]


def spread(fn: Callable[[int, int], T], bounds: list[int]) -> list[tuple[int, T]]:
    """[(lo, fn(lo, hi)), ...] over the pieces between consecutive `bounds`, in order. The
    calling thread and the helper take the pieces in turn, each as it finishes its last,
    so neither waits long on the other where the items' cost differs along the batch (two
    fixed halves wait on the slower: the data center's random-access VMs' touches cost
    some 2.5 times its streaming VMs' a touch, each a cache line of its own against four
    touches a line, and the first half of a tick's reads is mostly the former). fn(lo, hi)
    must write disjoint parts of its outputs for disjoint ranges, as for `pair`: which
    thread runs a piece cannot change a result."""
    pieces = len(bounds) - 1
    if pieces == 1:
        return [(bounds[0], fn(bounds[0], bounds[1]))]
    out: list[Any] = [None] * pieces
    claims = itertools.count()  # next() under the GIL: each piece is claimed once

    def work() -> None:
        while (j := next(claims)) < pieces:
            out[j] = fn(bounds[j], bounds[j + 1])

    later: Future[Any] = _other().submit(work)
    try:
        work()
    except BaseException:
        if not later.cancel():
            later.exception()
        raise
    if not later.cancel():  # the helper took pieces (or looks for one): its last ends
        later.result()
    return list(zip(bounds[:-1], out, strict=True))
