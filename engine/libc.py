"""The C library's memory calls, through ctypes, for the modules that manage how the
world's arrays lie in memory (memory/stack_memory.py, hugepages.py) and the benchmark.
ctypes lets the GIL go during a call."""

from __future__ import annotations

import ctypes
from typing import Any


def function(name: str, *argtypes: Any) -> Any:
    """libc's `name` taking `argtypes` and returning an int (errno kept), or None where
    there is no such function (not Linux, or no C library to load)."""
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


def madvise() -> Any:
    """madvise(addr, length, advice), or None."""
    return function("madvise", ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
