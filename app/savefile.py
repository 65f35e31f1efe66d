"""Save files: a TOML document (tomli-w) plus a compressed .npz sidecar for the arrays.

Crash-safe as a whole: the sidecar of each save gets a new name, `STEM.<save id>.arrays.npz`,
written (temp file, fsync, rename, fsync of the folder) before the TOML that names it
replaces the old TOML the same way. A kill at any moment leaves the old TOML with its own
sidecar, or the new TOML with the new one; never a TOML whose sidecar is gone or another's.
What a killed save leaves behind (temp files, an orphan sidecar) is removed by the next
save of that name. The TOML holds the sidecar's SHA-256 and the save id, also stored in
the sidecar, so a sidecar of another save is refused.

Loading trusts nothing: regular files of bounded size, UTF-8 TOML, a header with a plain
sidecar name in the same folder, the sidecar's size when unpacked bounded by what the
world needs, then the engine's own checks (engine/persistence.py). A file that is not an
Overcommit save is never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tomli_w
from pydantic import ValidationError

from app.deflate import ParallelDeflate, parallel_member
from engine import InputError, Simulation, persistence
from engine.inputfile import decode_utf8, open_regular, parse_toml, read_bytes
from engine.savemodel import SaveHeader
from engine.scenario import first_error

SIDECAR_SUFFIX = ".arrays.npz"
SAVE_ID_ARRAY = "save.id"  # the save id as ASCII bytes, inside the sidecar
TOML_LIMIT = 1024**3
SIDECAR_LIMIT = 64 * 1024**3
# zlib level of the sidecar. Level 1: the data center's save takes a fraction of the
# time of the default level 6 for a file not much bigger (benchmarks/save_bench.py).
DEFLATE_LEVEL = 1
_MAX_THREADS = 8  # that deflate or inflate a sidecar; one per core below that
_WRITE_BUFFER = 1024**2
_READ_CHUNK = 4 * 1024**2
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (_atomic_fill)."""
    _atomic_fill(path, lambda handle: handle.write(data))


def _atomic_fill(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write `path` whole or not at all: `fill` writes the contents to a temp file in the
    folder, then fsync, rename, fsync of the folder. The temp file's name carries our pid,
    so a later cleanup can tell a dead writer's leftovers from a live one's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class _HashingWriter:
    """The temp file as zipfile sees it: every byte hashed on its way to the file, and
    no seek, so zipfile streams each member (sizes and CRC in a data descriptor after it)
    instead of seeking back to patch its header, which would change hashed bytes."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._written = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self._handle.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        """Nothing: the file is _atomic_fill's to fsync and close."""


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, _MAX_THREADS))


def _write_arrays(handle: BinaryIO, arrays: dict[str, np.ndarray]) -> str:
    """Write the arrays as an .npz (a zip of .npy members, as np.savez_compressed
    writes, so np.load reads it) straight to `handle`; returns the file's SHA-256. Each
    array goes through zlib in chunks (np.lib.format.write_array), the chunks compressed
    on every core (app/deflate.py): no copy of an array, and no compressed blob, is held
    in memory, only the few chunks in flight."""
    out = _HashingWriter(handle)
    workers = _threads()
    with ThreadPoolExecutor(workers, thread_name_prefix="deflate") as pool, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED,
                            compresslevel=DEFLATE_LEVEL) as archive:
        for name, arr in arrays.items():
            # zip64 always (as np.savez): the size is not known before the member ends.
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                parallel_member(member, lambda: ParallelDeflate(pool, DEFLATE_LEVEL,
                                                                2 * workers))
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
    return out.sha256.hexdigest()


def _toml_safe(value: Any) -> Any:
    """TOML has no null and 64-bit integers only: drop None, stringify huge ints."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_safe(v) for v in value if v is not None]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def _header(path: Path) -> SaveHeader | None:
    """The header of an existing save of ours at `path`, or None."""
    try:
        doc = parse_toml(decode_utf8(read_bytes(path, TOML_LIMIT), str(path)), str(path))
        return SaveHeader.model_validate(doc.get("overcommit_save"))
    except (InputError, ValidationError):
        return None


def write_save(path: str | Path, sim: Simulation) -> Path:
    path = Path(path)
    if path.suffix != ".toml":
        path = path.with_suffix(".toml")
    if path.exists() and not is_save_file(path):
        raise InputError(str(path), "(file)", "exists and is not an Overcommit save; "
                         "refusing to overwrite it")
    previous = _header(path) if path.exists() else None
    # The world's own arrays, not a copy (4 GiB on the data center): the world does not
    # step while we write (the CLI between runs, the console under its lock).
    meta, arrays = sim.plain_state()
    save_id = os.urandom(8).hex()
    sidecar = path.with_name(f"{path.stem}.{save_id}{SIDECAR_SUFFIX}")
    arrays[SAVE_ID_ARRAY] = np.frombuffer(save_id.encode(), np.uint8)
    digest: list[str] = []
    _atomic_fill(sidecar, lambda handle: digest.append(_write_arrays(handle, arrays)))
    doc = {
        "overcommit_save": {
            "sidecar": sidecar.name,
            "sidecar_sha256": digest[0],
            "save_id": save_id,
            "scenario": sim.spec.scenario.name,
            "tick": sim.tick,
        },
        "world": _toml_safe(meta),
    }
    _atomic_write(path, tomli_w.dumps(doc).encode())
    # The switch is done: what the previous save and killed saves left can go.
    keep = {sidecar.name}
    if previous is not None and previous.sidecar.startswith(f"{path.stem}."):
        path.with_name(previous.sidecar).unlink(missing_ok=True)
    _clean(path, keep)
    return path


def _clean(path: Path, keep: set[str]) -> None:
    """Remove temp files of dead writers and orphan sidecars of this save's name."""
    orphan = re.compile(rf"^{re.escape(path.stem)}\.[0-9a-f]{{16}}{re.escape(SIDECAR_SUFFIX)}$")
    for entry in path.parent.iterdir():
        name = entry.name
        temp = _TEMP.match(name)
        if temp is not None and (temp["name"] == path.name or orphan.match(temp["name"])):
            if not _alive(int(temp["pid"])):
                entry.unlink(missing_ok=True)
        elif orphan.match(name) and name not in keep:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid: leave it be
    return True


