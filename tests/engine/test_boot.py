"""Power-on and boot: instant and timed boots, zero fill, stalls, bulk build."""

from typing import Any

import numpy as np
import pytest

from engine import Simulation, parse_scenario
from engine.memory import boot
from engine.rng import Streams
from engine.state import GuestKind, Loc
from engine.vmlife import build_state
from tests.conftest import small_spec


def _windows_on_a_short_host() -> Simulation:
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "esx", "pages_per_s_per_vm": 50,
                                 "pages_per_s_per_host": 200, "share_force_salting": 0}
    # A slow swap disk and no balloon on hog: the host reclaims slower than win boots.
    data["host"][0]["swap_disk"] = "512KB/s"
    data["vm"] = [
        {"id": "hog", "host": "h1", "memory": "11MiB", "balloon_driver": False,
         "content": {"zero": 0.0, "os": 0.2, "app": 0.0, "private": 0.8, "resident": 1.0},
         "workload": {"kind": "idle"}},
        {"id": "win", "host": "h1", "memory": "8MiB", "guest_os": "windows",
         "balloon_driver": False, "boot": {"mode": "timed", "duration": "5s"},
         "workload": {"kind": "idle"}},
    ]
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_a_windows_boot_zeroes_its_memory_and_stalls_instead_of_losing_pages() -> None:
    sim = _windows_on_a_short_host()
    state = sim.world.state
    win = state.vms.index("win")
    sl = slice(int(state.vms["page_offset"][win]), int(state.vms["page_offset"][win] + 2048))
    events = sim.step(1)
    # Zero fill first, at the boot's pace (3,072 plan positions over 5 s).
    assert state.vms["booting"][win] and int(state.vms["boot_cursor"][win]) == 615
    assert np.all(state.pages.content[sl][:615] == 0)
    for _ in range(20):
        events += sim.step(1)
        if not state.vms["booting"][win]:
            break
    kinds = [e.kind for e in events]
    # The host ran out of frames: the boot stalled (an event, lost service) and took
    # longer than its 5 s, while sharing collapsed zero pages and the host swapped.
    assert "boot_stall" in kinds and "vm_booted" in kinds
    report = sim.report()["vms"][win]
    assert report["boot_stall_s"] > 1.0 and report["lost_s"]["memory_stall"] > 1.0
    assert sim.time_s > 7 and not report["booting"]
    assert state.vms["zero_shared"][win] > 100
    assert sim.snapshot().host("h1").swapped_bytes > 0
    # Every page was written by the boot: none left untouched without a word.
    assert not np.any(state.pages.location[sl] == Loc.UNTOUCHED)


def test_a_timed_boot_ends_in_the_layout_an_instant_boot_gives() -> None:
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "off"}
    common: dict[str, Any] = {"memory": "4MiB", "guest_os": "plan9", "app": "web",
                              "content": {"zero": 0.3, "os": 0.3, "app": 0.1,
                                          "private": 0.3, "resident": 0.6},
                              "workload": {"kind": "idle"}}
    data["vm"] = [{"id": "now", "host": "h1", **common},
                  {"id": "slow", "host": "h2", **common,
                   "boot": {"mode": "timed", "duration": "3s"}}]
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    state = sim.world.state
    assert not state.vms["booting"][0] and state.vms["booting"][1]
    sim.step(4)
    assert not state.vms["booting"][1]
    p, n = state.pages, 1024
    a, b = slice(0, n), slice(n, 2 * n)
    assert np.array_equal(p.location[a], p.location[b])
    assert np.array_equal(p.guest_kind[a], p.guest_kind[b])
    # Unique pages differ by each VM's base; every other page is identical.
    base = state.vms["boot_unique_base"]
    unique = p.guest_kind[a] == GuestKind.ANON
    assert np.array_equal(p.content[a][~unique], p.content[b][~unique])
    assert np.array_equal(p.content[a][unique] - base[0], p.content[b][unique] - base[1])


def test_building_a_world_reports_progress_and_lays_every_vm_out() -> None:
    data = small_spec()
    data["vm"] += [{"id": f"x{i}", "host": "h2", "memory": "1MiB"} for i in range(6)]
    calls: list[tuple[int, int]] = []
    spec = parse_scenario(data)
    state = build_state(spec, Streams(3), lambda done, total: calls.append((done, total)))
    placed = sum(vm.host is not None for vm in spec.all_vms())
    assert calls and calls[-1] == (placed, placed)
    assert all(a <= b for (a, _), (b, _) in zip(calls, calls[1:], strict=False))
    running = state.vms["host"] >= 0
    assert not state.vms["booting"][running].any()
    assert np.all(state.vms["loc_count"][running, Loc.PRIVATE] > 0)


def test_a_save_in_the_middle_of_a_boot_goes_on_exactly() -> None:
    sim = _windows_on_a_short_host()
    sim.step(3)
    blob = sim.save_state()
    loaded = Simulation.from_state(blob, check=True)
    sim.step(6)
    loaded.step(6)
    assert loaded.digest() == sim.digest()


def _overcommitted_boots(mixed: bool) -> Simulation:
    """Instant boots that do not fit their host (the slow path), of two templates (planned
    template by template) or of one (touched in runs of VMs in page order)."""
    data = small_spec()
    data["vm"] = [{"id": f"v{i}", "host": "h1" if i < 5 else "h2", "memory": "6MiB",
                   "guest_os": ("windows", "linux")[mixed and i % 3 == 0],
                   "content": {"resident": 1.0}, "workload": {"kind": "idle"}}
                  for i in range(6)]
    return Simulation.from_spec(parse_scenario(data), check=True)


def test_planning_in_chunks_gives_the_plan_planned_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow path plans a few VMs' positions at a time (boot.PLAN_CHUNK), and touches
    them in runs of VMs where that is the same: cut between any VMs (a VM with more
    positions than a chunk is one of its own), the boots and all that follows are the
    same. The hosts run out of frames part way: the order of the runs counts."""
    planned: list[int] = []
    plan = boot._plan

    def counted(*args: Any) -> Any:
        out = plan(*args)
        planned.append(out[0].size)
        return out

    monkeypatch.setattr(boot, "_plan", counted)

    def run(chunk: int, build: Any) -> str:
        monkeypatch.setattr(boot, "PLAN_CHUNK", chunk)
        sim = build()
        sim.step(12)
        return sim.digest()

    for build in (_windows_on_a_short_host, lambda: _overcommitted_boots(True),
                  lambda: _overcommitted_boots(False)):
        assert run(1 << 40, build) == run(700, build) == run(1, build)
    assert max(planned) > 700  # some calls were cut (the overcommitted power-ons')
