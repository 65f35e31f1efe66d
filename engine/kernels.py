"""Compiled loops (numba, optional) for work numpy does only in many passes.

Some of a tick's work is one walk in order, each step depending on the ones before, or a
dozen numpy passes over the same few arrays: ksmd's batch goes position after position
until it has handed over its budget of pages (memory/ksm_scan.py), the first step of
cmp_and_merge_page reads and marks each page handed over (memory/ksm_front.py), the rest
of it goes page after page through the trees (memory/ksm_pass.py), ESX's scan looks up
each candidate's key and hint and decides each group of equal keys (memory/esx_pass.py),
the pages made shared or joining a shared frame are remapped (memory/share_loop.py),
a hash lookup walks its key's probing run, new keys are placed and shared frames given
their keys (hash_probes.py), a
VM's page-cache and balloon picks are made, classed and chosen (memory/pick_loop.py), a
VM short of free and cached pages is walked for its page-cache picks
(memory/walk_pick.py), device I/O pages are marked, bounced and counted
(memory/io_loop.py), frames are popped from the free stacks and dropped ones pushed back
(memory/frame_loops.py), the
touches that fault served and the shared pages written to copied (memory/fault_loop.py),
freed shared frames dropped from the sharing tables (memory/forget_loop.py), the
workload's touches are laid out from the numbers drawn (workloads/layout_loop.py) and
read, tested and marked (memory/touch_loop.py), the pre-copies step and send (Xen's
peeking at their dirty logs, QEMU's measuring its windows: migration/precopy_loop.py),
a balloon's victims are ballooned (memory/inflate_loop.py), pages' VMs and frames'
hosts are looked up (arrays.SegmentOf), per-VM counters moved (memory/counts.py), and
integer arrays sorted by their bits (sort_loop.py). A compiled loop does each in one or
two reads of each element; those that read at random take a half or pieces each on two
threads (MIN_SPLIT, engine/parallel.py).
With numba installed (`pip install -e '.[fast]'`), they run compiled; without it, or with
OVERCOMMIT_KERNELS=numpy, the numpy passes run.

The two give the same results bit for bit (tests/engine/test_kernels.py compares each
loop's output with the numpy passes' and runs worlds both ways to the same digest): a run
never depends on which ran. The one thing that may differ is which slot of a KSM tree or
of the stable table an entry sits in (the KSM loop puts keys in one at a time, the passes
in batches; a compiled rebuild of the stable table lays its keys out in the old table's
order, hash_probes.insert_fresh), which no lookup's answer depends on; the digest counts
the trees by their entries.

Loops that look up keys or pages at random ask for the lines of the items some way ahead
(engine/prefetch.py: a cache hint, compiled to one instruction, changing no result), so
their cache misses overlap instead of coming one at a time: on the data center this
halved the KSM pass (9.9 to 5.4 ms of thread time a tick) and cut the frame releases by
30 % and the touch front by 8 %.

A loop is compiled at its first call, once per process, and cached on disk by numba (next
to its module, or in numba's cache for the user when that is read-only): compiling all
29 took 14.5 s (README: Speed), and a later process loads them in under a second, most of
it importing numba.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from engine.errors import InputError

KERNELS_ENV = "OVERCOMMIT_KERNELS"
# Items (keys looked up, pages handed over, positions walked) from which a loop's work is
# cut in two, a half on each of two threads (engine/parallel.py): an item is mostly a
# cache miss, some 10 ns here, and handing a half to the other thread costs 20-100 us.
MIN_SPLIT = 16_384
CHOICES = ("numba", "numpy")


def kernels_setting() -> str | None:
    """OVERCOMMIT_KERNELS (None when unset or empty); InputError when it names neither
    choice (the CLI checks it before anything runs)."""
    raw = os.environ.get(KERNELS_ENV, "").strip()
    if not raw:
        return None
    if raw not in CHOICES:
        raise InputError(f"environment variable {KERNELS_ENV}", repr(raw),
                         f"expected one of {', '.join(CHOICES)}")
    return raw


def available() -> bool:
    """Whether numba can be imported (once; the answer is kept)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _AVAILABLE = False
        else:
            _AVAILABLE = True
    return _AVAILABLE


