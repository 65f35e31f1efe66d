"""Page touches: first touch, copy-on-write breaks, stalls, writes and the guest view."""

import numpy as np

from engine import Simulation, invariants, parse_scenario
from engine.memory import recency
from engine.memory.content import unique_content
from engine.memory.sharing import try_share
from engine.memory.touch import apply_touches
from engine.state import GuestKind, Loc
from tests.conftest import small_spec

MiB = 1024**2


def _sim(**vm_overrides: object) -> Simulation:
    data = small_spec()
    data["vm"][0].update(vm_overrides)
    return Simulation.from_spec(parse_scenario(data), check=True)


def _touch(sim: Simulation, reads: list[int], writes: list[int], zero: bool = False) -> object:
    state = sim.world.state
    r = np.array(reads, np.int64)
    w = np.array(writes, np.int64)
    n = len(state.vms)
    content = np.zeros(w.size, np.uint64) if zero else unique_content(state, w.size)
    return apply_touches(state, r, w, content,
                         np.bincount(state.vms.vm_of_pages(r), minlength=n),
                         np.bincount(state.vms.vm_of_pages(w), minlength=n))


def test_first_touch_maps_a_zeroed_frame_and_uses_the_page() -> None:
    sim = _sim(content={"resident": 0.0})
    state = sim.world.state
    free_before = int(state.hosts.free_count[0])
    _touch(sim, reads=[5, 5, 9], writes=[])
    p = state.pages
    assert p.location[5] == Loc.PRIVATE and p.content[5] == 0 and p.frame[5] >= 0
    assert int(state.hosts.free_count[0]) == free_before - 2  # page 5 touched twice
    assert p.guest_kind[5] == GuestKind.ANON and recency.touched_now(state, np.array([9]))[0]
    assert int(state.vms["first_touches"][0]) == 2
    assert invariants.check(state) == []


def test_writes_give_unique_content_or_zero_and_mark_dirty() -> None:
    sim = _sim(content={"resident": 0.0})
    state = sim.world.state
    _touch(sim, reads=[], writes=[1, 2])
    c1, c2 = state.pages.content[1], state.pages.content[2]
    assert c1 != c2 and c1 != 0 and state.pages.written_before[2] == 1
    # No dirty log while the VM is not pre-copying (its bits are never written).
    assert not state.pages.dirty[:10].any() and state.write_log == []
    _touch(sim, reads=[], writes=[1], zero=True)
    assert state.pages.content[1] == 0
    state.vms["precopying"][0] = True
    _touch(sim, reads=[], writes=[3])
    assert state.pages.dirty[3] and not state.pages.dirty[4]
    (logged, was_dirty), = state.write_log
    assert logged.tolist() == [3] and not was_dirty[0]


def test_write_to_shared_page_breaks_copy_on_write() -> None:
    sim = _sim(content={"resident": 0.0})
    state = sim.world.state
    _touch(sim, reads=[10, 11], writes=[])
    p = state.pages
    # Both pages are zero-filled: the sharing scanner merges them into one frame.
    assert try_share(state, np.array([10, 11])).all()
    shared_frame = p.frame[10]
    assert p.frame[11] == shared_frame and state.frames.refcount[shared_frame] == 2
    assert invariants.check(state) == []

    _touch(sim, reads=[10], writes=[11])
    assert p.location[11] == Loc.PRIVATE and p.frame[11] != shared_frame
    assert p.location[10] == Loc.SHARED and state.frames.refcount[shared_frame] == 1
    assert int(state.vms["cow_breaks"][0]) == 1
    assert invariants.check(state) == []


def test_touches_stall_when_the_host_is_out_of_frames() -> None:
    data = small_spec()
    data["host"][0]["memory"] = "4MiB"  # 1024 frames
    data["vm"][0].update(content={"resident": 0.0})
    data["vm"][1].update(content={"resident": 0.0}, host="h2")
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    state = sim.world.state
    free = int(state.hosts.free_count[0])  # 1024 less a's overhead frames
    assert free == 1024 - int(state.vms["overhead_held"][0])
    result = _touch(sim, reads=list(range(1500)), writes=[])
    assert int(state.hosts.free_count[0]) == 0
    assert int(result.stalled[0]) == 1500 - free  # type: ignore[attr-defined]
    events = sim.step(1)
    assert any(e.kind == "memory_stall" and e.vm == "a" for e in events)
    assert sim.snapshot().vm("a").service_level < 1.0


def test_a_vm_never_grows_past_its_max_by_touching() -> None:
    sim = _sim(content={"resident": 0.0}, max="1MiB")
    result = _touch(sim, reads=list(range(600)), writes=[])
    state = sim.world.state
    assert int(state.vms["loc_count"][0, Loc.PRIVATE]) == 256
    assert int(result.stalled[0]) == 600 - 256  # type: ignore[attr-defined]


def test_identical_images_give_identical_pages() -> None:
    data = small_spec()
    data["host"][0]["memory"] = "17MiB"  # both VMs whole, and their overhead
    for vm in data["vm"][:2]:
        vm["content"] = {"zero": 0.0, "os": 0.5, "app": 0.5, "private": 0.0, "resident": 1.0}
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    p, vms = sim.world.state.pages, sim.world.state.vms
    a = p.content[vms["page_offset"][0]:vms["page_offset"][0] + vms["n_pages"][0]]
    b = p.content[vms["page_offset"][1]:vms["page_offset"][1] + vms["n_pages"][1]]
    assert np.array_equal(np.sort(a), np.sort(b))
    assert np.unique(a).size == a.size  # distinct pages of one image


def test_stopping_a_vm_frees_all_its_memory() -> None:
    sim = _sim()
    state = sim.world.state
    sim.step(5)
    resident = int(state.vms["loc_count"][0, Loc.PRIVATE])
    assert sim.submit({"kind": "stop_vm", "vm": "a"}).ok
    sim.step(1)
    assert not sim.snapshot().vm("a").running
    b = slice(int(state.vms["page_offset"][1]), int(state.vms["page_offset"][2]))
    b_frames = np.unique(state.pages.frame[b][state.pages.frame[b] >= 0]).size
    b_frames += int(state.vms["overhead_held"][1])  # and b's overhead; a's went back
    assert int(state.vms["overhead_held"][0]) == 0
    assert int(state.hosts.free_count[0]) + b_frames == int(state.hosts.n_frames[0])
    assert resident > 0 and int(state.vms["loc_count"][0, Loc.UNTOUCHED]) == 2048
