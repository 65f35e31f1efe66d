"""Reading a scenario or save file as a hostile user may hand it over.

Only regular files (a FIFO would block, /dev/zero never ends), at most `limit` bytes,
UTF-8 (a leading byte-order mark is tolerated), TOML nested at most MAX_DEPTH deep. Every
refusal is an InputError naming the file, so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import io
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.units import format_bytes

MAX_DEPTH = 16  # tables and arrays within each other; real files need about 6
SCENARIO_LIMIT = 16 * 1024**2


def open_regular(path: str | Path, limit: int | None) -> io.BufferedReader:
    """`path` open for reading, if it is a regular file of at most `limit` bytes (None:
    any size). For files read in pieces (a save's sidecar) as read_bytes reads whole ones."""
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO without a writer must not hang before fstat says no.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise InputError(source, "(file)", f"cannot read: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(source, "(file)", "not a regular file (a directory, device or "
                             "pipe); give a scenario or save file")
        if limit is not None and info.st_size > limit:
            raise InputError(source, "(file)", f"too big ({format_bytes(info.st_size)}; at "
                             f"most {format_bytes(limit)})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int, head: int | None = None) -> bytes:
    """The file's bytes, if it is a regular file of at most `limit` bytes (with `head`:
    only its first `head` bytes, whatever its size)."""
    source = str(path)
    with open_regular(path, limit if head is None else None) as handle:
        want = min(os.fstat(handle.fileno()).st_size, limit if head is None else head)
        try:
            data = handle.read(want + 1)  # one more: a file that grew since fstat shows it
        except OSError as err:
            raise InputError(source, "(file)", f"cannot read: {err.strerror}") from None
    if head is not None:
        return data[:want]
    if len(data) > want:
        raise InputError(source, "(file)", "changed while it was read; try again")
    return data


def decode_utf8(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(source, "(file)", f"not UTF-8 text (byte 0x{data[err.start]:02x} at "
                         f"offset {err.start}); TOML files are UTF-8") from None
    return text.removeprefix("\ufeff")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(source, "(syntax)", f"not valid TOML: {err}") from None
    except RecursionError:
        raise InputError(source, "(syntax)", f"nested too deeply (at most {MAX_DEPTH} levels "
                         "of tables and arrays)") from None
    check_depth(data, source)
    return data


def check_depth(data: Any, source: str) -> None:
    """Refuse structures nested deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(source, "(syntax)", f"nested too deeply (at most {MAX_DEPTH} "
                             "levels of tables and arrays)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def read_toml(path: str | Path, limit: int = SCENARIO_LIMIT) -> dict[str, Any]:
    return parse_toml(decode_utf8(read_bytes(path, limit), str(path)), str(path))
