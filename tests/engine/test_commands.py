"""Commands are checked with a reason, applied at the next tick, and scheduled ones fire."""

from engine import Simulation, StartVM, StopVM, parse_scenario
from tests.conftest import small_spec

MiB = 1024**2


def test_rejections_say_why_and_change_nothing(small_sim: Simulation) -> None:
    digest = small_sim.digest()
    cases = {
        "no VM 'zz'": {"kind": "stop_vm", "vm": "zz"},
        "not running": {"kind": "stop_vm", "vm": "q"},
        "already running": {"kind": "start_vm", "vm": "a", "host": "h2"},
        "no host 'h7'": {"kind": "start_vm", "vm": "q", "host": "h7"},
        "exceeds max": {"kind": "set_min", "vm": "a", "min": 9 * MiB},
        "between min": {"kind": "set_max", "vm": "a", "max": 64 * MiB},
        "already exists": {"kind": "place_vm", "vm": {"id": "a", "host": "h1", "memory": "1MiB"}},
        "shares": {"kind": "set_shares", "vm": "a", "shares": -1},
        "kind": {"kind": "migrate_everything"},
    }
    for needle, cmd in cases.items():
        verdict = small_sim.submit(cmd)
        assert not verdict.ok, cmd
        assert needle in verdict.reason, (needle, verdict.reason)
    assert small_sim.digest() == digest


def test_reservations_cannot_exceed_a_host() -> None:
    data = small_spec()
    data["vm"][3]["min"] = "4MiB"
    data["vm"][0]["min"] = "8MiB"
    data["vm"][1]["min"] = "6MiB"
    sim = Simulation.from_spec(parse_scenario(data))
    verdict = sim.submit(StartVM(vm="q", host="h1"))
    assert not verdict.ok and "unreserved memory" in verdict.reason
    assert sim.submit(StartVM(vm="q", host="h2")).ok


def test_accepted_commands_apply_at_the_next_tick(small_sim: Simulation) -> None:
    assert small_sim.submit(StopVM(vm="a")).ok
    assert small_sim.snapshot().vm("a").running
    events = small_sim.step(1)
    assert not small_sim.snapshot().vm("a").running
    assert [e.kind for e in events if e.vm == "a"] == ["vm_stopped"]


def test_a_command_valid_at_submit_but_stale_at_apply_is_rejected_then(
        small_sim: Simulation) -> None:
    assert small_sim.submit(StopVM(vm="a")).ok
    # Submit judges against the queued commands (engine/pending.py): refused at once.
    assert "not running" in small_sim.submit(StopVM(vm="a")).reason
    small_sim.world.pending.append(StopVM(vm="a"))  # queued behind the checks' back
    events = small_sim.step(1)
    assert [e.kind for e in events if e.kind.startswith("command")] == ["command_rejected"]


def test_place_vm_defines_and_boots_a_new_customer(small_sim: Simulation) -> None:
    verdict = small_sim.submit({"kind": "place_vm", "vm": {
        "id": "new", "host": "h2", "memory": "2MiB", "content": {"resident": 0.5}}})
    assert verdict.ok
    small_sim.step(2)
    vm = small_sim.snapshot().vm("new")
    assert vm.running and vm.host == "h2" and vm.resident_bytes >= 1 * MiB


def test_timeline_commands_fire_at_their_time() -> None:
    data = small_spec(timeline=[
        {"at": "3s", "kind": "start_vm", "vm": "q", "host": "h2"},
        {"at": "5s", "kind": "set_shares", "vm": "a", "shares": 77},
    ])
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(3)
    assert not sim.snapshot().vm("q").running
    events = sim.step(1)
    assert sim.snapshot().vm("q").running and events[0].time_s == 3.0
    sim.step(2)
    assert sim.snapshot().vm("a").shares == 77


def test_admission_checks_swap_space_for_max_minus_min() -> None:
    data = small_spec()
    data["host"][1]["swap_space"] = "6MiB"  # vm c (4 MiB, min 0) already holds 4
    sim = Simulation.from_spec(parse_scenario(data))
    verdict = sim.submit(StartVM(vm="q", host="h2"))  # q (4 MiB, min 0) needs 4 MiB more
    assert not verdict.ok and "swap" in verdict.reason
    assert sim.submit({"kind": "set_min", "vm": "q", "min": 2 * MiB}).ok
    sim.step(1)
    assert sim.submit(StartVM(vm="q", host="h2")).ok
