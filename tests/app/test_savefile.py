"""app/savefile.py: the sidecar is written from the world's own arrays, streamed and
hashed on its way to the file, and read back from the file; older sidecars still load."""

from __future__ import annotations

import hashlib
import io
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import savefile
from app.savefile import SAVE_ID_ARRAY, read_save, write_save
from engine import InputError, Simulation, parse_scenario, persistence
from tests.fuzz.scenarios import small


def _world(ticks: int = 3) -> Simulation:
    sim = Simulation.from_spec(parse_scenario(small()), seed=3)
    sim.step(ticks)
    return sim


def _header(path: Path) -> dict[str, Any]:
    header: dict[str, Any] = tomllib.loads(path.read_text())["overcommit_save"]
    return header


def test_write_save_does_not_copy_the_world(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """save_state() copies every array (for a fork or a checkpoint); a save has no need
    of that copy, 4 GiB on the data center."""
    sim = _world()

    def copying(self: Simulation) -> Any:
        raise AssertionError("write_save copied the world (save_state)")

    monkeypatch.setattr(Simulation, "save_state", copying)
    path = write_save(tmp_path / "a.toml", sim)
    loaded = read_save(path)
    assert loaded.digest() == sim.digest()
    ours = sim.plain_state()[1]
    theirs = persistence.to_plain(loaded.world)[1]
    for name in ("pages.content", "pages.frame", "frames.refcount"):
        assert ours[name].tobytes() == theirs[name].tobytes()


def test_plain_state_shares_the_world_arrays_and_save_state_does_not() -> None:
    sim = _world()
    plain = sim.plain_state()[1]["pages.content"]
    copied = sim.save_state()[1]["pages.content"]
    assert np.shares_memory(plain, sim.world.state.pages.content)
    assert not np.shares_memory(copied, sim.world.state.pages.content)
    assert np.array_equal(plain, copied)


def test_the_checksum_in_the_toml_is_the_sidecar_file_sha256(tmp_path: Path) -> None:
    path = write_save(tmp_path / "a.toml", _world())
    header = _header(path)
    data = (tmp_path / header["sidecar"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == header["sidecar_sha256"]
    # A plain .npz: every array a .npy member, deflated; the save id inside.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
        assert all(i.filename.endswith(".npy") for i in infos)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert bytes(npz[SAVE_ID_ARRAY]).decode() == header["save_id"]


@pytest.mark.parametrize("level", [1, 6, 9])
def test_every_deflate_level_gives_the_same_world(tmp_path: Path, level: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sim = _world()
    monkeypatch.setattr(savefile, "DEFLATE_LEVEL", level)
    assert read_save(write_save(tmp_path / "a.toml", sim)).digest() == sim.digest()


def test_a_sidecar_written_by_savez_compressed_still_loads(tmp_path: Path) -> None:
    """Saves written before the sidecar was streamed: np.savez_compressed into memory."""
    sim = _world()
    path = write_save(tmp_path / "a.toml", sim)
    header = _header(path)
    sidecar = tmp_path / header["sidecar"]
    with np.load(sidecar, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    old = buffer.getvalue()
    assert old != sidecar.read_bytes()
    sidecar.write_bytes(old)
    text = path.read_text().replace(header["sidecar_sha256"], hashlib.sha256(old).hexdigest())
    path.write_text(text)
    assert read_save(path).digest() == sim.digest()


def test_a_sidecar_that_does_not_match_its_checksum_is_refused(tmp_path: Path) -> None:
    path = write_save(tmp_path / "a.toml", _world())
    sidecar = tmp_path / _header(path)["sidecar"]
    data = bytearray(sidecar.read_bytes())
    data[len(data) // 2] ^= 0xFF
    sidecar.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match its checksum") as err:
        read_save(path)
    assert err.value.path == "overcommit_save.sidecar_sha256"
    assert "\n" not in str(err.value)


def test_a_sidecar_that_is_not_a_regular_file_or_too_big_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_save(tmp_path / "a.toml", _world())
    sidecar = tmp_path / _header(path)["sidecar"]
    monkeypatch.setattr(savefile, "SIDECAR_LIMIT", sidecar.stat().st_size - 1)
    with pytest.raises(InputError, match="next to the save: too big") as err:
        read_save(path)
    assert err.value.path == "overcommit_save.sidecar"
    monkeypatch.undo()
    sidecar.unlink()
    sidecar.mkdir()
    with pytest.raises(InputError, match="next to the save: not a regular file"):
        read_save(path)
    sidecar.rmdir()
    with pytest.raises(InputError, match="next to the save: cannot read"):
        read_save(path)
