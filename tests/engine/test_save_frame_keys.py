"""Saves hold the shared frames' keys sparsely (schema 3): the shared frames, ascending,
and their keys, read back into FrameKeys without a key-per-frame array; saves of schema 2
and older (one key per frame, 0 = not shared) still load; a damaged pair is refused on one
line naming the array."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import Simulation, persistence
from engine.errors import InputError
from engine.hashtable import FrameKeys
from engine.savemodel import FRAME_KEY_FRAMES, FRAME_KEY_KEYS, KSM_SCANNED, SCHEMA_VERSION
from engine.state import Loc
from tests.conftest import alike_ksm_sim, assert_resumes_alike, before_schema_5

Arrays = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return alike_ksm_sim(6, workload={"kind": "idle"})


def _no_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any key-per-frame array of the frame-key table an error."""
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a key-per-frame array was built")

    monkeypatch.setattr(FrameKeys, "dense", refuse)
    monkeypatch.setattr(FrameKeys, "from_dense", refuse)


def test_a_save_holds_the_shared_frames_and_their_keys_and_a_load_gives_them_back(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    state = sim.world.state
    dense = state.sharing.frame_keys.dense()
    with monkeypatch.context() as m:
        _no_dense(m)
        meta, arrays = sim.save_state()
        loaded = persistence.from_plain(meta, arrays, "run.toml")  # every check on
    assert meta["schema_version"] == SCHEMA_VERSION >= 3
    assert "sharing.frame_key" not in arrays
    # KSM's scan ticks go as memory holds them: what a save or digest reads is the world's
    # own array, no converted copy (half a GiB on the data center).
    plain = persistence.to_plain(sim.world)[1][KSM_SCANNED]
    assert plain is state.sharing.ksm_scanned_at and np.any(plain > 0)
    assert np.array_equal(loaded.state.sharing.ksm_scanned_at, state.sharing.ksm_scanned_at)
    frames, keys = arrays[FRAME_KEY_FRAMES], arrays[FRAME_KEY_KEYS]
    assert frames.dtype == np.int32 and keys.dtype == np.uint64
    shared = np.unique(state.pages.frame[state.pages.location == Loc.SHARED])
    owner = np.searchsorted(state.hosts.frame_offset, shared, side="right") - 1
    assert shared.size > 100 and set(owner.tolist()) == {0, 1}
    assert np.array_equal(frames, shared)  # ascending: the order a save holds is fixed
    assert np.array_equal(keys, dense[frames]) and np.all(keys != 0)
    stable_keys, stable_frames, _ = state.sharing.stable.items()
    assert np.array_equal(keys[np.searchsorted(frames, stable_frames)], stable_keys)
    got = loaded.state.sharing.frame_keys
    assert np.array_equal(got.dense(), dense)
    assert np.array_equal(got.bits, state.sharing.frame_keys.bits)
    assert_resumes_alike(loaded, sim, 4)


def _as_schema_2(sim: Simulation) -> tuple[dict[str, Any], Arrays, np.ndarray]:
    """The world saved as schema 2 wrote it: one key per frame (0 = not shared), and KSM's
    scan ticks as the tick, -1 never (memory holds tick + 1, 0 never)."""
    meta, arrays = sim.save_state()
    arrays = before_schema_5(arrays)
    arrays["sharing.ksm_scanned_at"] = arrays.pop(KSM_SCANNED) - np.int32(1)
    frames, keys = arrays.pop(FRAME_KEY_FRAMES), arrays.pop(FRAME_KEY_KEYS)
    dense = np.zeros(sim.world.state.frames.refcount.size, np.uint64)
    dense[frames] = keys
    arrays["sharing.frame_key"] = dense
    return {**meta, "schema_version": 2}, arrays, dense


def test_a_schema_2_save_with_a_key_per_frame_still_loads(sim: Simulation) -> None:
    meta, arrays, dense = _as_schema_2(sim)
    assert np.count_nonzero(dense) > 100
    assert np.any(arrays["sharing.ksm_scanned_at"] >= 0)
    old = persistence.from_plain(meta, arrays, "old.toml")
    assert np.array_equal(old.state.sharing.ksm_scanned_at,
                          sim.world.state.sharing.ksm_scanned_at)
    assert np.array_equal(old.state.sharing.frame_keys.dense(), dense)
    assert np.array_equal(old.state.sharing.frame_keys.dense(),
                          sim.world.state.sharing.frame_keys.dense())
    assert_resumes_alike(old, sim, 4)


def test_the_schema_version_says_which_form_the_keys_take(sim: Simulation) -> None:
    """Schema 2 must hold the key per frame, schema 3 the pair: each refused in the other's
    form, naming the array it lacks."""
    meta, arrays, _ = _as_schema_2(sim)
    with pytest.raises(InputError, match=f"array {FRAME_KEY_FRAMES} is missing"):
        persistence.from_plain({**meta, "schema_version": 3}, arrays, "new.toml")
    meta, arrays = sim.save_state()
    with pytest.raises(InputError, match="array sharing.frame_key is missing"):
        persistence.from_plain({**meta, "schema_version": 2}, before_schema_5(arrays),
                               "old.toml")


def _swap_first_two(a: Arrays) -> None:
    for name in (FRAME_KEY_FRAMES, FRAME_KEY_KEYS):
        a[name] = a[name].copy()
        a[name][[0, 1]] = a[name][[1, 0]]


def _set(name: str, index: int, value: int) -> Callable[[Arrays], None]:
    def edit(a: Arrays) -> None:
        a[name] = a[name].copy()
        a[name][index] = value
    return edit


@pytest.mark.parametrize(("edit", "array", "why"), [
    (_swap_first_two, FRAME_KEY_FRAMES, "strictly increasing"),
    (lambda a: _set(FRAME_KEY_FRAMES, 1, int(a[FRAME_KEY_FRAMES][0]))(a), FRAME_KEY_FRAMES,
     "strictly increasing"),
    (lambda a: a.update({FRAME_KEY_KEYS: a[FRAME_KEY_KEYS][:-1]}), FRAME_KEY_KEYS,
     "expected shape"),
    (lambda a: a.update({FRAME_KEY_FRAMES: a[FRAME_KEY_FRAMES][1:]}), FRAME_KEY_KEYS,
     "expected shape"),
    (_set(FRAME_KEY_FRAMES, -1, 2**30), FRAME_KEY_FRAMES, "must lie in"),
    (_set(FRAME_KEY_FRAMES, 0, -1), FRAME_KEY_FRAMES, "must lie in"),
    (_set(FRAME_KEY_KEYS, 3, 0), FRAME_KEY_KEYS, "key is 0"),
    (lambda a: a.update({FRAME_KEY_FRAMES: a[FRAME_KEY_FRAMES].astype(np.int64)}),
     FRAME_KEY_FRAMES, "expected int32"),
    (lambda a: a.update({FRAME_KEY_FRAMES: a[FRAME_KEY_FRAMES].reshape(1, -1)}),
     FRAME_KEY_FRAMES, "one dimension"),
    (lambda a: a.pop(FRAME_KEY_KEYS), FRAME_KEY_KEYS, "missing"),
    (_set(KSM_SCANNED, 0, 10**6), KSM_SCANNED, "must lie in"),
    (_set(KSM_SCANNED, 0, -1), KSM_SCANNED, "must lie in"),
], ids=["unsorted", "repeated", "keys short", "frames short",
        "frame past the end", "frame negative", "key zero", "int64 frames", "2-D", "no keys",
        "scanned in the future", "scanned before tick 0"])
def test_a_damaged_pair_is_refused_naming_the_array(sim: Simulation, edit: Any, array: str,
                                                    why: str) -> None:
    meta, arrays = sim.save_state()
    assert arrays[FRAME_KEY_FRAMES].size > 4
    edit(arrays)
    with pytest.raises(InputError) as info:
        persistence.from_plain(meta, arrays, "bad.toml")
    message = str(info.value)
    assert f"array {array}" in message and why in message and "\n" not in message
