"""Save files: a TOML document (tomli-w) plus a compressed .npz sidecar for the arrays.

Both are written atomically (temp file + rename), the sidecar first, and the TOML names
the sidecar and its SHA-256, so a save is either complete or refused; an existing save is
never left half-overwritten.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from engine import InputError, Simulation

SIDECAR_SUFFIX = ".arrays.npz"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_save(path: str | Path, sim: Simulation) -> Path:
    path = Path(path)
    if path.suffix != ".toml":
        path = path.with_suffix(".toml")
    meta, arrays = sim.save_state()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    blob = buffer.getvalue()
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    _atomic_write(sidecar, blob)
    doc = {
        "overcommit_save": {
            "sidecar": sidecar.name,
            "sidecar_sha256": hashlib.sha256(blob).hexdigest(),
            "scenario": sim.spec.scenario.name,
            "tick": sim.tick,
        },
        "world": _toml_safe(meta),
    }
    _atomic_write(path, tomli_w.dumps(doc).encode())
    return path


def read_save(path: str | Path, check: bool = False) -> Simulation:
    path = Path(path)
    source = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(source, "(file)", f"cannot read: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(source, "(syntax)", f"damaged save, not valid TOML: {err}") from None
    header = doc.get("overcommit_save")
    if not isinstance(header, dict) or "world" not in doc:
        raise InputError(source, "overcommit_save", "not an Overcommit save file")
    sidecar = path.with_name(str(header.get("sidecar", "")))
    try:
        blob = sidecar.read_bytes()
    except OSError:
        raise InputError(source, "overcommit_save.sidecar",
                         f"missing array file {sidecar.name} next to the save") from None
    if hashlib.sha256(blob).hexdigest() != header.get("sidecar_sha256"):
        raise InputError(source, "overcommit_save.sidecar_sha256",
                         f"damaged save: {sidecar.name} does not match its checksum")
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return Simulation.from_state((doc["world"], arrays), source=source, check=check)


def is_save_file(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b"[overcommit_save]" in head


def save_summary(path: str | Path) -> dict[str, Any]:
    """What a load list shows of a save, from its TOML alone (the arrays are not read):
    scenario, tick, simulated time and profit. Raises InputError if it is not a save."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        header, world = doc["overcommit_save"], doc["world"]
        tick_s = float(world["scenario"]["scenario"].get("tick_s", 1.0))
        money = world["money"]
        return {"scenario": str(header["scenario"]), "tick": int(header["tick"]),
                "time_s": int(header["tick"]) * tick_s,
                "profit": float(money["revenue"]) - float(money["costs"])
                - float(money["penalties"])}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError,
            ValueError) as err:
        raise InputError(str(path), "(file)", f"not a readable save ({err})") from None