def read_save(path: str | Path, check: bool = False) -> Simulation:
    path = Path(path)
    source = str(path)
    doc = parse_toml(decode_utf8(read_bytes(path, TOML_LIMIT), source), source)
    raw_header = doc.get("overcommit_save")
    world = doc.get("world")
    if not isinstance(raw_header, dict) or not isinstance(world, dict):
        raise InputError(source, "overcommit_save", "not an Overcommit save file")
    try:
        header = SaveHeader.model_validate(raw_header)
    except ValidationError as err:
        field, msg = first_error(err)
        raise InputError(source, f"overcommit_save.{field}", msg) from None
    model = persistence.check_meta(world, source)
    sidecar = path.with_name(header.sidecar)

    def unreadable(err: InputError) -> InputError:
        return InputError(source, "overcommit_save.sidecar",
                          f"array file {header.sidecar} next to the save: {err.expected}")

    try:
        handle = open_regular(sidecar, SIDECAR_LIMIT)
    except InputError as err:
        raise unreadable(err) from None
    with handle:
        try:
            digest = _sha256_of(handle, sidecar)
        except InputError as err:
            raise unreadable(err) from None
        if digest != header.sidecar_sha256:
            raise InputError(source, "overcommit_save.sidecar_sha256",
                             f"damaged save: {header.sidecar} does not match its checksum")
        # np.load reads the file just hashed (still open: a rename since cannot swap it),
        # not a copy of it in memory: a gigabyte or two on the big data center.
        arrays = _load_arrays(handle, persistence.array_bytes_bound(model), source)
    found = arrays.pop(SAVE_ID_ARRAY, None)
    found_id = bytes(found).decode("ascii", "replace") if found is not None else None
    if found_id != header.save_id:
        raise InputError(source, "overcommit_save.save_id", f"{header.sidecar} belongs to "
                         "another save (its save id differs)")
    world_state = persistence.from_plain(world, arrays, source, model=model)
    return Simulation(world_state, check=check)


def _sha256_of(handle: io.BufferedReader, path: Path) -> str:
    """The SHA-256 of the open file, read in pieces; its size must not change meanwhile."""
    size = os.fstat(handle.fileno()).st_size
    digest = hashlib.sha256()
    chunk = bytearray(_READ_CHUNK)
    view = memoryview(chunk)
    read = 0
    try:
        while n := handle.readinto(chunk):
            digest.update(view[:n])
            read += n
            if read > size:
                break
    except OSError as err:
        raise InputError(str(path), "(file)", f"cannot read: {err.strerror}") from None
    if read != size:
        raise InputError(str(path), "(file)", "changed while it was read; try again")
    return digest.hexdigest()


def _load_arrays(data: bytes | BinaryIO, limit: int, source: str) -> dict[str, np.ndarray]:
    """The sidecar's arrays (from its bytes or its open file), refusing pickled objects
    and more data than the world needs (a small zip can unpack to gigabytes)."""
    handle: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > limit:
            raise InputError(source, "overcommit_save.sidecar", f"damaged save: the arrays "
                             f"unpack to {unpacked:,} bytes, more than the world needs")
        handle.seek(0)
        # Members unpack side by side, one a core: zlib lets go of the GIL while it
        # inflates, and zipfile reads one open file from several threads. The data
        # center's 4.7 GiB: 5.5 s on two cores, 12-18 s on one.
        with np.load(handle, allow_pickle=False) as npz, \
                ThreadPoolExecutor(_threads(), thread_name_prefix="inflate") as pool:
            return dict(zip(npz.files, pool.map(npz.__getitem__, npz.files), strict=True))
    except InputError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise InputError(source, "overcommit_save.sidecar",
                         f"damaged save: the array file cannot be read ({err})") from None


def is_save_file(path: str | Path) -> bool:
    try:
        head = read_bytes(path, TOML_LIMIT, head=4096)
    except InputError:
        return False
    return b"[overcommit_save]" in head


def save_summary(path: str | Path) -> dict[str, Any]:
    """What a load list shows of a save, from its TOML alone (the arrays are not read):
    scenario, tick, simulated time and profit. Raises InputError if it is not a save."""
    path = Path(path)
    source = str(path)
    doc = parse_toml(decode_utf8(read_bytes(path, TOML_LIMIT), source), source)
    try:
        header, world = doc["overcommit_save"], doc["world"]
        tick_s = float(world["scenario"]["scenario"].get("tick_s", 1.0))
        money = world["money"]
        return {"scenario": str(header["scenario"]), "tick": int(header["tick"]),
                "time_s": int(header["tick"]) * tick_s,
                "profit": float(money["revenue"]) - float(money["costs"])
                - float(money["penalties"])}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(source, "(file)", f"not a readable save ({err})") from None
