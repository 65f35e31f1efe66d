"""Arrays a build need not write are held as zeros the OS maps lazily (schema 5): a page's
last write as its tick + 1 (0 never), each free-stack slot as its frame minus the slot.
A new world's are all zeros but for what boot wrote; saves hold them as memory does, and
saves of schema 4 and older (the tick, -1 never; the frames themselves) still load to
the same world."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import Simulation, persistence
from engine.errors import InputError
from engine.memory import frames as frame_alloc
from engine.savemodel import FREE_STACK_DELTA
from engine.scenario import load_scenario
from tests.conftest import assert_resumes_alike, before_schema_5

Arrays = dict[str, np.ndarray]
SWAP_STORM = "scenarios/campaign/04-the-swap-storm.toml"


@pytest.fixture(scope="module")
def sim() -> Simulation:
    s = Simulation.from_spec(load_scenario(SWAP_STORM), check=True)
    s.step(60)
    return s


def _as_schema_4(sim: Simulation) -> tuple[dict[str, Any], Arrays]:
    meta, arrays = sim.save_state()
    return {**meta, "schema_version": 4}, before_schema_5(arrays)


def test_a_new_world_leaves_its_write_ticks_and_free_stacks_unwritten() -> None:
    state = Simulation.from_spec(load_scenario(SWAP_STORM)).world.state
    written = state.pages.written_before
    assert written.dtype == np.int32 and np.all((written == 0) | (written == 1))
    # Every frame not taken by boot is still in its own slot: the stack reads as arange.
    hosts, frames = state.hosts, state.frames
    for h in range(len(hosts)):
        off, low = int(hosts.frame_offset[h]), int(hosts.low_frames[h])
        free_low = int(hosts.free_low[h])
        free_high = int(hosts.free_count[h]) - free_low
        assert np.array_equal(frames.stack_run(off, off + free_low),
                              np.arange(off, off + free_low))
        assert np.array_equal(frames.stack_run(off + low, off + low + free_high),
                              np.arange(off + low, off + low + free_high))


def test_frames_freed_and_taken_again_go_through_the_offsets() -> None:
    state = Simulation.from_spec(load_scenario(SWAP_STORM)).world.state
    frames, hosts, h = state.frames, state.hosts, 0
    got = frame_alloc.allocate_on(state, h, 5)
    assert np.all(got >= 0) and np.all(frames.refcount[got] == 1)
    frame_alloc.release(state, got[::-1].copy())
    assert frame_alloc.is_low(hosts, got).all()  # this host's memory is all below 4 GB
    top = int(hosts.frame_offset[h] + hosts.free_low[h])
    # Pushed ascending: the top slots hold the frames, each as a frame minus its slot.
    slots = np.arange(top - 5, top)
    assert np.array_equal(frames.free_stack_delta[slots], np.sort(got) - slots)
    assert np.array_equal(frames.stack_at(slots), np.sort(got))
    again = frame_alloc.allocate_on(state, h, 5)
    assert np.array_equal(again, np.sort(got)[::-1])  # popped from the top


def test_a_schema_4_save_still_loads_to_the_same_world(sim: Simulation) -> None:
    state = sim.world.state
    assert np.count_nonzero(state.pages.written_before) > 1000
    meta, arrays = _as_schema_4(sim)
    assert arrays["pages.written_at"].min() == -1
    old = persistence.from_plain(meta, arrays, "old.toml")  # every check on
    assert np.array_equal(old.state.pages.written_before, state.pages.written_before)
    assert np.array_equal(old.state.frames.free_stack_delta, state.frames.free_stack_delta)
    assert_resumes_alike(old, sim, 5)


def test_the_schema_version_says_which_form_the_arrays_take(sim: Simulation) -> None:
    meta, arrays = _as_schema_4(sim)
    with pytest.raises(InputError, match="array pages.written_before is missing"):
        persistence.from_plain({**meta, "schema_version": 5}, arrays, "new.toml")
    meta, arrays = sim.save_state()
    with pytest.raises(InputError, match="array pages.written_at is missing"):
        persistence.from_plain({**meta, "schema_version": 4}, arrays, "old.toml")


@pytest.mark.parametrize(("name", "value", "why"), [
    ("pages.written_before", -1, "must lie in"),
    (FREE_STACK_DELTA, 2**30, "must lie in"),
])
def test_an_offset_out_of_range_is_refused_naming_the_array(
        sim: Simulation, name: str, value: int, why: str) -> None:
    meta, arrays = sim.save_state()
    arrays = dict(arrays)
    arrays[name] = arrays[name].copy()
    arrays[name][-1] = value
    with pytest.raises(InputError, match=f"{name}.*{why}"):
        persistence.from_plain(meta, arrays, "bad.toml")
