"""Huge pages for a big world's arrays, paid for off the build's critical path.

numpy asks the kernel for transparent huge pages (madvise MADV_HUGEPAGE) on every array of
4 MiB or more: 2 MiB pages, so that the tick's random gathers and scatters over GiB of
page arrays miss the TLB far less (scatters a third faster here). But the first touch of
a huge page must find 2 MiB free and clear it, and a build touches 2 GiB at once: on a
virtual machine whose memory the host backs lazily, a fresh huge page took about 7 ms
(the data center's build 11.9 s, against 4.8 s in small pages).

So a big world is built in small pages (`small_pages`), and afterwards (`after_build`):
- the arrays the build filled are collapsed into huge pages by a background thread
  (madvise MADV_COLLAPSE, Linux 6.1 and later, a few MiB a call) while the simulation
  runs, on the machine's second core, except while a world's first tick runs (`hold`):
  that tick faults in the arrays the mechanisms make on first use, and beside a collapse
  its faults waited (the data center's first tick took 3.9-7.5 s in six runs with the
  collapse beside it; held, 1.3-1.8 s in seven runs of nine, 4.4-4.5 s in two; the
  collapse then ends a few ticks later);
- every other big array the build made gets numpy's advice back, so its later faults
  take huge pages as before.
Only where memory lies changes, so no result can. Nothing changes where huge pages are
off (the sysfs setting "never"), where the kernel cannot collapse, for worlds under
MIN_BYTES, or with OVERCOMMIT_THREADS=1 (no second core's work).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import libc, parallel

MIN_BYTES = 256 << 20  # smaller worlds build as numpy would (and tests stay as they were)
HUGE = 2 << 20
STEP_BYTES = 8 << 20  # collapsed a call at a time: the main thread's faults never wait long
_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"
_SET_ADVICE = getattr(getattr(getattr(np, "_core", None), "multiarray", None),
                      "_set_madvise_hugepage", None)


_MADVISE = libc.madvise()  # ctypes lets the GIL go during a call
_usable: bool | None = None
_lock = threading.Lock()
_holding = 0  # first ticks running now, of any world: collapses wait while there are any
_go = threading.Event()
_go.set()


def _forked() -> None:
    """A forked child has none of its parent's ticks running (only the forking thread
    goes on in it): its own collapses must not wait for them."""
    global _holding
    _holding = 0
    _go.set()


os.register_at_fork(after_in_child=_forked)


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Collapses (of every world) wait meanwhile, between their steps."""
    global _holding
    with _lock:
        _holding += 1
        _go.clear()
    try:
        yield
    finally:
        with _lock:
            _holding -= 1
            if _holding == 0:
                _go.set()


def _thp_on() -> bool:
    try:
        with open(_THP_SETTING) as f:
            return "[never]" not in f.read()
    except OSError:
        return False


def _can_collapse() -> bool:
    """Whether this kernel collapses on request: tried once on one huge page of scratch."""
    global _usable
    with _lock:
        if _usable is None:
            _usable = False
            if _MADVISE is not None and _SET_ADVICE is not None and _thp_on():
                buf = mmap.mmap(-1, 2 * HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
                scratch = np.frombuffer(buf, np.uint8)
                start = (scratch.ctypes.data + HUGE - 1) // HUGE * HUGE
                scratch[start - scratch.ctypes.data] = 1
                _usable = _MADVISE(start, HUGE, _MADV_COLLAPSE) == 0
                del scratch
                buf.close()
        return _usable


def wanted(nbytes: int) -> bool:
    """Whether a world of `nbytes` of page arrays is built in small pages."""
    return nbytes >= MIN_BYTES and parallel.threads() > 1 and _can_collapse()


@contextlib.contextmanager
def small_pages(on: bool) -> Iterator[None]:
    """numpy's huge-page advice off meanwhile, if `on` (arrays made now take small pages)."""
    if not on or _SET_ADVICE is None:
        yield
        return
    before = _SET_ADVICE(False)
    try:
        yield
    finally:
        _SET_ADVICE(before)


def _huge_span(a: npt.NDArray[Any]) -> tuple[int, int]:
    """The whole huge pages inside an array's memory: (start address, bytes)."""
    lo = (a.ctypes.data + HUGE - 1) // HUGE * HUGE
    hi = (a.ctypes.data + a.nbytes) // HUGE * HUGE
    return lo, max(hi - lo, 0)


def _own(arrays: Iterable[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
    """The arrays numpy allocated (not views, not maps of their own such as sparse
    zeros, which stay in small pages on purpose) of 4 MiB or more."""
    return [a for a in arrays if a.flags.owndata and a.nbytes >= 4 << 20]


def after_build(filled: Iterable[npt.NDArray[Any]], others: Iterable[npt.NDArray[Any]]
                ) -> threading.Thread | None:
    """Give huge pages back to the arrays of a world built in small pages: `others` get
    numpy's advice at once (later faults take huge pages), `filled` are collapsed by a
    background thread, which is returned (None if there is nothing to do)."""
    if _MADVISE is None:
        return None
    for a in _own(others):
        _MADVISE(*_huge_span(a), _MADV_HUGEPAGE)
    todo = _own(filled)
    for a in todo:
        _MADVISE(*_huge_span(a), _MADV_HUGEPAGE)  # khugepaged's, should a collapse fail
    if not todo:
        return None
    # Weak references: a world dropped meanwhile (a sweep's run that ends before its
    # collapse) is freed at once, not held until the thread gets through it.
    refs = [weakref.ref(a) for a in todo]
    del todo
    thread = threading.Thread(target=_collapse, args=(refs,), name="overcommit-hugepages",
                              daemon=True)
    thread.start()
    return thread


def _collapse(refs: list[weakref.ref[npt.NDArray[Any]]]) -> None:
    """Collapse each array's memory, STEP_BYTES a call, while the array lives (held only
    during a call). A step the kernel refuses (its pages changing meanwhile, none of them
    mapped yet, or no huge page free) is left to khugepaged; the kernel could collapse
    (`_can_collapse`), so the others go on. At the lowest CPU priority: the ticks come
    first."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only
    for ref in refs:
        a = ref()
        if a is None:
            continue
        start, size = _huge_span(a)
        del a
        for at in range(start, start + size, STEP_BYTES):
            _go.wait()
            a = ref()
            if a is None:
                break
            _MADVISE(at, min(STEP_BYTES, start + size - at), _MADV_COLLAPSE)
            del a
