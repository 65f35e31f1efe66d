"""Commands are judged against the world as it will be when they apply: after the
timeline entries due at the next tick and the commands already queued (engine/pending.py);
and the column-wise snapshot agrees with its rows."""

from __future__ import annotations

from engine import Simulation
from engine.commands import (
    CancelMigration,
    Migrate,
    SetBalloonDriver,
    SetBalloonTarget,
    StartVM,
    StopVM,
)


def test_a_second_command_sees_the_first(small_sim: Simulation) -> None:
    sim = small_sim
    assert sim.submit(StartVM(vm="q", host="h2")).ok
    again = sim.preview(StartVM(vm="q", host="h1"))
    assert not again.ok and "already running on h2" in again.reason
    assert sim.submit(SetBalloonDriver(vm="a", enabled=False)).ok
    balloon = sim.preview(SetBalloonTarget(vm="a", target=2**20))
    assert not balloon.ok and "no balloon driver" in balloon.reason
    assert sim.submit(StopVM(vm="c")).ok
    assert sim.preview(StartVM(vm="c", host="h1")).ok  # stopped by then: it may start
    events = sim.step(1)
    assert not [e for e in events if e.kind == "command_rejected"]
    assert sim.snapshot().vm("q").host == "h2" and sim.snapshot().vm("c").host is None


def test_a_queued_migration_counts(small_sim: Simulation) -> None:
    sim = small_sim
    sim.step(1)
    assert sim.submit(Migrate(vm="a", to="h2")).ok
    assert "already migrating" in sim.preview(Migrate(vm="a", to="h2")).reason
    assert sim.preview(CancelMigration(vm="a")).ok  # the pre-copy it will be
    assert sim.snapshot().pending == (Migrate(vm="a", to="h2"),)
    assert sim.snapshot().pending_vms() == {"a"}


def test_without_queued_commands_the_world_itself_judges(small_sim: Simulation) -> None:
    assert small_sim.judging_world() is small_sim.world


def test_host_sums_agree_with_the_vm_rows(small_sim: Simulation) -> None:
    small_sim.step(5)
    snap = small_sim.snapshot()
    for host in snap.hosts:
        mine = [v for v in snap.vms if v.host == host.id]
        assert host.n_vms == len(mine)
        assert host.private_bytes == sum(v.private_bytes for v in mine)
        assert host.configured_vm_bytes == sum(v.configured_bytes for v in mine)
        assert host.guest_shared_bytes == sum(v.shared_bytes for v in mine)
    assert [v.id for v in snap.vms] == small_sim.world.state.vms.ids
    assert snap.vm("b") is snap.vms[snap.vms.index_of("b")]  # built once, then kept


def test_a_running_migration_counts_in_the_projection(small_sim: Simulation) -> None:
    sim = small_sim
    sim.step(1)
    slow = Migrate(vm="a", to="h2", max_rate=125_000.0, min_rate=125_000.0)  # 1 Mbit/s
    assert sim.submit(slow).ok
    sim.step(2)  # the pre-copy runs now: the projection must still see it
    assert "already migrating" in sim.preview(Migrate(vm="a", to="h2")).reason
    assert sim.submit(CancelMigration(vm="a")).ok
    assert "no pre-copy migration" in sim.preview(CancelMigration(vm="a")).reason