_AVAILABLE: bool | None = None


def compiled() -> bool:
    """Whether the loops run compiled: numba is there and OVERCOMMIT_KERNELS is not
    "numpy" (a bad value is refused at the CLI; a library caller gets the default).
    Within `settled()` on this thread, the answer it found."""
    answer: bool | None = getattr(_settled, "answer", None)
    return _compiled_now() if answer is None else answer


def _compiled_now() -> bool:
    try:
        wanted = kernels_setting()
    except InputError:
        wanted = None
    return wanted != "numpy" and available()


_settled = threading.local()


@contextlib.contextmanager
def settled(answer: bool | None = None) -> Iterator[None]:
    """compiled() asked once for the calls the block makes on this thread: a tick's
    (some 90 on the data center, each reading the environment: 2 us a call). `answer`:
    the one another thread found, for work it hands to this one."""
    before = getattr(_settled, "answer", None)
    _settled.answer = _compiled_now() if answer is None else answer
    try:
        yield
    finally:
        _settled.answer = before


class Kernel:
    """A loop written in plain Python over numpy arrays and scalars, compiled by numba at
    its first call (nopython, the GIL let go). Called only when compiled() says so: run
    as Python it would be a per-page loop. `samples` gives argument tuples of the types
    the engine calls it with (empty arrays), for warm_up(). `helpers`: plain functions
    the loop calls (one step several loops share), compiled with it: the loop's module
    then holds the compiled helper under the helper's name, as numba needs to see it."""

    def __init__(self, loop: Callable[..., Any],
                 samples: Callable[[], list[tuple[Any, ...]]],
                 helpers: tuple[Callable[..., Any], ...] = ()) -> None:
        self.loop = loop
        self.samples = samples
        self.helpers = helpers
        self._compiled: Callable[..., Any] | None = None
        self._lock = threading.Lock()
        _KERNELS.append(self)

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    import numba

                    if _names_prefetch(self.loop, self.helpers):
                        from engine import prefetch

                        for fn in (self.loop, *self.helpers):
                            fn.__globals__["prefetch"] = prefetch.compiled()
                    for helper in self.helpers:
                        self.loop.__globals__[helper.__name__] = _compiled_helper(helper)
                    self._compiled = numba.njit(cache=True, nogil=True)(self.loop)
        return self._compiled(*args)


def _names_prefetch(loop: Callable[..., Any], helpers: tuple[Callable[..., Any], ...]) -> bool:
    """Whether the loop or a helper calls engine.prefetch.prefetch (a cache hint: compiled,
    it is the intrinsic; the plain function is what the module holds until then)."""
    return any("prefetch" in fn.__code__.co_names for fn in (loop, *helpers))


_KERNELS: list[Kernel] = []
NOT_INLINED = "_kernel_helper_not_inlined"  # set True on a helper compiled as a call
_HELPERS: dict[Callable[..., Any], Callable[..., Any]] = {}


def _compiled_helper(helper: Callable[..., Any]) -> Callable[..., Any]:
    """The helper compiled (once, whichever loop asks first)."""
    import numba

    if helper not in _HELPERS:
        # Inlined, unless the helper says otherwise (numba cannot inline a call with as
        # many arguments as precopy_loop's step).
        if getattr(helper, NOT_INLINED, False):
            _HELPERS[helper] = numba.njit(cache=True, nogil=True, inline="never")(helper)
        else:
            _HELPERS[helper] = numba.njit(cache=True, nogil=True, inline="always")(helper)
    return _HELPERS[helper]


def warm_up() -> None:
    """Compile every loop for the types the engine calls it with, or load it from numba's
    cache, so that no tick waits for it (measured: 5.5 s the first time after an install,
    0.4-0.8 s after). The console does this on a thread of its own as it starts. A call
    with other types later still compiles at that call; without numba this does nothing."""
    if not compiled():
        return
    for kernel in list(_KERNELS):
        for args in kernel.samples():
            kernel(*args)
